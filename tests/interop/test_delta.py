"""Pintail's tables are Delta Lake tables that other tools read, and Pintail
reads the Delta tables other tools write: the `deltalake` package (delta-rs)
and Polars, with rows and types compared."""

import datetime
import decimal
import json
import pathlib

import deltalake
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from conftest import pintail, pintail_fails

ROWS = [
    {"id": 1, "small": 7, "price": decimal.Decimal("10.25"), "ratio": 0.5, "name": "apple", "ok": True,
     "day": datetime.date(2026, 1, 2), "at": datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)},
    {"id": 2, "small": None, "price": None, "ratio": None, "name": None, "ok": None, "day": None, "at": None},
    {"id": 3, "small": -1, "price": decimal.Decimal("-0.01"), "ratio": 1e100, "name": "päär", "ok": False,
     "day": datetime.date(1970, 1, 1), "at": datetime.datetime(1999, 12, 31, 23, 59, 59, tzinfo=datetime.timezone.utc)},
]

# TIMESTAMP is Delta's timestamp_ntz (no zone); see test_pintail_reads_what_tools_write
# for zoned timestamps
CREATE = """CREATE TABLE things (id BIGINT NOT NULL, small INT, price DECIMAL(10, 2), ratio DOUBLE, name VARCHAR,
            ok BOOLEAN, day DATE, at TIMESTAMP)"""
INSERT = """INSERT INTO things VALUES
    (1, 7, 10.25, 0.5, 'apple', true, DATE '2026-01-02', TIMESTAMP '2026-01-02 03:04:05'),
    (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
    (3, -1, -0.01, 1e100, 'päär', false, DATE '1970-01-01', TIMESTAMP '1999-12-31 23:59:59')"""


def test_tools_read_what_pintail_writes(tmp_path: pathlib.Path):
    db = tmp_path / "shop.db"
    pintail(db, CREATE, INSERT, "UPDATE things SET name = upper(name) WHERE id = 1", "DELETE FROM things WHERE id = 99")
    path = str(db / "main" / "things")

    table = deltalake.DeltaTable(path)
    assert table.version() == 2
    arrow = table.to_pyarrow_table().sort_by("id")
    schema = arrow.schema
    assert schema.field("id").type == pa.int64() and not schema.field("id").nullable
    assert schema.field("small").type == pa.int32()
    assert schema.field("price").type == pa.decimal128(10, 2)
    assert schema.field("ratio").type == pa.float64()
    assert schema.field("name").type in (pa.string(), pa.large_string(), pa.string_view())
    assert schema.field("ok").type == pa.bool_()
    assert schema.field("day").type == pa.date32()
    assert schema.field("at").type == pa.timestamp("us")
    expected = [dict(r, at=r["at"].replace(tzinfo=None) if r["at"] else None) for r in ROWS]
    expected[0]["name"] = "APPLE"
    assert arrow.to_pylist() == expected

    frame = pl.read_delta(path).sort("id")
    assert frame["name"].to_list() == ["APPLE", None, "päär"]
    assert frame["price"].to_list() == [decimal.Decimal("10.25"), None, decimal.Decimal("-0.01")]
    assert frame.schema["at"] == pl.Datetime("us")

    # old versions too
    assert pl.read_delta(path, version=1).sort("id")["name"].to_list() == ["apple", None, "päär"]


