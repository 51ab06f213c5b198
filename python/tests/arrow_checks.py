"""Checks on Arrow data shared by the tests."""

from __future__ import annotations

import pyarrow as pa


def assert_shares_buffer(out: pa.ChunkedArray, source: pa.ChunkedArray) -> None:
    """Every chunk of ``out`` points into the values buffer of ``source``."""
    buffer = source.chunk(0).buffers()[1]
    assert out.num_chunks > 0
    for chunk in out.chunks:
        assert buffer.address <= chunk.buffers()[1].address < buffer.address + buffer.size
