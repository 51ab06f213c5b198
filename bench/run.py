"""TPC-H side by side: Pintail, DuckDB, DataFusion and Polars in one run.

Generates TPC-H Parquet files with tpchgen-cli (cached outside the clone),
runs the 22 queries in each engine in its own process (so each peak RSS is
its own), checks every engine's answers against DuckDB's, and writes the
tables (and a chart) to bench/results/. `bench/run` sets up the Python
environment and the release build, then calls this; see bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime
import decimal
import json
import math
import os
import pathlib
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import pyarrow.parquet as pq

BENCH = pathlib.Path(__file__).resolve().parent
QUERIES = sorted((BENCH / "queries").glob("q*.sql"), key=lambda p: int(p.stem[1:]))
ENGINES = ["pintail", "duckdb", "datafusion", "polars", "pintail-tables", "duckdb-tables"]
# pintail-tables, duckdb-tables: each engine on its own database (Delta Lake
# tables; a .duckdb file), loaded from the Parquet files with CREATE TABLE AS
# at the start of each process
DEFAULT_ENGINES = ENGINES[:4]
RED, RESET = ("\x1b[31m", "\x1b[0m") if sys.stdout.isatty() and "NO_COLOR" not in os.environ else ("", "")


def generate(cache: pathlib.Path, sf: float) -> pathlib.Path:
    """TPC-H tables as one Parquet file each, made once per scale factor."""
    out = cache / "tpch" / f"sf{sf:g}"
    if (out / ".done").exists():
        return out
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    print(f"generating TPC-H SF{sf:g} into {out}", file=sys.stderr)
    tpchgen = shutil.which("tpchgen-cli", path=str(pathlib.Path(sys.executable).parent)) or "tpchgen-cli"
    subprocess.run([tpchgen, "parquet", "-s", f"{sf:g}", "--output-dir", str(out)], check=True)
    (out / ".done").touch()
    return out


def run_engine(engine: str, args: argparse.Namespace, data: pathlib.Path, results: pathlib.Path) -> dict:
    """Runs one engine in a child process; returns its report and peak RSS."""
    queries = [str(q) for q in args.queries]
    common = ["--data", str(data), "--iterations", str(args.iterations), "--results", str(results)]
    if args.answers_only:
        common.append("--no-warmup")
    scratch = None
    if engine in ("pintail", "pintail-tables"):
        cmd = [str(args.pintail_bench), *common, "--set", f"threads={args.threads}"]
        for setting in args.pintail_set:
            cmd += ["--set", setting]
        if engine == "pintail-tables":
            scratch = pathlib.Path(tempfile.mkdtemp(prefix="pintail-tables-", dir=data.parent))
            cmd += ["--database", str(scratch / "tpch.db")]
        cmd += queries
    else:
        cmd = [sys.executable, str(BENCH / "engine.py"), engine.removesuffix("-tables"), *common,
               "--threads", str(args.threads)]
        if engine == "duckdb-tables":
            scratch = pathlib.Path(tempfile.mkdtemp(prefix="duckdb-tables-", dir=data.parent))
            cmd += ["--database", str(scratch / "tpch.duckdb")]
        cmd += queries
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    out = child.stdout.read() if child.stdout else ""
    _, status, usage = os.wait4(child.pid, 0)
    if scratch:
        shutil.rmtree(scratch, ignore_errors=True)
    if os.waitstatus_to_exitcode(status) != 0:
        return {"engine": engine, "failed": f"exit status {os.waitstatus_to_exitcode(status)}", "queries": {}}
    report = json.loads(out)
    report["engine"] = engine
    report["peak_rss"] = usage.ru_maxrss * 1024  # KiB on Linux
    return report


def merge(engine: str, rounds: list[dict]) -> dict:
    """One report from an engine's rounds: all timed runs of each query
    together, the highest peak RSS; a query that failed in any round, or a
    round that failed as a whole, counts as failed."""
    failed = next((r["failed"] for r in rounds if "failed" in r), None)
    if failed:
        return {"engine": engine, "failed": failed, "queries": {}}
    queries: dict[str, dict] = {}
    for r in rounds:
        for name, entry in r["queries"].items():
            merged = queries.setdefault(name, {"times": []})
            if "error" in entry:
                merged.pop("times", None)
                merged["error"] = entry["error"]
            elif "times" in merged:
                merged["times"] += entry["times"]
                merged["rows"] = entry["rows"]
    load: dict[str, list[float]] = {}
    for r in rounds:
        for table, seconds in r.get("load", {}).items():
            load.setdefault(table, []).append(seconds)
    return {
        "engine": engine,
        "version": rounds[-1].get("version", "?"),
        "queries": queries,
        "peak_rss": max(r.get("peak_rss", 0) for r in rounds),
        "load": load,
    }


def close(a: object, b: object) -> bool:
    """Equal, with numbers within 1e-9 relative (decimals and floats alike)."""
    numbers = (int, float, decimal.Decimal)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool):
        fa, fb = float(a), float(b)
        return math.isclose(fa, fb, rel_tol=1e-9, abs_tol=1e-9) or (math.isnan(fa) and math.isnan(fb))
    return a == b


def compare(path: pathlib.Path, expected_path: pathlib.Path) -> str | None:
    """None when the results match, else what differs."""
    if not path.exists():
        return "no result"
    got = pq.read_table(path).to_pylist()
    want = pq.read_table(expected_path).to_pylist()
    if len(got) != len(want):
        return f"{len(got)} rows, DuckDB has {len(want)}"
    for i, (g, w) in enumerate(zip(got, want)):
        gv, wv = list(g.values()), list(w.values())
        if len(gv) != len(wv):
            return f"{len(gv)} columns, DuckDB has {len(wv)}"
        for j, (x, y) in enumerate(zip(gv, wv)):
            if not close(x, y):
                return f"row {i + 1} column {j + 1}: {x!r}, DuckDB has {y!r}"
    return None


def geomean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else float("nan")


def cold_start(args: argparse.Namespace, runs: int = 20) -> dict[str, float]:
    """Median whole-process time of `SELECT 42` from a fresh process."""
    commands = {
        "pintail": [str(args.pintail), "-c", "SELECT 42"],
        "duckdb": [sys.executable, "-c", "import duckdb; duckdb.sql('SELECT 42').fetchall()"],
        "datafusion": [sys.executable, "-c", "import datafusion; datafusion.SessionContext().sql('SELECT 42').collect()"],
        "polars": [sys.executable, "-c", "import polars as pl; pl.SQLContext().execute('SELECT 42', eager=True)"],
    }
    medians = {}
    for engine, cmd in commands.items():
        if engine not in args.engines:
            continue
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            times.append(time.perf_counter() - started)
        medians[engine] = statistics.median(times)
    return medians


def insert_latency(args: argparse.Namespace) -> dict[str, dict]:
    """Single-row INSERTs into a new table of each engine's own database
    (`--inserts N` of them), each committed on its own, then batched: the
    same number of rows in one transaction and in one multi-row INSERT."""
    scratch = pathlib.Path(tempfile.mkdtemp(prefix="pintail-inserts-"))
    commands = {
        "pintail": [str(args.pintail_bench), "--insert-latency", str(args.inserts),
                    "--database", str(scratch / "inserts.db")],
        "duckdb": [sys.executable, str(BENCH / "engine.py"), "duckdb", "--insert-latency", str(args.inserts),
                   "--database", str(scratch / "inserts.duckdb")],
    }
    out = {}
    for engine, cmd in commands.items():
        print(f"insert latency: {engine} ({args.inserts} rows)", file=sys.stderr)
        done = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True)
        out[engine] = json.loads(done.stdout)["inserts"]
    shutil.rmtree(scratch, ignore_errors=True)
    return out


def insert_markdown(args: argparse.Namespace, inserts: dict[str, dict]) -> list[str]:
    def ms(seconds: float | None) -> str:
        return "-" if seconds is None else f"{seconds * 1000:.2f}"

    n = args.inserts
    def p99(times: list[float]) -> float:
        return statistics.quantiles(times, n=100, method="inclusive")[98] if len(times) > 1 else times[0]

    rows = [
        ("single-row INSERT, p50", lambda r: statistics.median(r["single"])),
        ("single-row INSERT, p99", lambda r: p99(r["single"])),
        ("single-row INSERT, max", lambda r: max(r["single"])),
        ("single-row INSERT in a transaction, p50", lambda r: statistics.median(r["in_transaction"])),
        ("single-row INSERT in a transaction, p99", lambda r: p99(r["in_transaction"])),
        (f"per row, {n} INSERTs in one transaction", lambda r: r["transaction"] / n),
        ("of which the COMMIT", lambda r: r["commit"]),
        (f"per row, one INSERT of {n} rows", lambda r: r["multirow"] / n),
        (f"scan (count, sum) of the {n} single-row commits", lambda r: r["scan"]),
        ("OPTIMIZE", lambda r: r.get("optimize")),
        ("the scan after OPTIMIZE", lambda r: r.get("scan_optimized")),
    ]
    engines = list(inserts)
    lines = ["", f"Writing rows one at a time: {n} single-row INSERTs into a new table of each engine's "
             "own database, each committed on its own; then the same number of rows batched, in one "
             "transaction and in one multi-row INSERT. Milliseconds:", "",
             "| | " + " | ".join(engines) + " |", "| --- | " + " | ".join("---:" for _ in engines) + " |"]
    for label, value in rows:
        lines.append(f"| {label} | " + " | ".join(ms(value(inserts[e])) for e in engines) + " |")
    return lines


def machine() -> tuple[str, str]:
    """A file-name tag and a description: `2c-24g`, `2 cores, 24 GiB`."""
    cores = os.cpu_count() or 1
    with open("/proc/meminfo") as f:
        kib = int(next(line for line in f if line.startswith("MemTotal")).split()[1])
    gib = round(kib / 2**20)
    return f"{cores}c-{gib}g", f"{cores} cores, {gib} GiB, {platform.machine()}"


def fmt_s(seconds: float) -> str:
    return f"{seconds:.3f}" if seconds < 10 else f"{seconds:.1f}"


def report_markdown(args, reports, mismatches, cold, inserts, desc) -> str:
    engines = [r["engine"] for r in reports]
    lines = [
        f"# TPC-H SF{args.sf:g}, {datetime.date.today()}, {desc}",
        "",
        f"Parquet files queried in place, {args.threads} threads per engine. The engines take turns: "
        f"{args.rounds} rounds of one process per engine, each running every query once to warm up then "
        f"{args.iterations} timed {'run' if args.iterations == 1 else 'runs'}; seconds as the median "
        f"(min-max) of the {args.rounds * args.iterations} timed runs. Versions: "
        + ", ".join(f"{r['engine']} {r.get('version', '?')}" for r in reports)
        + (f". Pintail settings: {', '.join(args.pintail_set)}" if args.pintail_set else "")
        + ".",
        "",
        "| query | " + " | ".join(engines) + " |",
        "| --- | " + " | ".join("---:" for _ in engines) + " |",
    ]
    for q in args.queries:
        cells = []
        for r in reports:
            entry = r["queries"].get(q.stem, {})
            if "times" not in entry:
                cells.append("error" if "error" in entry or "failed" in r else "-")
                continue
            t = entry["times"]
            cell = f"{fmt_s(statistics.median(t))} ({fmt_s(min(t))}-{fmt_s(max(t))})"
            if (r["engine"], q.stem) in mismatches:
                cell += " **wrong answer**"
            cells.append(cell)
        lines.append(f"| {q.stem} | " + " | ".join(cells) + " |")
    means = {r["engine"]: geomean(medians(r)) for r in reports}
    duck = means.get("duckdb")
    lines.append("| **geomean** | " + " | ".join(f"**{fmt_s(means[e])}**" for e in engines) + " |")
    if duck:
        lines.append("| ratio to DuckDB | " + " | ".join(f"{means[e] / duck:.2f}x" for e in engines) + " |")
    lines.append("| peak RSS | " + " | ".join(f"{r.get('peak_rss', 0) / 2**20:.0f} MiB" for r in reports) + " |")
    loaders = [r for r in reports if r.get("load")]
    if loaders:
        lines += ["", "Loading each table into the engine's own database with "
                  "`CREATE TABLE t AS SELECT * FROM 't.parquet'` (Pintail: a Delta Lake table; DuckDB: "
                  "a `.duckdb` file, then `CHECKPOINT`), seconds (median of the rounds):", ""]
        lines += ["| table | " + " | ".join(r["engine"] for r in loaders) + " |",
                  "| --- | " + " | ".join("---:" for _ in loaders) + " |"]
        for t in sorted({t for r in loaders for t in r["load"]}):
            cells = [fmt_s(statistics.median(r["load"][t])) if t in r["load"] else "-" for r in loaders]
            lines.append(f"| {t} | " + " | ".join(cells) + " |")
    if inserts:
        lines += insert_markdown(args, inserts)
    if cold:
        lines += ["", "Cold start, `SELECT 42` in a new process (median of 20):", ""]
        lines += ["| engine | seconds |", "| --- | ---: |"]
        lines += [f"| {e} | {s:.3f} |" for e, s in cold.items()]
    if mismatches:
        lines += ["", "Wrong answers (compared with DuckDB's):", ""]
        lines += [f"- {e} {q}: {why}" for (e, q), why in sorted(mismatches.items())]
    shown, skip = [], False
    for a in sys.argv[1:]:
        # the binaries' paths are bench/run's business, not the reader's
        if skip or a in ("--pintail-bench", "--pintail"):
            skip = not skip
            continue
        shown.append(a)
    lines += ["", "Made by `" + " ".join(["bench/run", *shown]) + "`."]
    return "\n".join(lines) + "\n"


def medians(report: dict) -> list[float]:
    return [statistics.median(e["times"]) for e in report["queries"].values() if "times" in e]


def chart(args, reports, path: pathlib.Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [q.stem for q in args.queries]
    width = 0.8 / max(len(reports), 1)
    fig, ax = plt.subplots(figsize=(14, 5))
    for i, r in enumerate(reports):
        ys = [statistics.median(r["queries"][n]["times"]) if "times" in r["queries"].get(n, {}) else 0 for n in names]
        ax.bar([k + i * width for k in range(len(names))], ys, width, label=r["engine"])
    ax.set_yscale("log")
    ax.set_xticks([k + 0.4 - width / 2 for k in range(len(names))], names)
    ax.set_ylabel("seconds (median, log scale)")
    ax.set_title(title)
    ax.legend(loc="upper left", ncols=len(reports))
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sf", type=float, default=1.0, help="TPC-H scale factor (1, 10, 0.01 ...)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="processes per engine, the engines taking turns; each warms up then times --iterations runs")
    parser.add_argument("--iterations", type=int, default=1, help="timed runs per query in each round, after a warm-up")
    parser.add_argument("--threads", type=int, default=2, help="threads for every engine")
    parser.add_argument("--engines", default=",".join(DEFAULT_ENGINES), help="comma-separated subset of " + ",".join(ENGINES))
    parser.add_argument("--queries", default="", help="comma-separated subset, e.g. q1,q9")
    parser.add_argument("--answers-only", action="store_true", help="one run, no warm-up, no timings: check answers")
    parser.add_argument("--pintail-set", action="append", default=[], metavar="NAME=VALUE",
                        help="a Pintail setting for the run, e.g. memory_limit=2GiB (repeatable)")
    parser.add_argument("--no-cold-start", action="store_true", help="skip the cold start measurement")
    parser.add_argument("--inserts", type=int, default=0, metavar="N",
                        help="also time N single-row INSERTs into each engine's own database (Pintail, DuckDB)")
    parser.add_argument("--cache", type=pathlib.Path, default=pathlib.Path.home() / ".cache" / "pintail")
    parser.add_argument("--pintail-bench", type=pathlib.Path, required=True)
    parser.add_argument("--pintail", type=pathlib.Path, required=True)
    parser.add_argument("--out", type=pathlib.Path, default=BENCH / "results")
    args = parser.parse_args()
    args.engines = [e for e in args.engines.split(",") if e]
    unknown = set(args.engines) - set(ENGINES)
    if unknown:
        parser.error(f"unknown engine(s): {', '.join(sorted(unknown))}")
    wanted = {q for q in args.queries.split(",") if q}
    args.queries = [q for q in QUERIES if not wanted or q.stem in wanted]
    if args.answers_only:
        args.rounds = args.iterations = 1
    if args.rounds < 1 or args.iterations < 1:
        parser.error("--rounds and --iterations must be at least 1")
    if "duckdb" not in args.engines:
        args.engines.append("duckdb")  # the answers are checked against DuckDB's

    data = generate(args.cache, args.sf)
    scratch = pathlib.Path(tempfile.mkdtemp(prefix="pintail-bench-"))
    runs: dict[str, list[dict]] = {engine: [] for engine in args.engines}
    for engine in args.engines:
        (scratch / engine).mkdir()
    # Engines take turns, one process each per round, in a rotating order:
    # this machine drifts by 10-20% over minutes, which a run of one engine
    # after another would charge to whichever ran at a bad time.
    for round_ in range(args.rounds):
        shift = round_ % len(args.engines)
        for engine in args.engines[shift:] + args.engines[:shift]:
            print(f"round {round_ + 1}/{args.rounds}: {engine} (SF{args.sf:g}, {len(args.queries)} queries)", file=sys.stderr)
            runs[engine].append(run_engine(engine, args, data, scratch / engine))
    reports = [merge(engine, runs[engine]) for engine in args.engines]

    reference = next(r for r in reports if r["engine"] == "duckdb")
    if "failed" in reference:
        print(f"{RED}duckdb, whose answers the others are checked against, failed: {reference['failed']}{RESET}",
              file=sys.stderr)
        return 1
    mismatches = {}
    for r in reports:
        if r["engine"] == "duckdb":
            continue
        if "failed" in r:
            mismatches[(r["engine"], "all")] = r["failed"]
            continue
        for q in args.queries:
            entry = r["queries"].get(q.stem, {})
            if "error" in entry:
                mismatches[(r["engine"], q.stem)] = entry["error"]
                continue
            why = compare(scratch / r["engine"] / f"{q.stem}.parquet", scratch / "duckdb" / f"{q.stem}.parquet")
            if why:
                mismatches[(r["engine"], q.stem)] = why
    shutil.rmtree(scratch, ignore_errors=True)

    pintail_wrong = sorted({q for (e, q) in mismatches if e.startswith("pintail")})
    for (engine, q), why in sorted(mismatches.items()):
        print(f"{RED}{engine} {q}: {why}{RESET}", file=sys.stderr)
    if args.answers_only:
        if args.inserts:
            insert_latency(args)  # that it runs; its timings mean nothing here
        ok = len(args.queries) - len(pintail_wrong)
        print(f"answers: Pintail matches DuckDB on {ok} of {len(args.queries)} queries at SF{args.sf:g}")
        return 1 if pintail_wrong else 0

    cold = {} if args.no_cold_start else cold_start(args)
    inserts = insert_latency(args) if args.inserts else {}
    tag, desc = machine()
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"{datetime.date.today()}-{tag}-sf{args.sf:g}"
    text = report_markdown(args, reports, mismatches, cold, inserts, desc)
    (args.out / f"{stem}.md").write_text(text)
    chart(args, reports, args.out / f"{stem}.png", f"TPC-H SF{args.sf:g} on {desc}")
    colored = text.replace("**wrong answer**", f"{RED}wrong answer{RESET}")
    print(colored)
    print(f"wrote {args.out / (stem + '.md')} and .png", file=sys.stderr)
    return 1 if pintail_wrong else 0


if __name__ == "__main__":
    sys.exit(main())
