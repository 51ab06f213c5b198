"""Reading a result a part at a time: psycopg's server-side cursors (SQL
`DECLARE` / `FETCH` / `MOVE` / `CLOSE`), the same statements from psql, and
protocol portals executed with a row limit."""

from __future__ import annotations

import datetime
import struct

import psycopg
import pytest
from conftest import Server, exchange, kinds, message, psql, startup


def test_psycopg_server_side_cursors_read_forward_in_batches(server: Server) -> None:
    with psycopg.connect(server.dsn) as conn:
        with conn.cursor(name="big") as cur:
            cur.itersize = 1000
            cur.execute("SELECT value, 'v' || value AS s FROM range(200000) WHERE value < %s ORDER BY value", (100_000,))
            assert [(c.name, c.type_code) for c in cur.description or []] == [("value", 20), ("s", 25)]
            assert cur.fetchone() == (0, "v0")
            assert cur.fetchmany(2) == [(1, "v1"), (2, "v2")]
            rest = list(cur)
            assert len(rest) == 99_997 and rest[0] == (3, "v3") and rest[-1] == (99_999, "v99999")
            assert sum(v for v, _ in rest) == sum(range(3, 100_000))

            # executing again declares the cursor afresh
            cur.execute("SELECT value FROM range(100)")
            cur.scroll(10)
            assert cur.fetchone() == (10,)
            with pytest.raises(psycopg.errors.FeatureNotSupported, match="can only scan forward"):
                cur.scroll(-1)
        conn.rollback()

        # a cursor without WITH HOLD ends with its transaction
        cur = conn.cursor(name="short")
        cur.execute("SELECT value FROM range(10)")
        assert cur.fetchmany(3) == [(0,), (1,), (2,)]
        conn.commit()
        with pytest.raises(psycopg.errors.InvalidCursorName, match='cursor "short" does not exist'):
            cur.fetchone()
        conn.rollback()
        cur.close()


def test_cursors_outside_a_transaction_are_declared_with_hold(server: Server) -> None:
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        with conn.cursor(name="loose") as loose, pytest.raises(psycopg.errors.NoActiveSqlTransaction, match="only be used in transaction blocks"):
            loose.execute("SELECT 1")
        # binary rows, typed, across statements that run meanwhile
        with conn.cursor(name="held", withhold=True, binary=True) as cur:
            cur.execute("SELECT value, value * 1.5 AS d, DATE '2024-01-01' + value::INT AS day FROM range(5) ORDER BY value")
            assert cur.fetchone() == (0, 0.0, datetime.date(2024, 1, 1))
            assert conn.execute("SELECT 42").fetchone() == (42,)
            assert [r[1] for r in cur.fetchall()] == [1.5, 3.0, 4.5, 6.0]
        # the context closed it: its name is free again
        with conn.cursor(name="held", withhold=True) as cur:
            cur.execute("SELECT 'again'")
            assert cur.fetchall() == [("again",)]


def test_psql_declares_fetches_moves_and_closes(server: Server) -> None:
    script = """
        BEGIN;
        DECLARE c NO SCROLL CURSOR FOR SELECT value FROM range(10) ORDER BY value;
        FETCH 2 FROM c;
        MOVE FORWARD 3 IN c;
        FETCH NEXT FROM c;
        FETCH ALL FROM c;
        FETCH FROM c;
        CLOSE c;
        COMMIT;
    """
    out = psql(server, "-A", "-t", "-c", script)
    assert out.returncode == 0, out.stderr
    # psql prints the rows of each FETCH (and the MOVE's tag with -c)
    assert out.stdout.split() == ["BEGIN", "DECLARE", "CURSOR", "0", "1", "MOVE", "3", "5", "6", "7", "8", "9", "CLOSE", "CURSOR", "COMMIT"]

    out = psql(server, "-v", "VERBOSITY=verbose", "-c", "BEGIN; FETCH 1 FROM nope")
    assert 'ERROR:  34000: cursor "nope" does not exist' in out.stderr
    out = psql(server, "-v", "VERBOSITY=verbose", "-c", "BEGIN; DECLARE d CURSOR FOR SELECT 1; DECLARE d CURSOR FOR SELECT 2")
    assert 'ERROR:  42P03: cursor "d" already exists' in out.stderr
    out = psql(server, "-c", "CREATE TABLE t (x INT)", "-c", "BEGIN; DECLARE w CURSOR FOR INSERT INTO t VALUES (1)", "-A", "-t", "-c", "SELECT count(*) FROM t")
    assert "a cursor is declared for a query" in out.stderr
    out = psql(server, "-A", "-t", "-c", "SELECT count(*) FROM t")
    assert out.stdout.strip() == "0", out.stderr
    out = psql(server, "-c", "BEGIN; DECLARE s SCROLL CURSOR FOR SELECT 1")
    assert "SCROLL cursors are not supported" in out.stderr
    out = psql(server, "-c", "BEGIN; DECLARE s CURSOR FOR SELECT 1; FETCH BACKWARD 1 FROM s")
    assert 'cursor "s" can only scan forward' in out.stderr


def test_an_execute_with_a_row_limit_suspends_the_portal(server: Server) -> None:
    parse = message(b"P", b"\0SELECT value FROM range(5) ORDER BY value\0" + struct.pack("!h", 0))
    bind = message(b"B", b"\0\0" + struct.pack("!hhh", 0, 0, 0))

    def execute(rows: int) -> bytes:
        return message(b"E", b"\0" + struct.pack("!i", rows))

    answer = exchange(server.port, startup() + parse + bind + execute(2) + execute(2) + execute(0) + message(b"S", b"") + message(b"X", b""))
    messages = kinds(answer)
    # after the startup's ReadyForQuery: ParseComplete, BindComplete; 2 rows
    # and PortalSuspended, twice; the last row and CommandComplete; ReadyForQuery
    assert messages[messages.index(b"Z") :] == [b"Z", b"1", b"2", b"D", b"D", b"s", b"D", b"D", b"s", b"D", b"C", b"Z"]
    assert rows(answer) == [b"0", b"1", b"2", b"3", b"4"]
    assert b"SELECT 1\0" in answer  # the last Execute's tag counts its own rows


def rows(data: bytes) -> list[bytes]:
    """The first column of each DataRow in `data`."""
    out, i = [], 0
    while i + 5 <= len(data):
        (length,) = struct.unpack("!i", data[i + 1 : i + 5])
        if data[i : i + 1] == b"D":
            (size,) = struct.unpack("!i", data[i + 7 : i + 11])
            out.append(data[i + 11 : i + 11 + size])
        i += 1 + length
    return out
