"""Drives the `pintail` REPL through a pseudo-terminal with pexpect.

reedline asks the terminal where the cursor is (`ESC[6n`) before drawing
each prompt; `Repl.expect` answers those queries as a terminal would.
"""

import os
import pathlib

import pexpect
import pytest
from pintail_binary import ROOT, binary

PROMPT = "pintail> "
DSR = r"\x1b\[6n"


class Repl:
    def __init__(self, history: pathlib.Path):
        env = dict(os.environ, NO_COLOR="1", TERM="xterm", PINTAIL_HISTORY=str(history))
        self.child = pexpect.spawn(
            binary(), cwd=str(ROOT), env=env, encoding="utf-8", timeout=20, dimensions=(40, 160)
        )

    def expect(self, pattern: str) -> str:
        """Waits for `pattern` (a regex), answering cursor queries meanwhile."""
        while True:
            i = self.child.expect([DSR, pattern])
            if i == 0:
                self.child.send("\x1b[1;1R")
            else:
                return self.child.before + self.child.after

    def prompt(self) -> str:
        """Waits for a new prompt: reedline asks for the cursor first."""
        self.child.expect(DSR)
        self.child.send("\x1b[1;1R")
        return self.expect(PROMPT)

    def line(self, text: str) -> None:
        self.child.send(text + "\r")

    def run(self, sql: str, result: str) -> str:
        """Enters `sql`, waits for `result` (a regex) and the next prompt."""
        self.line(sql)
        out = self.expect(result)
        self.prompt()
        return out

    def close(self) -> int:
        self.child.sendcontrol("d")
        self.child.expect(pexpect.EOF)
        self.child.close()
        return self.child.exitstatus


@pytest.fixture
def history(tmp_path: pathlib.Path) -> pathlib.Path:
    return tmp_path / "history"


@pytest.fixture
def repl(history: pathlib.Path):
    r = Repl(history)
    r.prompt()
    yield r
    if r.child.isalive():
        r.child.terminate(force=True)
