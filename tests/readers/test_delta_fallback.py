"""Delta tables read without the Delta connector: deltalake resolves, Spark scans once."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from urllib.parse import quote, unquote

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from spark_explore.errors import InvalidArgumentError, SourceNotFoundError, SourceReadError
from spark_explore.readers import open_source

V0 = pa.table(
    {
        "city": ["a b", "x/y", None, "c:d", "e%f", "g[h]"],
        "year": [2020, 2020, 2021, 2021, 2022, 2022],
        "value": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
    }
)
V1 = pa.table({"city": ["a b", "new"], "year": [2023, 2023], "value": [7.0, 8.0]})
V2 = pa.table({"city": ["z"], "year": [2024], "value": [9.0]})


def file_scans(df) -> int:
    return df._jdf.queryExecution().executedPlan().toString().count("FileScan")


def rows(df) -> list[tuple]:
    return sorted((tuple(r) for r in df.collect()), key=repr)


@pytest.fixture(scope="module")
def versions(tmp_path_factory) -> str:
    """A table partitioned by a string and an int: v0 write, v1 append, v2 overwrite."""
    path = str(tmp_path_factory.mktemp("delta") / "sales")
    write_deltalake(path, V0, partition_by=["city", "year"])
    write_deltalake(path, V1, partition_by=["city", "year"], mode="append")
    write_deltalake(path, V2, partition_by=["city", "year"], mode="overwrite")
    return path


def test_latest_version_after_overwrite_reads_only_live_files(spark, versions):
    source = open_source(spark, versions)

    assert source.format == "delta"
    assert source.delta_reader == "deltalake"
    assert source.delta_version == 2
    assert source.row_estimate == 1
    assert source.df.columns == ["city", "year", "value"]
    assert dict(source.df.dtypes) == {"city": "string", "year": "bigint", "value": "double"}
    assert rows(source.df) == [("z", 2024, 9.0)]
    assert any("deltalake" in note for note in source.notes)


def test_time_travel_to_the_first_version(spark, versions):
    source = open_source(spark, versions, delta_version=0)

    assert source.delta_version == 0
    assert source.row_estimate == 6
    assert rows(source.df) == rows(spark.createDataFrame(V0.to_pandas()))


def test_appended_version_holds_both_writes(spark, versions):
    source = open_source(spark, versions, "delta", delta_version=1)

    assert source.row_estimate == 8
    assert sorted(r.value for r in source.df.collect()) == [float(v) for v in range(1, 9)]
    assert source.df.filter("city = 'a b'").count() == 2  # partition value with a space


def test_partition_values_with_special_characters_and_nulls(spark, versions):
    df = open_source(spark, versions, delta_version=0).df
    got = {r.value: (r.city, r.year) for r in df.collect()}

    assert got == {
        1.0: ("a b", 2020),
        2.0: ("x/y", 2020),
        3.0: (None, 2021),
        4.0: ("c:d", 2021),
        5.0: ("e%f", 2022),
        6.0: ("g[h]", 2022),
    }


def test_fallback_plan_has_exactly_one_file_scan(spark, versions):
    source = open_source(spark, versions, delta_version=1)

    assert file_scans(source.df) == 1
    assert "Union" not in source.df._jdf.queryExecution().executedPlan().toString()


def test_many_files_use_several_lookup_buckets(spark, tmp_path):
    path = str(tmp_path / "many")
    n = 40  # more files than one bucket of the partition lookup holds
    write_deltalake(
        path,
        pa.table({"part": list(range(n)), "x": [i * 10 for i in range(n)]}),
        partition_by=["part"],
    )

    df = open_source(spark, path).df

    assert file_scans(df) == 1
    assert all(r.x == r.part * 10 for r in df.collect())


def test_typed_partition_columns(spark, tmp_path):
    path = str(tmp_path / "typed")
    utc = dt.timezone.utc
    table = pa.table(
        {
            "day": pa.array([dt.date(2024, 1, 31), dt.date(2024, 2, 1)]),
            "flag": [True, False],
            "price": pa.array([Decimal("1.50"), Decimal("20.25")], pa.decimal128(6, 2)),
            "at": pa.array(
                [dt.datetime(2024, 1, 1, 12, 30, tzinfo=utc), dt.datetime(2024, 1, 2, tzinfo=utc)],
                pa.timestamp("us", "UTC"),
            ),
            "ratio": [0.25, float("inf")],
            "x": [1, 2],
        }
    )
    write_deltalake(path, table, partition_by=["day", "flag", "price", "at", "ratio"])

    df = open_source(spark, path).df

    assert df.columns == ["day", "flag", "price", "at", "ratio", "x"]
    assert dict(df.dtypes) == {
        "day": "date",
        "flag": "boolean",
        "price": "decimal(6,2)",
        "at": "timestamp",
        "ratio": "double",
        "x": "bigint",
    }
    got = sorted((tuple(r) for r in df.collect()), key=lambda r: r[-1])
    assert got == [
        (dt.date(2024, 1, 31), True, Decimal("1.50"), dt.datetime(2024, 1, 1, 12, 30), 0.25, 1),
        (dt.date(2024, 2, 1), False, Decimal("20.25"), dt.datetime(2024, 1, 2), float("inf"), 2),
    ]


def test_same_file_name_in_two_partitions_uses_the_path(spark, tmp_path):
    """Files are told apart by their folders when names repeat (as Spark-written ones can)."""
    path = tmp_path / "same_names"
    write_deltalake(str(path), pa.table({"k": ["a", "b+c"], "x": [1, 2]}), partition_by=["k"])
    log = path / "_delta_log" / "00000000000000000000.json"
    actions = [json.loads(line) for line in log.read_text().splitlines()]
    for action in actions:
        if "add" in action:
            folder = unquote(action["add"]["path"]).rsplit("/", 1)[0]
            (path / unquote(action["add"]["path"])).rename(path / folder / "data file+1.parquet")
            action["add"]["path"] = quote(folder + "/data file+1.parquet")  # URL-encoded
    log.write_text("".join(json.dumps(a) + "\n" for a in actions))

    df = open_source(spark, str(path)).df

    assert file_scans(df) == 1
    assert sorted((r.k, r.x) for r in df.collect()) == [("a", 1), ("b+c", 2)]


def test_unpartitioned_table_and_column_selection(spark, tmp_path):
    path = str(tmp_path / "flat")
    write_deltalake(path, pa.table({"a": [1, 2, 3], "b": ["x", "y", "z"]}))

    source = open_source(spark, path, columns=["b"], where="a >= 2")

    assert source.df.columns == ["b"]
    assert sorted(r.b for r in source.df.collect()) == ["y", "z"]
    assert source.row_estimate == 3  # the snapshot's rows, before the filter


def test_empty_table_has_the_schema_and_no_rows(spark, tmp_path):
    path = str(tmp_path / "empty")
    write_deltalake(
        path,
        pa.table({"a": pa.array([], pa.int64()), "p": pa.array([], pa.string())}),
        partition_by=["p"],
    )

    source = open_source(spark, path)

    assert source.df.columns == ["a", "p"]
    assert source.df.count() == 0
    assert source.row_estimate == 0


def test_missing_version_is_an_invalid_argument(spark, versions):
    with pytest.raises(InvalidArgumentError) as info:
        open_source(spark, versions, delta_version=99)
    assert info.value.code == "DELTA_VERSION_NOT_FOUND"


def test_folder_without_delta_log_read_as_delta(spark, tmp_path):
    folder = tmp_path / "plain"
    folder.mkdir()
    (folder / "x.parquet").write_bytes(b"")

    with pytest.raises(SourceNotFoundError) as info:
        open_source(spark, str(folder), "delta")
    assert info.value.code == "SOURCE_NOT_FOUND"


def test_missing_delta_path(spark, tmp_path):
    with pytest.raises(SourceNotFoundError) as info:
        open_source(spark, str(tmp_path / "nope"), "delta")
    assert info.value.code == "SOURCE_NOT_FOUND"
    assert info.value.fields["path"] == str(tmp_path / "nope")


def test_connector_is_used_when_the_session_has_it(spark, versions, monkeypatch):
    """On Databricks the connector reads Delta; here its absence surfaces as a read error."""
    monkeypatch.setenv("DATABRICKS_RUNTIME_VERSION", "15.4")

    with pytest.raises(SourceReadError) as info:
        open_source(spark, versions)
    assert info.value.code == "SOURCE_UNREADABLE"
    assert "connector" in info.value.message


def test_version_with_a_non_delta_format_is_rejected(spark, tmp_path):
    path = tmp_path / "p.json"
    path.write_text('{"a": 1}\n')

    with pytest.raises(InvalidArgumentError) as info:
        open_source(spark, str(path), delta_version=0)
    assert info.value.code == "DELTA_VERSION_NOT_APPLICABLE"


def test_negative_version_is_rejected(spark, versions):
    with pytest.raises(InvalidArgumentError) as info:
        open_source(spark, versions, delta_version=-1)
    assert info.value.code == "INVALID_ARGUMENT"
