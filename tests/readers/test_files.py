"""Parquet, CSV, JSON and ORC paths: explicit formats and auto-detection."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.orc as paorc
import pyarrow.parquet as pq
import pytest
from deltalake import write_deltalake

from spark_explore.readers import open_source

TABLE = pa.table(
    {"id": [1, 2, 3], "name": ["ann", "bob", "cy"], "score": [31.5, None, 44.0]},
    schema=pa.schema([("id", pa.int32()), ("name", pa.string()), ("score", pa.float64())]),
)
EXPECTED = [(1, "ann", 31.5), (2, "bob", None), (3, "cy", 44.0)]


def write(fmt: str, path: Path) -> None:
    """Write TABLE to ``path`` in ``fmt`` with pyarrow (faster than a Spark job)."""
    if fmt == "parquet":
        pq.write_table(TABLE, path)
    elif fmt == "orc":
        paorc.write_table(TABLE, path)
    elif fmt == "csv":
        pacsv.write_csv(TABLE, path)
    else:
        path.write_text("".join(json.dumps(row) + "\n" for row in TABLE.to_pylist()))


def spark_like_folder(tmp_path: Path, fmt: str) -> Path:
    """A folder laid out as Spark writes it: a data file plus hidden bookkeeping files."""
    folder = tmp_path / f"people_{fmt}"
    folder.mkdir()
    write(fmt, folder / f"part-00000-abc.c000.{fmt}")
    (folder / "_SUCCESS").write_text("")
    (folder / ".notes.csv").write_text("ignored")
    return folder


def rows(df) -> list[tuple]:
    return sorted(tuple(r[c] for c in ("id", "name", "score")) for r in df.collect())


@pytest.mark.parametrize("fmt", ["parquet", "json", "orc", "csv"])
def test_folder_format_is_detected_from_its_data_files(spark, tmp_path, fmt):
    path = str(spark_like_folder(tmp_path, fmt))

    source = open_source(spark, path)

    assert source.format == fmt
    assert source.spec == path
    assert (source.delta_version, source.delta_reader, source.row_estimate) == (None, None, None)
    assert any("detected" in note for note in source.notes)
    assert source.df.columns == ["id", "name", "score"]  # JSON: Spark sorts inferred fields
    assert rows(source.df) == EXPECTED


@pytest.mark.parametrize("fmt", ["parquet", "orc"])
def test_single_file_format_comes_from_its_extension(spark, tmp_path, fmt):
    path = tmp_path / f"one.{fmt}"
    write(fmt, path)

    source = open_source(spark, str(path))

    assert source.format == fmt
    assert source.df.columns == ["id", "name", "score"]


def test_csv_is_read_with_header_and_inferred_types(spark, tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("a,b,c\n1,2.5,x\n2,3.5,y\n")

    source = open_source(spark, str(path))

    assert source.format == "csv"
    assert dict(source.df.dtypes) == {"a": "int", "b": "double", "c": "string"}
    assert any("inferSchema" in note for note in source.notes)


def test_jsonl_and_compressed_csv_extensions(spark, tmp_path):
    jsonl = tmp_path / "rows.jsonl"
    jsonl.write_text('{"k": 1}\n{"k": 2}\n')
    folder = tmp_path / "gz"
    folder.mkdir()
    with gzip.open(folder / "part-0.csv.gz", "wt") as fh:
        fh.write("k\n5\n")

    assert open_source(spark, str(jsonl)).format == "json"
    source = open_source(spark, str(folder))
    assert source.format == "csv"
    assert [r.k for r in source.df.collect()] == [5]


def test_hive_partitioned_parquet_folder(spark, tmp_path):
    root = tmp_path / "by_name"
    for name in ("ann", "bob"):
        (root / f"name={name}").mkdir(parents=True)
        pq.write_table(TABLE.drop(["name"]), root / f"name={name}" / "part-0.parquet")

    source = open_source(spark, str(root))

    assert source.format == "parquet"
    assert source.df.columns == ["id", "score", "name"]


def test_explicit_format_overrides_the_extension(spark, tmp_path):
    path = tmp_path / "data.txt"
    path.write_text("a;b\n1;2\n")

    source = open_source(spark, str(path), "CSV")

    assert source.format == "csv"
    assert source.df.columns == ["a;b"]
    assert not any("detected" in note for note in source.notes)


def test_file_uri_is_a_path(spark, tmp_path):
    path = tmp_path / "p.parquet"
    write("parquet", path)

    source = open_source(spark, f"file://{path}")

    assert source.format == "parquet"
    assert source.spec == f"file://{path}"
    assert rows(source.df) == EXPECTED


def test_existing_relative_path_without_slash_is_a_path(spark, tmp_path, monkeypatch):
    write("parquet", tmp_path / "rel.parquet")
    monkeypatch.chdir(tmp_path)

    source = open_source(spark, "rel.parquet")

    assert source.format == "parquet"
    assert source.df.columns == ["id", "name", "score"]


def test_parquet_read_of_a_delta_folder_is_noted(spark, tmp_path):
    path = str(tmp_path / "d")
    write_deltalake(path, pa.table({"x": [1, 2]}))

    source = open_source(spark, path, "parquet")

    assert source.format == "parquet"
    assert source.delta_reader is None
    assert any("log is ignored" in note for note in source.notes)
