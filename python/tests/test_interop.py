"""Round trips with PyArrow, pandas and Polars: types kept, buffers not copied."""

from __future__ import annotations

import datetime
import decimal

import pandas as pd
import polars as pl
import pyarrow as pa

import pintail

from arrow_checks import assert_shares_buffer


def typed_table() -> pa.Table:
    utc = datetime.timezone.utc
    return pa.table(
        {
            "i": pa.array([1, None, 3], pa.int64()),
            "f": pa.array([1.5, 2.5, None], pa.float64()),
            "d": pa.array([decimal.Decimal("1.23"), None, decimal.Decimal("-4.56")], pa.decimal128(10, 2)),
            "s": pa.array(["a", None, "ccc"], pa.string()),
            "b": pa.array([True, False, None], pa.bool_()),
            "day": pa.array([datetime.date(2024, 1, 2), None, datetime.date(1999, 12, 31)], pa.date32()),
            "ts": pa.array([datetime.datetime(2024, 1, 2, 3, 4, 5), None, None], pa.timestamp("us")),
            "tz": pa.array(
                [datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=utc), None, None], pa.timestamp("us", tz="UTC")
            ),
            "l": pa.array([[1, 2], [], None], pa.list_(pa.int32())),
            "st": pa.array([{"x": 1, "y": "a"}, None, {"x": 3, "y": None}]),
        }
    )


def test_pyarrow_types_round_trip(con: pintail.Connection) -> None:
    table = typed_table()
    con.register("typed", table)
    out = con.sql("SELECT * FROM typed").to_arrow()
    assert out.schema.equals(table.schema)
    assert out.equals(table)


def test_registered_data_is_not_copied(con: pintail.Connection) -> None:
    table = pa.table({"x": pa.array(range(200_000), pa.int64())})
    con.register("big", table)
    out = con.sql("SELECT x FROM big").to_arrow()
    assert_shares_buffer(out.column(0), table.column(0))



def test_pandas_dataframes_in_and_out(con: pintail.Connection) -> None:
    frame = pd.DataFrame({"k": ["a", "b", "a"], "v": [1, 2, 3]})
    con.register("frame", frame)
    out = con.sql("SELECT k, sum(v) AS total FROM frame GROUP BY k ORDER BY k").df()
    assert isinstance(out, pd.DataFrame)
    assert out.to_dict("list") == {"k": ["a", "b"], "total": [4, 2]}


def test_polars_dataframes_in_and_out(con: pintail.Connection) -> None:
    frame = pl.DataFrame({"k": ["a", "b", "a"], "v": [1, 2, 3]})
    con.register("frame", frame)
    rel = con.sql("SELECT k, sum(v) AS total FROM frame GROUP BY k ORDER BY k")
    out = rel.pl()
    assert isinstance(out, pl.DataFrame)
    assert out.to_dict(as_series=False) == {"k": ["a", "b"], "total": [4, 2]}
    # Polars reads the relation's Arrow stream itself too
    assert pl.DataFrame(rel).to_dict(as_series=False) == {"k": ["a", "b"], "total": [4, 2]}


def test_register_replaces_and_unregister_removes(con: pintail.Connection) -> None:
    con.register("t", pa.table({"a": [1]}))
    con.register("t", pa.table({"a": [1, 2]}))
    assert con.sql("SELECT count(*) FROM t").fetchall() == [(2,)]
    con.unregister("t")
    rel = con.sql("SELECT * FROM t")
    assert rel is not None
    try:
        rel.fetchall()
    except pintail.CatalogError as e:
        assert "t" in str(e)
    else:
        raise AssertionError("the table is still there")
    try:
        con.unregister("t")
    except pintail.CatalogError as e:
        assert "no registered table 't'" in str(e)
    else:
        raise AssertionError("unregistering twice did not fail")


def test_register_refuses_what_is_not_arrow_data(con: pintail.Connection) -> None:
    try:
        con.register("t", [1, 2, 3])
    except TypeError as e:
        assert "expected Arrow data" in str(e)
    else:
        raise AssertionError("a list was registered")
