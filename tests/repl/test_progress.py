"""The progress line on stderr for queries running longer than a second."""

import os
import re
import subprocess

import pexpect

from conftest import ROOT, binary

# about 4 s here (the line shows from the start with --progress-after 0):
# every weather row against two million numbers
SLOW = (
    "SELECT count(*) AS n FROM 'examples/data/weather.csv' a, range(2000000) r "
    "WHERE a.temp_max > r.value / 100000.0"
)
PROGRESS = r"[\d,]+ rows · [\d.]+ (bytes|KiB) · \d+\.\d s"


def test_slow_query_shows_progress_on_a_terminal_then_clears_it() -> None:
    env = dict(os.environ, NO_COLOR="1", TERM="xterm")
    env.pop("PINTAIL_NO_PROGRESS", None)
    child = pexpect.spawn(
        binary(), ["--progress-after", "0", "-c", SLOW], cwd=str(ROOT), env=env, encoding="utf-8", timeout=60, dimensions=(40, 160)
    )
    child.expect(PROGRESS)
    # the weather file was read (its bytes counted) and rows are counting up
    seen = child.after
    child.expect("2155410000")
    before_table = child.before
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert re.search(r"[1-9][\d,]* rows · [\d.]+ KiB", seen + before_table), seen + before_table
    # the line is erased before the table is drawn
    last_line = before_table.rfind("rows ·")
    assert "\x1b[2K" in before_table[last_line:], repr(before_table[last_line:])


def test_no_progress_when_stderr_is_not_a_terminal() -> None:
    out = subprocess.run(
        [binary(), "-m", "csv", "-c", SLOW], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout == "n\n2155410000\n"
    assert out.stderr == ""
