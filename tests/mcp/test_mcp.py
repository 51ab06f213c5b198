"""`pintail mcp` with the official MCP Python SDK client: the tools, the
resources and the prompt over stdio and streamable HTTP, the budgets that
cut long and wide results, and what a read-only server refuses."""

from __future__ import annotations

import pathlib
import re

import pytest
from conftest import TOKEN, call, http, http_server, post, refused, run, stdio
from mcp import ClientSession

def causes(e: BaseException) -> list[str]:
    """The messages of `e` and every exception grouped or chained in it."""
    found = [repr(e)]
    for inner in [*getattr(e, "exceptions", []), e.__cause__, e.__context__]:
        if inner is not None:
            found += causes(inner)
    return found


TOOLS = {"list_tables", "describe", "query", "summarize", "explain"}


async def check_tools(session: ClientSession) -> None:
    """What an agent sees of the tools, and each one's answer on the example data."""
    tools = {t.name: t for t in (await session.list_tools()).tools}
    assert set(tools) == TOOLS
    for tool in tools.values():
        assert tool.description and len(tool.description) > 40
        assert tool.input_schema["type"] == "object"
        assert tool.annotations is not None and tool.annotations.read_only_hint
    assert tools["query"].input_schema["required"] == ["sql"]
    assert set(tools["query"].input_schema["properties"]) == {"sql", "max_rows", "max_chars", "format"}

    listed = await call(session, "list_tables")
    assert "| cars | table | 9 | 406 |" in listed
    assert "| heavy | view | 2 | ? |" in listed
    assert re.search(r"\| data/cars\.parquet \| parquet \| [\d.]+ KB \| 406 \|", listed)
    assert "| data/airports.csv | csv |" in listed

    globbed = await call(session, "describe", target="data/*.parquet")
    assert globbed.startswith("data/*.parquet: 406 rows, 9 columns")
    described = await call(session, "describe", target="data/cars.parquet")
    assert described.startswith("data/cars.parquet: 406 rows, 9 columns")
    assert "| miles_per_gallon | DOUBLE | 8 |" in described
    assert "| horsepower | BIGINT | 6 |" in described
    assert "| name | VARCHAR | 0 |" in described
    assert described.count("\n| chevrolet") + described.count("\n| buick") + described.count("\n| plymouth") >= 3
    assert "Showing 5 of 5 rows" not in described and "(5 rows)" in described

    answer = await call(session, "query", sql="SELECT origin, count(*) AS n FROM cars GROUP BY origin ORDER BY n DESC")
    assert answer == "| origin | n |\n| --- | ---: |\n| USA | 254 |\n| Japan | 79 |\n| Europe | 73 |\n(3 rows)"
    csv = await call(session, "query", sql="SELECT origin, count(*) AS n FROM 'data/cars.csv' GROUP BY 1 ORDER BY 1", format="csv")
    assert csv == "origin,n\nEurope,73\nJapan,79\nUSA,254\n(3 rows)"

    summary = await call(session, "summarize", target="cars")
    assert "| column_name |" in summary and "| cylinders |" in summary and "(9 rows)" in summary
    summary = await call(session, "summarize", target="SELECT cylinders FROM cars")
    assert "(1 row)" in summary

    plan = await call(session, "explain", sql="SELECT count(*) FROM 'data/cars.parquet' WHERE cylinders > 4")
    assert "## logical_plan" in plan and "## physical_plan" in plan and "cars.parquet" in plan


async def check_resources_and_prompt(session: ClientSession) -> None:
    resources = {str(r.uri): r for r in (await session.list_resources()).resources}
    assert set(resources) == {"pintail://table/cars", "pintail://table/heavy"}
    contents = (await session.read_resource("pintail://table/heavy")).contents
    assert contents[0].text == "# heavy (view)\n\n| column | type | nullable |\n| --- | --- | --- |\n| name | VARCHAR | yes |\n| weight_in_lbs | BIGINT | yes |\n"
    prompts = {p.name: p for p in (await session.list_prompts()).prompts}
    assert set(prompts) == {"explore_dataset"}
    prompt = await session.get_prompt("explore_dataset", {"focus": "the cars table"})
    text = prompt.messages[0].content.text
    assert text.startswith("Explore the cars table with the Pintail tools.") and "list_tables" in text


