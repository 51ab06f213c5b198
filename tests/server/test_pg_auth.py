"""`pintail serve --users/--tls-cert/--tls-key`: SCRAM-SHA-256 logins and
TLS, with psql and psycopg (libpq) as the clients."""

from __future__ import annotations

import ipaddress
import os
import pathlib
import struct
import subprocess
from collections.abc import Callable

import psycopg
import pytest
from conftest import ROOT, binary, exchange, free_port, kinds, message, serving, startup

# never a password from the tester's ~/.pgpass
NO_PASSFILE = "passfile=/nonexistent"


def hash_password(password: str) -> str:
    out = subprocess.run([binary(), "hash-password"], input=password + "\n", capture_output=True, text=True, timeout=60, check=True)
    return out.stdout.strip()


def users_file(tmp: pathlib.Path) -> pathlib.Path:
    """alice with a verifier from `pintail hash-password`, bob with a plain password."""
    users = tmp / "users"
    users.write_text(f"# who may connect\nalice:{hash_password('s3cret pass')}\n\nbob:plain-password\n")
    return users


def outside_address() -> str:
    """An IPv4 address of this machine that is not loopback: connections to
    it come from a non-loopback address, as another machine's would."""
    out = subprocess.run(["hostname", "-I"], capture_output=True, text=True, check=False)
    for word in out.stdout.split():
        address = ipaddress.ip_address(word)
        if address.version == 4 and not address.is_loopback:
            return word
    pytest.skip("this machine has no non-loopback IPv4 address to connect from")


def certificate(tmp: pathlib.Path, ip: str) -> tuple[pathlib.Path, pathlib.Path]:
    """A self-signed ECDSA P-256 certificate for `ip` and 127.0.0.1, and its key."""
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=pintail test",
            "-addext", f"subjectAltName=IP:{ip},IP:127.0.0.1",
        ],
        capture_output=True,
        check=True,
        timeout=60,
    )  # fmt: skip
    return cert, key


def test_hash_password_prints_a_postgres_verifier_not_the_password() -> None:
    verifier = hash_password("s3cret pass")
    assert verifier.startswith("SCRAM-SHA-256$4096:"), verifier
    assert "s3cret" not in verifier
    # a fresh salt each time
    assert hash_password("s3cret pass") != verifier
    empty = subprocess.run([binary(), "hash-password"], input="\n", capture_output=True, text=True, timeout=60)
    assert empty.returncode == 2 and "the password is empty" in empty.stderr


def test_scram_logins_and_refusals(tmp_path: pathlib.Path) -> None:
    with serving([str(tmp_path / "db"), "--users", str(users_file(tmp_path))], tmp_path) as server:
        dsn = f"host=127.0.0.1 port={server.port} dbname=db {NO_PASSFILE}"
        with psycopg.connect(f"{dsn} user=alice password='s3cret pass'", autocommit=True) as conn:
            assert conn.execute("SELECT 40 + 2").fetchone() == (42,)
        out = subprocess.run(
            ["psql", "-X", "-w", "-A", "-t", "-h", "127.0.0.1", "-p", str(server.port), "-U", "bob", "db", "-c", "SELECT 'in'"],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PGPASSWORD": "plain-password"},
        )
        assert out.returncode == 0 and out.stdout.strip() == "in", out.stderr

        # a wrong password and an unknown user fail alike, so names cannot be probed
        with pytest.raises(psycopg.OperationalError, match='password authentication failed for user "alice"'):
            psycopg.connect(f"{dsn} user=alice password=guess")
        with pytest.raises(psycopg.OperationalError, match='password authentication failed for user "mallory"'):
            psycopg.connect(f"{dsn} user=mallory password='s3cret pass'")
        # the server asks for a password; the client has none to give
        with pytest.raises(psycopg.OperationalError, match="no password supplied"):
            psycopg.connect(f"{dsn} user=alice")
        # a client that would take any method but a password is refused before it gets a session
        out = subprocess.run(
            ["psql", "-X", "-w", "-h", "127.0.0.1", "-p", str(server.port), "-U", "bob", "db", "-c", "SELECT 1"],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PGPASSFILE": "/nonexistent", "PGPASSWORD": ""},
        )
        assert out.returncode == 2 and "no password supplied" in out.stderr

        # and the server still serves
        with psycopg.connect(f"{dsn} user=bob password=plain-password") as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    failures = [line for line in server.log_lines() if line.startswith("event=auth_failed ")]
    assert any("user=alice" in line and "password authentication failed" in line for line in failures)
    assert any("user=mallory" in line for line in failures)
    # no password ever reaches the log
    assert "guess" not in server.log.read_text() and "s3cret" not in server.log.read_text()


