"""TPC-H data for the Python-driven test suites (tests/server, tests/mcp)."""

import os
import pathlib
import shutil
import subprocess
import sys


def tpch(sf: float = 0.01) -> pathlib.Path:
    """TPC-H Parquet files (tpchgen-cli), made once where bench/run keeps them."""
    cache = pathlib.Path(os.environ.get("PINTAIL_CACHE", pathlib.Path.home() / ".cache" / "pintail"))
    out = cache / "tpch" / f"sf{sf:g}"
    if not (out / ".done").exists():
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        tpchgen = shutil.which("tpchgen-cli", path=str(pathlib.Path(sys.executable).parent)) or "tpchgen-cli"
        subprocess.run([tpchgen, "parquet", "-s", f"{sf:g}", "--output-dir", str(out)], check=True, timeout=600)
        (out / ".done").touch()
    return out