def test_stdio_tools_resources_and_prompt(workdir: pathlib.Path) -> None:
    async def body() -> None:
        async with stdio(workdir, "shop.db") as session:
            await check_tools(session)
            await check_resources_and_prompt(session)

    run(body)


def test_http_with_the_bearer_token(workdir: pathlib.Path) -> None:
    async def body(url: str) -> None:
        async with http(url) as session:
            await check_tools(session)
            await check_resources_and_prompt(session)

    with http_server(workdir, "shop.db") as url:
        run(lambda: body(url))
        # one log line per call
        log = (workdir / "mcp.log").read_text()
        assert re.search(r'event=call tool=query duration_ms=[\d.]+ chars=\d+ sql="SELECT origin, count\(\*\) AS n FROM cars', log), log
        assert "event=call tool=list_tables duration_ms=" in log
        hello = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
        headers = {"Accept": "application/json, text/event-stream"}
        for auth in [None, "Bearer wrong-token-0123456789", f"Basic {TOKEN}", f"Bearer {TOKEN}x"]:
            sent = {**headers, **({"Authorization": auth} if auth else {})}
            assert post(url, hello, sent) == 401, auth
        # the right token gets through
        assert post(url, hello, {**headers, "Authorization": f"Bearer {TOKEN}"}) == 200

        async def wrong() -> None:
            async with http(url, token="not-the-token-at-all"):
                pass

        # the SDK's client cannot even initialize (it reports the 401 as
        # an error response)
        with pytest.raises(BaseException) as refused_client:
            run(wrong)
        assert "Server returned an error response" in "".join(causes(refused_client.value))


def test_long_and_wide_results_are_cut_with_counts(workdir: pathlib.Path) -> None:
    async def body() -> None:
        async with stdio(workdir) as session:
            long = await call(session, "query", sql="SELECT value AS n FROM range(1000)")
            lines = long.splitlines()
            assert lines[:3] == ["| n |", "| ---: |", "| 0 |"] and lines[101] == "| 99 |"
            assert lines[102] == (
                "Showing 100 of 1,000 rows. Left out: 900 rows. "
                "To narrow: filter with WHERE, add LIMIT, or aggregate with GROUP BY."
            )
            few = await call(session, "query", sql="SELECT value AS n FROM range(1000)", max_rows=3, format="csv")
            assert few.splitlines()[:4] == ["n", "0", "1", "2"] and "Showing 3 of 1,000 rows" in few

            # 300 columns of long names: the first ones that fit, the rest named
            columns = ", ".join(f"{i} AS column_with_a_rather_long_name_{i:03}" for i in range(300))
            wide = await call(session, "query", sql=f"SELECT {columns} FROM range(3)")
            assert len(wide) <= 20_000
            note = wide.splitlines()[-1]
            shown = int(re.search(r"and (\d+) of 300 columns", note).group(1))
            assert 10 < shown < 300
            assert note.startswith("Showing 3 of 3 rows")
            assert f"Left out: {300 - shown} columns (column_with_a_rather_long_name_{shown:03}, " in note
            assert "select fewer columns" in note and "rows" not in note.split("Left out:")[1].split("To narrow")[0]
            assert wide.splitlines()[0].count("|") == shown + 1

            # rows cut by characters before max_rows
            text = await call(session, "query", sql="SELECT value, repeat('x', 200) AS s FROM range(500)", max_rows=500, max_chars=5000)
            assert len(text) <= 5000
            rows = int(re.search(r"Showing (\d+) of 500 rows", text).group(1))
            assert 5 < rows < 30 and f"Left out: {500 - rows} rows" in text
            # long values are cut
            cut = await call(session, "query", sql="SELECT repeat('y', 5000) AS s")
            assert "y" * 400 + "…" in cut and "(1 long values were cut at 400 characters.)" in cut
            # asking for more than the server gives
            capped = await call(session, "query", sql="SELECT 1 AS x", max_rows=50_000)
            assert "(this server returns at most 1,000 rows and 100,000 characters per call)" in capped

    run(body)


def test_the_server_ceilings_are_set_by_flags(workdir: pathlib.Path) -> None:
    async def body() -> None:
        async with stdio(workdir, "--max-rows", "20", "--max-chars", "3000") as session:
            text = await call(session, "query", sql="SELECT value FROM range(100)", max_rows=100)
            assert "Showing 20 of 100 rows" in text and "at most 20 rows and 3,000 characters" in text

    run(body)


