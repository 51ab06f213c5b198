"""Ctrl-C raises KeyboardInterrupt in the thread running a query and cancels it."""

from __future__ import annotations

import _thread
import os
import sys
import threading

import pytest

import pintail


# the interrupt goes to the main thread: run once, not in pytest-run-parallel's threads
@pytest.mark.thread_unsafe
def test_keyboard_interrupt_cancels_a_running_query() -> None:
    # if the interrupt were not seen, the query would run for hours: fail
    # the whole run rather than hang it
    def watchdog() -> None:
        if not done.wait(300):
            sys.stderr.write("the query was not cancelled by KeyboardInterrupt\n")
            os._exit(3)

    done = threading.Event()
    threading.Thread(target=watchdog, daemon=True).start()
    timer = threading.Timer(0.5, _thread.interrupt_main)
    timer.start()
    with pintail.connect() as con:
        rel = con.sql("SELECT count(*) FROM range(1000000000000) AS t(v) WHERE v % 7 = 3")
        assert rel is not None
        with pytest.raises(KeyboardInterrupt):
            rel.fetchall()
        done.set()
        # the connection is still usable
        assert con.sql("SELECT 1").fetchall() == [(1,)]
