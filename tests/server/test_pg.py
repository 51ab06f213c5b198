"""`pintail serve --pg`: the Postgres wire protocol, with real clients (psql, psycopg)."""

from __future__ import annotations

import datetime
import decimal
import pathlib
import subprocess

import psycopg
import pytest
from conftest import ROOT, Server, binary, free_port, psql


def test_psql_runs_statements_and_reads_rows(server: Server) -> None:
    out = psql(
        server,
        "-c",
        "CREATE TABLE t (id BIGINT, name VARCHAR, price DOUBLE)",
        "-c",
        "INSERT INTO t VALUES (1, 'apple', 1.5), (2, 'pear', NULL), (3, NULL, 2.25)",
        "-A",
        "-F",
        ",",
        "-c",
        "SELECT id, name, price FROM t ORDER BY id",
    )
    assert out.returncode == 0, out.stderr
    # command tags, then the header, the rows (NULL as empty) and the count
    assert out.stdout.splitlines() == ["CREATE TABLE", "INSERT 0 3", "id,name,price", "1,apple,1.5", "2,pear,", "3,,2.25", "(3 rows)"]


def test_psql_errors_carry_a_sqlstate_and_stop_the_script(server: Server) -> None:
    out = psql(server, "-v", "VERBOSITY=verbose", "-c", "SELECT * FROM no_such_table")
    assert out.returncode != 0
    assert "ERROR:  42P01:" in out.stderr and "no_such_table" in out.stderr
    out = psql(server, "-v", "VERBOSITY=verbose", "-c", "SELEC 1")
    assert "ERROR:  42601:" in out.stderr
    out = psql(server, "-v", "VERBOSITY=verbose", "-c", "SELECT 1 % 0")
    assert "ERROR:  22012:" in out.stderr
    out = psql(server, "-v", "VERBOSITY=verbose", "-c", "SELECT CAST('abc' AS INTEGER)")
    assert "ERROR:  22P02:" in out.stderr
    # one simple query of several statements stops at the first failure
    out = psql(server, "-c", "CREATE TABLE a (x INT); SELECT * FROM nope; CREATE TABLE b (x INT)")
    assert out.returncode != 0
    tables = psql(server, "-A", "-t", "-c", "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' ORDER BY 1")
    assert tables.stdout.split() == ["a"], tables.stderr


def test_psycopg_binds_typed_parameters(server: Server) -> None:
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT %s::BIGINT + 1, %s::DOUBLE * 2, %s || '!', NOT %s, %s::DATE + INTERVAL '1 day', "
            "%s::TIMESTAMP, %s::DECIMAL(10, 2), %s::BIGINT IS NULL",
            [41, 1.25, "hi", False, datetime.date(2024, 2, 28), datetime.datetime(2024, 1, 2, 3, 4, 5), decimal.Decimal("12.34"), None],
        ).fetchone()
        assert row == (
            42,
            2.5,
            "hi!",
            True,
            datetime.date(2024, 2, 29),
            datetime.datetime(2024, 1, 2, 3, 4, 5),
            decimal.Decimal("12.34"),
            True,
        )
        # a value is never SQL: a quote in it stays in the string
        assert conn.execute("SELECT %s", ["it's; DROP TABLE x"]).fetchone() == ("it's; DROP TABLE x",)


