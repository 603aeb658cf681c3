"""Reading tables registered in the session's catalog (Hive metastore, Unity Catalog...)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyspark.errors import ParseException

from spark_explore.errors import (
    InvalidArgumentError,
    SourceNotFoundError,
    SourceReadError,
    UnsupportedSourceError,
)
from spark_explore.readers.source import Source
from spark_explore.readers.spark_errors import SPARK_ERRORS, analysed, condition, summary

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

_NOT_FOUND = {"TABLE_OR_VIEW_NOT_FOUND", "SCHEMA_NOT_FOUND", "CATALOG_NOT_FOUND"}


def read_catalog(spark: SparkSession, name: str, delta_version: int | None = None) -> Source:
    """Open a catalog table by name.

    Parameters
    ----------
    spark
        The session.
    name
        A table name as Spark SQL accepts it: ``tbl``, ``db.tbl``, ``catalog.db.tbl``,
        with backticks around parts that need them.
    delta_version
        A Delta version to time-travel to; needs a Delta table and the Delta connector.

    Returns
    -------
    Source
        The whole table with ``format="table"``.

    Raises
    ------
    SourceNotFoundError
        No such table or view.
    InvalidArgumentError
        ``name`` is not a valid table name (code ``INVALID_TABLE_NAME``).
    UnsupportedSourceError
        ``delta_version`` was given but the table cannot be time-travelled.
    SourceReadError
        Spark cannot read the table.
    """
    try:
        df = analysed(spark.table(name))
    except SPARK_ERRORS as exc:
        raise _table_error(exc, name) from exc
    notes = [f"Read catalog table {name}."]
    reader = None
    if delta_version is not None:
        df = _time_travel(spark, name, delta_version)
        reader = "connector"
        notes.append(f"Delta time travel to version {delta_version}.")
    return Source(
        df=df,
        spec=name,
        format="table",
        delta_version=delta_version,
        delta_reader=reader,
        notes=tuple(notes),
    )


def _time_travel(spark: SparkSession, name: str, version: int) -> DataFrame:
    # The name has already resolved as a table above, so it is a valid identifier here.
    try:
        df = analysed(spark.sql(f"SELECT * FROM {name} VERSION AS OF {int(version)}"))
    except SPARK_ERRORS as exc:
        raise UnsupportedSourceError(
            f"Cannot read version {version} of table {name}: {summary(exc)}. Time travel "
            "needs a Delta table and a session with the Delta connector.",
            table=name,
            version=version,
        ) from exc
    return df


def _table_error(exc: BaseException, name: str) -> Exception:
    """Translate a Spark error raised while resolving a table name."""
    if condition(exc) in _NOT_FOUND:
        return SourceNotFoundError(
            f"Table {name} is not in the catalog. Check the name, or pass a path.", table=name
        )
    if isinstance(exc, ParseException):
        return InvalidArgumentError(
            f"`table` {name!r} is not a valid table name: {summary(exc)}",
            code="INVALID_TABLE_NAME",
            table=name,
        )
    return SourceReadError(f"Cannot read table {name}: {summary(exc)}", table=name)
