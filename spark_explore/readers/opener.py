"""``open_source``: from the user's ``--table`` (and options) to a filtered DataFrame."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING

from spark_explore.errors import InvalidArgumentError
from spark_explore.readers.catalog import read_catalog
from spark_explore.readers.delta import read_delta
from spark_explore.readers.detect import detect_format
from spark_explore.readers.files import read_files
from spark_explore.readers.select import check_columns, check_where, restrict
from spark_explore.readers.source import Source
from spark_explore.readers.spec import TABLE_FORMAT, is_path, locate, normalize_format

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def open_source(
    spark: SparkSession,
    table: str,
    fmt: str | None = None,
    *,
    columns: Sequence[str] | None = None,
    where: str | None = None,
    delta_version: int | None = None,
) -> Source:
    """Open a table for profiling.

    Parameters
    ----------
    spark
        The session: classic or Spark Connect.
    table
        A catalog table name (``db.tbl``) or a path (local, ``file:``, ``s3://``,
        ``abfss://``, ``dbfs:/``...). An existing local path, or anything containing ``/``,
        is a path.
    fmt
        ``"delta"``, ``"parquet"``, ``"csv"``, ``"json"``, ``"orc"`` or ``"table"``
        (force a catalog lookup). When None, a path's format is detected: a ``_delta_log``
        folder means Delta, else the extension of the file or of the data files in the
        folder. CSV is read with ``header=true`` and ``inferSchema=true``.
    columns
        Exact top-level column names to keep, in this order; None keeps all columns in
        table order. Names may hold spaces, dots or backticks.
    where
        A Spark SQL predicate over the table's columns, applied before ``columns``.
    delta_version
        The Delta version to read (time travel); Delta sources only.

    Returns
    -------
    Source
        The DataFrame, already filtered and column-selected, with its metadata. Spark
        analysis has run, so Spark Connect errors surface here rather than in the scan.

    Raises
    ------
    InvalidArgumentError
        A bad argument: code ``UNKNOWN_FORMAT`` for an unknown or undetectable format,
        ``DUPLICATE_COLUMN`` for a column asked for twice, ``DELTA_VERSION_NOT_FOUND``
        for a missing Delta version.
    SourceNotFoundError
        The path or catalog table does not exist.
    EmptySourceError
        The path is a folder without data files.
    SourceReadError
        The source cannot be read in its format.
    UnsupportedSourceError
        A Delta table needs a feature the reader in use cannot honour.
    ColumnNotFoundError
        A requested column is not in the table.
    InvalidFilterError
        ``where`` is not a valid predicate on the table.

    Notes
    -----
    Delta tables are read with the Delta Spark connector when the session has it
    (``spark.sql.extensions`` holds ``io.delta.sql.DeltaSparkSessionExtension``, or on
    Databricks). Otherwise ``deltalake`` resolves the snapshot and Spark reads its active
    files in one Parquet scan; tables with column mapping or deletion vectors are refused.

    Examples
    --------
    >>> source = open_source(spark, "s3://lake/events", columns=["age", "country"],
    ...                      where="year = 2024")  # doctest: +SKIP
    >>> source.format, source.delta_reader  # doctest: +SKIP
    ('delta', 'deltalake')
    """
    name = _check_table(table)
    fmt = normalize_format(fmt)
    wanted = check_columns(columns)
    check_where(where)
    _check_version(delta_version)
    if fmt == TABLE_FORMAT or not is_path(name):
        source = read_catalog(spark, name, delta_version)
    else:
        source = _read_path(spark, name, fmt, delta_version)
    return dataclasses.replace(source, df=restrict(source.df, wanted, where))


def _read_path(spark: SparkSession, table: str, fmt: str | None, version: int | None) -> Source:
    location = locate(table)
    detected: tuple[str, ...] = ()
    if fmt is None:
        fmt, note = detect_format(spark, location)
        detected = (note,)
    if version is not None and fmt != "delta":
        raise InvalidArgumentError(
            f"`delta_version` applies to Delta tables only, and {table} is read as {fmt}.",
            code="DELTA_VERSION_NOT_APPLICABLE",
            format=fmt,
        )
    if fmt == "delta":
        source = read_delta(spark, location, version)
    else:
        source = read_files(spark, location, fmt)
    return dataclasses.replace(source, notes=detected + source.notes)


def _check_table(table: str) -> str:
    if not isinstance(table, str) or not table.strip():
        raise InvalidArgumentError(
            f"`table` must be a table name or a path, got {table!r}.", got=repr(table)
        )
    return table.strip()


def _check_version(version: int | None) -> None:
    if version is None:
        return
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise InvalidArgumentError(
            f"`delta_version` must be a non-negative integer, got {version!r}.",
            got=repr(version),
        )
