"""The Python API: profile a DataFrame, or a table into an output folder.

>>> from spark_explore.api import profile                    # doctest: +SKIP
>>> result = profile(spark.read.parquet("data/penguins.parquet"))  # doctest: +SKIP
>>> result.columns["bill_length_mm"]["mean"]                  # doctest: +SKIP
43.92192982456141
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from spark_explore.config import ProfileOptions, ScanConfig
from spark_explore.errors import EmptySourceError, SourceReadError
from spark_explore.protocols.base import ProtocolConfig, ProtocolContext
from spark_explore.protocols.registry import run_protocols
from spark_explore.scan.plan import ScanPlan, plan_from_schema
from spark_explore.states.bundle import StateBundle
from spark_explore.summary import column_summaries, correlation_summary

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from spark_explore.readers import Source


@dataclass
class ProfileResult:
    """A finished profile: the merged states, the plan that produced them, and results."""

    bundle: StateBundle
    plan: ScanPlan
    seconds: float = 0.0
    source: dict[str, Any] = field(default_factory=dict)
    protocol_names: list[str] | None = None
    protocol_config: ProtocolConfig = field(default_factory=ProtocolConfig)

    @property
    def rows(self) -> int:
        return int(self.bundle["table"].rows)

    @property
    def columns(self) -> dict[str, dict[str, Any]]:
        return column_summaries(self.bundle, self.plan)

    @property
    def correlations(self) -> dict[str, Any]:
        return correlation_summary(self.bundle, self.plan)

    @cached_property
    def protocols(self) -> dict[str, Any]:
        """Each exploration protocol's report, completed from the merged states."""
        context = ProtocolContext(self.bundle, self.plan, self.protocol_config)
        return run_protocols(context, self.protocol_names)


def profile(
    df: DataFrame, config: ScanConfig | None = None, *, progress: bool | None = False
) -> ProfileResult:
    """Profile every column of ``df`` in one Spark job.

    Parameters
    ----------
    df
        Any DataFrame, classic or Spark Connect.
    config
        Scan parameters; defaults of :class:`~spark_explore.config.ScanConfig` when None.
    progress
        Show a progress bar on stderr (None: only when stderr is a terminal).

    Raises
    ------
    EmptySourceError
        ``df`` has no columns.
    """
    from spark_explore.scan.job import run_scan

    plan = _plan(df, config)
    return _timed(plan, lambda: run_scan(df, plan, progress=progress))


def _scan_read_by_spark(source: Source, plan: ScanPlan, progress: bool | None) -> StateBundle:
    """Run the scan through Spark's reader; a data file it cannot read is bad input."""
    from spark_explore.readers.spark_errors import SPARK_ERRORS, unreadable_file_message
    from spark_explore.scan.job import run_scan

    try:
        return run_scan(source.df, plan, progress=progress)
    except SPARK_ERRORS as exc:
        message = unreadable_file_message(exc)
        if message is None:
            raise
        raise SourceReadError(f"Cannot read {source.spec}: {message}", path=source.spec) from exc


def _plan(df: DataFrame, config: ScanConfig | None) -> ScanPlan:
    if not df.columns:
        raise EmptySourceError("the table has no columns to profile.")
    return plan_from_schema(df.schema, config)


def _timed(plan: ScanPlan, scan: Callable[[], StateBundle]) -> ProfileResult:
    """Run the scan and wrap its merged states, with the seconds it took."""
    start = time.perf_counter()
    bundle = scan()
    return ProfileResult(bundle, plan, seconds=time.perf_counter() - start)


def profile_table(
    spark: SparkSession, options: ProfileOptions, *, progress: bool | None = None
) -> tuple[ProfileResult, Source]:
    """Open the source named by ``options`` and profile it (nothing is written).

    Raises
    ------
    EmptySourceError
        The table, after the row filter, has no rows.
    """
    from spark_explore.readers import open_source
    from spark_explore.scan.file_reader import choose_reader
    from spark_explore.scan.job import run_file_scan

    source = open_source(
        spark,
        options.table,
        options.format,
        columns=options.columns,
        where=options.where,
        delta_version=options.delta_version,
    )
    plan = _plan(source.df, options.scan)
    reader = choose_reader(spark, source, plan, options.where)
    file_scan = reader.scan
    if file_scan is None:
        result = _timed(plan, lambda: _scan_read_by_spark(source, plan, progress))
    else:
        result = _timed(plan, lambda: run_file_scan(spark, file_scan, plan, progress=progress))
    result.source = {
        "table": source.spec,
        "format": source.format,
        "delta_version": source.delta_version,
        "delta_reader": source.delta_reader,
        "columns": list(options.columns) if options.columns else None,
        "where": options.where,
        "reader": "spark" if reader.scan is None else "arrow",
        "notes": [*source.notes, reader.note],
    }
    if result.rows == 0:
        condition = " matching the filter" if options.where else ""
        raise EmptySourceError(
            f"`{options.table}` has no rows{condition}; there is nothing to profile.",
            table=options.table,
        )
    return result, source
