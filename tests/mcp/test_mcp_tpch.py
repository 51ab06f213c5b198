"""All 22 TPC-H queries at SF 0.01 through the MCP query tool, equal to the
CLI's answers for the same database."""

from __future__ import annotations

import pathlib
import subprocess

from conftest import call, run, stdio
from pintail_binary import ROOT, binary
from tpch_data import tpch

QUERIES = ROOT / "bench" / "queries"
TABLES = ["customer", "lineitem", "nation", "orders", "part", "partsupp", "region", "supplier"]


def test_tpch_through_the_query_tool_equals_the_cli(tmp_path: pathlib.Path) -> None:
    data = tpch()
    views = [f"CREATE VIEW {t} AS SELECT * FROM '{data}/{t}.parquet'" for t in TABLES]
    made = subprocess.run([binary(), "tpch.db", *[a for v in views for a in ("-c", v)]], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    queries = sorted(QUERIES.glob("q*.sql"), key=lambda q: int(q.stem[1:]))
    assert len(queries) == 22
    expected = {}
    for q in queries:
        out = subprocess.run([binary(), "tpch.db", "-m", "csv", "-c", q.read_text()], cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        # (one line per row: no TPC-H value has a line break; a NULL is an
        # empty line)
        expected[q.stem] = out.stdout.removesuffix("\n")

    async def body() -> None:
        async with stdio(tmp_path, "tpch.db", "--allow-path", str(data)) as session:
            for q in queries:
                text = await call(session, "query", sql=q.read_text(), format="csv", max_rows=1000, max_chars=100_000)
                table, note = text.rsplit("\n", 1)
                rows = expected[q.stem].count("\n")
                assert note == f"({rows} {'row' if rows == 1 else 'rows'})", f"{q.stem}: {note}"
                assert table == expected[q.stem], q.stem

    run(body)
