"""Executor-side functions of the scan: batches to one partial state, partial states merged.

These run in the Python workers. They log nothing and raise nothing on bad data: a value a
state cannot use is counted, never an error.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable, Iterable, Iterator

import pyarrow as pa

from spark_explore.scan.plan import ScanPlan
from spark_explore.states.batch import Batch
from spark_explore.states.bundle import StateBundle

PARTIAL_SCHEMA = pa.schema([("bucket", pa.int32()), ("payload", pa.binary())])
PARTIAL_DDL = "bucket int, payload binary"

# mallopt parameters, from glibc's malloc.h
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def partition_states(
    plan: ScanPlan,
    buckets: int,
    result_bytes: int,
    read: Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]] | None = None,
) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """A ``mapInArrow`` function that folds a partition's batches into one state bundle.

    It yields exactly one row per partition, empty partitions included (their bundle is the
    identity), keyed by ``partition id % merge_buckets(...)`` for the first level of the
    merge tree. With ``read``, the partition's input is turned into the batches to fold by
    ``read`` (the file reader's task ids into the rows of their files).
    """

    def fold(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        keep_freed_memory()
        bundle = plan.empty_bundle()
        for record_batch in read(batches) if read is not None else batches:
            bundle.update(Batch(record_batch))
        payload = bundle.to_bytes()
        bucket = _partition_id() % merge_buckets(len(payload), buckets, result_bytes)
        yield _row(bucket, payload)

    return fold


def merge_buckets(payload_bytes: int, most: int, result_bytes: int) -> int:
    """How many merge groups a partial state of ``payload_bytes`` joins: at most ``most``,
    and few enough that one merged state per group, all collected on the driver at once,
    stays within about ``result_bytes`` (a group's state is about one partial's size).

    Partitions of one scan may choose differently (their states' sizes differ a little);
    any grouping merges to the same result.
    """
    return max(1, min(most, result_bytes // max(payload_bytes, 1)))


def keep_freed_memory() -> None:
    """Make glibc's allocator keep freed blocks of up to 32 MiB for reuse in this process.

    The states' numpy temporaries are a few MiB per batch each. By default glibc serves
    such blocks with ``mmap`` and unmaps them when freed, so every batch pays page faults
    on fresh memory again, about a sixth of the fold's time. ``mallopt`` with the largest
    mmap threshold glibc accepts and a high trim threshold keeps them in the heap instead;
    the worker's resident memory then stays at its high-water mark, which the batch size
    bounds. A no-op where the C library is not glibc.
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    mallopt(_M_MMAP_THRESHOLD, 32 * 2**20)
    mallopt(_M_TRIM_THRESHOLD, 2**30)


def merge_partial_batches(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """An ``applyInArrow`` function (Spark 4.1 and later) merging the partial bundles of one
    bucket into one, from the group's batches in turn: a worker holds one batch of partial
    states at a time, not the whole group."""
    buckets: list[int] = []

    def payloads() -> Iterator[bytes]:
        for batch in batches:
            buckets.extend(batch.column("bucket").to_pylist()[:1])
            yield from (payload.as_py() for payload in batch.column("payload"))

    merged = merge_payloads(payloads())
    yield _row(buckets[0], merged.to_bytes())


def merge_partial_table(table: pa.Table) -> pa.Table:
    """The ``applyInArrow`` function of Spark 4.0, which passes the whole group as a table."""
    return pa.Table.from_batches(list(merge_partial_batches(iter(table.to_batches()))))


def merge_payloads(payloads: Iterable[bytes]) -> StateBundle:
    """Merge serialized bundles, in the order given (merging is order-independent)."""
    merged: StateBundle | None = None
    for payload in payloads:
        bundle = StateBundle.from_bytes(payload)
        if merged is None:
            merged = bundle
        else:
            merged.merge_in_place(bundle)
    if merged is None:
        raise ValueError("no partial states to merge")
    return merged


def _row(bucket: int, payload: bytes) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays(
        [pa.array([bucket], pa.int32()), pa.array([payload], pa.binary())],
        schema=PARTIAL_SCHEMA,
    )


def _partition_id() -> int:
    from pyspark import TaskContext

    context = TaskContext.get()
    return context.partitionId() if context is not None else 0
