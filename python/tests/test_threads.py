"""Many threads at once, on one connection and on one each: right answers, no crash, no deadlock."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pyarrow as pa

import pintail

THREADS = 16
QUERIES = 100


def run_in_threads(work: Callable[[int], None]) -> None:
    errors: list[BaseException] = []

    def guarded(i: int) -> None:
        try:
            work(i)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=guarded, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def check_queries(con: pintail.Connection, i: int) -> None:
    for q in range(QUERIES):
        n = i * QUERIES + q
        rel = con.sql(f"SELECT count(*) AS c, sum(x) AS s FROM numbers WHERE x < {n}")
        assert rel is not None
        assert rel.fetchall() == [(n, n * (n - 1) // 2 if n else None)]


def numbers() -> pa.Table:
    return pa.table({"x": pa.array(range(THREADS * QUERIES), pa.int64())})


def test_threads_share_one_connection() -> None:
    with pintail.connect() as con:
        con.register("numbers", numbers())
        run_in_threads(lambda i: check_queries(con, i))


def test_threads_each_with_a_connection() -> None:
    data = numbers()

    def work(i: int) -> None:
        with pintail.connect(config={"threads": 1}) as con:
            con.register("numbers", data)
            check_queries(con, i)

    run_in_threads(work)


def test_threads_write_one_database(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pintail.connect(tmp_path / "db") as con:
        con.sql("CREATE TABLE t (writer INT, n INT)")

        def work(i: int) -> None:
            for n in range(5):
                con.sql(f"INSERT INTO t VALUES ({i}, {n})")

        run_in_threads(work)
        assert con.sql("SELECT count(*), count(DISTINCT writer) FROM t").fetchall() == [(THREADS * 5, THREADS)]
