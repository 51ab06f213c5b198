"""Starts `pintail serve` (the binary scripts/test built) for the server tests."""

from __future__ import annotations

import contextlib
import pathlib
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from pintail_binary import ROOT, binary


# 10^12 rows to scan: about an hour of work here (3 * 10^8 rows/s); the
# scan yields between batches, so a cancel stops it at once
ENDLESS = "SELECT max(value) FROM range(1000000000000)"
# 10^12 pairs in a cross join, whose operator (DataFusion 55's nested loop
# join) holds its threads for seconds without yielding
HOG = "SELECT sum(a.value * b.value) FROM range(1000000) a, range(1000000) b"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    port: int
    process: subprocess.Popen[str]
    log: pathlib.Path
    host: str = "127.0.0.1"
    flight_port: int | None = None

    @property
    def flight_uri(self) -> str:
        """The Flight SQL server's address, for ADBC."""
        assert self.flight_port is not None, "started without --flight"
        return f"grpc://{self.host}:{self.flight_port}"

    @property
    def dsn(self) -> str:
        return f"host={self.host} port={self.port} user=tester dbname=pintail"

    def log_lines(self) -> list[str]:
        return self.log.read_text().splitlines()


def psql(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    """Debian's psql against `server`, stopping at the first error."""
    return subprocess.run(
        ["psql", "-X", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(server.port), "-U", "tester", "db", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def start(
    args: list[str],
    tmp: pathlib.Path,
    *,
    listen: str = "127.0.0.1",
    connect: str = "127.0.0.1",
    env: dict[str, str] | None = None,
    flight: bool = False,
) -> Server:
    """`pintail serve ARGS` listening on `listen` at a free port (and, with
    `flight`, Flight SQL at another), once a client can connect to it at
    `connect`."""
    port = free_port()
    flight_port = free_port() if flight else None
    listeners = ["--pg", f"{listen}:{port}"] + (["--flight", f"{listen}:{flight_port}"] if flight else [])
    log = tmp / "server.log"
    with log.open("w") as err:
        process = subprocess.Popen(
            [binary(), "serve", *args, *listeners],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=err,
            text=True,
            env=env,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"pintail serve exited with {process.returncode}: {log.read_text()}")
        try:
            for p in [port] + ([flight_port] if flight_port else []):
                socket.create_connection((connect, p), timeout=0.2).close()
            return Server(port, process, log, connect, flight_port)
        except OSError:
            time.sleep(0.05)
    process.kill()
    pytest.fail("pintail serve did not start listening within 30 s")


@pytest.fixture
def server(tmp_path: pathlib.Path) -> Iterator[Server]:
    """A server on a fresh database."""
    s = start([str(tmp_path / "db")], tmp_path)
    yield s
    s.process.terminate()
    assert s.process.wait(timeout=30) == 0, s.log.read_text()


@contextlib.contextmanager
def serving(args: list[str], tmp: pathlib.Path, **how: Any) -> Iterator[Server]:
    """A server started as `start` does, stopped (and checked to exit 0) at the end."""
    s = start(args, tmp, **how)
    try:
        yield s
    finally:
        s.process.terminate()
        assert s.process.wait(timeout=30) == 0, s.log.read_text()


@dataclass
class Background:
    """A statement running on a thread of its own, and what it raised."""

    thread: threading.Thread
    failures: list[psycopg.Error]

    def join(self) -> list[psycopg.Error]:
        self.thread.join(timeout=120)
        assert not self.thread.is_alive(), "the statement is still running"
        return self.failures


def in_background(conn: psycopg.Connection, sql: str) -> Background:
    """Starts `sql` on `conn` in a thread (the caller cancels or stops it)."""
    failures: list[psycopg.Error] = []

    def run() -> None:
        try:
            conn.execute(sql)
        except psycopg.Error as e:
            failures.append(e)

    thread = threading.Thread(target=run)
    thread.start()
    return Background(thread, failures)


# Raw protocol messages, for clients no driver would be


def startup(user: str = "tester", database: str = "db") -> bytes:
    body = struct.pack("!i", 196608) + f"user\0{user}\0database\0{database}\0\0".encode()
    return struct.pack("!i", len(body) + 4) + body


def message(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("!i", len(body) + 4) + body


def exchange(port: int, payload: bytes) -> bytes:
    """Sends `payload`, half-closes, and reads what the server answers until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def kinds(data: bytes) -> list[bytes]:
    """The types of the backend messages in `data`."""
    out, i = [], 0
    while i + 5 <= len(data):
        (length,) = struct.unpack("!i", data[i + 1 : i + 5])
        out.append(data[i : i + 1])
        i += 1 + length
    return out
