"""`pintail serve --pg`: COPY TO STDOUT, cancel requests, the time limit and the connection limit."""

from __future__ import annotations

import datetime
import decimal
import pathlib
import subprocess
import threading
import time

import psycopg
import pytest
from conftest import ENDLESS, HOG, Server, binary, in_background, psql, serving, start


@pytest.fixture
def items(server: Server) -> Server:
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE items (id BIGINT, name VARCHAR, price DECIMAL(10, 2), added DATE)")
        conn.execute("INSERT INTO items VALUES (1, 'apple', 1.50, DATE '2024-01-02'), (2, 'tab\tand \"quote\", comma', NULL, NULL)")
    return server


def test_psql_copies_to_stdout_in_text_and_csv(items: Server) -> None:
    out = psql(items, "-c", "COPY items TO STDOUT")
    assert out.returncode == 0, out.stderr
    # text format: tabs between fields, \N for NULL, special characters escaped
    assert out.stdout.splitlines() == ["1\tapple\t1.50\t2024-01-02", "2\ttab\\tand \"quote\", comma\t\\N\t\\N"]
    out = psql(items, "-c", "COPY (SELECT id, name FROM items ORDER BY id) TO STDOUT WITH (FORMAT csv, HEADER)")
    assert out.stdout.splitlines() == ["id,name", "1,apple", '2,"tab\tand ""quote"", comma"']
    out = psql(items, "-c", "COPY items (id, price) TO STDOUT CSV HEADER DELIMITER ';' NULL 'none'")
    assert out.stdout.splitlines() == ["id;price", "1;1.50", "2;none"]


def test_psql_backslash_copy_writes_a_client_side_file(items: Server, tmp_path: pathlib.Path) -> None:
    target = tmp_path / "items.csv"
    out = psql(items, "-c", rf"\copy (SELECT id, name FROM items WHERE id = 1) TO '{target}' WITH (FORMAT csv, HEADER)")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "COPY 1"
    assert target.read_text().splitlines() == ["id,name", "1,apple"]


def test_psycopg_copy_reads_text_and_binary_rows(items: Server) -> None:
    with psycopg.connect(items.dsn, autocommit=True) as conn, conn.cursor() as cur:
        with cur.copy("COPY (SELECT id, name, price, added FROM items ORDER BY id) TO STDOUT") as copy:
            copy.set_types(["int8", "text", "numeric", "date"])
            text_rows = list(copy.rows())
        with cur.copy("COPY (SELECT id, name, price, added FROM items ORDER BY id) TO STDOUT (FORMAT binary)") as copy:
            copy.set_types(["int8", "text", "numeric", "date"])
            binary_rows = list(copy.rows())
        expected = [
            (1, "apple", decimal.Decimal("1.50"), datetime.date(2024, 1, 2)),
            (2, 'tab\tand "quote", comma', None, None),
        ]
        assert text_rows == expected
        assert binary_rows == expected
        assert cur.rowcount == 2


def test_copy_refusals_are_clear(items: Server) -> None:
    with psycopg.connect(items.dsn, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.FeatureNotSupported, match="COPY FROM STDIN is not supported"), conn.cursor().copy("COPY items FROM STDIN"):
            pass
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="unknown COPY format 'xml'"):
            conn.execute("COPY items TO STDOUT (FORMAT xml)")
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="HEADER is available only in CSV format"):
            conn.execute("COPY items TO STDOUT (HEADER)")
        with pytest.raises(psycopg.errors.UndefinedTable):
            conn.execute("COPY nothing_here TO STDOUT")
        # the connection goes on
        assert conn.execute("SELECT count(*) FROM items").fetchone() == (2,)


def test_a_cancel_request_stops_a_running_query(server: Server) -> None:
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        timer = threading.Timer(0.5, conn.cancel_safe)
        timer.start()
        started = time.monotonic()
        with pytest.raises(psycopg.errors.QueryCanceled, match="canceling statement due to user request"):
            conn.execute(ENDLESS)
        assert time.monotonic() - started < 60
        # the connection is usable after the cancel
        assert conn.execute("SELECT 42").fetchone() == (42,)
    assert any("canceling statement due to user request" in line for line in server.log_lines())


def test_a_cancel_request_stops_rows_while_they_stream(server: Server) -> None:
    endless_rows = "SELECT a.value FROM range(100000) a, range(100000) b"
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        # psycopg reads a result whole: psql would print rows as they come
        threading.Timer(1.0, conn.cancel_safe).start()
        with pytest.raises(psycopg.errors.QueryCanceled):
            conn.execute(endless_rows)
        assert conn.execute("SELECT 1").fetchone() == (1,)
        received = 0
        threading.Timer(1.0, conn.cancel_safe).start()
        # pgwire ends a failed COPY with CopyFail before the error, which
        # psycopg reports as its own ProgrammingError; psql shows the error
        with pytest.raises((psycopg.errors.QueryCanceled, psycopg.ProgrammingError)):  # noqa: PT012 (read until cancelled)
            with conn.cursor().copy(f"COPY ({endless_rows}) TO STDOUT") as copy:
                for _ in copy:
                    received += 1
        # rows had been arriving when the cancel came, and none come after
        assert received > 0
        assert conn.execute("SELECT 2").fetchone() == (2,)


