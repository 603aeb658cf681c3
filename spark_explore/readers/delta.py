"""Reading Delta tables: the Delta Spark connector where present, else the deltalake fallback."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from spark_explore.errors import InvalidArgumentError, SourceNotFoundError, SourceReadError
from spark_explore.readers.delta_scan import file_path, snapshot_frame
from spark_explore.readers.delta_snapshot import load_snapshot
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
    from pyspark.sql import DataFrame, SparkSession

DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
_MISSING_TABLE = {"DELTA_MISSING_DELTA_TABLE", "DELTA_TABLE_NOT_FOUND", "DELTA_PATH_DOES_NOT_EXIST"}


def has_delta_connector(spark: SparkSession) -> bool:
    """Whether the session reads Delta itself: Databricks, or the Delta session extension."""
    if os.environ.get("DATABRICKS_RUNTIME_VERSION"):
        return True
    try:
        extensions = spark.conf.get("spark.sql.extensions", "") or ""
    except SPARK_ERRORS:  # some Spark Connect servers refuse to show static settings
        return False
    return DELTA_EXTENSION in extensions


def read_delta(spark: SparkSession, location: Location, version: int | None = None) -> Source:
    """Open a Delta table at a path.

    Parameters
    ----------
    spark
        The session.
    location
        The table root.
    version
        The version to read (time travel); the latest when None.

    Returns
    -------
    Source
        The whole snapshot, with ``delta_version``, ``delta_reader`` and, for the fallback,
        ``row_estimate`` set.

    Raises
    ------
    SourceNotFoundError
        No Delta table at the path.
    InvalidArgumentError
        ``version`` does not exist (code ``DELTA_VERSION_NOT_FOUND``).
    UnsupportedSourceError
        The fallback is in use and the table needs a feature it cannot honour (column
        mapping, deletion vectors, unknown reader features).
    SourceReadError
        The table cannot be read.

    Notes
    -----
    The fallback resolves the snapshot on the driver with ``deltalake``; a ``where`` filter
    is applied by Spark afterwards, so it does not prune partitions.
    """
    if has_delta_connector(spark):
        return _read_with_connector(spark, location, version)
    snapshot = load_snapshot(location, version)
    df = snapshot_frame(spark, location.spark_path, snapshot)
    note = (
        f"Delta table read with the deltalake fallback, because this Spark session has no "
        f"Delta connector: deltalake resolved version {snapshot.version} and Spark read its "
        f"{len(snapshot.files)} active data files in one Parquet scan."
    )
    return Source(
        df=df,
        spec=location.spec,
        format="delta",
        delta_version=snapshot.version,
        delta_reader="deltalake",
        row_estimate=snapshot.row_estimate,
        notes=(note,),
        data_files=None
        if snapshot.partition_columns
        else tuple(file_path(location.spark_path, f.path) for f in snapshot.files),
    )


def _read_with_connector(spark: SparkSession, location: Location, requested: int | None) -> Source:
    # Pin the latest version when none is requested, so the version reported is the one read.
    version = _latest_version(spark, location.spark_path) if requested is None else requested
    try:
        df = _connector_frame(spark, location.spark_path, version)
    except SPARK_ERRORS as exc:
        raise _connector_error(exc, location, requested) from exc
    read = f"version {version}" if version is not None else "the latest version"
    return Source(
        df=df,
        spec=location.spec,
        format="delta",
        delta_version=version,
        delta_reader="connector",
        notes=(f"Delta table read with the Delta Spark connector, at {read}.",),
    )


def _connector_frame(spark: SparkSession, path: str, version: int | None) -> DataFrame:
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    return analysed(reader.load(path))


def _latest_version(spark: SparkSession, path: str) -> int | None:
    """The table's latest version from its history, or None if the history is unavailable."""
    name = "delta.`" + path.replace("`", "``") + "`"
    try:
        row = spark.sql(f"DESCRIBE HISTORY {name} LIMIT 1").select("version").first()
    except SPARK_ERRORS:  # the read below reports a missing or unreadable table properly
        return None
    return None if row is None else int(row[0])


def _connector_error(exc: BaseException, location: Location, requested: int | None) -> Exception:
    spec = location.spec
    if is_missing_path(exc) or condition(exc) in _MISSING_TABLE:
        return SourceNotFoundError(f"No Delta table at {spec}: {summary(exc)}", path=spec)
    if requested is not None and "VERSION" in condition(exc):
        return InvalidArgumentError(
            f"Version {requested} of the Delta table {spec} cannot be read: {summary(exc)}",
            code="DELTA_VERSION_NOT_FOUND",
            path=spec,
            version=requested,
        )
    return SourceReadError(
        f"The Delta connector cannot read {spec}: {summary(exc)}", path=spec, format="delta"
    )
