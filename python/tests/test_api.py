"""Every native export has a Python name, a stub and a docstring."""

from __future__ import annotations

import ast
import importlib.metadata
import inspect
import pathlib

import pintail
from pintail import _pintail

STUB = pathlib.Path(pintail.__file__).with_name("_pintail.pyi")


def stub_names() -> tuple[set[str], dict[str, set[str]]]:
    tree = ast.parse(STUB.read_text())
    names: set[str] = set()
    members: dict[str, set[str]] = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            names.add(node.name)
            members[node.name] = {n.name for n in node.body if isinstance(n, ast.FunctionDef)} | {
                n.target.id for n in node.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)
            }
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names, members


def native_names() -> set[str]:
    return {n for n in dir(_pintail) if not n.startswith("_") or n == "__version__"}


def test_every_native_export_has_a_stub_and_a_python_name() -> None:
    names, _ = stub_names()
    native = native_names()
    assert native == names
    assert native <= set(pintail.__all__)
    for name in native:
        assert getattr(pintail, name) is getattr(_pintail, name)


def test_every_native_method_has_a_stub_and_a_docstring() -> None:
    _, members = stub_names()
    dunders = {"__enter__", "__exit__", "__iter__", "__next__"}
    for cls in (pintail.Connection, pintail.Relation, pintail.Cursor):
        native = {
            n
            for n, _ in inspect.getmembers(cls)
            if not n.startswith("_") or n in dunders | {"__arrow_c_stream__", "_repr_html_"}
        }
        assert native == members[cls.__name__] - {"__init__"}, cls.__name__
        for name in native - dunders:
            assert getattr(cls, name).__doc__, f"{cls.__name__}.{name} has no docstring"


def test_dbapi_module_globals() -> None:
    assert pintail.apilevel == "2.0"
    assert pintail.threadsafety in (1, 2, 3)
    assert pintail.paramstyle == "qmark"
    assert pintail.NUMBER == "BIGINT"
    assert pintail.STRING == "VARCHAR"
    assert pintail.DATETIME == "TIMESTAMP WITH TIME ZONE"
    assert pintail.STRING != "BIGINT"
    assert pintail.Date(2024, 1, 31).isoformat() == "2024-01-31"
    assert pintail.Binary(b"x") == b"x"


def test_exceptions_follow_pep_249() -> None:
    assert issubclass(pintail.DatabaseError, pintail.Error)
    assert issubclass(pintail.InterfaceError, pintail.Error)
    for name in ("DataError", "OperationalError", "IntegrityError", "InternalError", "ProgrammingError", "NotSupportedError"):
        assert issubclass(getattr(pintail, name), pintail.DatabaseError), name
    assert pintail.Error.__module__ == "pintail"


def test_the_installed_package_is_the_stable_abi_wheel() -> None:
    # what `uv pip install ./python` builds: one module for every CPython
    # from 3.10 (a free-threaded interpreter would get its own build)
    assert pathlib.Path(_pintail.__file__).name == "_pintail.abi3.so"
    metadata = importlib.metadata.distribution("pintail")
    wheel = (metadata.locate_file(f"pintail-{metadata.version}.dist-info") / "WHEEL").read_text()
    assert "Tag: cp310-abi3-" in wheel
    assert metadata.requires == ["pyarrow>=15"]
