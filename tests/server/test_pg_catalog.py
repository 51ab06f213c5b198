"""The Postgres catalog over `pintail serve --pg`: psql's backslash commands, SQLAlchemy's introspection."""

from __future__ import annotations

import re
import subprocess

import psycopg
import pytest
import sqlalchemy as sa
from conftest import Server, psql


@pytest.fixture
def shop(server: Server) -> Server:
    out = psql(
        server,
        "-c",
        "CREATE TABLE items (id INTEGER NOT NULL, name VARCHAR, price DECIMAL(10, 2), added DATE, stock BIGINT)",
        "-c",
        "INSERT INTO items VALUES (1, 'apple', 1.50, DATE '2024-01-02', 10), (2, 'pear', 2.25, NULL, NULL)",
        "-c",
        "CREATE VIEW cheap AS SELECT id, name FROM items WHERE price < 2",
        "-c",
        "CREATE SCHEMA archive",
        "-c",
        "CREATE TABLE archive.old_items (id INTEGER)",
    )
    assert out.returncode == 0, out.stderr
    return server


def rows(out: subprocess.CompletedProcess[str]) -> list[list[str]]:
    assert out.returncode == 0, out.stderr
    return [line.split("|") for line in out.stdout.splitlines() if line]


def test_psql_lists_tables_views_schemas_and_databases(shop: Server) -> None:
    # -A -t: unaligned rows without headers, fields split by |
    # as in Postgres, the tables on the search path (the current schema)
    tables = rows(psql(shop, "-A", "-t", "-c", r"\dt"))
    assert [r[:3] for r in tables] == [["main", "items", "table"]]
    tables = rows(psql(shop, "-A", "-t", "-c", r"\dt archive.*"))
    assert [r[:3] for r in tables] == [["archive", "old_items", "table"]]
    relations = rows(psql(shop, "-A", "-t", "-c", r"\d"))
    assert [r[:3] for r in relations] == [["main", "cheap", "view"], ["main", "items", "table"]]
    assert [r[:3] for r in rows(psql(shop, "-A", "-t", "-c", r"\dv"))] == [["main", "cheap", "view"]]
    assert sorted(r[0] for r in rows(psql(shop, "-A", "-t", "-c", r"\dn"))) == ["archive", "main"]
    # the served database, named after its file
    assert "db" in [r[0] for r in rows(psql(shop, "-A", "-t", "-c", r"\l"))]


def test_psql_describes_a_table_and_a_view(shop: Server) -> None:
    out = psql(shop, "-c", r"\d items")
    assert out.returncode == 0, out.stderr
    assert 'Table "main.items"' in out.stdout
    described = {line.split("|")[0].strip(): [c.strip() for c in line.split("|")[1:]] for line in out.stdout.splitlines() if "|" in line}
    assert described["id"][0] == "integer" and described["id"][2] == "not null"
    assert described["name"][0] == "text"
    assert described["price"][0].startswith("numeric")
    assert described["added"][0] == "date"
    assert described["stock"][0] == "bigint" and described["stock"][2] == ""
    out = psql(shop, "-c", r"\d cheap")
    assert out.returncode == 0, out.stderr
    assert 'View "main.cheap"' in out.stdout and "name" in out.stdout
    out = psql(shop, "-c", r"\d nothing_here")
    assert out.returncode != 0 and 'Did not find any relation named "nothing_here"' in out.stderr


def test_catalog_functions_answer_for_the_served_database(shop: Server) -> None:
    with psycopg.connect(shop.dsn.replace("dbname=pintail", "dbname=db"), autocommit=True) as conn:
        database, schema, version = conn.execute("SELECT current_database(), current_schema(), version()").fetchone()
        assert (database, schema) == ("db", "main")
        # clients read the major version from it, as from Postgres
        assert re.match(r"PostgreSQL 16\.\d+ \(Pintail ", version), version
        assert conn.execute("SHOW transaction isolation level").fetchone() == ("repeatable read",)
        assert conn.execute("SELECT to_regtype('integer'), to_regtype('text[]'), to_regtype('no_such_type')").fetchone() == (23, 1009, None)
        # a client's catalog query, with parameters
        found = conn.execute(
            "SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind = %s ORDER BY 1",
            ("main", "r"),
        ).fetchall()
        assert found == [("items",)]


def test_a_user_table_named_like_the_catalog_is_still_the_users(server: Server) -> None:
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE pg_notes (note VARCHAR)")
        conn.execute("INSERT INTO pg_notes VALUES ('mine')")
        assert conn.execute("SELECT note FROM pg_notes").fetchall() == [("mine",)]


def test_sqlalchemy_reflects_and_queries(shop: Server) -> None:
    engine = sa.create_engine(f"postgresql+psycopg://tester@127.0.0.1:{shop.port}/db")
    try:
        inspector = sa.inspect(engine)
        assert inspector.default_schema_name == "main"
        assert sorted(inspector.get_schema_names()) == ["archive", "main"]
        assert inspector.get_table_names() == ["items"]
        assert inspector.get_table_names(schema="archive") == ["old_items"]
        assert inspector.get_view_names() == ["cheap"]
        assert inspector.has_table("items") and not inspector.has_table("nothing_here")
        columns = {c["name"]: c for c in inspector.get_columns("items")}
        assert list(columns) == ["id", "name", "price", "added", "stock"]
        assert isinstance(columns["id"]["type"], sa.Integer) and columns["id"]["nullable"] is False
        assert isinstance(columns["name"]["type"], sa.String)
        assert isinstance(columns["price"]["type"], sa.Numeric)
        assert isinstance(columns["added"]["type"], sa.Date)
        assert isinstance(columns["stock"]["type"], sa.BigInteger) and columns["stock"]["nullable"] is True
        # Pintail's tables have no keys or indexes, and say so
        assert inspector.get_pk_constraint("items")["constrained_columns"] == []
        assert inspector.get_foreign_keys("items") == []
        assert inspector.get_indexes("items") == []

        items = sa.Table("items", sa.MetaData(), autoload_with=engine)
        with engine.connect() as conn:
            got = conn.execute(sa.select(items.c.name, items.c.price).where(items.c.id == 1)).all()
        assert [tuple(r) for r in got] == [("apple", pytest.approx(1.5))]
    finally:
        engine.dispose()


def test_psycopg_nested_transactions_use_savepoints(server: Server) -> None:
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        # DDL commits on its own, outside transactions
        conn.execute("CREATE TABLE t (x INTEGER)")
    with psycopg.connect(server.dsn) as conn:
        with conn.transaction():
            conn.execute("INSERT INTO t VALUES (1)")
            # a failed statement inside a nested block is rolled back to
            # its savepoint; the outer transaction goes on and commits
            with pytest.raises(psycopg.errors.UndefinedTable), conn.transaction():
                conn.execute("SELECT * FROM no_such_table")
            conn.execute("INSERT INTO t VALUES (2)")
        assert conn.execute("SELECT x FROM t ORDER BY x").fetchall() == [(1,), (2,)]
        conn.commit()
        # undoing writes since a savepoint is refused, and nothing is half-kept
        conn.execute("SAVEPOINT before_three")
        conn.execute("INSERT INTO t VALUES (3)")
        with pytest.raises(psycopg.errors.FeatureNotSupported, match="cannot undo the writes"):
            conn.execute("ROLLBACK TO SAVEPOINT before_three")
        conn.rollback()
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (2,)