def test_psycopg_binds_arrays_intervals_and_bytes(server: Server) -> None:
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        # a Python list is a Postgres array (sent as text: '{2,5}')
        assert conn.execute("SELECT value FROM range(10) WHERE value = ANY(%s) ORDER BY 1", [[2, 5]]).fetchall() == [(2,), (5,)]
        assert conn.execute("SELECT %s::BIGINT[]", [[1, 2, 3]]).fetchone() == ([1, 2, 3],)
        assert conn.execute("SELECT %s::DOUBLE[]", [[1.5, None]]).fetchone() == ([1.5, None],)
        # a list of str goes untyped ('{a,"b c"}' with oid 0): read as a list
        # where it is cast to one or compared with ANY/ALL, not as one string
        words = ["a", "b c", 'q"uote', None]
        assert conn.execute("SELECT %s::VARCHAR[]", [words]).fetchone() == (words,)
        found = "SELECT s FROM (VALUES ('a'), ('b c'), ('d')) t(s) WHERE s = ANY(%s) ORDER BY s"
        assert conn.execute(found, [["b c", "a", "zz"]]).fetchall() == [("a",), ("b c",)]
        assert conn.execute("SELECT 'x' <> ALL(%s), 'x' = ALL(%s)", [["x", "y"], ["x"]]).fetchone() == (False, True)
        assert conn.execute("SELECT %s::BOOLEAN[], %s::DATE[]", [[True, None], [datetime.date(2024, 1, 2)]]).fetchone() == (
            [True, None],
            [datetime.date(2024, 1, 2)],
        )
        # a timedelta goes in binary; an interval comes back as one
        assert conn.execute("SELECT %s::INTERVAL", [datetime.timedelta(days=1, hours=2)]).fetchone() == (datetime.timedelta(days=1, hours=2),)
        assert conn.execute("SELECT %s::BYTEA", [b"\x00\x01\xff"]).fetchone() == (b"\x00\x01\xff",)
        assert conn.execute("SELECT ['x', NULL], INTERVAL '90 minutes'").fetchone() == (["x", None], datetime.timedelta(minutes=90))
        # a timestamp with a time zone is a timestamptz
        cur = conn.execute("""SELECT arrow_cast(TIMESTAMP '2024-01-01 10:00:00', 'Timestamp(Microsecond, Some("UTC"))')""")
        assert cur.fetchone() == (datetime.datetime(2024, 1, 1, 10, tzinfo=datetime.timezone.utc),)
        assert [d.type_code for d in cur.description or []] == [1184]
        with pytest.raises(psycopg.errors.FeatureNotSupported, match="more than one dimension"):
            conn.execute("SELECT %s::BIGINT[]", [[[1, 2], [3, 4]]])


def test_psycopg_prepared_statements_and_writes(server: Server) -> None:
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE items (id BIGINT, label VARCHAR)")
        with conn.cursor() as cur:
            for i in range(6):
                # prepare=True: parsed once, then bound and run again
                cur.execute("INSERT INTO items VALUES (%s, %s)", [i, f"item {i}"], prepare=True)
                assert cur.rowcount == 1
            cur.execute("SELECT label FROM items WHERE id >= %s ORDER BY id", [4], prepare=True)
            assert cur.fetchall() == [("item 4",), ("item 5",)]
            assert [d.name for d in cur.description] == ["label"]
            cur.execute("UPDATE items SET label = 'x' WHERE id < %s", [2])
            assert cur.rowcount == 2
            cur.execute("DELETE FROM items WHERE label = %s", ["x"])
            assert cur.rowcount == 2


def test_psycopg_transactions(server: Server) -> None:
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        # DDL commits on its own: outside a transaction
        conn.execute("CREATE TABLE acct (n BIGINT)")
    # psycopg opens a transaction (BEGIN) before the first statement
    with psycopg.connect(server.dsn) as conn:
        conn.execute("INSERT INTO acct VALUES (1)")
        conn.rollback()
        conn.execute("INSERT INTO acct VALUES (2)")
        conn.commit()
        assert conn.execute("SELECT n FROM acct").fetchall() == [(2,)]


def test_errors_reach_psycopg_as_its_exception_classes(server: Server) -> None:
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.UndefinedTable) as raised:
            conn.execute("SELECT * FROM missing_table")
        assert "missing_table" in str(raised.value)
        with pytest.raises(psycopg.errors.SyntaxError):
            conn.execute("SELECT * FROM (")
        # the connection is still usable
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_one_log_line_per_connection_and_query(server: Server) -> None:
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute("SELECT * FROM generate_series(1, 5)").fetchall()
        with pytest.raises(psycopg.Error):
            conn.execute("SELECT * FROM missing_table")
    lines = server.log_lines()
    assert any(line.startswith("event=listening protocol=postgres") for line in lines)
    assert any(line.startswith("event=connect ") for line in lines)
    queries = [line for line in lines if line.startswith("event=query ")]
    ok = [q for q in queries if "generate_series" in q]
    assert ok and " rows=5 " in ok[0] and " duration_ms=" in ok[0] and " client=127.0.0.1:" in ok[0]
    failed = [q for q in queries if "missing_table" in q]
    assert failed and " error=" in failed[0]
    # the disconnect is logged as the session ends
    server.process.terminate()
    server.process.wait(timeout=30)
    assert any(line.startswith("event=disconnect ") for line in server.log_lines())


def test_a_non_loopback_address_is_refused_without_authentication(tmp_path: pathlib.Path) -> None:
    out = subprocess.run(
        [binary(), "serve", "--pg", f"0.0.0.0:{free_port()}"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 2
    assert "refusing to listen on 0.0.0.0" in out.stderr and "authenticate" in out.stderr
