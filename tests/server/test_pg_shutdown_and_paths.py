"""`pintail serve`: --allow-path keeps SQL to given directories; SIGTERM
drains (running statements finish, new clients are refused, idle ones
closed) and cancels what runs past --shutdown-timeout, leaving the
database at its last commit."""

from __future__ import annotations

import pathlib
import signal
import subprocess
import time

import psycopg
import pytest
from conftest import ENDLESS, ROOT, Server, binary, free_port, in_background, serving, start


def stop(server: Server, clients: list[psycopg.Connection]) -> None:
    for client in clients:
        client.close()
    if server.process.poll() is None:
        server.process.kill()
        server.process.wait(timeout=30)


def test_allow_path_keeps_sql_to_the_given_directories(tmp_path: pathlib.Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "ok.csv").write_text("x\n1\n2\n")
    (tmp_path / "secret.csv").write_text("x\n42\n")
    with serving([str(tmp_path / "db"), "--allow-path", str(data)], tmp_path) as server:
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            assert conn.execute(f"SELECT sum(x) FROM '{data}/ok.csv'").fetchone() == (3,)
            # the served database is always allowed
            conn.execute("CREATE TABLE t AS SELECT 1 AS x")
            conn.execute(f"COPY t TO '{data}/t.csv'")
            assert (data / "t.csv").exists()
            for sql in [
                "SELECT * FROM read_csv('/etc/passwd', header = false)",
                f"SELECT * FROM '{tmp_path}/secret.csv'",
                f"SELECT * FROM '{data}/../secret.csv'",
                f"COPY t TO '{tmp_path}/leak.csv'",
                f"ATTACH '{tmp_path}/other.db' AS other",
            ]:
                with pytest.raises(psycopg.errors.InsufficientPrivilege, match="outside the allowed paths") as raised:
                    conn.execute(sql)
                assert "may read and write only under" in (raised.value.diag.message_hint or "")
            assert not (tmp_path / "leak.csv").exists()
            assert not (tmp_path / "other.db").exists()
            # a glob above the allowed directory sees only what is under it
            with pytest.raises(psycopg.errors.IoError, match="no files match"):
                conn.execute(f"SELECT * FROM '{tmp_path}/*.csv'")
            # ok.csv and t.csv, not secret.csv
            assert conn.execute(f"SELECT sum(x) FROM '{tmp_path}/**/*.csv'").fetchone() == (4,)
            assert conn.execute("SELECT x FROM t").fetchone() == (1,)
    out = subprocess.run(
        [binary(), "serve", "--pg", f"127.0.0.1:{free_port()}", "--allow-path", str(tmp_path / "missing")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2 and "cannot use" in out.stderr and "missing" in out.stderr, out.stderr


def test_sigterm_lets_running_statements_finish_and_refuses_new_clients(tmp_path: pathlib.Path) -> None:
    server = start([str(tmp_path / "db"), "--shutdown-timeout", "60s"], tmp_path)
    clients: list[psycopg.Connection] = []
    try:
        idle = psycopg.connect(server.dsn, autocommit=True)
        busy = psycopg.connect(server.dsn, autocommit=True)
        clients.extend([idle, busy])
        rows = busy.cursor().stream("SELECT value FROM range(3000000)")
        # the statement is running: its first rows have come, most have not
        assert next(rows) == (0,)
        server.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        while not any("phase=draining" in line for line in server.log_lines()):
            assert time.monotonic() < deadline, server.log.read_text()
            time.sleep(0.05)
        with pytest.raises(psycopg.OperationalError, match="the database system is shutting down"):
            psycopg.connect(server.dsn)
        # the running statement still sends every row
        total, count = 0, 1
        for (value,) in rows:
            total += value
            count += 1
        assert (count, total) == (3_000_000, 3_000_000 * 2_999_999 // 2)
        # idle connections are closed
        with pytest.raises(psycopg.OperationalError):
            idle.execute("SELECT 1")
        assert server.process.wait(timeout=30) == 0, server.log.read_text()
    finally:
        stop(server, clients)
    lines = server.log_lines()
    assert any(line.startswith("event=stopped") for line in lines), lines


def test_the_shutdown_deadline_cancels_statements_and_keeps_the_database_whole(tmp_path: pathlib.Path) -> None:
    database = tmp_path / "db"
    server = start([str(database), "--shutdown-timeout", "1s"], tmp_path)
    clients: list[psycopg.Connection] = []
    try:
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE t AS SELECT * FROM range(10) r(v)")
        # a transaction with a staged write, left open
        open_txn = psycopg.connect(server.dsn)
        open_txn.execute("INSERT INTO t VALUES (100)")
        slow = psycopg.connect(server.dsn, autocommit=True)
        clients.extend([open_txn, slow])
        runner = in_background(slow, ENDLESS)
        time.sleep(1.0)
        started = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        failures = runner.join()
        assert len(failures) == 1 and isinstance(failures[0], psycopg.errors.AdminShutdown), failures
        assert "terminating connection due to administrator command" in str(failures[0])
        assert server.process.wait(timeout=30) == 0, server.log.read_text()
        # the deadline, then moments to cancel: never the minutes the query needed
        assert time.monotonic() - started < 30
    finally:
        stop(server, clients)
    # the open transaction was rolled back; the table reads as committed
    with serving([str(database)], tmp_path) as again, psycopg.connect(again.dsn, autocommit=True) as conn:
        assert conn.execute("SELECT count(*), sum(v) FROM t").fetchone() == (10, 45)


def test_a_second_signal_stops_at_once(tmp_path: pathlib.Path) -> None:
    server = start([str(tmp_path / "db"), "--shutdown-timeout", "10min"], tmp_path)
    slow = psycopg.connect(server.dsn, autocommit=True)
    try:
        runner = in_background(slow, ENDLESS)
        time.sleep(1.0)
        server.process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert server.process.poll() is None, "the first signal drains"
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=30) == 0
        failures = runner.join()
        # the client learns its connection is gone
        assert len(failures) == 1 and isinstance(failures[0], psycopg.OperationalError), failures
    finally:
        stop(server, [slow])
    assert any(line.startswith("event=stopped") and "a second signal" in line for line in server.log_lines())
