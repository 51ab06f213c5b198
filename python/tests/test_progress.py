"""The progress line a long query shows on stderr."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pyarrow as pa
import pytest

import pintail


def slow_reader(batches: int = 6, pause: float = 0.3) -> pa.RecordBatchReader:
    """A reader that takes ``batches * pause`` seconds: longer than the
    second a query runs before its progress shows."""
    schema = pa.schema([("x", pa.int64())])

    def produce() -> Iterator[pa.RecordBatch]:
        for i in range(batches):
            time.sleep(pause)
            yield pa.record_batch([pa.array([i] * 1000, pa.int64())], schema=schema)

    return pa.RecordBatchReader.from_batches(schema, produce())


def test_a_long_query_shows_its_progress_and_clears_it(capsys: pytest.CaptureFixture[str]) -> None:
    with pintail.connect(config={"progress_bar": True}) as con:
        slow = slow_reader()  # noqa: F841 - read by name in the query
        assert con.sql("SELECT count(*) FROM slow").fetchall() == [(6000,)]
    err = capsys.readouterr().err
    assert " rows · " in err
    assert " s" in err
    # the line is drawn over itself and wiped at the end
    assert err.startswith("\r")
    assert err.endswith("\r")
    assert err.rstrip("\r").split("\r")[-1].strip() == ""


def test_progress_can_be_turned_off(capsys: pytest.CaptureFixture[str]) -> None:
    with pintail.connect(config={"progress_bar": False}) as con:
        slow = slow_reader()  # noqa: F841 - read by name in the query
        assert con.execute("SELECT count(*) FROM slow").fetchall() == [(6000,)]
    assert capsys.readouterr().err == ""
    with pytest.raises(pintail.InvalidOptionError, match="progress_bar"):
        pintail.connect(config={"progress_bar": "sometimes"})