def test_the_query_timeout_stops_long_statements(tmp_path: pathlib.Path) -> None:
    server = start([str(tmp_path / "db"), "--query-timeout", "1s"], tmp_path)
    try:
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            with pytest.raises(psycopg.errors.QueryCanceled, match="statement timeout") as raised:
                conn.execute(ENDLESS)
            assert "--query-timeout" in (raised.value.diag.message_hint or "")
            assert conn.execute("SELECT 1").fetchone() == (1,)
            # SUMMARIZE runs when it is prepared, to learn its columns: the
            # limit stops it there too
            with pytest.raises(psycopg.errors.QueryCanceled, match="statement timeout"):
                conn.execute("SUMMARIZE SELECT value FROM range(1000000000000)", prepare=True)
            assert conn.execute("SELECT 2").fetchone() == (2,)
    finally:
        server.process.terminate()
        server.process.wait(timeout=30)


def test_the_memory_limit_refuses_big_queries_and_clients_cannot_raise_it(tmp_path: pathlib.Path) -> None:
    big = "SELECT cardinality(array_agg(value)) FROM range(20000000)"
    with serving([str(tmp_path / "db"), "--memory-limit", "20MB"], tmp_path) as server:
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            with pytest.raises(psycopg.errors.OutOfMemory, match=r"more memory than memory_limit \(19.1 MiB\)"):
                conn.execute(big)
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="cannot be raised above 19.1 MiB"):
                conn.execute("SET memory_limit = '2GB'")
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="cannot be set in this session"):
                conn.execute("SET datafusion.runtime.memory_limit = '2G'")
            with pytest.raises(psycopg.errors.OutOfMemory):
                conn.execute(big)
            # lowering it is fine, and RESET goes back to the server's limit
            conn.execute("SET max_memory = '10MB'")
            assert conn.execute("SHOW memory_limit").fetchone() == ("memory_limit", "9.5 MiB")
            conn.execute("RESET memory_limit")
            assert conn.execute("SHOW memory_limit").fetchone() == ("memory_limit", "19.1 MiB")
            assert conn.execute("SELECT count(*) FROM range(1000)").fetchone() == (1000,)


def test_connections_over_the_limit_are_refused(tmp_path: pathlib.Path) -> None:
    server = start([str(tmp_path / "db"), "--max-connections", "2"], tmp_path)
    try:
        first = psycopg.connect(server.dsn)
        second = psycopg.connect(server.dsn)
        with pytest.raises(psycopg.OperationalError, match="sorry, too many clients already"):
            psycopg.connect(server.dsn)
        first.close()
        # a slot frees when a client leaves
        deadline = time.monotonic() + 10
        while True:
            try:
                third = psycopg.connect(server.dsn)
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        assert third.execute("SELECT 1").fetchone() == (1,)
        third.close()
        second.close()
    finally:
        server.process.terminate()
        server.process.wait(timeout=30)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--query-timeout", "soon"], "'soon' is not a duration"),
        (["--query-timeout", "5 parsecs"], "unknown unit 'parsecs'"),
        (["--max-connections", "0"], "0 is not in 1.."),
    ],
)
def test_bad_limits_are_refused_at_start(args: list[str], message: str) -> None:
    out = subprocess.run([binary(), "serve", "--pg", "127.0.0.1:1", *args], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert message in out.stderr


def test_read_only_serves_reads_and_refuses_writes(tmp_path: pathlib.Path) -> None:
    database = tmp_path / "db"
    writer = start([str(database)], tmp_path)
    try:
        with psycopg.connect(writer.dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE t (x INTEGER)")
            conn.execute("INSERT INTO t VALUES (1), (2)")
    finally:
        writer.process.terminate()
        writer.process.wait(timeout=30)
    server = start([str(database), "--read-only"], tmp_path)
    target = tmp_path / "leak.csv"
    try:
        # psycopg outside autocommit wraps reads in BEGIN ... COMMIT
        with psycopg.connect(server.dsn) as conn:
            assert conn.execute("SELECT sum(x) FROM t").fetchone() == (3,)
            conn.commit()
            for sql in [
                "INSERT INTO t VALUES (3)",
                "DELETE FROM t",
                "CREATE TABLE u (y INTEGER)",
                "DROP TABLE t",
                f"COPY t TO '{target}'",
                "SET threads = 1",
                "ATTACH 'elsewhere.db'",
                "EXPLAIN ANALYZE INSERT INTO t VALUES (3)",
            ]:
                with pytest.raises(psycopg.errors.ReadOnlySqlTransaction, match="read-only"):
                    conn.execute(sql)
                conn.rollback()
            # reads of every kind still run, COPY TO STDOUT among them
            assert conn.execute("DESCRIBE t").fetchall()
            assert conn.execute("SUMMARIZE t").fetchall()
            with conn.cursor().copy("COPY t TO STDOUT") as copy:
                data = b"".join(bytes(chunk) for chunk in copy)
            assert sorted(data.splitlines()) == [b"1", b"2"]
            assert conn.execute("SELECT count(*) FROM t").fetchone() == (2,)
        assert not target.exists()
        out = psql(server, "-A", "-t", "-c", r"\dt")
        assert out.returncode == 0 and "t|table" in out.stdout.replace("main|", ""), out.stderr
    finally:
        server.process.terminate()
        server.process.wait(timeout=30)


def test_a_cpu_heavy_statement_does_not_stall_other_clients(server: Server) -> None:
    hog = psycopg.connect(server.dsn, autocommit=True)
    try:
        runner = in_background(hog, HOG)
        time.sleep(1.0)
        # the hog holds its threads; a new client connects and is answered
        with psycopg.connect(server.dsn, autocommit=True) as other:
            assert other.execute("SELECT 40 + 2").fetchone() == (42,)
            assert other.execute("SELECT count(*) FROM range(1000)").fetchone() == (1000,)
        assert runner.thread.is_alive(), "the hog was still running"
        hog.cancel_safe()
        failures = runner.join()
        assert len(failures) == 1 and isinstance(failures[0], psycopg.errors.QueryCanceled), failures
    finally:
        hog.close()
