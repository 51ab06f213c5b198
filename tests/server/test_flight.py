"""`pintail serve --flight`: Arrow Flight SQL, driven by the ADBC Flight SQL
driver (PyPI adbc-driver-flightsql): statements and prepared statements
with parameters returning Arrow, updates, sessions, metadata calls, logins,
TLS and refusals."""

from __future__ import annotations

import datetime
import decimal
import pathlib
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import adbc_driver_flightsql.dbapi as flight_sql
import adbc_driver_manager
import pyarrow as pa
import pyarrow.compute
import pyarrow.flight
import pyarrow.parquet as pq
import pytest
from conftest import ENDLESS, Server, binary, serving, start
from test_pg_auth import certificate, outside_address, users_file
from test_pg_load import QUERIES, TABLES, close, tpch


def connect(server: Server, uri: str | None = None, **db_kwargs: str) -> flight_sql.Connection:
    return flight_sql.connect(uri or server.flight_uri, db_kwargs=db_kwargs or None, autocommit=True)


def refused(server: Server, match: str, sql: str = "SELECT 1", uri: str | None = None, **db_kwargs: str) -> None:
    """A new connection's `sql` fails with an error matching `match`."""
    with pytest.raises(adbc_driver_manager.Error, match=match), connect(server, uri, **db_kwargs) as conn, conn.cursor() as cur:
        cur.execute(sql)
        cur.fetchall()


@pytest.fixture
def flight(tmp_path: pathlib.Path) -> Iterator[Server]:
    """A server on a fresh database, with Flight SQL."""
    s = start([str(tmp_path / "db")], tmp_path, flight=True)
    yield s
    s.process.terminate()
    assert s.process.wait(timeout=30) == 0, s.log.read_text()


def test_queries_return_arrow_with_their_types(flight: Server) -> None:
    with connect(flight) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT 42 AS i, 2.5::DOUBLE AS f, 'text' AS s, true AS b, DATE '2024-02-29' AS d, "
            "TIMESTAMP '2024-01-02 03:04:05.123456' AS ts, 12.34::DECIMAL(10, 2) AS n, [1, 2, NULL] AS l, NULL::INT AS nothing"
        )
        table = cur.fetch_arrow_table()
    assert table.schema.types == [
        pa.int64(), pa.float64(), pa.string(), pa.bool_(), pa.date32(), pa.timestamp("ns"), pa.decimal128(10, 2),
        pa.list_(pa.int64()), pa.int32(),
    ]  # fmt: skip
    assert table.to_pylist() == [
        {
            "i": 42, "f": 2.5, "s": "text", "b": True, "d": datetime.date(2024, 2, 29),
            "ts": datetime.datetime(2024, 1, 2, 3, 4, 5, 123456), "n": decimal.Decimal("12.34"), "l": [1, 2, None], "nothing": None,
        }
    ]  # fmt: skip


def test_prepared_statements_take_typed_parameters(flight: Server) -> None:
    with connect(flight) as conn, conn.cursor() as cur:
        cur.execute("SELECT ? + 1 AS n, ? AS s, ? AS f", (41, "hi", 0.5))
        assert cur.fetchall() == [(42, "hi", 0.5)]
        # the same statement again with other values: prepared once
        for k in range(5):
            cur.execute("SELECT ? * 2 AS n", (k,))
            assert cur.fetchone() == (k * 2,)
        # values are bound, never spliced into the SQL
        cur.execute("SELECT ? AS s", ("'; DROP TABLE x; --",))
        assert cur.fetchone() == ("'; DROP TABLE x; --",)


def test_updates_count_rows_and_executemany_binds_each_row(flight: Server) -> None:
    with connect(flight) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE t (id BIGINT, name VARCHAR)")
        cur.executemany("INSERT INTO t VALUES (?, ?)", [(1, "one"), (2, "two"), (3, "three")])
        assert cur.rowcount == 3
        cur.execute("UPDATE t SET name = upper(name) WHERE id >= ?", (2,))
        cur.execute("SELECT id, name FROM t ORDER BY id")
        assert cur.fetchall() == [(1, "one"), (2, "TWO"), (3, "THREE")]
        stmt = cur.adbc_statement
        stmt.set_sql_query("DELETE FROM t WHERE id = 1")
        assert stmt.execute_update() == 1
    # another client sees the committed table
    with connect(flight) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM t")
        assert cur.fetchone() == (2,)


