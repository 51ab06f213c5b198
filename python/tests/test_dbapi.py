"""DB-API 2.0 (PEP 249): cursors, typed parameters, row counts, transactions."""

from __future__ import annotations

import datetime
import decimal
import pathlib
import uuid

import pytest

import pintail


def test_execute_returns_a_cursor_to_fetch_from(con: pintail.Connection) -> None:
    cur = con.execute("SELECT * FROM (VALUES (1, 'a'), (2, 'b'), (3, 'c')) t(n, s) ORDER BY n")
    assert isinstance(cur, pintail.Cursor)
    assert cur.rowcount == -1
    assert cur.description == [
        ("n", "BIGINT", None, None, None, None, False),
        ("s", "VARCHAR", None, None, None, None, False),
    ]
    assert cur.description[0][1] == pintail.NUMBER
    assert cur.fetchone() == (1, "a")
    assert cur.fetchmany(1) == [(2, "b")]
    assert cur.fetchall() == [(3, "c")]
    assert cur.fetchone() is None
    assert cur.fetchall() == []


def test_fetchmany_uses_arraysize_and_a_cursor_iterates(con: pintail.Connection) -> None:
    cur = con.cursor()
    cur.arraysize = 4
    cur.execute("SELECT * FROM generate_series(1, 10) t(x)")
    assert len(cur.fetchmany()) == 4
    assert [row[0] for row in cur] == [5, 6, 7, 8, 9, 10]
    with pytest.raises(pintail.ProgrammingError):
        cur.arraysize = 0


# a value of each type, made in SQL: the simple ones Pintail turns into
# Python objects itself, the rest go through pyarrow
TYPED_VALUES = {
    "i8": "arrow_cast(-8, 'Int8')",
    "i16": "arrow_cast(-16, 'Int16')",
    "i32": "arrow_cast(-32, 'Int32')",
    "i64": "-9223372036854775807",
    "u8": "arrow_cast(255, 'UInt8')",
    "u16": "arrow_cast(16, 'UInt16')",
    "u32": "arrow_cast(4294967295, 'UInt32')",
    "u64": "arrow_cast(9223372036854775807, 'UInt64') * arrow_cast(2, 'UInt64')",
    "f16": "arrow_cast(1.5, 'Float16')",
    "f32": "arrow_cast(0.1, 'Float32')",
    "f64": "0.1",
    "bool": "true",
    "utf8": "'héllo'",
    "large_utf8": "arrow_cast('large', 'LargeUtf8')",
    "utf8_view": "arrow_cast('view', 'Utf8View')",
    "binary": "X'00ff'",
    "large_binary": "arrow_cast(X'01', 'LargeBinary')",
    "binary_view": "arrow_cast(X'02', 'BinaryView')",
    "decimal": "CAST(1.25 AS DECIMAL(10, 2))",
    "date": "DATE '2024-02-29'",
    "timestamptz": "arrow_cast(TIMESTAMP '2024-01-01 12:00:00', 'Timestamp(Microsecond, Some(\"+02:00\"))')",
    "list": "[1, NULL, 3]",
    "struct": "{'a': 1, 'b': 'x'}",
}


def test_fetched_rows_hold_the_python_values_pyarrow_gives(con: pintail.Connection) -> None:
    # each value, and NULL in the same column; enough rows for several batches
    columns = ", ".join(f"CASE WHEN k % 3 = 0 THEN NULL ELSE {e} END AS {n}" for n, e in TYPED_VALUES.items())
    query = f"SELECT k, {columns}, NULL AS nothing FROM generate_series(1, 20000) t(k) ORDER BY k"
    rows = con.execute(query).fetchall()
    table = con.sql(query).arrow()
    expected = list(zip(*(c.to_pylist() for c in table.columns)))
    assert len(rows) == 20000
    assert rows == expected
    # the same types, not just equal values (True == 1, 1.0 == 1)
    assert [[type(v) for v in row] for row in rows[:3]] == [[type(v) for v in row] for row in expected[:3]]
    first = dict(zip(["k", *TYPED_VALUES, "nothing"], rows[0]))
    assert first["i64"] == -9223372036854775807
    assert first["u64"] == 18446744073709551614
    assert first["f32"] == pytest.approx(0.1) and first["f32"] != 0.1  # a float32, widened
    assert first["utf8"] == "héllo" and first["binary"] == b"\x00\xff" and first["binary_view"] == b"\x02"
    assert first["decimal"] == decimal.Decimal("1.25")
    assert first["timestamptz"] == datetime.datetime(2024, 1, 1, 12, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))
    assert first["list"] == [1, None, 3] and first["struct"] == {"a": 1, "b": "x"}
    assert first["nothing"] is None
    assert set(rows[2][1:]) == {None}


