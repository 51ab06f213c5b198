"""Relations: lazy, re-runnable, composable queries and their results."""

from __future__ import annotations

import pathlib
import re

import pyarrow as pa
import pytest

import pintail


def test_the_module_runs_a_query_on_its_default_connection() -> None:
    rel = pintail.sql("SELECT 42 AS answer")
    assert isinstance(rel, pintail.Relation)
    assert rel.fetchall() == [(42,)]
    assert pintail.default_connection() is pintail.default_connection()


def test_statements_that_return_nothing_run_at_once(con: pintail.Connection) -> None:
    assert con.sql("CREATE TABLE t (a BIGINT, b VARCHAR)") is None
    assert con.sql("INSERT INTO t VALUES (1, 'x'), (2, NULL)") is None
    assert con.sql("SELECT a, b FROM t ORDER BY a").fetchall() == [(1, "x"), (2, None)]
    # several statements: all run, the last one's rows come back
    rel = con.sql("INSERT INTO t VALUES (3, 'z'); SELECT count(*) AS n FROM t")
    assert rel is not None and rel.fetchall() == [(3,)]


def test_a_relation_runs_again_each_time_its_rows_are_asked_for(con: pintail.Connection) -> None:
    con.sql("CREATE TABLE t AS SELECT 1 AS a")
    rel = con.sql("SELECT count(*) FROM t")
    assert rel.fetchall() == [(1,)]
    con.sql("INSERT INTO t VALUES (2)")
    assert rel.fetchall() == [(2,)]
    assert rel.to_arrow().column(0).to_pylist() == [2]


def test_making_a_relation_runs_nothing(con: pintail.Connection) -> None:
    rel = con.sql("SELECT * FROM 'missing-file.parquet'")
    with pytest.raises(pintail.IOError, match="missing-file.parquet"):
        rel.fetchall()


def test_fetchone_and_fetchmany_walk_one_result(con: pintail.Connection) -> None:
    rel = con.sql("SELECT value FROM generate_series(1, 5) ORDER BY value")
    assert rel.fetchone() == (1,)
    assert rel.fetchmany(2) == [(2,), (3,)]
    assert rel.fetchall() == [(4,), (5,)]
    # the result was read to its end: the next fetch runs the query again
    assert rel.fetchone() == (1,)
    assert rel.fetchmany(10) == [(2,), (3,), (4,), (5,)]
    assert rel.fetchone() is None


def test_columns_and_types_come_from_the_plan(con: pintail.Connection) -> None:
    rel = con.sql("SELECT 1::BIGINT AS id, 'x' AS name, 1.5::DOUBLE AS score, DATE '2024-01-02' AS day")
    assert rel.columns == ["id", "name", "score", "day"]
    assert rel.types == ["BIGINT", "VARCHAR", "DOUBLE", "DATE"]


def test_composition_wraps_the_query(con: pintail.Connection) -> None:
    con.sql("CREATE TABLE sales AS SELECT * FROM (VALUES ('a', 1), ('b', 2), ('a', 3), ('c', 4)) AS v(k, x)")
    rel = con.table("sales")
    assert rel.filter("x > 1").order("x").project("k", "x * 10 AS y").fetchall() == [("b", 20), ("a", 30), ("c", 40)]
    assert rel.aggregate("k, sum(x) AS total", "k").order("k").fetchall() == [("a", 4), ("b", 2), ("c", 4)]
    assert rel.aggregate("count(*)").fetchall() == [(4,)]
    assert rel.order("x DESC").limit(2).fetchall() == [("c", 4), ("a", 3)]
    assert rel.order("x").limit(2, offset=1).fetchall() == [("b", 2), ("a", 3)]
    assert rel.sql("SELECT max(x) FROM rel").fetchall() == [(4,)]
    assert rel.sql("SELECT count(*) FROM s WHERE k = 'a'", name="s").fetchall() == [(2,)]
    # a query with its own WITH
    got = rel.sql("WITH big AS (SELECT * FROM rel WHERE x > 2) SELECT count(*) FROM big").fetchall()
    assert got == [(2,)]


def test_describe_summarizes_the_columns(con: pintail.Connection) -> None:
    summary = con.sql("SELECT * FROM (VALUES (1), (2), (NULL)) AS v(x)").describe().to_arrow()
    row = summary.to_pylist()[0]
    assert row["column_name"] == "x"
    assert row["count"] == 3
    assert row["min"] == "1" and row["max"] == "2"