def test_a_session_is_opened_only_for_a_client_that_logged_in(tmp_path: pathlib.Path) -> None:
    db = tmp_path / "db"
    with serving([str(db), "--users", str(users_file(tmp_path))], tmp_path) as server:
        dsn = f"host=127.0.0.1 port={server.port} dbname=db {NO_PASSFILE}"
        # the database cannot be opened any more: only a client that logged
        # in learns of it, since only its session opens the database
        (db / "pintail.json").write_text('{"format": "pintail-database", "version": 99}')
        with pytest.raises(psycopg.OperationalError, match='password authentication failed for user "alice"'):
            psycopg.connect(f"{dsn} user=alice password=guess")
        with pytest.raises(psycopg.OperationalError, match="FATAL: .* format version 99"):
            psycopg.connect(f"{dsn} user=alice password='s3cret pass'")
        (db / "pintail.json").write_text('{"format": "pintail-database", "version": 1}')
        with psycopg.connect(f"{dsn} user=alice password='s3cret pass'") as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)


def test_the_environment_gives_the_first_user(tmp_path: pathlib.Path) -> None:
    env = {**os.environ, "PINTAIL_PASSWORD": "from-the-env"}
    with serving([str(tmp_path / "db")], tmp_path, env=env) as server:
        dsn = f"host=127.0.0.1 port={server.port} dbname=db {NO_PASSFILE}"
        with psycopg.connect(f"{dsn} user=pintail password=from-the-env") as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(f"{dsn} user=tester password=from-the-env")
    env["PINTAIL_USER"] = "admin"
    with serving([str(tmp_path / "db")], tmp_path, env=env) as server:
        with psycopg.connect(f"host=127.0.0.1 port={server.port} dbname=db user=admin password=from-the-env {NO_PASSFILE}") as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)


def test_tls_is_required_of_clients_on_other_machines(tmp_path: pathlib.Path) -> None:
    ip = outside_address()
    cert, key = certificate(tmp_path, ip)
    args = [str(tmp_path / "db"), "--users", str(users_file(tmp_path)), "--tls-cert", str(cert), "--tls-key", str(key)]
    with serving(args, tmp_path, listen="0.0.0.0", connect=ip) as server:
        outside = f"host={ip} port={server.port} dbname=db user=alice password='s3cret pass' {NO_PASSFILE}"
        # in clear text from a non-loopback address: refused before any password is asked
        with pytest.raises(psycopg.OperationalError, match=f"connections from {ip} must use TLS"):
            psycopg.connect(f"{outside} sslmode=disable")
        # the certificate checked, and the login bound to it (SCRAM-SHA-256-PLUS)
        with psycopg.connect(f"{outside} sslmode=verify-full sslrootcert={cert} channel_binding=require") as conn:
            assert conn.pgconn.ssl_in_use
            assert conn.execute("SELECT 'over tls'").fetchone() == ("over tls",)
        # the same password is still checked over TLS
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(f"host={ip} port={server.port} dbname=db user=alice password=guess sslmode=require {NO_PASSFILE}")
        # psql with sslmode=require
        out = subprocess.run(
            ["psql", "-X", "-w", "-A", "-t", "-h", ip, "-p", str(server.port), "-U", "bob", "db", "-c", "SELECT 7"],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PGPASSWORD": "plain-password", "PGSSLMODE": "require"},
        )
        assert out.returncode == 0 and out.stdout.strip() == "7", out.stderr
        # on loopback, TLS stays optional
        with psycopg.connect(f"host=127.0.0.1 port={server.port} dbname=db user=alice password='s3cret pass' sslmode=disable {NO_PASSFILE}") as conn:
            assert not conn.pgconn.ssl_in_use
    assert any(line.startswith("event=listening protocol=postgres") and "tls=on" in line for line in server.log_lines())