def test_pintail_reads_what_tools_write(tmp_path: pathlib.Path):
    db = tmp_path / "shared.db"
    pintail(db, "CREATE SCHEMA ext")
    data = pa.Table.from_pylist(
        ROWS,
        schema=pa.schema([
            pa.field("id", pa.int64(), nullable=False),
            ("small", pa.int32()),
            ("price", pa.decimal128(10, 2)),
            ("ratio", pa.float64()),
            ("name", pa.string()),
            ("ok", pa.bool_()),
            ("day", pa.date32()),
            ("at", pa.timestamp("us", tz="UTC")),
        ]),
    )
    # delta-rs writes straight into the database's schema directory
    deltalake.write_deltalake(str(db / "ext" / "from_deltalake"), data)
    deltalake.write_deltalake(str(db / "ext" / "from_deltalake"), data.slice(0, 1), mode="append")
    # and Polars writes a table anywhere
    outside = tmp_path / "from_polars"
    pl.from_arrow(data).write_delta(str(outside))

    rows = pintail(db, "SELECT id, small, price, ratio, name, ok, day, at FROM ext.from_deltalake ORDER BY id, name")
    assert [r["id"] for r in rows] == [1, 1, 2, 3]
    assert rows[0]["name"] == "apple" and rows[3]["name"] == "päär"
    assert rows[2]["small"] is None and rows[2]["at"] is None
    assert rows[3]["ratio"] == 1e100

    described = {r["column_name"]: r["column_type"] for r in pintail(db, "DESCRIBE ext.from_deltalake")}
    assert described["id"] == "BIGINT"
    assert described["small"] == "INTEGER"
    assert described["price"] == "DECIMAL(10,2)"
    assert described["day"] == "DATE"
    assert described["at"].startswith("TIMESTAMP")

    via_scan = pintail(db, f"SELECT count(*) AS n, sum(small) AS s FROM delta_scan('{outside}')")
    assert via_scan == [{"n": 3, "s": 6}]

    # Pintail writes into a table delta-rs made, and delta-rs reads the result
    pintail(db, "INSERT INTO ext.from_deltalake (id, name) VALUES (4, 'from pintail')")
    again = deltalake.DeltaTable(str(db / "ext" / "from_deltalake")).to_pyarrow_table()
    assert again.num_rows == 5
    assert "from pintail" in again.column("name").to_pylist()


def test_pintail_reads_partitioned_and_column_mapped_tables(tmp_path: pathlib.Path):
    """Tables whose files hold less than their rows (partition values live
    in the log) or under other names (column mapping) go through deltalake's
    own scan; filters, statistics and aggregates still give the right rows."""
    db = tmp_path / "shared.db"
    pintail(db, "CREATE SCHEMA ext")
    data = pa.table({
        "id": pa.array(range(1, 7), pa.int64()),
        "region": ["eu", "us", "eu", "ap", "us", "eu"],
        "v": [1.5, 2.5, 3.5, 4.5, 5.5, 6.5],
    })
    deltalake.write_deltalake(str(db / "ext" / "parted"), data, partition_by=["region"])
    deltalake.write_deltalake(
        str(db / "ext" / "mapped"), data,
        configuration={"delta.columnMapping.mode": "name", "delta.minReaderVersion": "2", "delta.minWriterVersion": "5"},
    )
    for table in ("ext.parted", "ext.mapped"):
        rows = pintail(db, f"SELECT id, region, v FROM {table} WHERE region = 'eu' AND v > 2 ORDER BY id")
        assert rows == [{"id": 3, "region": "eu", "v": 3.5}, {"id": 6, "region": "eu", "v": 6.5}], table
        summary = pintail(db, f"SELECT count(*) AS n, min(v) AS lo, max(region) AS hi, sum(id) AS s FROM {table}")
        assert summary == [{"n": 6, "lo": 1.5, "hi": "us", "s": 21}], table
        joined = pintail(db, f"SELECT a.region, count(*) AS n FROM {table} a JOIN {table} b ON a.id = b.id + 1 "
                             "GROUP BY a.region ORDER BY a.region")
        assert joined == [{"region": "ap", "n": 1}, {"region": "eu", "n": 2}, {"region": "us", "n": 2}], table

    # INSERT into both: the partitioned one through Pintail's own writer
    # (partition values in the log, not the files), the column-mapped one
    # through deltalake's, which writes the physical column names; and
    # INSERT OVERWRITE replaces every file
    for table in ("ext.parted", "ext.mapped"):
        pintail(db, f"INSERT INTO {table} VALUES (7, 'eu', 7.5), (8, 'sa', 8.5)")
    for table in ("ext.parted", "ext.mapped"):
        rows = pintail(db, f"SELECT id, region, v FROM {table} WHERE id > 6 ORDER BY id")
        assert rows == [{"id": 7, "region": "eu", "v": 7.5}, {"id": 8, "region": "sa", "v": 8.5}], table
    back = deltalake.DeltaTable(str(db / "ext" / "parted")).to_pyarrow_table().sort_by("id")
    assert back.column("id").to_pylist() == list(range(1, 9))
    assert back.column("region").to_pylist()[-2:] == ["eu", "sa"]
    # (deltalake 1.6.6 reads its own column-mapped tables as NULLs, so the
    # files' column names are checked instead)
    for file in (db / "ext" / "mapped").rglob("*.parquet"):
        assert all(n.startswith("col-") for n in pq.read_schema(file).names), file
    parted = deltalake.DeltaTable(str(db / "ext" / "parted"))
    assert sorted({p for f in parted.file_uris() for p in f.split("/") if p.startswith("region=")}) == [
        "region=ap", "region=eu", "region=sa", "region=us"]
    pintail(db, "INSERT OVERWRITE TABLE ext.parted SELECT id, region, v FROM ext.parted WHERE region = 'eu'")
    rows = pintail(db, "SELECT id, region FROM ext.parted ORDER BY id")
    assert rows == [{"id": i, "region": "eu"} for i in (1, 3, 6, 7)]
    assert deltalake.DeltaTable(str(db / "ext" / "parted")).to_pyarrow_table().num_rows == 4


