"""Builds Pintail's example data from the vega_datasets package (MIT).

Run from the repository root:

    uv run --with vega_datasets==0.9.0 --with pyarrow python examples/data/make_data.py

The sources are public-domain data sets that vega_datasets ships inside its
wheel (no download): cars (StatLib, CMU), Seattle weather (NOAA) and US
airports (FAA). The script writes each in the formats Pintail reads, plus a
hive-partitioned folder, and is deterministic: running it again gives the
same files.
"""

import csv
import datetime as dt
import json
import pathlib

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import vega_datasets

SRC = pathlib.Path(vega_datasets.__file__).parent / "_data"
OUT = pathlib.Path(__file__).parent


def cars() -> pa.Table:
    rows = json.loads((SRC / "cars.json").read_text())
    return pa.table(
        {
            "name": pa.array([r["Name"] for r in rows], pa.string()),
            "miles_per_gallon": pa.array([r["Miles_per_Gallon"] for r in rows], pa.float64()),
            "cylinders": pa.array([r["Cylinders"] for r in rows], pa.int64()),
            "displacement": pa.array([r["Displacement"] for r in rows], pa.float64()),
            "horsepower": pa.array([r["Horsepower"] for r in rows], pa.int64()),
            "weight_in_lbs": pa.array([r["Weight_in_lbs"] for r in rows], pa.int64()),
            "acceleration": pa.array([r["Acceleration"] for r in rows], pa.float64()),
            "year": pa.array([int(r["Year"][:4]) for r in rows], pa.int64()),
            "origin": pa.array([r["Origin"] for r in rows], pa.string()),
        }
    )


def weather() -> pa.Table:
    with open(SRC / "seattle-weather.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    dates = [dt.datetime.strptime(r["date"], "%Y/%m/%d").date() for r in rows]
    return pa.table(
        {
            "date": pa.array(dates, pa.date32()),
            "precipitation": pa.array([float(r["precipitation"]) for r in rows]),
            "temp_max": pa.array([float(r["temp_max"]) for r in rows]),
            "temp_min": pa.array([float(r["temp_min"]) for r in rows]),
            "wind": pa.array([float(r["wind"]) for r in rows]),
            "weather": pa.array([r["weather"] for r in rows]),
        }
    )


def write_json_lines(table: pa.Table, path: pathlib.Path) -> None:
    with open(path, "w") as f:
        for row in table.to_pylist():
            f.write(json.dumps(row, default=str) + "\n")


def main() -> None:
    c = cars()
    pq.write_table(c, OUT / "cars.parquet", compression="zstd")
    pacsv.write_csv(c, OUT / "cars.csv")
    write_json_lines(c, OUT / "cars.json")

    w = weather()
    pacsv.write_csv(w, OUT / "weather.csv")
    folder = OUT / "weather"
    for year in sorted({d.year for d in w.column("date").to_pylist()}):
        part = w.filter(pa.compute.equal(pa.compute.year(w.column("date")), year))
        target = folder / f"year={year}"
        target.mkdir(parents=True, exist_ok=True)
        pq.write_table(part, target / "data.parquet", compression="zstd")

    (OUT / "airports.csv").write_bytes((SRC / "airports.csv").read_bytes())


if __name__ == "__main__":
    main()
