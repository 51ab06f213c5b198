"""Writes tests/data/users.avro, the Avro file the sqllogictest suite reads.

    uv run --with fastavro==1.13.1 python tests/data/make_avro.py
"""

import pathlib

import fastavro

SCHEMA = {
    "type": "record",
    "name": "User",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "name", "type": "string"},
        {"name": "score", "type": ["null", "double"]},
    ],
}
ROWS = [
    {"id": 1, "name": "ada", "score": 9.5},
    {"id": 2, "name": "grace", "score": None},
    {"id": 3, "name": "linus", "score": 7.25},
]

with open(pathlib.Path(__file__).parent / "users.avro", "wb") as f:
    fastavro.writer(f, SCHEMA, ROWS, codec="null", sync_marker=b"pintail-fixture!")
