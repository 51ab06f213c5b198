"""`pintail serve` side by side with PostgreSQL 15 on the same machine and data.

- pgbench with custom scripts, at 1 and 8 clients (`-M prepared`): a point
  query on a small table (`nation`, 25 rows) and TPC-H Q6 over `lineitem`,
  against `pintail serve --pg` (a Pintail database: Delta Lake tables) and
  against a private PostgreSQL 15 cluster holding the same tables. TPS and
  latency p50/p99 from pgbench's per-transaction logs.
- Fetching all of `lineitem` (6M rows at SF1): as Arrow through the ADBC
  Flight SQL driver from `pintail serve --flight`, and as Python tuples
  through psycopg from `pintail serve --pg` and from PostgreSQL.

`bench/serve` sets up the environment and the release build, then calls
this; see bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime
import os
import pathlib
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import adbc_driver_flightsql.dbapi as flight_sql
import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from run import generate, machine

BENCH = pathlib.Path(__file__).resolve().parent
PG_BIN = pathlib.Path("/usr/lib/postgresql/15/bin")

POINT = "\\set id random(0, 24)\nSELECT n_name, n_regionkey FROM nation WHERE n_nationkey = :id;\n"
Q6 = (BENCH / "queries" / "q6.sql").read_text().strip().rstrip(";") + ";\n"
LINEITEM_DDL = """CREATE TABLE lineitem (
    l_orderkey BIGINT, l_partkey BIGINT, l_suppkey BIGINT, l_linenumber INT,
    l_quantity DECIMAL(15, 2), l_extendedprice DECIMAL(15, 2), l_discount DECIMAL(15, 2), l_tax DECIMAL(15, 2),
    l_returnflag VARCHAR, l_linestatus VARCHAR, l_shipdate DATE, l_commitdate DATE, l_receiptdate DATE,
    l_shipinstruct VARCHAR, l_shipmode VARCHAR, l_comment VARCHAR)"""
NATION_DDL = "CREATE TABLE nation (n_nationkey INT PRIMARY KEY, n_name VARCHAR, n_regionkey INT, n_comment VARCHAR)"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(port: int, process: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"{what} exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"{what} did not start listening")


class Postgres:
    """A private PostgreSQL 15 cluster in a temporary directory, trust auth
    on a loopback port (run as the `postgres` user when this runs as root)."""

    def __init__(self, scratch: pathlib.Path) -> None:
        self.data = scratch / "pgdata"
        self.port = free_port()
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        scratch.chmod(0o777)
        subprocess.run([*self.as_user, str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "bench"], check=True, capture_output=True)
        options = f"-p {self.port} -k {scratch} -c listen_addresses=127.0.0.1 -c shared_buffers=4GB -c max_connections=50"
        subprocess.run([*self.as_user, str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(scratch / "pg.log"), "-w", "start"], check=True, capture_output=True)

    @property
    def dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user=bench dbname=postgres"

    def stop(self) -> None:
        subprocess.run([*self.as_user, str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "stop"], check=False, capture_output=True)


def load_postgres(pg: Postgres, data: pathlib.Path, scratch: pathlib.Path) -> float:
    """Loads nation and lineitem with COPY; returns the seconds it took."""
    started = time.monotonic()
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        for table, ddl in (("nation", NATION_DDL), ("lineitem", LINEITEM_DDL)):
            csv = scratch / f"{table}.csv"
            rows = pq.read_table(data / f"{table}.parquet")
            # tpchgen writes text as Utf8View, which the CSV writer does not take
            rows = rows.cast(pa.schema([f.with_type(pa.string()) if f.type == pa.string_view() else f for f in rows.schema]))
            pacsv.write_csv(rows, csv, pacsv.WriteOptions(include_header=False))
            csv.chmod(0o644)
            conn.execute(ddl)
            conn.execute(f"COPY {table} FROM '{csv}' (FORMAT csv)")
            csv.unlink()
        conn.execute("VACUUM ANALYZE")
    return time.monotonic() - started


def load_pintail(pintail: str, database: pathlib.Path, data: pathlib.Path) -> float:
    started = time.monotonic()
    script = [f"CREATE TABLE {t} AS SELECT * FROM '{data}/{t}.parquet'" for t in ("nation", "lineitem")]
    subprocess.run([pintail, str(database), *[a for s in script for a in ("-c", s)]], check=True, capture_output=True)
    return time.monotonic() - started


def pgbench(port: int, user: str, script: str, clients: int, seconds: int, scratch: pathlib.Path) -> dict:
    """One pgbench run of `script`; TPS and latency percentiles (ms)."""
    logs = scratch / f"pgbench-{clients}-{time.monotonic_ns()}"
    logs.mkdir()
    path = logs / "script.sql"
    path.write_text(script)
    out = subprocess.run(
        ["pgbench", "-n", "-h", "127.0.0.1", "-p", str(port), "-U", user, "-M", "prepared", "-c", str(clients), "-j", str(clients),
         "-T", str(seconds), "-f", str(path), "-l", "--log-prefix", str(logs / "tx"), "postgres"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if out.returncode != 0:
        sys.exit(f"pgbench failed on port {port}:\n{out.stdout}\n{out.stderr}")
    tps = float(re.search(r"tps = ([0-9.]+)", out.stdout).group(1))
    # each client runs one transaction at a time, so the time between two
    # of its completions is one transaction's latency (pgbench 15 logs 0
    # in its own latency column for sub-millisecond transactions)
    finished: dict[str, list[int]] = {}
    for log in logs.glob("tx*"):
        for line in log.read_text().splitlines():
            client, _, _, _, epoch, micros = line.split()[:6]
            finished.setdefault(f"{log.name}:{client}", []).append(int(epoch) * 1_000_000 + int(micros))
    latencies = sorted((b - a) / 1000 for ends in finished.values() for a, b in zip(sorted(ends), sorted(ends)[1:], strict=False))
    shutil.rmtree(logs)
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]  # noqa: E731
    return {"tps": tps, "p50": pick(0.50), "p99": pick(0.99), "n": len(latencies)}


def timed(fetch, rounds: int) -> tuple[float, int]:
    """The median seconds of `rounds` runs of `fetch`, and the rows it got."""
    times, rows = [], 0
    for _ in range(rounds):
        started = time.monotonic()
        rows = fetch()
        times.append(time.monotonic() - started)
    return statistics.median(times), rows


def fetch_adbc(uri: str) -> int:
    with flight_sql.connect(uri, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("SELECT * FROM lineitem")
        return cur.fetch_arrow_table().num_rows


def fetch_psycopg(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return len(conn.execute("SELECT * FROM lineitem").fetchall())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pintail", required=True, help="the pintail binary")
    parser.add_argument("--sf", type=float, default=1)
    parser.add_argument("--seconds", type=int, default=20, help="length of each pgbench run")
    parser.add_argument("--clients", default="1,8")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each lineitem fetch (median)")
    parser.add_argument("--threads", type=int, default=2, help="Pintail's threads per query")
    args = parser.parse_args()
    cache = pathlib.Path(os.environ.get("PINTAIL_CACHE", pathlib.Path.home() / ".cache" / "pintail"))
    data = generate(cache, args.sf)
    clients = [int(c) for c in args.clients.split(",")]
    scratch = pathlib.Path(tempfile.mkdtemp(prefix="pintail-serve-bench-"))
    pg = Postgres(scratch)
    server = None
    try:
        print(f"loading SF{args.sf:g} into PostgreSQL and Pintail", file=sys.stderr)
        loads = {"postgres": load_postgres(pg, data, scratch), "pintail": load_pintail(args.pintail, scratch / "pintail.db", data)}
        pg_port, flight_port = free_port(), free_port()
        server = subprocess.Popen(
            [args.pintail, "serve", str(scratch / "pintail.db"), "--pg", f"127.0.0.1:{pg_port}", "--flight", f"127.0.0.1:{flight_port}",
             "--threads", str(args.threads), "--max-connections", "50"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for(flight_port, server, "pintail serve")
        wait_for(pg_port, server, "pintail serve")
        targets = {"pintail": (pg_port, "bench"), "postgres": (pg.port, "bench")}
        runs: dict[tuple[str, str, int], dict] = {}
        for name, script in (("point query on nation", POINT), ("TPC-H Q6", Q6)):
            for c in clients:
                # the two servers take turns, so drift hits both alike
                for target, (port, user) in targets.items():
                    print(f"pgbench {name}, {c} client(s), {target}", file=sys.stderr)
                    runs[(name, target, c)] = pgbench(port, user, script, c, args.seconds, scratch)
        print("fetching lineitem", file=sys.stderr)
        pintail_dsn = f"host=127.0.0.1 port={pg_port} user=bench dbname=pintail"
        fetches = {
            "Pintail, Flight SQL (ADBC, Arrow)": timed(lambda: fetch_adbc(f"grpc://127.0.0.1:{flight_port}"), args.rounds),
            "Pintail, Postgres wire (psycopg, tuples)": timed(lambda: fetch_psycopg(pintail_dsn), args.rounds),
            "PostgreSQL 15 (psycopg, tuples)": timed(lambda: fetch_psycopg(pg.dsn), args.rounds),
        }
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=60)
        pg.stop()
        shutil.rmtree(scratch, ignore_errors=True)

    tag, desc = machine()
    today = datetime.date.today().isoformat()
    lines = [
        f"# pintail serve and PostgreSQL 15, SF{args.sf:g}, {today}",
        "",
        f"Machine: {desc}. Pintail with {args.threads} threads per query; PostgreSQL 15 (Debian) with",
        "shared_buffers=4GB and its other defaults (2 parallel workers per query, JIT on).",
        f"pgbench `-M prepared -T {args.seconds}`, one run per cell, the servers taking turns.",
        f"Loading: PostgreSQL COPY + VACUUM ANALYZE {loads['postgres']:.1f} s; Pintail CREATE TABLE AS {loads['pintail']:.1f} s.",
        "",
        "| script | clients | server | TPS | p50 ms | p99 ms |",
        "| --- | ---: | --- | ---: | ---: | ---: |",
    ]
    for (name, target, c), r in runs.items():
        lines.append(f"| {name} | {c} | {target} | {r['tps']:.1f} | {r['p50']:.2f} | {r['p99']:.2f} |")
    lines += ["", f"Fetching all of lineitem (median of {args.rounds}):", "", "| client | rows | seconds |", "| --- | ---: | ---: |"]
    for name, (seconds, rows) in fetches.items():
        lines.append(f"| {name} | {rows:,} | {seconds:.2f} |")
    report = "\n".join(lines) + "\n"
    out = BENCH / "results" / f"{today}-{tag}-serve-sf{args.sf:g}.md"
    out.write_text(report)
    print(report)
    print(f"written to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
