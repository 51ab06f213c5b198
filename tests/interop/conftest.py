"""Runs the `pintail` binary that scripts/test built, for the interop tests."""

import json
import os
import pathlib
import subprocess

from pintail_binary import ROOT, binary


def pintail(db: pathlib.Path, *sql: str) -> list[dict]:
    """Runs each statement in the database `db`; returns the last one's rows (JSON mode)."""
    args = [binary(), str(db), "-m", "json"]
    for s in sql:
        args += ["-c", s]
    out = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, env=dict(os.environ, NO_COLOR="1"))
    assert out.returncode == 0, out.stderr
    text = out.stdout.strip()
    if not text:
        return []
    # each statement with rows prints one JSON array; keep the last
    decoder = json.JSONDecoder()
    rows, i = [], 0
    while i < len(text):
        value, end = decoder.raw_decode(text, i)
        rows = value
        i = end
        while i < len(text) and text[i].isspace():
            i += 1
    return rows


def pintail_fails(db: pathlib.Path, sql: str) -> str:
    """Runs `sql` in the database `db`, which must fail; returns its error output."""
    out = subprocess.run([binary(), str(db), "-c", sql], cwd=ROOT, capture_output=True, text=True,
                         env=dict(os.environ, NO_COLOR="1"))
    assert out.returncode != 0, out.stdout
    return out.stderr
