"""Pintail's Python package beside DuckDB and DataFusion-python: thread scaling and round trips.

Thread scaling: TPC-H Q1 and Q6 on lineitem (a Parquet file), run by 1, 2
and 4 Python threads at once, each with its own connection set to one
execution thread, so only the GIL (or the engine's own locks) can keep the
threads from running in parallel. Reported: queries per second and the
speed-up over one thread.

Round trips: `SELECT 42` to a Python int, and a 1M-row result (an integer,
a double and a string column) to a pyarrow Table and to a pandas DataFrame;
the median of many runs.

Run by `bench/python`, which installs the package from `python/` (a release
build) into the benchmark environment.
"""

from __future__ import annotations

import argparse
import datetime
import pathlib
import platform
import statistics
import sys
import threading
import time
from collections.abc import Callable

import datafusion
import duckdb
import pyarrow as pa

import pintail

BENCH = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from run import generate, machine  # noqa: E402 - the harness's own helpers

ENGINES = ("pintail", "duckdb", "datafusion")
MILLION = "SELECT i, i * 1.5 AS f, CAST(i AS VARCHAR) AS s FROM range(1000000) AS t(i)"


class Engine:
    """One engine's connection, made for one thread of execution."""

    def __init__(self, name: str, lineitem: pathlib.Path | None, threads: int) -> None:
        self.name = name
        if name == "pintail":
            self.con = pintail.connect(config={"threads": threads, "progress_bar": False})
            if lineitem:
                self.con.sql(f"CREATE VIEW lineitem AS SELECT * FROM '{lineitem}'")
        elif name == "duckdb":
            self.con = duckdb.connect(config={"threads": threads})
            if lineitem:
                self.con.sql(f"CREATE VIEW lineitem AS SELECT * FROM '{lineitem}'")
        else:
            config = datafusion.SessionConfig().with_target_partitions(threads)
            self.ctx = datafusion.SessionContext(config)
            if lineitem:
                self.ctx.register_parquet("lineitem", str(lineitem))

    def arrow(self, sql: str) -> pa.Table:
        if self.name == "pintail":
            return self.con.sql(sql).to_arrow()
        if self.name == "duckdb":
            return self.con.sql(sql).to_arrow_table()
        return self.ctx.sql(sql).to_arrow_table()

    def pandas(self, sql: str) -> object:
        if self.name in ("pintail", "duckdb"):
            return self.con.sql(sql).df()
        return self.ctx.sql(sql).to_pandas()

    def scalar(self, sql: str) -> object:
        if self.name in ("pintail", "duckdb"):
            return self.con.execute(sql).fetchall()[0][0]
        return self.ctx.sql(sql).collect()[0].column(0)[0].as_py()


def median_ms(run: Callable[[], object], times: int) -> float:
    run()
    samples = []
    for _ in range(times):
        start = time.perf_counter()
        run()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000


def throughput(engine: str, lineitem: pathlib.Path, sql: str, threads: int, per_thread: int) -> float:
    """Queries per second with `threads` Python threads running `sql`."""
    engines = [Engine(engine, lineitem, 1) for _ in range(threads)]
    for e in engines:
        e.arrow(sql)  # warm up: file metadata, plans
    barrier = threading.Barrier(threads + 1)
    errors: list[BaseException] = []

    def work(e: Engine) -> None:
        barrier.wait()
        try:
            for _ in range(per_thread):
                e.arrow(sql)
        except BaseException as err:  # noqa: BLE001 - reported after the run
            errors.append(err)

    workers = [threading.Thread(target=work, args=(e,)) for e in engines]
    for w in workers:
        w.start()
    barrier.wait()
    start = time.perf_counter()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise errors[0]
    return threads * per_thread / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sf", type=float, default=1.0)
    parser.add_argument("--threads", default="1,2,4", help="Python thread counts for the scaling run")
    parser.add_argument("--per-thread", type=int, default=5, help="queries each thread runs")
    parser.add_argument("--round-trips", type=int, default=1000, help="runs of SELECT 42")
    parser.add_argument("--million-runs", type=int, default=10, help="runs of the 1M-row result")
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--cache", type=pathlib.Path, default=pathlib.Path.home() / ".cache" / "pintail")
    parser.add_argument("--out", type=pathlib.Path, default=BENCH / "results")
    args = parser.parse_args()
    engines = args.engines.split(",")
    counts = [int(n) for n in args.threads.split(",")]
    lineitem = generate(args.cache, args.sf) / "lineitem.parquet"
    queries = {q: (BENCH / "queries" / f"{q}.sql").read_text() for q in ("q1", "q6")}

    scaling: dict[tuple[str, str], dict[int, float]] = {}
    for q, sql in queries.items():
        for engine in engines:
            scaling[(q, engine)] = {}
            for n in counts:
                qps = throughput(engine, lineitem, sql, n, args.per_thread)
                scaling[(q, engine)][n] = qps
                print(f"{q} {engine} {n} threads: {qps:.2f} queries/s", file=sys.stderr)

    trips: dict[str, dict[str, float]] = {}
    for engine in engines:
        e = Engine(engine, None, 2)
        assert e.scalar("SELECT 42") == 42
        assert e.arrow(MILLION).num_rows == 1_000_000
        trips[engine] = {
            "SELECT 42 to a Python int": median_ms(lambda e=e: e.scalar("SELECT 42"), args.round_trips),
            "1M rows to a pyarrow Table": median_ms(lambda e=e: e.arrow(MILLION), args.million_runs),
            "1M rows to a pandas DataFrame": median_ms(lambda e=e: e.pandas(MILLION), args.million_runs),
        }
        print(f"{engine}: {trips[engine]}", file=sys.stderr)

    tag, desc = machine()
    today = datetime.date.today().isoformat()
    lines = [
        f"# Python package, {today}, {desc}",
        "",
        f"Python {platform.python_version()}; versions: pintail {pintail.__version__}, duckdb {duckdb.__version__}, "
        f"datafusion {datafusion.__version__}.",
        "",
        f"Thread scaling: TPC-H Q1 and Q6 at SF{args.sf:g} (lineitem as a Parquet file), each Python thread with "
        f"its own connection set to one execution thread, {args.per_thread} queries per thread; queries per "
        "second, and in brackets the speed-up over one thread.",
        "",
        "| query | engine | " + " | ".join(f"{n} thread{'s' if n > 1 else ''}" for n in counts) + " |",
        "| --- | --- | " + " | ".join("---:" for _ in counts) + " |",
    ]
    for (q, engine), by_n in scaling.items():
        one = by_n[counts[0]]
        cells = [f"{qps:.2f} ({qps / one:.2f}x)" for qps in by_n.values()]
        lines.append(f"| {q} | {engine} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Round trips, milliseconds (median):",
        "",
        "| | " + " | ".join(engines) + " |",
        "| --- | " + " | ".join("---:" for _ in engines) + " |",
    ]
    for what in trips[engines[0]]:
        lines.append(f"| {what} | " + " | ".join(f"{trips[e][what]:.3f}" for e in engines) + " |")
    command = " ".join(["bench/python", *sys.argv[1:]])
    lines += ["", f"Made by `{command}`."]
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{today}-{tag}-sf{args.sf:g}-python.md"
    path.write_text("\n".join(lines) + "\n")
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
