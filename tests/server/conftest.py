"""Starts `pintail serve` (the binary scripts/test built) for the server tests."""

from __future__ import annotations

import pathlib
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from pintail_binary import ROOT, binary


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    port: int
    process: subprocess.Popen[str]
    log: pathlib.Path

    @property
    def dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user=tester dbname=pintail"

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


def start(args: list[str], tmp: pathlib.Path) -> Server:
    port = free_port()
    log = tmp / "server.log"
    with log.open("w") as err:
        process = subprocess.Popen(
            [binary(), "serve", *args, "--pg", f"127.0.0.1:{port}"],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=err,
            text=True,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"pintail serve exited with {process.returncode}: {log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return Server(port, process, log)
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
