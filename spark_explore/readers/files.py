"""Reading Parquet, CSV, JSON and ORC paths with Spark's own readers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from spark_explore.errors import EmptySourceError, SourceNotFoundError, SourceReadError
from spark_explore.readers.detect import local_data_files
from spark_explore.readers.source import Source
from spark_explore.readers.spark_errors import (
    SPARK_ERRORS,
    analysed,
    condition,
    is_missing_path,
    summary,
)
from spark_explore.readers.spec import Location

if TYPE_CHECKING:
    from pathlib import Path

    from pyspark.sql import SparkSession

_CSV_OPTIONS = {"header": "true", "inferSchema": "true"}
_TEXT_FORMATS = ("csv", "json")
#: the first bytes of the binary formats Spark reads, which it would read as text too
_MAGIC = {b"PAR1": "parquet", b"ORC": "orc"}


def read_files(spark: SparkSession, location: Location, fmt: str) -> Source:
    """Open a path of Parquet, CSV, JSON or ORC files.

    Parameters
    ----------
    spark
        The session.
    location
        The located path (a file or a folder of files, possibly Hive-partitioned).
    fmt
        ``"parquet"``, ``"csv"``, ``"json"`` or ``"orc"``.

    Returns
    -------
    Source
        The whole table, all columns, unfiltered.

    Raises
    ------
    SourceNotFoundError
        The path does not exist.
    EmptySourceError
        The path holds no data files Spark can infer a schema from.
    SourceReadError
        The files cannot be read as ``fmt``.
    """
    if fmt in _TEXT_FORMATS and location.local_path is not None:
        _refuse_binary_files(location.local_path, location.spec, fmt)
    reader = spark.read.format(fmt)
    if fmt == "csv":
        reader = reader.options(**_CSV_OPTIONS)
    try:
        df = analysed(reader.load(location.spark_path))
        names = df.schema.fieldNames()
    except SPARK_ERRORS as exc:
        raise _read_error(exc, location, fmt) from exc
    if fmt == "json" and names == ["_corrupt_record"]:
        raise SourceReadError(
            f"{location.spec} is not JSON: no line parsed as a JSON object. "
            "Pass the right --format.",
            path=location.spec,
            format=fmt,
        )
    notes = [f"Opened {location.spec} as {fmt}."]
    if fmt == "csv":
        notes.append(
            "CSV read with header=true and inferSchema=true (Spark reads the data once more "
            "to infer column types)."
        )
    if location.local_path is not None and (location.local_path / "_delta_log").is_dir():
        notes.append(
            f"{location.spec} is a Delta table read as plain {fmt}: its log is ignored, so "
            "files the log has removed are read too."
        )
    files = tuple(df.inputFiles()) if fmt == "parquet" else None
    return Source(df=df, spec=location.spec, format=fmt, notes=tuple(notes), data_files=files)


def _refuse_binary_files(path: Path, spec: str, fmt: str) -> None:
    """Refuse a local Parquet or ORC file asked to be read as CSV or JSON.

    Spark's CSV reader takes any bytes, so a Parquet file read as CSV becomes one string
    column named after its binary header instead of an error. The first data file's
    leading bytes tell the two apart.
    """
    first = path if path.is_file() else next(local_data_files(path), None)
    if first is None:
        return
    with open(first, "rb") as handle:
        head = handle.read(4)
    for magic, found in _MAGIC.items():
        if head.startswith(magic):
            raise SourceReadError(
                f"{spec} holds {found} files ({first.name}), not {fmt}. Pass "
                f"--format {found}, or leave --format out to detect it.",
                path=spec,
                format=fmt,
            )


def _read_error(exc: BaseException, location: Location, fmt: str) -> Exception:
    """Translate a Spark error raised while opening files."""
    if is_missing_path(exc):
        return SourceNotFoundError(f"Path {location.spec} does not exist.", path=location.spec)
    if condition(exc) == "UNABLE_TO_INFER_SCHEMA":
        return EmptySourceError(
            f"{location.spec} holds no {fmt} data files to read (files starting with '_' or "
            "'.' are ignored).",
            path=location.spec,
        )
    if "PARQUET_TYPE_ILLEGAL" in summary(exc):  # the format is right, a column's type is not
        hint = "Spark cannot read that column type; rewrite the column in a type it reads"
        if "NANOS" in summary(exc):
            hint += (
                " (nanosecond timestamps as microseconds), or set "
                "spark.sql.legacy.parquet.nanosAsLong=true to read them as integers"
            )
        return SourceReadError(
            f"Cannot read {location.spec}: {summary(exc)}. {hint}.",
            path=location.spec,
            format=fmt,
        )
    return SourceReadError(
        f"Cannot read {location.spec} as {fmt}: {summary(exc)}. Check the file or pass the "
        "right --format.",
        path=location.spec,
        format=fmt,
    )
