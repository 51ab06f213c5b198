"""Pintail: an in-process analytical SQL engine.

Query Parquet, CSV and JSON files where they live, keep durable Delta Lake
tables in a database directory, and get results as PyArrow, pandas or
Polars without copies. Queries run without the GIL, so threads run them in
parallel.

Example:
    >>> import pintail
    >>> pintail.sql("SELECT 42 AS answer").fetchall()
    [(42,)]
"""

from __future__ import annotations

import datetime
import os
import threading
import time
from collections.abc import Sequence
from typing import Any

from pintail._pintail import (
    CatalogError,
    ConflictError,
    Connection,
    ConversionError,
    Cursor,
    DatabaseError,
    DataError,
    Error,
    ExecutionError,
    IntegrityError,
    InterfaceError,
    InternalError,
    InvalidOptionError,
    IOError,  # noqa: A004 - Pintail's, under OperationalError
    NotSupportedError,
    OperationalError,
    OutOfMemoryError,
    ParserError,
    ProgrammingError,
    Relation,
    Warning,  # noqa: A004 - PEP 249's name
    __version__,
)

__all__ = [
    "BINARY",
    "DATETIME",
    "NUMBER",
    "ROWID",
    "STRING",
    "Binary",
    "CatalogError",
    "ConflictError",
    "Connection",
    "ConversionError",
    "Cursor",
    "DataError",
    "DatabaseError",
    "Date",
    "DateFromTicks",
    "Error",
    "ExecutionError",
    "IOError",
    "IntegrityError",
    "InterfaceError",
    "InternalError",
    "InvalidOptionError",
    "NotSupportedError",
    "OperationalError",
    "OutOfMemoryError",
    "ParserError",
    "ProgrammingError",
    "Relation",
    "Time",
    "TimeFromTicks",
    "Timestamp",
    "TimestampFromTicks",
    "Warning",
    "__version__",
    "apilevel",
    "connect",
    "default_connection",
    "paramstyle",
    "sql",
    "threadsafety",
]

# DB-API 2.0 (PEP 249) module globals
apilevel = "2.0"
"""The DB-API version Pintail follows."""
threadsafety = 2
"""Threads may share the module and connections (each query runs without the GIL)."""
paramstyle = "qmark"
"""Parameters are written ``?`` (``$1``, ``$2``, ... work too)."""


class _TypeObject:
    """A PEP 249 type object: equal to each SQL type name of its group."""

    def __init__(self, name: str, *prefixes: str) -> None:
        self._name = name
        self._prefixes = prefixes

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and other.upper().startswith(self._prefixes)

    def __hash__(self) -> int:
        return hash(self._name)

    def __repr__(self) -> str:
        return f"pintail.{self._name}"


STRING = _TypeObject("STRING", "VARCHAR", "TEXT", "STRING", "JSON", "UUID")
BINARY = _TypeObject("BINARY", "BLOB", "BYTEA", "BINARY", "VARBINARY")
NUMBER = _TypeObject(
    "NUMBER", "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT",
    "HUGEINT", "HALFFLOAT", "FLOAT", "DOUBLE", "REAL", "DECIMAL", "BOOLEAN",
)  # fmt: skip
DATETIME = _TypeObject("DATETIME", "DATE", "TIME", "TIMESTAMP", "INTERVAL")
ROWID = _TypeObject("ROWID", "ROWID")

Date = datetime.date
Time = datetime.time
Timestamp = datetime.datetime
Binary = bytes


def DateFromTicks(ticks: float) -> datetime.date:  # noqa: N802 - PEP 249's name
    """The local date of ``ticks`` seconds since the epoch (PEP 249)."""
    return datetime.date(*time.localtime(ticks)[:3])


def TimeFromTicks(ticks: float) -> datetime.time:  # noqa: N802 - PEP 249's name
    """The local time of day of ``ticks`` seconds since the epoch (PEP 249)."""
    return datetime.time(*time.localtime(ticks)[3:6])


def TimestampFromTicks(ticks: float) -> datetime.datetime:  # noqa: N802 - PEP 249's name
    """The local date and time of ``ticks`` seconds since the epoch (PEP 249)."""
    return datetime.datetime(*time.localtime(ticks)[:6])


_default: Connection | None = None
_default_lock = threading.Lock()


def connect(
    path: str | os.PathLike[str] | None = None,
    *,
    read_only: bool = False,
    config: dict[str, str | int | bool] | None = None,
) -> Connection:
    """Opens a connection.

    Args:
        path: A database directory, opened or created; in memory if None.
        read_only: Refuse writes (and do not create a missing database).
        config: Settings by name: ``threads``, ``memory_limit``,
            ``temp_directory`` or any ``datafusion.*`` option.

    Returns:
        The connection; use it in a ``with`` block to close it at the end.

    Raises:
        pintail.IOError: The path is not a Pintail database.
        pintail.InvalidOptionError: A setting is unknown or has a bad value.
    """
    return Connection(None if path is None else os.fspath(path), read_only=read_only, config=config)


def default_connection() -> Connection:
    """The in-memory connection that ``pintail.sql`` uses, made on first use."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Connection()
        return _default


def sql(query: str, params: Sequence[Any] | None = None) -> Relation | None:
    """Runs ``query`` on the default in-memory connection.

    Args:
        query: One SQL statement, or several separated by ``;``. A name
            that is no table can be a Python variable holding a pandas or
            Polars DataFrame, a PyArrow Table, or other Arrow data.
        params: Values for the ``?`` (or ``$1``, ``$2``, ...) placeholders
            of a single statement, bound as typed values.

    Returns:
        A lazy Relation for a query that returns rows; None for a statement
        that only does something (CREATE, INSERT, COPY, SET, ...).
    """
    return default_connection().sql(query, params)
