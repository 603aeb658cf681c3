"""The merge tree's grouping and its applyInArrow functions, in both of their forms."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from pyspark.sql.pandas.typehints import infer_group_arrow_eval_type_from_func
from pyspark.sql.pandas.types import from_arrow_schema
from pyspark.util import PythonEvalType

from spark_explore.config import ScanConfig
from spark_explore.scan.job import merge_function, session_conf
from spark_explore.scan.partition import (
    PARTIAL_SCHEMA,
    merge_buckets,
    merge_partial_batches,
    merge_partial_table,
    merge_payloads,
)
from spark_explore.scan.plan import KEY_SLOT, plan_from_schema
from spark_explore.states.batch import Batch

MIB = 2**20


@pytest.mark.parametrize(
    ("payload_mib", "buckets"), [(0, 32), (2.1, 32), (8, 32), (9, 28), (33.4, 7), (300, 1)]
)
def test_fewer_buckets_for_larger_states(payload_mib, buckets) -> None:
    assert merge_buckets(int(payload_mib * MIB), 32, 256 * MIB) == buckets


def _payloads(parts: int) -> list[bytes]:
    """Serialized partial bundles of ``parts`` slices of one numeric table."""
    rng = np.random.default_rng(7)
    table = pa.table({"x": rng.normal(size=600), "y": rng.exponential(size=600)})
    plan = plan_from_schema(from_arrow_schema(table.schema), ScanConfig())
    table = table.rename_columns([plan.leaf(name).slot for name in table.column_names])
    table = table.append_column(KEY_SLOT, pa.array(rng.integers(-(2**62), 2**62, 600)))
    payloads = []
    for piece in np.array_split(np.arange(600), parts):
        bundle = plan.empty_bundle()
        bundle.update(Batch(table.take(piece).combine_chunks().to_batches()[0]))
        payloads.append(bundle.to_bytes())
    return payloads


def _group(payloads: list[bytes], bucket: int) -> pa.Table:
    return pa.table({"bucket": [bucket] * len(payloads), "payload": payloads}, PARTIAL_SCHEMA)


def test_batch_and_table_forms_merge_like_the_driver() -> None:
    payloads = _payloads(5)
    expected = merge_payloads(payloads)
    group = _group(payloads, bucket=3)
    (batch,) = merge_partial_batches(iter(group.to_batches(max_chunksize=2)))
    for result in (pa.Table.from_batches([batch]), merge_partial_table(group)):
        assert result.schema == PARTIAL_SCHEMA
        assert result.column("bucket").to_pylist() == [3]
        (payload,) = result.column("payload").to_pylist()
        merged = merge_payloads([payload])
        assert list(merged) == list(expected) and merged["table"].n == 600
        for key, state in merged.items():
            assert state.n == expected[key].n, key
            if not key.startswith("kll/"):  # KLL compaction flips coins
                assert state.to_bytes() == expected[key].to_bytes(), key


def test_the_batch_form_needs_spark_4_1() -> None:
    assert merge_function("4.0.1") is merge_partial_table
    assert merge_function("3.5.0") is merge_partial_table
    assert merge_function("4.2.0") is merge_partial_batches
    iterator = PythonEvalType.SQL_GROUPED_MAP_ARROW_ITER_UDF
    assert infer_group_arrow_eval_type_from_func(merge_partial_batches) == iterator
    table = PythonEvalType.SQL_GROUPED_MAP_ARROW_UDF
    assert infer_group_arrow_eval_type_from_func(merge_partial_table) == table


def test_session_conf_sets_restores_and_skips_what_is_refused(spark) -> None:
    rows, static = "spark.sql.execution.arrow.maxRecordsPerBatch", "spark.sql.warehouse.dir"
    before = spark.conf.get(rows, None), spark.conf.get(static)
    with session_conf(spark, {static: "/elsewhere", rows: "123"}):
        assert spark.conf.get(rows) == "123"
        assert spark.conf.get(static) == before[1]
    assert (spark.conf.get(rows, None), spark.conf.get(static)) == before