def test_each_connection_keeps_its_own_session(flight: Server) -> None:
    with connect(flight) as a, connect(flight) as b, a.cursor() as ca, b.cursor() as cb:
        ca.execute("SET memory_limit = '123MiB'")
        ca.execute("SHOW memory_limit")
        seen_by_a = ca.fetchone()
        cb.execute("SHOW memory_limit")
        seen_by_b = cb.fetchone()
    assert seen_by_a is not None and "123" in str(seen_by_a[-1])
    assert seen_by_b is not None and "123" not in str(seen_by_b[-1])
    connects = [line for line in flight.log_lines() if line.startswith("event=connect protocol=flight")]
    assert len(connects) == 2, flight.log_lines()


def test_metadata_calls(flight: Server) -> None:
    with connect(flight) as conn:
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE trips (id BIGINT, fare DOUBLE, city VARCHAR)")
            cur.execute("CREATE VIEW cheap AS SELECT * FROM trips WHERE fare < 10")
        info = conn.adbc_get_info()
        assert info["vendor_name"] == "Pintail"
        assert info["vendor_arrow_version"] == "59"
        assert set(conn.adbc_get_table_types()) >= {"TABLE", "VIEW"}
        schema = conn.adbc_get_table_schema("trips")
        assert schema.names == ["id", "fare", "city"]
        # the table's own types, as its rows come (text as Utf8View)
        assert schema.types == [pa.int64(), pa.float64(), pa.string_view()]
        objects = conn.adbc_get_objects(depth="all").read_all().to_pylist()
        tables = {
            (catalog["catalog_name"], schema["db_schema_name"], table["table_name"]): table
            for catalog in objects
            for schema in catalog["catalog_db_schemas"] or []
            for table in schema["db_schema_tables"] or []
        }
        trips = next(t for (_, _, name), t in tables.items() if name == "trips")
        assert trips["table_type"] == "TABLE"
        assert [c["column_name"] for c in trips["table_columns"]] == ["id", "fare", "city"]
        cheap = next(t for (_, _, name), t in tables.items() if name == "cheap")
        assert cheap["table_type"] == "VIEW"
        # filters reach the server: only views
        views = conn.adbc_get_objects(depth="tables", table_types_filter=["VIEW"]).read_all().to_pylist()
        names = [t["table_name"] for c in views for s in c["catalog_db_schemas"] or [] for t in s["db_schema_tables"] or []]
        assert names == ["cheap"]


def test_errors_name_what_was_wrong(flight: Server) -> None:
    with connect(flight) as conn, conn.cursor() as cur:
        with pytest.raises(adbc_driver_manager.ProgrammingError, match="no_such_table"):
            cur.execute("SELECT * FROM no_such_table")
        with pytest.raises(adbc_driver_manager.ProgrammingError, match="(?i)syntax|expected"):
            cur.execute("SELEC 1")
        with pytest.raises(adbc_driver_manager.Error, match="takes 2 parameters"):
            cur.execute("SELECT ? + ?", (1,))
        # the session still works
        cur.execute("SELECT 1")
        assert cur.fetchone() == (1,)


def test_logins_are_required_when_users_are_configured(tmp_path: pathlib.Path) -> None:
    args = [str(tmp_path / "db"), "--users", str(users_file(tmp_path))]
    with serving(args, tmp_path, flight=True) as server:
        with connect(server, username="alice", password="s3cret pass") as conn, conn.cursor() as cur:
            cur.execute("SELECT 'in' AS s")
            assert cur.fetchone() == ("in",)
        with connect(server, username="bob", password="plain-password") as conn, conn.cursor() as cur:
            cur.execute("SELECT 1")
        refused(server, "password authentication failed", username="alice", password="wrong")
        refused(server, "password authentication failed", username="mallory", password="x")
        refused(server, "log in first")
    lines = server.log_lines()
    assert any(line.startswith("event=connect protocol=flight") and "user=alice" in line for line in lines)
    assert not any("s3cret" in line for line in lines)


