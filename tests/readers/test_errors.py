"""Every failure surfaces as a spark_explore error with a stable code, never a Spark one."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.orc as orc
import pyarrow.parquet as pq
import pytest

from spark_explore.errors import (
    ColumnNotFoundError,
    EmptySourceError,
    InvalidArgumentError,
    InvalidFilterError,
    SourceNotFoundError,
    SourceReadError,
)
from spark_explore.readers import open_source


@pytest.fixture(scope="module")
def parquet_path(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("errors") / "t.parquet"
    pq.write_table(pa.table({"age": [30, 40], "name": ["a", "b"], "agency": [1, 2]}), path)
    return str(path)


def test_missing_path(spark, tmp_path):
    missing = str(tmp_path / "nothing" / "here.parquet")
    with pytest.raises(SourceNotFoundError) as info:
        open_source(spark, missing)
    assert info.value.code == "SOURCE_NOT_FOUND"
    assert info.value.fields["path"] == missing


def test_missing_path_that_spark_checks(spark, tmp_path):
    """A path that is not on this machine is left to Spark, whose error is translated."""
    with pytest.raises(SourceNotFoundError) as info:
        open_source(spark, f"file://{tmp_path}/absent/")
    assert info.value.code == "SOURCE_NOT_FOUND"


def test_csv_read_as_parquet(spark, tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(SourceReadError) as info:
        open_source(spark, str(path), "parquet")
    assert info.value.code == "SOURCE_UNREADABLE"


def test_corrupt_parquet_file(spark, tmp_path):
    path = tmp_path / "bad.parquet"
    path.write_bytes(b"PAR1 this is not really parquet PAR1")
    with pytest.raises(SourceReadError) as info:
        open_source(spark, str(path))
    assert info.value.code == "SOURCE_UNREADABLE"


def test_csv_read_as_orc(spark, tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(SourceReadError):
        open_source(spark, str(path), "orc")


def test_text_read_as_json(spark, tmp_path):
    path = tmp_path / "data.json"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(SourceReadError) as info:
        open_source(spark, str(path))
    assert info.value.code == "SOURCE_UNREADABLE"


def test_unknown_column_lists_close_names(spark, parquet_path):
    with pytest.raises(ColumnNotFoundError) as info:
        open_source(spark, parquet_path, columns=["name", "agee"])
    assert info.value.code == "COLUMN_NOT_FOUND"
    assert info.value.fields["column"] == "agee"
    assert "age" in info.value.fields["suggestions"]
    assert info.value.fields["available"] == ["age", "name", "agency"]
    assert isinstance(info.value, KeyError)


def test_column_names_are_exact(spark, parquet_path):
    with pytest.raises(ColumnNotFoundError) as info:
        open_source(spark, parquet_path, columns=["AGE"])
    assert "age" in info.value.fields["suggestions"]


@pytest.mark.parametrize(
    "where",
    [
        "age >",
        "nope > 1",
        "age + 1",
        "sum(age) > 1",
        "age > 1; DROP TABLE x",
        "   ",
        "age > 1 AND",  # cut short: not the filter `age > 1` with an alias `AND`
        "age > 1 OR",
        "age > 1 typo",
    ],
)
def test_invalid_filter(spark, parquet_path, where):
    with pytest.raises(InvalidFilterError) as info:
        open_source(spark, parquet_path, where=where)
    assert info.value.code == "INVALID_FILTER"


@pytest.mark.parametrize(
    ("where", "said"),
    [
        ("age > 1 AND", "the predicate ends before it is complete"),
        ("(age > 1", "the predicate ends before it is complete"),
        ("age = = 1", "(at character 6)"),
        ("age > 1 AND nope", "(at character 12)"),
    ],
)
def test_filter_errors_point_into_the_predicate(spark, parquet_path, where, said):
    with pytest.raises(InvalidFilterError) as info:
        open_source(spark, parquet_path, where=where)
    assert said in str(info.value)
    assert "line 3" not in str(info.value) and "line 2" not in str(info.value)


def test_filter_with_a_trailing_comment(spark, parquet_path):
    plain = open_source(spark, parquet_path, where="age > 30").df.count()
    commented = open_source(spark, parquet_path, where="age > 30 -- adults only").df.count()
    assert commented == plain == 1


def test_unknown_format_name(spark, parquet_path):
    with pytest.raises(InvalidArgumentError) as info:
        open_source(spark, parquet_path, "avro")
    assert info.value.code == "UNKNOWN_FORMAT"


def test_undetectable_file(spark, tmp_path):
    path = tmp_path / "data.txt"
    path.write_text("hello")
    with pytest.raises(InvalidArgumentError) as info:
        open_source(spark, str(path))
    assert info.value.code == "UNKNOWN_FORMAT"


def test_folder_of_mixed_formats(spark, tmp_path):
    (tmp_path / "a.csv").write_text("x\n1\n")
    (tmp_path / "b.json").write_text('{"x": 1}\n')
    with pytest.raises(InvalidArgumentError) as info:
        open_source(spark, str(tmp_path))
    assert info.value.code == "UNKNOWN_FORMAT"


def test_empty_folder(spark, tmp_path):
    (tmp_path / "_SUCCESS").write_text("")
    with pytest.raises(EmptySourceError) as info:
        open_source(spark, str(tmp_path))
    assert info.value.code == "EMPTY_SOURCE"
    with pytest.raises(EmptySourceError):
        open_source(spark, str(tmp_path), "parquet")


@pytest.mark.parametrize(
    ("columns", "code"),
    [(["age", "age"], "DUPLICATE_COLUMN"), ([], "INVALID_ARGUMENT"), ("age", "INVALID_ARGUMENT")],
)
def test_bad_column_lists(spark, parquet_path, columns, code):
    with pytest.raises(InvalidArgumentError) as info:
        open_source(spark, parquet_path, columns=columns)
    assert info.value.code == code


@pytest.mark.parametrize("table", ["", "  ", None])
def test_blank_table_spec(spark, table):
    with pytest.raises(InvalidArgumentError) as info:
        open_source(spark, table)
    assert info.value.code == "INVALID_ARGUMENT"


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_parquet_read_as_text_is_refused(spark, parquet_path, tmp_path, fmt):
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "_SUCCESS").write_text("")
    pq.write_table(pq.read_table(parquet_path), folder / "part-0.parquet")
    for path in (parquet_path, str(folder)):
        with pytest.raises(SourceReadError) as info:
            open_source(spark, path, fmt)
        assert "holds parquet files (" in str(info.value)
        assert "--format parquet" in str(info.value)


def test_orc_read_as_csv_is_refused(spark, tmp_path):
    path = tmp_path / "t.orc"
    orc.write_table(pa.table({"a": [1, 2]}), path)
    with pytest.raises(SourceReadError, match="holds orc files"):
        open_source(spark, str(path), "csv")


def test_nanosecond_timestamps_say_what_to_do(spark, tmp_path):
    path = tmp_path / "ns.parquet"
    stamps = pa.array([1, 2], pa.timestamp("ns"))
    pq.write_table(pa.table({"t": stamps}), path, coerce_timestamps=None, version="2.6")
    with pytest.raises(SourceReadError) as info:
        open_source(spark, str(path))
    message = str(info.value)
    assert "TIMESTAMP(NANOS" in message and "nanosAsLong" in message
    assert "--format" not in message
