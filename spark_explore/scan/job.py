"""The single Spark job of a profile: project, fold each partition, merge in a tree.

Data flow::

    table ─► select(leaf slots, row key) ─► mapInArrow: one partial bundle per partition
          ─► groupBy(bucket).applyInArrow: merge within each bucket (on the executors)
          ─► collect the bucket bundles ─► merge on the driver

With the file reader (:mod:`spark_explore.scan.file_reader`) the first stage is instead a
range of task ids, and each task reads its byte ranges of the table's Parquet files in the
Python worker and builds the same projection there (:mod:`spark_explore.scan.file_batches`);
the merge is the same.

Only DataFrame operations are used (no RDD API), so the same code runs on classic sessions,
Spark Connect and Databricks shared or serverless compute. The table is read once; the
stage after the shuffle reads only the partial states.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyspark
from pyspark.errors import PySparkException
from pyspark.sql import functions as F

from spark_explore.columns import ARRAY, BINARY, MAP, UNSUPPORTED, Leaf
from spark_explore.scan.file_batches import FileProjection
from spark_explore.scan.file_reader import FileScan
from spark_explore.scan.partition import (
    PARTIAL_DDL,
    merge_partial_batches,
    merge_partial_table,
    merge_payloads,
    partition_states,
)
from spark_explore.scan.plan import KEY_SLOT, ScanPlan, hash_slot_of
from spark_explore.scan.progress import scan_progress
from spark_explore.states.bundle import StateBundle

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

#: Partial states are merged in at most this many groups on the executors before the driver
#: merges the groups' results, bounding both the driver's work and each merge task's input.
MERGE_BUCKETS = 32

#: Fewer groups are used when their merged states would exceed this many bytes in all: the
#: driver collects them at once, and a wide table's states are tens of MiB each.
MERGE_RESULT_BYTES = 256 * 2**20

#: Arrow batches also end at this many bytes, so that a merge task takes a group's partial
#: states a few at a time (wide states are tens of MiB) and no scan batch of long strings
#: grows without bound; the scan's batches of ``batch_cells`` values stay well below it.
BATCH_BYTES = 64 * 2**20


def run_scan(df: DataFrame, plan: ScanPlan, *, progress: bool | None = None) -> StateBundle:
    """Read ``df`` once and return the merged states of ``plan``.

    Parameters
    ----------
    df
        The (selected, filtered) table.
    plan
        Leaves and states, from :func:`spark_explore.scan.plan.plan_from_schema` on
        ``df.schema``.
    progress
        Show a progress bar (default: only when stderr is a terminal).
    """
    projected, batch_rows = project(df, plan)
    spark = df.sparkSession
    fold = partition_states(plan, MERGE_BUCKETS, MERGE_RESULT_BYTES)
    with session_conf(spark, batch_conf(batch_rows)), scan_progress(spark, progress):
        return _fold_and_merge(projected, fold, plan)


def run_file_scan(
    spark: SparkSession, scan: FileScan, plan: ScanPlan, *, progress: bool | None = None
) -> StateBundle:
    """Read a table's Parquet files once, in the Python workers, and return the merged
    states of ``plan``: the same states as :func:`run_scan` on the same rows.

    One task per :attr:`FileScan.tasks` entry reads its byte ranges with pyarrow
    (:class:`~spark_explore.scan.file_batches.FileProjection`); the partial states are
    merged as in :func:`run_scan`.
    """
    projection = FileProjection(plan, _batch_rows(plan), scan.time_zone)
    tasks = scan.tasks

    def read(ids: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in ids:
            for task in batch.column(0).to_pylist():
                yield from projection.read(tasks[task])

    fold = partition_states(plan, MERGE_BUCKETS, MERGE_RESULT_BYTES, read)
    ids = spark.range(0, len(tasks), 1, max(1, len(tasks)))
    with scan_progress(spark, progress):
        return _fold_and_merge(ids, fold, plan)


def _fold_and_merge(frame: DataFrame, fold: Callable[..., Any], plan: ScanPlan) -> StateBundle:
    spark = frame.sparkSession
    rows = (
        frame.mapInArrow(fold, PARTIAL_DDL)
        .groupBy("bucket")
        .applyInArrow(merge_function(spark.version), PARTIAL_DDL)
        .collect()
    )
    if not rows:  # a table with no partitions at all
        return plan.empty_bundle()
    return merge_payloads(row["payload"] for row in rows)


def merge_function(spark_version: str) -> Callable[..., Any]:
    """The merge stage's ``applyInArrow`` function: it takes each group's batches one at a
    time when both this client and the Spark that runs it accept that form (4.1 and later),
    and the whole group as one table before."""
    if min(_release(spark_version), _release(pyspark.__version__)) >= (4, 1):
        return merge_partial_batches
    return merge_partial_table


def _release(version: str) -> tuple[int, int]:
    """``(major, minor)`` of a version string such as ``4.1.0`` or ``4.0.1-SNAPSHOT``."""
    match = re.match(r"(\d+)\.(\d+)", version)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def project(df: DataFrame, plan: ScanPlan) -> tuple[DataFrame, int]:
    """The columns the scan ships to the Python workers, and the rows per Arrow batch.

    One column per leaf (sizes for arrays, maps and binaries), the row key, and a 64-bit
    hash of each string and decimal leaf for its distinct count. Batches hold about
    ``batch_cells`` values.
    """
    leaf_columns = [_leaf_column(leaf) for leaf in plan.leaves]
    hashes = [F.xxhash64(F.col(leaf.slot)).alias(hash_slot_of(leaf)) for leaf in plan.hashed_leaves]
    leaves = [leaf.slot for leaf in plan.leaves]
    hash_slots = [hash_slot_of(leaf) for leaf in plan.hashed_leaves]
    projected = (
        df.select(*leaf_columns)
        .select("*", *hashes)
        .select(*leaves, _row_key(plan).alias(KEY_SLOT), *hash_slots)
    )
    return projected, _batch_rows(plan)


def _batch_rows(plan: ScanPlan) -> int:
    """Rows per Arrow batch: about ``batch_cells`` values of the projection's columns (one
    per leaf, the row key, one hash per hashed leaf)."""
    width = len(plan.leaves) + 1 + len(plan.hashed_leaves)
    return max(1_000, plan.config.batch_cells // width)


def _field(leaf: Leaf) -> Column:
    column = F.col("`" + leaf.path[0].replace("`", "``") + "`")
    for name in leaf.path[1:]:
        column = column.getField(name)
    return column


def _leaf_column(leaf: Leaf) -> Column:
    value = _field(leaf)
    if leaf.role in (ARRAY, MAP):
        value = F.when(value.isNotNull(), F.size(value))
    elif leaf.role == BINARY:
        value = F.length(value)
    elif leaf.role == UNSUPPORTED:
        value = F.when(value.isNotNull(), F.lit(True))
    return value.alias(leaf.slot)


def _row_key(plan: ScanPlan) -> Column:
    """A 64-bit hash of the row's leaves and the seed: the sampler's random key.

    Derived from the values, not from partition ids, so the sample does not depend on how
    the table is split; identical rows share a key. Each leaf enters in order, a string or
    decimal leaf by its own 64-bit hash (already computed for its distinct count), which
    spares hashing its bytes a second time with the row's running seed.
    """
    return F.xxhash64(*(F.col(slot) for slot in plan.key_slots), F.lit(plan.config.seed))


def batch_conf(batch_rows: int) -> dict[str, str]:
    """The session settings that size the scan's Arrow batches."""
    return {
        "spark.sql.execution.arrow.maxRecordsPerBatch": str(batch_rows),
        "spark.sql.execution.arrow.maxBytesPerBatch": str(BATCH_BYTES),
    }


@contextlib.contextmanager
def session_conf(spark: SparkSession, conf: Mapping[str, str]) -> Iterator[None]:
    """Set SQL configuration values for the duration of a block, then restore them.

    A setting the session refuses is left as it is (Databricks serverless compute accepts
    only some): these settings tune the scan, and it is correct without them.
    """
    previous: dict[str, str | None] = {}
    for key, value in conf.items():
        old = spark.conf.get(key, None)
        with contextlib.suppress(PySparkException):
            spark.conf.set(key, value)
            previous[key] = old
    try:
        yield
    finally:
        for key, old in previous.items():
            if old is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, old)