def test_tls_is_required_of_clients_on_other_machines(tmp_path: pathlib.Path) -> None:
    ip = outside_address()
    cert, key = certificate(tmp_path, ip)
    args = [str(tmp_path / "db"), "--users", str(users_file(tmp_path)), "--tls-cert", str(cert), "--tls-key", str(key)]
    with serving(args, tmp_path, listen="0.0.0.0", connect=ip, flight=True) as server:
        tls = {"adbc.flight.sql.client_option.tls_root_certs": cert.read_text(), "username": "alice", "password": "s3cret pass"}
        with connect(server, f"grpc+tls://{ip}:{server.flight_port}", **tls) as conn, conn.cursor() as cur:
            cur.execute("SELECT 'over tls' AS s")
            assert cur.fetchone() == ("over tls",)
        refused(server, "requires TLS", uri=f"grpc://{ip}:{server.flight_port}", username="alice", password="s3cret pass")
        # on this machine, plain text is still fine
        with connect(server, f"grpc://127.0.0.1:{server.flight_port}", username="alice", password="s3cret pass") as conn, conn.cursor() as cur:
            cur.execute("SELECT 1")


def test_read_only_and_allow_path_refuse_with_permission_errors(tmp_path: pathlib.Path) -> None:
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    (allowed / "a.csv").write_text("x\n1\n")
    with serving([str(tmp_path / "db")], tmp_path, flight=True) as writer, connect(writer) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE t AS SELECT 1 AS x")
    args = [str(tmp_path / "db"), "--read-only", "--allow-path", str(allowed)]
    with serving(args, tmp_path, flight=True) as server, connect(server) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT x FROM '{allowed}/a.csv'")
        assert cur.fetchall() == [(1,)]
        with pytest.raises(adbc_driver_manager.Error, match="(?i)read-only|read only"):
            cur.execute("CREATE TABLE t (x INT)")
        with pytest.raises(adbc_driver_manager.Error, match="not allowed|outside"):
            cur.execute("SELECT * FROM read_csv('/etc/passwd')")


def test_limits_refuse_clients_and_stop_long_statements(tmp_path: pathlib.Path) -> None:
    args = [str(tmp_path / "db"), "--max-connections", "2", "--query-timeout", "1s"]
    with serving(args, tmp_path, flight=True) as server:
        with connect(server) as a, connect(server) as b:
            for conn in (a, b):
                with conn.cursor() as cur:
                    cur.execute("SELECT 1")
            refused(server, "too many clients")
            with a.cursor() as cur, pytest.raises(adbc_driver_manager.Error, match="statement timeout"):
                cur.execute(ENDLESS)
                cur.fetchall()
        # closed connections free their places
        with connect(server) as conn, conn.cursor() as cur:
            cur.execute("SELECT 2")
            assert cur.fetchone() == (2,)


def test_a_cancelled_fetch_stops_the_statement(flight: Server) -> None:
    with connect(flight) as conn, conn.cursor() as cur:
        failures: list[Exception] = []

        def run() -> None:
            try:
                cur.execute(ENDLESS)
                cur.fetchall()
            except adbc_driver_manager.Error as e:
                failures.append(e)

        thread = threading.Thread(target=run)
        thread.start()
        time.sleep(1)
        cur.adbc_cancel()
        thread.join(timeout=60)
        assert not thread.is_alive()
        assert failures, "the statement was not stopped"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        ended = [line for line in flight.log_lines() if line.startswith("event=query ") and "range(1000000000000)" in line]
        if ended:
            break
        time.sleep(0.1)
    assert ended and "error=" in ended[0], flight.log_lines()


