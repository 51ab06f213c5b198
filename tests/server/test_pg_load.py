"""`pintail serve` under load and abuse: TPC-H through psycopg equal to the
in-process answers, 100 clients at once with every answer checked, and
bursts of malformed or truncated protocol messages that it answers with
errors while it keeps serving."""

from __future__ import annotations

import concurrent.futures
import decimal
import math
import pathlib
import random
import struct
import subprocess

import psycopg
import pyarrow.parquet as pq
import pytest
from conftest import ROOT, Server, binary, exchange, kinds, message, serving, startup
from tpch_data import tpch

QUERIES = ROOT / "bench" / "queries"
TABLES = ["customer", "lineitem", "nation", "orders", "part", "partsupp", "region", "supplier"]


def close(a: object, b: object) -> bool:
    """Equal, with numbers within 1e-9 relative (decimals and floats alike)."""
    numbers = (int, float, decimal.Decimal)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)
    return a == b


def test_tpch_through_psycopg_equals_the_in_process_answers(tmp_path: pathlib.Path) -> None:
    data = tpch()
    database = tmp_path / "tpch.db"
    views = [f"CREATE VIEW {t} AS SELECT * FROM '{data}/{t}.parquet'" for t in TABLES]
    # the in-process answers: the CLI writes each result to Parquet, typed
    answers = tmp_path / "answers"
    answers.mkdir()
    script = [*views]
    queries = sorted(QUERIES.glob("q*.sql"), key=lambda q: int(q.stem[1:]))
    assert len(queries) == 22
    for q in queries:
        script.append(f"COPY ({q.read_text().strip().rstrip(';')}) TO '{answers / q.stem}.parquet'")
    out = subprocess.run([binary(), str(database), *[a for s in script for a in ("-c", s)]], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    with serving([str(database)], tmp_path) as server, psycopg.connect(server.dsn, autocommit=True) as conn:
        for q in queries:
            want = [tuple(row.values()) for row in pq.read_table(answers / f"{q.stem}.parquet").to_pylist()]
            got = conn.execute(q.read_text()).fetchall()
            assert len(got) == len(want), f"{q.stem}: {len(got)} rows, in process {len(want)}"
            for i, (g, w) in enumerate(zip(got, want, strict=True)):
                assert len(g) == len(w) and all(close(x, y) for x, y in zip(g, w, strict=True)), f"{q.stem} row {i + 1}: {g} != {w}"


def test_a_hundred_clients_at_once_each_get_their_own_answers(server: Server) -> None:
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE nums AS SELECT value AS n FROM range(1000)")

    def client(k: int) -> int:
        checked = 0
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            for i in range(50):
                limit = (k * 50 + i) % 1000
                # prepared, typed parameters, a table and a computation per client
                row = conn.execute("SELECT count(*), coalesce(sum(n), 0), %s::BIGINT * 3 FROM nums WHERE n < %s", [k, limit]).fetchone()
                assert row == (limit, limit * (limit - 1) // 2, k * 3), (k, i, row)
                checked += 1
        return checked

    with concurrent.futures.ThreadPoolExecutor(max_workers=100) as pool:
        done = list(pool.map(client, range(100)))
    assert done == [50] * 100
    queries = [line for line in server.log_lines() if line.startswith("event=query ") and "FROM nums" in line]
    assert len(queries) == 5000
    assert not any(" error=" in line for line in queries)


def test_malformed_and_truncated_messages_get_errors_and_the_server_keeps_serving(server: Server) -> None:
    rng = random.Random(7)
    ready = startup()
    payloads = {
        "random bytes": bytes(rng.randrange(256) for _ in range(200)),
        "a startup cut short": ready[:7],
        "a startup claiming 1 GiB": struct.pack("!ii", 1 << 30, 196608),
        "a startup of a length below its header": struct.pack("!ii", 4, 196608),
        "an unknown protocol version": struct.pack("!ii", 8, 0x00090009),
        "a query cut short": ready + message(b"Q", b"SELECT 1\0")[:8],
        "a query of invalid UTF-8": ready + message(b"Q", b"SELECT '\xff\xfe'\0"),
        "a query without its terminator": ready + message(b"Q", b"SELECT 1"),
        "an unknown message type": ready + message(b"\x01", b"junk"),
        "a parse with a negative parameter count": ready + message(b"P", b"\0SELECT $1\0" + struct.pack("!h", -5)),
        "a bind to no statement": ready + message(b"B", b"\0nope\0" + struct.pack("!hhh", 0, 0, 0)) + message(b"S", b""),
        "an execute of no portal": ready + message(b"E", b"nope\0" + struct.pack("!i", 0)) + message(b"S", b""),
        "a password message before startup": message(b"p", b"secret\0"),
        "random messages after startup": ready + b"".join(message(bytes([rng.randrange(65, 91)]), bytes(rng.randrange(256) for _ in range(rng.randrange(30)))) for _ in range(20)),
    }
    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        # each kind of abuse, several times over, all at once
        answers = dict(zip(list(payloads) * 4, pool.map(lambda p: exchange(server.port, p), list(payloads.values()) * 4), strict=True))
    # every connection ended (the exchange read to the server's close); a
    # well-framed message that makes no sense is answered with an error,
    # one that cannot be framed ends the connection, as in Postgres (which
    # also says why: pgwire closes without a word). A query of invalid
    # UTF-8 is read with U+FFFD by pgwire, where Postgres refuses it (22021).
    for name in ["a bind to no statement", "an execute of no portal"]:
        assert b"E" in kinds(answers[name]), (name, answers[name][:200])
    # and after all that, the server still answers real clients
    assert server.process.poll() is None
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        assert conn.execute("SELECT 'still here'").fetchone() == ("still here",)
