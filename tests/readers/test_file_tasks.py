"""Scan tasks of the file reader: every row group in exactly one task, sized as Spark's."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from spark_explore.scan.file_batches import split_row_groups
from spark_explore.scan.file_tasks import FileSplit, max_split_bytes, plan_tasks


def test_split_size_follows_spark_formula() -> None:
    mib = 2**20
    # few small files: spread over the cores, but never below the open cost
    assert max_split_bytes([10 * mib] * 2, 128 * mib, 4 * mib, 2) == 14 * mib
    assert max_split_bytes([1000], 128 * mib, 4 * mib, 8) == 4 * mib
    # a large table: capped by maxPartitionBytes
    assert max_split_bytes([10_000 * mib], 128 * mib, 4 * mib, 2) == 128 * mib


@pytest.mark.parametrize("split_bytes", [1, 7, 100, 4096, 10**9])
def test_ranges_tile_every_file_once(split_bytes) -> None:
    files = [("a", 10_000), ("b", 1), ("c", 0), ("d", 4096)]
    tasks = plan_tasks(files, split_bytes, open_cost_bytes=50)
    for path, size in files:
        covered = sorted((s.start, s.length) for task in tasks for s in task if s.path == path)
        position = 0
        for start, length in covered:
            assert start == position and 0 < length <= split_bytes
            position += length
        assert position == size
    for task in tasks:  # a task holds one range, or ranges adding up to about split_bytes
        assert len(task) == 1 or sum(s.length for s in task) <= split_bytes


def test_row_groups_fall_in_exactly_one_range(tmp_path) -> None:
    rng = np.random.default_rng(3)
    table = pa.table({"x": rng.normal(size=20_000), "s": rng.integers(0, 50, 20_000).astype(str)})
    path = tmp_path / "t.parquet"
    pq.write_table(table, path, row_group_size=1_000)
    metadata = pq.ParquetFile(path).metadata
    size = path.stat().st_size
    for split_bytes in (500, 5_000, 40_000, size):
        splits = [s for task in plan_tasks([(str(path), size)], split_bytes, 0) for s in task]
        owned = sorted(i for s in splits for i in split_row_groups(metadata, s))
        assert owned == list(range(metadata.num_row_groups))


def test_split_holds_half_open_range() -> None:
    split = FileSplit("f", 100, 50)
    assert split.holds(100) and split.holds(149.5)
    assert not split.holds(150) and not split.holds(99.9)


def test_worker_refuses_a_file_changed_since_the_check(tmp_path) -> None:
    from pyspark.sql.types import LongType, StructField, StructType

    from spark_explore.scan.file_batches import FileProjection
    from spark_explore.scan.plan import plan_from_schema

    plan = plan_from_schema(StructType([StructField("x", LongType())]))
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"x": pa.array([1, 2], pa.int32())}), path)  # Spark: bigint
    split = FileSplit(str(path), 0, path.stat().st_size)
    with pytest.raises(ValueError, match="t.parquet: column `x` is int32"):
        list(FileProjection(plan, 1000, "UTC").read([split]))
    pq.write_table(pa.table({"x": pa.array([1, 2], pa.int64())}), path)
    split = FileSplit(str(path), 0, path.stat().st_size)
    (batch,) = FileProjection(plan, 1000, "UTC").read([split])
    assert batch.column("_c0").to_pylist() == [1, 2]