def test_tpch_through_adbc_equals_the_in_process_answers(tmp_path: pathlib.Path) -> None:
    data = tpch()
    database = tmp_path / "tpch.db"
    answers = tmp_path / "answers"
    answers.mkdir()
    queries = sorted(QUERIES.glob("q*.sql"), key=lambda q: int(q.stem[1:]))
    assert len(queries) == 22
    script = [f"CREATE VIEW {t} AS SELECT * FROM '{data}/{t}.parquet'" for t in TABLES]
    script += [f"COPY ({q.read_text().strip().rstrip(';')}) TO '{answers / q.stem}.parquet'" for q in queries]
    out = subprocess.run([binary(), str(database), *[a for s in script for a in ("-c", s)]], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    with serving([str(database)], tmp_path, flight=True) as server, connect(server) as conn, conn.cursor() as cur:
        for q in queries:
            want = pq.read_table(answers / f"{q.stem}.parquet")
            cur.execute(q.read_text())
            got = cur.fetch_arrow_table()
            # Arrow all the way: the same columns and types as in process
            assert got.schema.names == want.schema.names, q.stem
            assert got.schema.types == want.schema.types, q.stem
            assert got.num_rows == want.num_rows, f"{q.stem}: {got.num_rows} rows, in process {want.num_rows}"
            for i, (g, w) in enumerate(zip(got.to_pylist(), want.to_pylist(), strict=True)):
                assert all(close(g[k], w[k]) for k in w), f"{q.stem} row {i + 1}: {g} != {w}"


# A client whose statement the shutdown cancels, in a process of its own:
# once the server is gone the driver cannot close what it holds, and says
# so when its objects are collected
ENDLESS_CLIENT = """
import sys
import adbc_driver_flightsql.dbapi as flight_sql
import adbc_driver_manager
conn = flight_sql.connect(sys.argv[1], autocommit=True)
cur = conn.cursor()
try:
    cur.execute(sys.argv[2])
    cur.fetchall()
except adbc_driver_manager.Error as e:
    print(e, flush=True)
"""


def test_sigterm_lets_a_running_fetch_finish_then_cancels_at_the_deadline(tmp_path: pathlib.Path) -> None:
    server = start([str(tmp_path / "db"), "--shutdown-timeout", "3s"], tmp_path, flight=True)
    endless = subprocess.Popen([sys.executable, "-c", ENDLESS_CLIENT, server.flight_uri, ENDLESS], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        with connect(server) as busy, busy.cursor() as rows:
            # 160 MB of rows: more than the client and the server buffer, so
            # the statement waits on the reader
            rows.execute("SELECT value FROM range(20000000)")
            reader = rows.fetch_record_batch()
            first = reader.read_next_batch()
            # both clients connected, and the endless statement under way
            deadline = time.monotonic() + 60
            while sum(line.startswith("event=connect protocol=flight") for line in server.log_lines()) < 2:
                assert time.monotonic() < deadline, server.log.read_text()
                time.sleep(0.05)
            time.sleep(1)
            server.process.send_signal(signal.SIGTERM)
            while not any("phase=draining" in line for line in server.log_lines()):
                assert time.monotonic() < deadline, server.log.read_text()
                time.sleep(0.05)
            # new clients are refused; the running fetch ends with every row
            refused(server, "(?i)connection refused|unavailable")
            assert not any("range(20000000)" in line for line in server.log_lines()), "the fetch was over before the shutdown"
            batches = [first, *reader]
            assert sum(b.num_rows for b in batches) == 20_000_000
            assert sum(pyarrow.compute.sum(b.column(0)).as_py() for b in batches) == 20_000_000 * 19_999_999 // 2
        # (while the server drains, a client may still close what it holds)
        # the endless statement is cancelled at the deadline
        out, _ = endless.communicate(timeout=60)
        assert "administrator command" in out, out
        assert server.process.wait(timeout=30) == 0, server.log.read_text()
        lines = server.log_lines()
        assert any("range(1000000000000)" in line and 'error="terminating connection due to administrator command"' in line for line in lines)
    finally:
        for process in (endless, server.process):
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)


def test_statements_see_the_session_as_it_was_when_they_ran(flight: Server) -> None:
    with connect(flight) as conn, conn.cursor() as first, conn.cursor() as second:
        first.execute("CREATE TABLE t AS SELECT 1 AS x")
        # prepared once (the same text), planned again at each run: the
        # replaced table's new columns come back, as Arrow told them
        first.execute("SELECT * FROM t")
        assert first.fetch_arrow_table().to_pylist() == [{"x": 1}]
        second.execute("CREATE OR REPLACE TABLE t AS SELECT 'two' AS y, 2.5 AS z")
        first.execute("SELECT * FROM t")
        assert first.fetch_arrow_table().to_pylist() == [{"y": "two", "z": 2.5}]
        # a query is under way once execute returns: what runs after it
        # (here, before its rows are read) does not change its answer
        first.execute("SELECT count(*) AS n FROM t")
        second.execute("INSERT INTO t VALUES ('three', 3.5)")
        assert first.fetchone() == (1,)
        first.execute("SELECT count(*) AS n FROM t")
        assert first.fetchone() == (2,)


def test_calls_that_drop_their_token_hold_no_place(tmp_path: pathlib.Path) -> None:
    with serving([str(tmp_path / "db"), "--max-connections", "2"], tmp_path, flight=True) as server:
        # a client that never sends its token back (a health check)
        for _ in range(10):
            with pyarrow.flight.connect(server.flight_uri) as raw:
                assert any(a.type == "CreatePreparedStatement" for a in raw.list_actions())
        with connect(server) as a, connect(server) as b:
            for conn in (a, b):
                with conn.cursor() as cur:
                    cur.execute("SELECT 1")
                    assert cur.fetchone() == (1,)
            refused(server, "too many clients")
