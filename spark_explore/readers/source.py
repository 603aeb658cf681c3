"""The result of opening a table: a DataFrame plus what is known about where it came from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


@dataclass(frozen=True)
class Source:
    """A table opened for profiling.

    Attributes
    ----------
    df
        The rows to profile, already filtered by ``where`` and restricted to the requested
        columns, in table order or in the requested order.
    spec
        The table name or path exactly as the user passed it.
    format
        ``"delta"``, ``"parquet"``, ``"csv"``, ``"json"``, ``"orc"``, or ``"table"`` for a
        catalog table.
    delta_version
        The Delta snapshot version read, or None when it is unknown or not Delta.
    delta_reader
        ``"connector"`` (Delta Spark connector) or ``"deltalake"`` (the delta-rs fallback)
        for Delta sources, else None.
    row_estimate
        Rows in the snapshot before ``where`` is applied, from the Delta log's file
        statistics; None when the statistics are incomplete or the source is not read
        through the fallback.
    notes
        Plain-language notes for the report, such as which reader was used.
    data_files
        The Parquet files that hold exactly the table's rows and stored columns (a Parquet
        path, or a Delta snapshot without partition columns read by the fallback), as URIs
        or absolute paths; None for any other source. The file reader
        (:mod:`spark_explore.scan.file_reader`) may read them instead of Spark.
    """

    df: DataFrame
    spec: str
    format: str
    delta_version: int | None = None
    delta_reader: str | None = None
    row_estimate: int | None = None
    notes: tuple[str, ...] = ()
    data_files: tuple[str, ...] | None = None
