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

With `--database FILE` (duckdb only) the tables are loaded into a new
DuckDB database file with CREATE TABLE AS, each load timed; with
`--insert-latency ROWS --database FILE` it times single-row INSERTs instead
(see `insert_latency`).
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


def duckdb_runner(data: pathlib.Path, threads: int, database: pathlib.Path | None,
                  load: dict[str, float]) -> tuple[str, Callable[[str], pa.Table]]:
    """Views over the Parquet files; or, with `database`, tables loaded into
    a new DuckDB database file with CREATE TABLE AS, each load timed."""
    import duckdb

    con = duckdb.connect(str(database) if database else ":memory:", config={"threads": threads})
    for name, path in tables(data).items():
        if database is None:
            con.sql(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{path}')")
        else:
            started = time.perf_counter()
            con.sql(f"CREATE TABLE {name} AS SELECT * FROM read_parquet('{path}')")
            con.sql("CHECKPOINT")  # on disk, as Pintail's commit is
            load[name] = time.perf_counter() - started
    return duckdb.__version__, lambda sql: con.sql(sql).to_arrow_table()


def datafusion_runner(data: pathlib.Path, threads: int, *_) -> tuple[str, Callable[[str], pa.Table]]:
    import datafusion

    config = datafusion.SessionConfig().with_target_partitions(threads)
    ctx = datafusion.SessionContext(config)
    for name, path in tables(data).items():
        ctx.register_parquet(name, str(path))
    return datafusion.__version__, lambda sql: ctx.sql(sql).to_arrow_table()


def polars_runner(data: pathlib.Path, threads: int, *_) -> tuple[str, Callable[[str], pa.Table]]:
    # polars reads its thread count once, at import
    os.environ["POLARS_MAX_THREADS"] = str(threads)
    import polars as pl

    ctx = pl.SQLContext({name: pl.scan_parquet(path) for name, path in tables(data).items()})
    return pl.__version__, lambda sql: ctx.execute(sql.strip().rstrip(";")).collect().to_arrow()


RUNNERS = {"duckdb": duckdb_runner, "datafusion": datafusion_runner, "polars": polars_runner}


def insert_latency(database: pathlib.Path, rows: int) -> dict:
    """The same statements as `pintail-bench --insert-latency`, in DuckDB
    on a database file: single-row INSERTs each committed on its own, the
    same rows in one transaction and in one multi-row INSERT, and a scan
    of the table they made."""
    import duckdb

    con = duckdb.connect(str(database))

    def timed(sql: str) -> float:
        started = time.perf_counter()
        con.sql(sql)
        return time.perf_counter() - started

    def row(i: int) -> str:
        return f"({i}, 'name-{i}', {i * 0.5})"

    timed("CREATE TABLE events (id BIGINT, name VARCHAR, amount DOUBLE)")
    single = [timed(f"INSERT INTO events VALUES {row(i)}") for i in range(rows)]
    scan = timed("SELECT count(*), sum(amount) FROM events")
    started = time.perf_counter()
    timed("BEGIN")
    in_transaction = [timed(f"INSERT INTO events VALUES {row(rows + i)}") for i in range(rows)]
    commit = timed("COMMIT")
    transaction = time.perf_counter() - started
    multirow = timed("INSERT INTO events VALUES " + ", ".join(row(2 * rows + i) for i in range(rows)))
    return {"single": single, "scan": scan, "transaction": transaction, "in_transaction": in_transaction,
            "commit": commit, "multirow": multirow}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("engine", choices=sorted(RUNNERS))
    parser.add_argument("queries", nargs="*", type=pathlib.Path)
    parser.add_argument("--data", type=pathlib.Path)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--no-warmup", action="store_true")
    parser.add_argument("--results", type=pathlib.Path)
    parser.add_argument("--database", type=pathlib.Path,
                        help="duckdb only: load the tables into a new database file here and query them there")
    parser.add_argument("--insert-latency", type=int, metavar="ROWS",
                        help="duckdb only: time ROWS single-row INSERTs into a new table in --database instead")
    args = parser.parse_intermixed_args()
    if args.database and args.engine != "duckdb":
        parser.error("--database is for duckdb only")
    if args.insert_latency:
        if args.engine != "duckdb" or not args.database:
            parser.error("--insert-latency needs duckdb and --database")
        report = insert_latency(args.database, args.insert_latency)
        print(json.dumps({"engine": args.engine, "version": __import__("duckdb").__version__, "inserts": report}))
        return

    if not args.queries or not args.data:
        parser.error("give --data and at least one query file")
    load: dict[str, float] = {}
    version, run = RUNNERS[args.engine](args.data, args.threads, args.database, load)
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
    print(json.dumps({"engine": args.engine, "version": version, "queries": report, "load": load}))


if __name__ == "__main__":
    main()
