"""Starts `pintail mcp` (the binary scripts/test built) and talks to it with
the official MCP Python SDK, over stdio or streamable HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pathlib
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client
from pintail_binary import ROOT, binary

TOKEN = "test-token-0123456789abcdef"


@pytest.fixture
def workdir(tmp_path: pathlib.Path) -> pathlib.Path:
    """A directory with the example data under data/ and a database
    shop.db holding a table of cars and a view, where the server runs."""
    shutil.copytree(ROOT / "examples" / "data", tmp_path / "data", ignore=shutil.ignore_patterns("*.py", "weather"))
    script = [
        "CREATE TABLE cars AS SELECT * FROM 'data/cars.parquet'",
        "CREATE VIEW heavy AS SELECT name, weight_in_lbs FROM cars WHERE weight_in_lbs > 4000",
    ]
    out = subprocess.run(
        [binary(), "shop.db", *[a for s in script for a in ("-c", s)]], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    return tmp_path


@contextlib.asynccontextmanager
async def stdio(cwd: pathlib.Path, *args: str) -> AsyncIterator[ClientSession]:
    """An initialized MCP client session with `pintail mcp ARGS` over stdio."""
    params = StdioServerParameters(command=binary(), args=["mcp", *args], cwd=str(cwd), env={**os.environ})
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def http_server(cwd: pathlib.Path, *args: str) -> Iterator[str]:
    """`pintail mcp ARGS --http` with the bearer token TOKEN; yields its URL."""
    port = free_port()
    log = open(cwd / "mcp.log", "w")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(
        [binary(), "mcp", *args, "--http", f"127.0.0.1:{port}"],
        cwd=cwd,
        env={**os.environ, "PINTAIL_MCP_TOKEN": TOKEN},
        stdout=log,
        stderr=log,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        deadline = time.monotonic() + 60
        while "event=listening" not in (cwd / "mcp.log").read_text():
            assert process.poll() is None, (cwd / "mcp.log").read_text()
            assert time.monotonic() < deadline, "pintail mcp --http did not start"
            time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


@contextlib.asynccontextmanager
async def http(url: str, token: str = TOKEN) -> AsyncIterator[ClientSession]:
    """An initialized MCP client session over streamable HTTP."""
    async with (
        create_mcp_http_client(headers={"Authorization": f"Bearer {token}"}) as client,
        streamable_http_client(url, http_client=client) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


async def call(session: ClientSession, tool: str, **arguments: Any) -> str:
    """The text `tool` replies with; fails if the call is an error."""
    result = await session.call_tool(tool, arguments)
    text = "".join(c.text for c in result.content if c.type == "text")
    assert not result.is_error, f"{tool}({arguments}) failed: {text}"
    return text


async def refused(session: ClientSession, tool: str, **arguments: Any) -> str:
    """The error text `tool` replies with; fails if the call succeeds."""
    result = await session.call_tool(tool, arguments)
    text = "".join(c.text for c in result.content if c.type == "text")
    assert result.is_error, f"{tool}({arguments}) was not refused: {text}"
    return text


def run(body: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(body())


def post(url: str, body: dict[str, Any], headers: dict[str, str]) -> int:
    """The HTTP status of POSTing `body` as JSON."""
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code
