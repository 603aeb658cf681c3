"""Choosing the scan's reader: Spark's, or the Python workers reading the Parquet files.

Through Spark, ``mapInArrow`` turns the Parquet reader's column batches into rows and the
rows back into Arrow vectors before a Python worker sees them; on a small machine that
conversion costs several times the read itself (``docs/benchmarks.md``). When a table is
nothing but its Parquet files (a Parquet path, or a Delta snapshot read by the deltalake
fallback without partition columns), every column is flat and stored as the value Spark
reads, and no row filter applies, the workers can read the files with pyarrow instead and
give the states the same batches. The configuration key ``reader`` chooses: ``spark``,
``arrow`` (the files, or a clear error saying why not), or ``auto`` (the files when they
are on a local file system and can be read so, else Spark).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import pyarrow.parquet as pq

from spark_explore.errors import InvalidArgumentError
from spark_explore.scan.file_batches import leaf_place, open_file, schema_problem
from spark_explore.scan.file_tasks import FileSplit, max_split_bytes, plan_tasks
from spark_explore.scan.plan import ScanPlan

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from spark_explore.readers import Source

_SIZE = re.compile(r"^\s*(\d+)\s*([kmgtp]?)i?b?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class FileScan:
    """The file reader's work: the tasks' byte ranges and the session time zone."""

    tasks: tuple[tuple[FileSplit, ...], ...]
    time_zone: str


@dataclass(frozen=True)
class ReaderChoice:
    """The reader a profile uses: ``scan`` for the file reader, None for Spark's; ``note``
    says which and why, for the report."""

    scan: FileScan | None
    note: str


def choose_reader(
    spark: SparkSession, source: Source, plan: ScanPlan, where: str | None
) -> ReaderChoice:
    """Decide how the profile of ``source`` reads it, following ``plan.config.reader``.

    Raises
    ------
    InvalidArgumentError
        ``reader`` is ``arrow`` and the source cannot be read that way (code
        ``READER_NOT_APPLICABLE``); the message says why.
    """
    wanted = plan.config.reader
    if wanted == "spark":
        return ReaderChoice(None, "Read by Spark (reader: spark).")
    files = source.data_files or ()
    sizes: list[int] = []
    problem = _source_problem(source, where, local_only=wanted == "auto")
    if problem is None:
        problem = _files_problem(files, plan, _time_zone(spark), sizes)
    if problem is None:
        scan = _file_scan(spark, files, sizes)
        note = (
            f"Read by the Python workers with pyarrow, not by Spark ({len(scan.tasks)} tasks "
            f"over {len(files)} Parquet file(s); reader: {wanted})."
        )
        return ReaderChoice(scan, note)
    if wanted == "arrow":
        raise InvalidArgumentError(
            f"reader: arrow cannot read {source.spec}: {problem}. Use reader: spark or auto.",
            code="READER_NOT_APPLICABLE",
        )
    return ReaderChoice(None, f"Read by Spark, because {problem}.")


def _source_problem(source: Source, where: str | None, local_only: bool) -> str | None:
    """Why the file reader cannot stand in for Spark's on this source as a whole, or None."""
    files = source.data_files
    if files is None:
        return f"the source ({source.format}) is not a set of plain Parquet files"
    if where is not None:
        return "a row filter (where) is applied by Spark"
    if not files:
        return "the table has no data files"
    if local_only and not all(_is_local(path) for path in files):
        return (
            "its files are not on a local file system (set reader: arrow if the workers can "
            "read them with pyarrow)"
        )
    return None


def _files_problem(
    files: Sequence[str], plan: ScanPlan, time_zone: str, sizes: list[int]
) -> str | None:
    """Why some data file cannot be read by the file reader as Spark reads it, or None.

    Each file is opened once, for its footer (a few hundred microseconds a local file);
    its size is appended to ``sizes`` for the scan's tasks.
    """
    for path in files:
        try:
            with open_file(path) as handle:
                sizes.append(handle.size())
                schema = pq.ParquetFile(handle).schema_arrow
        except (OSError, ValueError) as exc:
            return f"pyarrow cannot open {path} ({exc})"
        for leaf in plan.leaves:  # a column a file lacks reads as null, as in Spark ...
            if leaf_place(schema, leaf.path) is None and _partition_directory(path, leaf.path[0]):
                # ... but not a partition column, whose value lives in the path
                return f"column `{leaf.name}` is a partition column, not stored in the data files"
        problem = schema_problem(schema, plan, time_zone)
        if problem is not None:
            return f"{problem} ({path})"
    return None


def _partition_directory(path: str, column: str) -> bool:
    """Whether a folder of ``path`` is named ``column=value`` (Hive-style partitioning)."""
    folders = urlparse(path).path.split("/")[:-1]
    return any(folder.lower().startswith(column.lower() + "=") for folder in folders)


def _file_scan(spark: SparkSession, files: Sequence[str], sizes: Sequence[int]) -> FileScan:
    open_cost = _conf_bytes(spark, "spark.sql.files.openCostInBytes", 4 * 2**20)
    split = max_split_bytes(
        sizes,
        _conf_bytes(spark, "spark.sql.files.maxPartitionBytes", 128 * 2**20),
        open_cost,
        _parallelism(spark),
    )
    tasks = plan_tasks(list(zip(files, sizes)), split, open_cost)
    return FileScan(tuple(tasks), _time_zone(spark))


def _is_local(path: str) -> bool:
    return urlparse(path).scheme in ("", "file")


def _time_zone(spark: SparkSession) -> str:
    return spark.conf.get("spark.sql.session.timeZone", None) or "UTC"


def _conf_bytes(spark: SparkSession, key: str, default: int) -> int:
    """A byte-size setting (``134217728``, ``128m``, ``1g`` ...), or ``default``."""
    match = _SIZE.match(spark.conf.get(key, None) or "")
    if match is None:
        return default
    power = " kmgtp".index(match.group(2).lower() or " ")
    return int(match.group(1)) * 1024**power


def _parallelism(spark: SparkSession) -> int:
    """Spark's default parallelism, which a file scan spreads small tables over."""
    for key in ("spark.sql.files.minPartitionNum", "spark.default.parallelism"):
        value = spark.conf.get(key, None)
        if value and value.isdigit():
            return int(value)
    try:
        return int(spark.sparkContext.defaultParallelism)
    except Exception:  # Spark Connect has no SparkContext
        master = spark.conf.get("spark.master", None) or ""
        match = re.fullmatch(r"local\[(\d+)\]", master)
        return int(match.group(1)) if match else os.cpu_count() or 1