def test_pintail_refuses_inserts_that_would_skip_a_tables_rules(tmp_path: pathlib.Path):
    """A CHECK constraint or generated column, from a tool that enforces
    them, is not bypassed: Pintail refuses the INSERT and writes nothing."""
    db = tmp_path / "shared.db"
    pintail(db, "CREATE SCHEMA ext")
    path = str(db / "ext" / "checked")
    deltalake.write_deltalake(path, pa.table({"id": pa.array([1, 2], pa.int64())}))
    deltalake.DeltaTable(path).alter.add_constraint({"positive": "id > 0"})
    version = deltalake.DeltaTable(path).version()

    out = pintail_fails(db, "INSERT INTO ext.checked VALUES (-5)")
    assert "table 'ext.checked': rows cannot be inserted" in out and "CHECK constraint 'positive'" in out, out
    assert deltalake.DeltaTable(path).version() == version
    assert pintail(db, "SELECT sum(id) AS s FROM ext.checked") == [{"s": 3}]
    # deltalake's own UPDATE checks it
    out = pintail_fails(db, "UPDATE ext.checked SET id = -id")
    assert "2 rows failed validation check" in out and "CHECK constraint" in out, out
    assert pintail(db, "SELECT sum(id) AS s FROM ext.checked") == [{"s": 3}]


def test_pintail_refuses_inserts_into_a_table_with_a_nested_invariant(tmp_path: pathlib.Path):
    """An invariant on a field inside a struct (which Spark writes, and
    deltalake has no call for) is found as the top-level ones are."""
    db = tmp_path / "shared.db"
    pintail(db, "CREATE SCHEMA ext")
    path = db / "ext" / "nested"
    point = pa.struct([("x", pa.int64()), ("y", pa.int64())])
    deltalake.write_deltalake(str(path), pa.table({"p": pa.array([{"x": 1, "y": 2}], point)}))
    log = path / "_delta_log"
    actions = [json.loads(line) for line in (log / f"{0:020}.json").read_text().splitlines() if line]
    metadata = next(a["metaData"] for a in actions if "metaData" in a)
    schema = json.loads(metadata["schemaString"])
    y = schema["fields"][0]["type"]["fields"][1]
    y["metadata"] = {"delta.invariants": json.dumps({"expression": {"expression": "p.y > 0"}})}
    metadata["schemaString"] = json.dumps(schema)
    (log / f"{1:020}.json").write_text(json.dumps({"metaData": metadata}) + "\n")

    out = pintail_fails(db, "INSERT INTO ext.nested SELECT named_struct('x', 3::BIGINT, 'y', -4::BIGINT)")
    assert "rows cannot be inserted" in out and "an invariant for its column 'p.y'" in out, out
    assert deltalake.DeltaTable(str(path)).version() == 1
    assert pintail(db, "SELECT count(*) AS n FROM ext.nested") == [{"n": 1}]
