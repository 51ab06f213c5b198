"""Connections: databases on disk, settings, errors, closing."""

from __future__ import annotations

import pathlib

import pytest

import pintail


def test_a_database_keeps_its_tables(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "shop.db"
    with pintail.connect(path) as con:
        con.sql("CREATE TABLE orders (id BIGINT NOT NULL, amount DOUBLE)")
        con.sql("INSERT INTO orders VALUES (1, 9.5), (2, 20.0)")
    with pintail.connect(str(path)) as con:
        assert con.table("orders").order("id").fetchall() == [(1, 9.5), (2, 20.0)]
        con.sql("UPDATE orders SET amount = amount * 2 WHERE id = 1")
        assert con.sql("SELECT amount FROM orders WHERE id = 1").fetchall() == [(19.0,)]


def test_a_read_only_database_refuses_writes(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "shop.db"
    with pintail.connect(path) as con:
        con.sql("CREATE TABLE t AS SELECT 1 AS a")
    with pintail.connect(path, read_only=True) as con:
        assert con.sql("SELECT a FROM t").fetchall() == [(1,)]
        with pytest.raises(pintail.Error, match="read-only"):
            con.sql("INSERT INTO t VALUES (2)")
    with pytest.raises(pintail.IOError):
        pintail.connect(tmp_path / "missing.db", read_only=True)


def test_a_directory_that_is_not_a_database_is_refused(tmp_path: pathlib.Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(pintail.Error, match="not a Pintail database"):
        pintail.connect(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_config_sets_settings(tmp_path: pathlib.Path) -> None:
    with pintail.connect(config={"threads": 1, "memory_limit": "1GB"}) as con:
        assert con.sql("SHOW threads").fetchall() == [("threads", "1")]
    with pintail.connect(config={"datafusion.execution.batch_size": 1024}) as con:
        got = con.sql("SHOW datafusion.execution.batch_size").fetchall()
        assert got == [("datafusion.execution.batch_size", "1024")]
    with pytest.raises(pintail.InvalidOptionError, match="threads"):
        pintail.connect(config={"threads": "many"})
    with pytest.raises(pintail.InvalidOptionError, match="not a setting name"):
        pintail.connect(config={"x; DROP TABLE t": 1})
    with pytest.raises(pintail.InvalidOptionError, match="read_only needs a database path"):
        pintail.connect(read_only=True)


@pytest.mark.parametrize(
    ("query", "error", "standard", "text"),
    [
        ("SELEC 1", pintail.ParserError, pintail.ProgrammingError, "SELEC"),
        ("SELECT * FROM no_such_table", pintail.CatalogError, pintail.ProgrammingError, "no_such_table"),
        ("SELECT no_such_column FROM (SELECT 1 AS a)", pintail.CatalogError, pintail.ProgrammingError, "no_such_column"),
        ("SELECT * FROM 'no/such/file.csv'", pintail.IOError, pintail.OperationalError, "no/such/file.csv"),
        ("SET no_such_setting = 1", pintail.InvalidOptionError, pintail.ProgrammingError, "no_such_setting"),
    ],
)
def test_errors_map_to_pep_249_classes(
    con: pintail.Connection, query: str, error: type[Exception], standard: type[Exception], text: str
) -> None:
    with pytest.raises(error, match=text) as caught:
        rel = con.sql(query)
        if rel is not None:
            rel.fetchall()
    assert isinstance(caught.value, standard)
    assert isinstance(caught.value, pintail.DatabaseError)
    assert isinstance(caught.value, pintail.Error)


def test_a_closed_connection_refuses_calls() -> None:
    con = pintail.connect()
    rel = con.sql("SELECT 1")
    con.close()
    con.close()
    with pytest.raises(pintail.InterfaceError, match="closed"):
        con.sql("SELECT 1")
    # a relation made before keeps its own handle on the session
    assert rel is not None and rel.fetchall() == [(1,)]
    with pintail.connect() as c:
        pass
    with pytest.raises(pintail.InterfaceError):
        c.table("t")