def test_a_read_only_server_refuses_what_writes_or_reaches_out(workdir: pathlib.Path) -> None:
    (workdir.parent / "secret.csv").write_text("password\nhunter2\n")

    async def body() -> None:
        async with stdio(workdir, "shop.db") as session:
            for sql in [
                "COPY (SELECT 1) TO 'out.csv'",
                "INSERT INTO cars (name) VALUES ('x')",
                "CREATE TABLE t AS SELECT 1",
                "SET memory_limit = '100GB'",
                "ATTACH 'other.db'",
                "DROP TABLE cars",
                "SELECT 1; INSERT INTO cars (name) VALUES ('x')",
                "/* a comment */ DELETE FROM cars",
                "-- SELECT\nUPDATE cars SET name = 'x'",
                "EXPLAIN ANALYZE INSERT INTO cars (name) VALUES ('x')",
                "WITH a AS (SELECT 'x' AS name) INSERT INTO cars (name) SELECT name FROM a",
                "WITH gone AS (DELETE FROM cars RETURNING *) SELECT * FROM gone",
            ]:
                error = await refused(session, "query", sql=sql)
                assert "refused" in error and "read-only" in error, (sql, error)
            for sql, outside in [
                ("SELECT * FROM read_csv('/etc/passwd')", "/etc/passwd"),
                ("SELECT * FROM '../secret.csv'", "secret.csv"),
                ("SELECT * FROM 'data/../../secret.csv'", "secret.csv"),
            ]:
                error = await refused(session, "query", sql=sql)
                assert "outside the allowed paths" in error and outside in error, (sql, error)
            error = await refused(session, "describe", target="cars; DROP TABLE cars")
            assert "not several statements" in error
            error = await refused(session, "describe", target="/etc/passwd")
            assert "outside the allowed paths" in error
            # nothing was written
            assert await call(session, "query", sql="SELECT count(*) AS n FROM cars") == "| n |\n| ---: |\n| 406 |\n(1 row)"
        assert not (workdir / "out.csv").exists() and not (workdir / "other.db").exists()

    run(body)


def test_read_write_lets_the_agent_write(workdir: pathlib.Path) -> None:
    async def body() -> None:
        async with stdio(workdir, "shop.db", "--read-write") as session:
            assert await call(session, "query", sql="CREATE TABLE empty (x INT)") == "OK: the statement ran (it returns no rows)"
            await call(session, "query", sql="CREATE TABLE picks AS SELECT name FROM cars LIMIT 2; INSERT INTO picks VALUES ('mine')")
            assert (await call(session, "query", sql="SELECT count(*) AS n FROM picks")).endswith("| 3 |\n(1 row)")
            # paths stay limited
            assert "outside the allowed paths" in await refused(session, "query", sql="COPY (SELECT 1) TO '/tmp/pintail-mcp-out.csv'")

    run(body)


def test_a_call_over_its_time_limit_is_cancelled(workdir: pathlib.Path) -> None:
    async def body() -> None:
        async with stdio(workdir, "--query-timeout", "1s") as session:
            error = await refused(session, "query", sql="SELECT max(value) FROM range(1000000000000)")
            assert "time limit (1 s)" in error
            # and the server goes on
            assert await call(session, "query", sql="SELECT 1 AS x") == "| x |\n| ---: |\n| 1 |\n(1 row)"

    run(body)


def test_the_memory_limit_holds_and_cannot_be_raised(workdir: pathlib.Path) -> None:
    async def body() -> None:
        async with stdio(workdir, "--memory-limit", "20MB", "--read-write") as session:
            error = await refused(session, "query", sql="SELECT cardinality(array_agg(value)) FROM range(20000000)")
            assert "more memory than memory_limit (19.1 MiB)" in error
            assert "cannot be raised above 19.1 MiB" in await refused(session, "query", sql="SET memory_limit = '2GB'")

    run(body)


def test_bad_sql_is_an_error_the_model_can_read(workdir: pathlib.Path) -> None:
    async def body() -> None:
        async with stdio(workdir) as session:
            assert "error:" in await refused(session, "query", sql="SELEC 1")
            assert "nope" in await refused(session, "query", sql="SELECT * FROM nope")
            assert "error:" in await refused(session, "describe", target="no_such_table")
            assert "give the query alone" in await refused(session, "explain", sql="EXPLAIN SELECT 1")
            assert "without running the query" in await refused(session, "explain", sql="ANALYZE SELECT 1")

    run(body)