def test_relations_from_describe_run_but_do_not_compose(con: pintail.Connection) -> None:
    con.sql("CREATE TABLE t (a INT)")
    rel = con.sql("DESCRIBE t")
    assert rel is not None and rel.fetchall()[0][0] == "a"
    with pytest.raises(pintail.NotSupportedError, match="cannot be composed"):
        rel.filter("true")


def test_show_and_repr_draw_a_table(con: pintail.Connection, capsys: pytest.CaptureFixture[str]) -> None:
    rel = con.sql("SELECT 42 AS answer, 'pintail' AS name")
    text = repr(rel)
    assert "answer" in text and "42" in text and "pintail" in text
    rel.show()
    assert capsys.readouterr().out.strip() == text


def test_table_refuses_an_unknown_name(con: pintail.Connection) -> None:
    with pytest.raises(pintail.CatalogError, match="no table or view 'nope'"):
        con.table("nope")


def test_composed_relations_keep_the_order_and_the_limit(con: pintail.Connection) -> None:
    rel = con.sql("SELECT value AS x, value % 3 AS m FROM generate_series(1, 20)")
    desc = rel.order("x DESC")
    assert desc.filter("m = 0").project("x").fetchall() == [(18,), (15,), (12,), (9,), (6,), (3,)]
    top = desc.limit(5)
    assert top.order("x").project("x").fetchall() == [(16,), (17,), (18,), (19,), (20,)]
    assert top.limit(2, offset=1).project("x").fetchall() == [(19,), (18,)]
    assert top.aggregate("sum(x)").fetchall() == [(90,)]
    assert top.filter("m = 1").fetchall() == [(19, 1), (16, 1)]
    assert "ORDER BY x DESC" in top.sql_text


def test_a_long_result_is_drawn_in_part(con: pintail.Connection) -> None:
    rel = con.sql("SELECT value AS n FROM generate_series(1, 200000)")
    text = repr(rel)
    assert "200,000 rows (40 shown)" in text
    assert re.search(r"│ +1 │", text)
    assert re.search(r"│ +200000 │", text)
    assert not re.search(r"│ +100000 │", text)
    assert "200000 rows × 1 columns (40 shown)" in rel._repr_html_()


def test_html_for_notebooks(con: pintail.Connection) -> None:
    html = con.sql("SELECT value AS n, '<b>' AS tag FROM generate_series(1, 50)")._repr_html_()
    assert html.startswith("<table")
    assert "<th>n<br><small>BIGINT</small></th>" in html
    assert "<td>&lt;b&gt;</td>" in html
    assert html.count("<tr>") == 41  # the header and 40 rows
    assert "50 rows × 2 columns (40 shown)" in html


def test_read_and_write_files(con: pintail.Connection, tmp_path: pathlib.Path) -> None:
    rel = con.sql("SELECT value AS n, 'row ' || value AS label FROM generate_series(1, 3)")
    rel.write_parquet(str(tmp_path / "rows.parquet"))
    rel.write_csv(str(tmp_path / "rows.csv"))
    rel.write_json(str(tmp_path / "rows.json"))
    expected = [(1, "row 1"), (2, "row 2"), (3, "row 3")]
    assert con.read_parquet(str(tmp_path / "rows.parquet")).order("n").fetchall() == expected
    assert con.read_csv(str(tmp_path / "rows.csv")).order("n").fetchall() == expected
    # JSON objects have no column order: name the columns
    assert con.read_json(str(tmp_path / "rows.json")).project("n", "label").order("n").fetchall() == expected
    # options are passed to the table function as typed literals
    (tmp_path / "pipes.csv").write_text("1|a\n2|b\n")
    got = con.read_csv(str(tmp_path / "pipes.csv"), delim="|", header=False).fetchall()
    assert got == [(1, "a"), (2, "b")]
    with pytest.raises(pintail.InvalidOptionError, match="option 'delim'"):
        con.read_csv(str(tmp_path / "pipes.csv"), delim=object())


def test_arrow_stream_export(con: pintail.Connection) -> None:
    rel = con.sql("SELECT value FROM generate_series(1, 100000) ORDER BY value")
    table = pa.table(rel)
    assert table.num_rows == 100000
    assert table.column(0).to_pylist()[:3] == [1, 2, 3]
    reader = pa.RecordBatchReader.from_stream(rel)
    assert sum(b.num_rows for b in reader) == 100000


def test_arrow_stream_export_reports_errors(con: pintail.Connection) -> None:
    rel = con.sql("SELECT CAST(CASE WHEN value = 50000 THEN 'x' ELSE value::VARCHAR END AS INT) FROM generate_series(1, 100000)")
    with pytest.raises(Exception, match="[Cc]ast"):
        pa.table(rel)
