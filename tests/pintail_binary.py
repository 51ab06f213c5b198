"""The `pintail` binary scripts/test built, for the Python-driven test suites
(tests/repl, tests/interop, tests/server; their pytest.ini puts tests/ on
the path)."""

import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def binary() -> str:
    target = os.environ.get("CARGO_TARGET_DIR", str(ROOT / "target"))
    path = pathlib.Path(target) / "debug" / "pintail"
    if not path.exists():
        pytest.fail(f"build pintail first: {path} is missing")
    return str(path)
