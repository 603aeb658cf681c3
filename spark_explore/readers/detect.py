"""Detecting a path's format: Delta log, file extension, or the extension of the data files."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from spark_explore.errors import (
    EmptySourceError,
    InvalidArgumentError,
    SourceNotFoundError,
    SourceReadError,
)
from spark_explore.readers.spark_errors import SPARK_ERRORS, is_missing_path, summary
from spark_explore.readers.spec import Location, format_from_name, is_hidden

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# Enough data files to see that a folder holds one format, without walking a huge tree.
_MAX_FILES_EXAMINED = 1000
_DELTA_NOTE = "Delta table detected: {spec} has a _delta_log folder."


def detect_format(spark: SparkSession, location: Location) -> tuple[str, str]:
    """Work out the format of a path source.

    Parameters
    ----------
    spark
        The session, used to list remote paths with the cluster's own credentials.
    location
        The located path.

    Returns
    -------
    tuple of (str, str)
        The format and a note saying how it was detected.

    Raises
    ------
    SourceNotFoundError
        The path does not exist.
    EmptySourceError
        The path is a folder without data files.
    InvalidArgumentError
        With code ``UNKNOWN_FORMAT`` when the format cannot be told apart.
    SourceReadError
        The path could not be listed.
    """
    local = location.local_path
    if local is None:
        return _detect_remote(spark, location)
    if (local / "_delta_log").is_dir():
        return "delta", _DELTA_NOTE.format(spec=location.spec)
    if local.is_dir():
        return _format_of_files(location, _local_file_names(local))
    return _format_of_files(location, [local.name], single=True)


def _detect_remote(spark: SparkSession, location: Location) -> tuple[str, str]:
    """Detect the format of a path that is not on this machine, by asking Spark."""
    if _remote_has_delta_log(spark, location):  # first: Delta folders may be named *.parquet
        return "delta", _DELTA_NOTE.format(spec=location.spec)
    name = location.spark_path.rstrip("/").rsplit("/", 1)[-1]
    if format_from_name(name) is not None:
        return _format_of_files(location, [name], single=True)
    return _format_of_files(location, _remote_file_names(spark, location))


def _format_of_files(location: Location, names: list[str], single: bool = False) -> tuple[str, str]:
    """Pick the one format the data files' extensions agree on."""
    if not names:
        raise EmptySourceError(
            f"{location.spec} holds no data files (files starting with '_' or '.' are ignored).",
            path=location.spec,
        )
    formats = sorted({f for f in map(format_from_name, names) if f is not None})
    if len(formats) == 1:
        fmt = formats[0]
        if single:
            return fmt, f"Format {fmt!r} taken from the extension of {location.spec}."
        return fmt, f"Format {fmt!r} detected from the extensions of the files in {location.spec}."
    found = " and ".join(formats) if formats else f"no known extension (e.g. {names[0]!r})"
    raise InvalidArgumentError(
        f"Cannot tell the format of {location.spec}: its files have {found}. Pass --format "
        "(delta, parquet, csv, json or orc).",
        code="UNKNOWN_FORMAT",
        path=location.spec,
        found=formats,
    )


def local_data_files(path: Path) -> Iterator[Path]:
    """The data files in a local folder, in sorted order, skipping hidden files and folders
    (those Spark ignores), one at a time so that a caller can stop early."""
    for root, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not is_hidden(d))
        for name in sorted(files):
            if not is_hidden(name):
                yield Path(root) / name


def _local_file_names(path: Path) -> list[str]:
    """Names of the first data files in a local folder, enough to tell its format."""
    return [file.name for file in itertools.islice(local_data_files(path), _MAX_FILES_EXAMINED)]


def _remote_has_delta_log(spark: SparkSession, location: Location) -> bool:
    """Whether a remote path has a ``_delta_log`` folder, asked of Spark's file system."""
    log = location.spark_path.rstrip("/") + "/_delta_log"
    try:
        spark.read.format("binaryFile").load(log).inputFiles()
    except SPARK_ERRORS as exc:
        if is_missing_path(exc):
            return False
        raise SourceReadError(f"Cannot list {log}: {summary(exc)}", path=location.spec) from exc
    return True


def _remote_file_names(spark: SparkSession, location: Location) -> list[str]:
    """Names of the data files under a remote path, listed by Spark (no data is read)."""
    try:
        files = (
            spark.read.format("binaryFile")
            .option("recursiveFileLookup", "true")
            .load(location.spark_path)
            .inputFiles()
        )
    except SPARK_ERRORS as exc:
        if is_missing_path(exc):
            raise SourceNotFoundError(
                f"Path {location.spec} does not exist.", path=location.spec
            ) from exc
        raise SourceReadError(
            f"Cannot list {location.spec}: {summary(exc)}", path=location.spec
        ) from exc
    return [f.rstrip("/").rsplit("/", 1)[-1] for f in files[:_MAX_FILES_EXAMINED]]