def test_without_tls_other_machines_log_in_with_scram_and_a_warning(tmp_path: pathlib.Path) -> None:
    ip = outside_address()
    with serving([str(tmp_path / "db"), "--users", str(users_file(tmp_path))], tmp_path, listen="0.0.0.0", connect=ip) as server:
        with psycopg.connect(f"host={ip} port={server.port} dbname=db user=bob password=plain-password sslmode=disable {NO_PASSFILE}") as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        # the client insists on TLS; the server has none to offer
        with pytest.raises(psycopg.OperationalError, match="server does not support SSL"):
            psycopg.connect(f"host={ip} port={server.port} dbname=db user=bob password=plain-password sslmode=require {NO_PASSFILE}")
    assert any(line.startswith("event=warning ") and "no TLS" in line for line in server.log_lines())


def test_bad_users_and_tls_files_are_refused_at_start(tmp_path: pathlib.Path) -> None:
    def refused(*args: str) -> str:
        out = subprocess.run([binary(), "serve", "--pg", f"127.0.0.1:{free_port()}", *args], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert out.returncode == 2, out.stderr
        return out.stderr

    assert "cannot read the users file" in refused("--users", str(tmp_path / "missing"))
    bad_users = tmp_path / "bad-users"
    bad_users.write_text("alice:pw\njust-a-name\n")
    assert f"{bad_users}, line 2: expected name:secret" in refused("--users", str(bad_users))

    cert, key = certificate(tmp_path, "127.0.0.1")
    users = users_file(tmp_path)
    assert "--tls-key" in refused("--users", str(users), "--tls-cert", str(cert))
    assert f"{key}: no certificate found" in refused("--users", str(users), "--tls-cert", str(key), "--tls-key", str(key))
    assert f"{cert}: no private key found" in refused("--users", str(users), "--tls-cert", str(cert), "--tls-key", str(cert))
    other = tmp_path / "other"
    other.mkdir()
    _, other_key = certificate(other, "127.0.0.1")
    assert "cannot be used" in refused("--users", str(users), "--tls-cert", str(cert), "--tls-key", str(other_key))


@pytest.mark.parametrize(
    "login",
    [
        pytest.param(lambda: message(b"p", b"SCRAM-SHA-256\0" + struct.pack("!i", 7) + b"garbage"), id="a malformed SCRAM message"),
        pytest.param(lambda: message(b"p", b"not-a-mechanism\0" + struct.pack("!i", -1)), id="an unknown mechanism"),
        pytest.param(lambda: b"", id="no password at all"),
    ],
)
def test_statements_pipelined_behind_a_failed_login_never_run(tmp_path: pathlib.Path, login: Callable[[], bytes]) -> None:
    marker = tmp_path / "pwned.csv"
    with serving([str(tmp_path / "db"), "--users", str(users_file(tmp_path))], tmp_path) as server:
        payload = (
            startup(user="alice")
            + login()
            + message(b"Q", f"COPY (SELECT 1 AS x) TO '{marker}'\0".encode())
            + message(b"P", b"\0CREATE TABLE pwned (x INT)\0\0\0")
            + message(b"B", b"\0\0\0\0\0\0\0\0")
            + message(b"E", b"\0\0\0\0\0")
            + message(b"S", b"")
        )
        answer = exchange(server.port, payload)
        assert b"E" in kinds(answer), answer[:300]
        assert not marker.exists()
        with psycopg.connect(f"host=127.0.0.1 port={server.port} dbname=db user=bob password=plain-password {NO_PASSFILE}") as conn:
            names = [r[0] for r in conn.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'").fetchall()]
            assert "pwned" not in names
