"""Splitting Parquet files into scan tasks, as Spark's file scan does.

When the Python workers read a table's Parquet files themselves (see
:mod:`spark_explore.scan.file_batches`), each scan task takes a few byte ranges of files,
sized and packed the way Spark packs a file scan's partitions (``FilePartition`` in Spark
SQL): files are cut into ranges of at most ``max_split_bytes`` and the ranges, largest
first, are packed into tasks of about that size, each file counting ``open_cost_bytes``
more. A row group belongs to the range that holds its midpoint, as in parquet-mr's
``ParquetInputFormat``, so every row group is read by exactly one task.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class FileSplit:
    """A byte range ``[start, start + length)`` of one data file."""

    path: str
    start: int
    length: int

    def holds(self, midpoint: float) -> bool:
        """Whether a row group whose bytes are centred on ``midpoint`` belongs here."""
        return self.start <= midpoint < self.start + self.length


def max_split_bytes(
    sizes: Sequence[int], max_partition_bytes: int, open_cost_bytes: int, parallelism: int
) -> int:
    """Spark's split size: at most ``max_partition_bytes``, and small enough that the bytes
    (each file counting ``open_cost_bytes`` more) spread over ``parallelism`` tasks, but not
    below ``open_cost_bytes``."""
    total = sum(size + open_cost_bytes for size in sizes)
    per_core = total // max(parallelism, 1)
    return max(1, min(max_partition_bytes, max(open_cost_bytes, per_core)))


def plan_tasks(
    files: Sequence[tuple[str, int]], split_bytes: int, open_cost_bytes: int
) -> list[tuple[FileSplit, ...]]:
    """Cut ``(path, size)`` files into ranges of at most ``split_bytes`` and pack them into
    tasks, largest range first, each task holding about ``split_bytes``. Empty files hold
    no rows (nor a Parquet footer) and get no range."""
    splits = [
        FileSplit(path, start, min(split_bytes, size - start))
        for path, size in files
        for start in range(0, size, split_bytes)
    ]
    splits.sort(key=lambda split: split.length, reverse=True)
    tasks: list[tuple[FileSplit, ...]] = []
    current: list[FileSplit] = []
    current_bytes = 0
    for split in splits:
        if current and current_bytes + split.length > split_bytes:
            tasks.append(tuple(current))
            current, current_bytes = [], 0
        current.append(split)
        current_bytes += split.length + open_cost_bytes
    if current:
        tasks.append(tuple(current))
    return tasks