def test_parameters_are_typed_values_never_sql_text(con: pintail.Connection) -> None:
    utc = datetime.timezone.utc
    values = [
        42,
        2.5,
        "it's; DROP TABLE x --",
        b"\x00\xff",
        True,
        None,
        decimal.Decimal("-12.340"),
        datetime.date(2024, 2, 29),
        datetime.datetime(2024, 2, 29, 12, 30, 1, 500),
        datetime.datetime(2024, 2, 29, 12, 30, tzinfo=utc),
        datetime.time(23, 59, 58),
        datetime.timedelta(days=2, seconds=3),
        [1, 2, None],
    ]
    placeholders = ", ".join("?" for _ in values)
    cur = con.execute(f"SELECT {placeholders}", values)
    row = cur.fetchone()
    assert row is not None
    assert list(row[:11]) == values[:11]
    assert row[12] == [1, 2, None]
    types = [d[1] for d in cur.description]
    assert types[:8] == ["BIGINT", "DOUBLE", "VARCHAR", "BLOB", "BOOLEAN", "NULL", "DECIMAL(5,3)", "DATE"]
    assert types[8] == "TIMESTAMP"
    assert types[9] == "TIMESTAMP WITH TIME ZONE"


def test_numbered_parameters_and_uuids(con: pintail.Connection) -> None:
    u = uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert con.execute("SELECT $2 AS a, $1 AS b, $2 AS c", ["a", u]).fetchall() == [(str(u), "a", str(u))]
    assert con.sql("SELECT ? + 1 AS x", [41]).fetchall() == [(42,)]
    assert pintail.sql("SELECT ?::VARCHAR", (7,)).fetchall() == [("7",)]


def test_parameters_take_the_type_of_their_column(tmp_path: pathlib.Path) -> None:
    con = pintail.connect(tmp_path / "db")
    con.sql("CREATE TABLE t (id INTEGER NOT NULL, day DATE, amount DECIMAL(10, 2))")
    cur = con.cursor()
    cur.execute("INSERT INTO t VALUES (?, ?, ?)", [1, "2024-01-31", decimal.Decimal("9.99")])
    assert cur.rowcount == 1
    cur.executemany("INSERT INTO t VALUES (?, ?, ?)", [(2, None, 1.5), (3, datetime.date(2024, 3, 1), 2)])
    assert cur.rowcount == 2
    cur.execute("UPDATE t SET amount = amount + ? WHERE id >= ?", [decimal.Decimal("1"), 2])
    assert cur.rowcount == 2
    assert con.sql("SELECT * FROM t ORDER BY id").fetchall() == [
        (1, datetime.date(2024, 1, 31), decimal.Decimal("9.99")),
        (2, None, decimal.Decimal("2.50")),
        (3, datetime.date(2024, 3, 1), decimal.Decimal("3.00")),
    ]
    cur.execute("DELETE FROM t WHERE id = ?", [3])
    assert cur.rowcount == 1
    assert cur.description is None
    with pytest.raises(pintail.ProgrammingError, match="no result to fetch"):
        cur.fetchall()
    with pytest.raises(pintail.DataError, match=r"parameter \$1"):
        con.execute("INSERT INTO t VALUES (?, NULL, NULL)", ["not a number"])


def test_wrong_parameters_are_refused_clearly(con: pintail.Connection) -> None:
    with pytest.raises(pintail.ProgrammingError, match="takes 2 parameters, but 1 value was given"):
        con.execute("SELECT ?, ?", [1])
    with pytest.raises(pintail.ProgrammingError, match="takes 0 parameters"):
        con.execute("SELECT 1", [1])
    with pytest.raises(pintail.ProgrammingError, match="mix"):
        con.execute("SELECT ?, $1", [1])
    with pytest.raises(pintail.NotSupportedError, match="named parameters"):
        con.execute("SELECT $a", {"a": 1})
    with pytest.raises(pintail.ProgrammingError, match="not a single string"):
        con.execute("SELECT ?", "x")
    with pytest.raises(pintail.NotSupportedError, match=r"parameter \$1: a value of type object"):
        con.execute("SELECT ?", [object()])
    with pytest.raises(pintail.NotSupportedError, match="does not take parameters"):
        con.execute("SET threads = ?", [1])


def test_commit_and_rollback(tmp_path: pathlib.Path) -> None:
    con = pintail.connect(tmp_path / "db")
    con.commit()  # nothing open: nothing to do
    con.rollback()
    con.sql("CREATE TABLE t (x BIGINT)")
    con.execute("BEGIN")
    con.execute("INSERT INTO t VALUES (?)", [1])
    con.rollback()
    con.execute("BEGIN")
    con.execute("INSERT INTO t VALUES (?)", [2])
    con.commit()
    assert con.sql("SELECT x FROM t").fetchall() == [(2,)]


def test_closed_cursors_and_connections_refuse(con: pintail.Connection) -> None:
    cur = con.cursor()
    assert cur.connection is con
    cur.close()
    with pytest.raises(pintail.InterfaceError, match="cursor is closed"):
        cur.execute("SELECT 1")
    other = pintail.connect()
    live = other.cursor()
    other.close()
    with pytest.raises(pintail.InterfaceError, match="connection is closed"):
        live.execute("SELECT 1")
