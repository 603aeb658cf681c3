"""Pure helpers of the readers, tested without running Spark jobs."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from spark_explore.errors import InvalidArgumentError
from spark_explore.readers.delta import has_delta_connector
from spark_explore.readers.delta_scan import _key_depth, file_path
from spark_explore.readers.partition_values import sql_string, to_text
from spark_explore.readers.select import quote
from spark_explore.readers.spec import format_from_name, is_path, locate, normalize_format


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ("db.tbl", False),
        ("tbl", False),
        ("catalog.db.tbl", False),
        ("/data/t", True),
        ("s3://bucket/t", True),
        ("abfss://c@acct.dfs.core.windows.net/t", True),
        ("dbfs:/mnt/t", True),
        ("file:/tmp/t", True),
    ],
)
def test_is_path(table, expected):
    assert is_path(table) is expected


def test_locate_makes_existing_local_paths_absolute(tmp_path, monkeypatch):
    (tmp_path / "t").mkdir()
    monkeypatch.chdir(tmp_path)

    local = locate("t")
    remote = locate("s3://bucket/t")

    assert local.spark_path == local.delta_uri == str(tmp_path / "t")
    assert local.local_path == tmp_path / "t"
    assert (remote.spark_path, remote.local_path, remote.delta_uri) == (
        "s3://bucket/t",
        None,
        "s3://bucket/t",
    )
    assert locate(f"file://{tmp_path}/t").local_path == tmp_path / "t"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("part-0.snappy.parquet", "parquet"),
        ("x.PARQUET", "parquet"),
        ("part-0.csv.gz", "csv"),
        ("rows.jsonl", "json"),
        ("part-0.zstd.orc", "orc"),
        ("part-0.snappy.orc", "orc"),
        ("README", None),
        ("data.txt", None),
    ],
)
def test_format_from_name(name, expected):
    assert format_from_name(name) == expected


def test_normalize_format():
    assert normalize_format(None) is None
    assert normalize_format(" Delta ") == "delta"
    with pytest.raises(InvalidArgumentError) as info:
        normalize_format("avro")
    assert info.value.code == "UNKNOWN_FORMAT"


def test_file_path_decodes_relative_and_keeps_absolute():
    assert file_path("/t/", "a%20b/p%2525.parquet") == "/t/a b/p%25.parquet"
    assert file_path("s3://b/t", "x.parquet") == "s3://b/t/x.parquet"
    assert file_path("/t", "s3://other/x%20y.parquet") == "s3://other/x y.parquet"


def test_key_depth_grows_only_when_file_names_repeat():
    assert _key_depth(["/t/a=1/f1", "/t/a=2/f2"]) == 1
    assert _key_depth(["/t/a=1/f", "/t/a=2/f"]) == 2
    assert _key_depth(["/t/a=1/b=1/f", "/t/a=2/b=1/f"]) == 3


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, None),
        (True, "true"),
        (7, "7"),
        (0.5, "0.5"),
        (float("-inf"), "-inf"),
        (Decimal("1E+2"), "100"),
        (b"\x00\xff", "00ff"),
        (dt.date(2024, 2, 29), "2024-02-29"),
        (dt.datetime(2024, 1, 1, 12), "2024-01-01T12:00:00"),
        (
            dt.datetime(2024, 1, 1, 12, tzinfo=dt.timezone(dt.timedelta(hours=2))),
            "2024-01-01T10:00:00+00:00",
        ),
    ],
)
def test_partition_values_as_text(value, text):
    assert to_text(value) == text


def test_sql_strings_are_quoted_or_hex_encoded():
    assert sql_string("a b=c") == "'a b=c'"
    assert sql_string(None) == "CAST(NULL AS STRING)"
    assert sql_string("it's") == "CAST(X'69742773' AS STRING)"
    assert sql_string("${env:HOME}").startswith("CAST(X'")
    assert sql_string("é").startswith("CAST(X'")


def test_quote_escapes_backticks():
    assert quote("a.b") == "`a.b`"
    assert quote("x`y") == "`x``y`"


def test_delta_connector_is_assumed_on_databricks(spark, monkeypatch):
    monkeypatch.delenv("DATABRICKS_RUNTIME_VERSION", raising=False)
    assert has_delta_connector(spark) is False
    monkeypatch.setenv("DATABRICKS_RUNTIME_VERSION", "15.4")
    assert has_delta_connector(spark) is True
