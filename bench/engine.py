"""Runs benchmark queries in one engine from PyPI: duckdb, datafusion or polars.

The counterpart of Pintail's `pintail-bench` binary, with the same contract,
so `bench/run.py` treats all engines alike: each table of the data folder is
registered over its Parquet file (queried in place), each query runs once to
warm up and N more times, timed from the SQL text to the last row
materialised as Arrow; one JSON object with the timings goes to stdout and
each query's last result to `<results>/<query>.parquet`. Every engine is
limited to the same number of threads.

    python bench/engine.py duckdb --data DIR --threads 2 --iterations 3 \
        --results OUT q1.sql q2.sql ...
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import time
from typing import Callable

import pyarrow as pa
import pyarrow.parquet as pq


def tables(data: pathlib.Path) -> dict[str, pathlib.Path]:
    found = {p.stem: p for p in sorted(data.glob("*.parquet"))}
    if not found:
        sys.exit(f"engine.py: no .parquet files in {data}")
    return found


def duckdb_runner(data: pathlib.Path, threads: int) -> tuple[str, Callable[[str], pa.Table]]:
    import duckdb

    con = duckdb.connect(config={"threads": threads})
    for name, path in tables(data).items():
        con.sql(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{path}')")
    return duckdb.__version__, lambda sql: con.sql(sql).to_arrow_table()


def datafusion_runner(data: pathlib.Path, threads: int) -> tuple[str, Callable[[str], pa.Table]]:
    import datafusion

    config = datafusion.SessionConfig().with_target_partitions(threads)
    ctx = datafusion.SessionContext(config)
    for name, path in tables(data).items():
        ctx.register_parquet(name, str(path))
    return datafusion.__version__, lambda sql: ctx.sql(sql).to_arrow_table()


def polars_runner(data: pathlib.Path, threads: int) -> tuple[str, Callable[[str], pa.Table]]:
    # polars reads its thread count once, at import
    os.environ["POLARS_MAX_THREADS"] = str(threads)
    import polars as pl

    ctx = pl.SQLContext({name: pl.scan_parquet(path) for name, path in tables(data).items()})
    return pl.__version__, lambda sql: ctx.execute(sql.strip().rstrip(";")).collect().to_arrow()


RUNNERS = {"duckdb": duckdb_runner, "datafusion": datafusion_runner, "polars": polars_runner}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("engine", choices=sorted(RUNNERS))
    parser.add_argument("queries", nargs="+", type=pathlib.Path)
    parser.add_argument("--data", type=pathlib.Path, required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--no-warmup", action="store_true")
    parser.add_argument("--results", type=pathlib.Path)
    args = parser.parse_args()

    version, run = RUNNERS[args.engine](args.data, args.threads)
    report: dict[str, dict] = {}
    for path in args.queries:
        sql = path.read_text()
        try:
            if not args.no_warmup:
                run(sql)
            times = []
            for _ in range(max(args.iterations, 1)):
                started = time.perf_counter()
                result = run(sql)
                times.append(time.perf_counter() - started)
        except Exception as e:  # an engine that cannot run a query is reported, not fatal
            report[path.stem] = {"error": f"{type(e).__name__}: {e}".splitlines()[0][:300]}
            continue
        if args.results:
            pq.write_table(result, args.results / f"{path.stem}.parquet")
        report[path.stem] = {"times": times, "rows": result.num_rows}
    print(json.dumps({"engine": args.engine, "version": version, "queries": report}))


if __name__ == "__main__":
    main()
