"""Replacement scans: Python variables named in SQL are read in place."""

from __future__ import annotations

import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds
import pytest

import pintail

from arrow_checks import assert_shares_buffer

GLOBAL_TABLE = pa.table({"g": [1, 2, 3]})


def test_pandas_polars_and_arrow_variables(con: pintail.Connection) -> None:
    pdf = pd.DataFrame({"k": ["a", "b", "a"], "v": [1, 2, 3]})
    plf = pl.DataFrame({"k": ["a", "b"], "w": [10.0, 20.0]})
    lazy = pl.LazyFrame({"k": ["a"], "z": [True]})
    rel = con.sql(
        "SELECT pdf.k, sum(v) AS v, max(w) AS w, bool_or(z) AS z FROM pdf "
        "JOIN plf ON pdf.k = plf.k LEFT JOIN lazy ON pdf.k = lazy.k GROUP BY pdf.k ORDER BY pdf.k"
    )
    assert rel.fetchall() == [("a", 4, 10.0, True), ("b", 2, 20.0, None)]
    # re-runnable: each run reads the frames again
    assert rel.fetchall() == [("a", 4, 10.0, True), ("b", 2, 20.0, None)]
    assert pintail.sql("SELECT sum(g) FROM GLOBAL_TABLE").fetchall() == [(6,)]


def test_readers_datasets_and_arrow_stream_objects(con: pintail.Connection, tmp_path) -> None:
    table = pa.table({"x": pa.array(range(10), pa.int64())})
    reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches())
    once = con.sql("SELECT count(*) FROM reader")
    assert once.fetchall() == [(10,)]
    with pytest.raises(pintail.Error, match="reader"):
        once.fetchall()  # a reader can be read once

    ds.write_dataset(table, tmp_path / "d", format="parquet")
    dataset = ds.dataset(tmp_path / "d", format="parquet")
    assert con.sql("SELECT sum(x) FROM dataset").fetchall() == [(45,)]
    assert con.sql("SELECT sum(x) FROM dataset").fetchall() == [(45,)]

    class Stream:
        def __arrow_c_stream__(self, requested_schema: object = None) -> object:
            return table.__arrow_c_stream__(requested_schema)

    stream = Stream()
    assert con.execute("SELECT max(x) FROM stream").fetchall() == [(9,)]


def test_variables_are_read_without_copying(con: pintail.Connection) -> None:
    big = pa.table({"x": pa.array(range(300_000), pa.int64())})
    out = con.sql("SELECT x FROM big").to_arrow()
    assert_shares_buffer(out.column(0), big.column(0))


def test_tables_and_ctes_win_over_variables(con: pintail.Connection) -> None:
    t = pa.table({"a": [100]})  # noqa: F841 - shadowed by the table t
    con.sql("CREATE TABLE t AS SELECT 1 AS a")
    assert con.sql("SELECT a FROM t").fetchall() == [(1,)]
    cte = pa.table({"a": [100]})  # noqa: F841 - shadowed by the CTE
    assert con.sql("WITH cte AS (SELECT 2 AS a) SELECT a FROM cte").fetchall() == [(2,)]
    notdata = 5  # noqa: F841 - not Arrow data: not a table
    with pytest.raises(pintail.CatalogError, match="notdata"):
        con.sql("SELECT * FROM notdata").fetchall()


def test_database_tables_from_variables(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # pandas keeps its own metadata in the Arrow schema: the table must not take it
    orders = pd.DataFrame({"id": [1, 2, 3], "amount": [9.5, 20.0, 3.25]})
    with pintail.connect(tmp_path / "shop.db") as con:
        con.sql("CREATE TABLE orders AS SELECT * FROM orders")
        con.register("more", pd.DataFrame({"id": [4], "amount": [1.0]}))
        con.sql("INSERT INTO orders SELECT * FROM more")
        con.sql("INSERT INTO orders SELECT * FROM orders WHERE id = 1")
        assert con.sql("SELECT count(*), sum(amount) FROM orders").fetchall() == [(5, 43.25)]


def test_relations_and_writes_from_variables(con: pintail.Connection) -> None:
    frame = pd.DataFrame({"v": [1, 2, 3]})
    small = con.sql("SELECT v FROM frame WHERE v > 1")
    assert con.sql("SELECT sum(v) FROM small").fetchall() == [(5,)]
    con.sql("CREATE TABLE copied AS SELECT * FROM frame")
    assert con.table("copied").aggregate("count(*)").fetchall() == [(3,)]
    extra = pl.DataFrame({"v": [10]})
    assert small.sql("SELECT v FROM rel UNION ALL SELECT v FROM extra ORDER BY v").fetchall() == [(2,), (3,), (10,)]
