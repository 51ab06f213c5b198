"""Shared fixtures: a fresh in-memory connection per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import pintail


@pytest.fixture
def con() -> Iterator[pintail.Connection]:
    with pintail.connect() as c:
        yield c
