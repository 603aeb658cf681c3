"""Column selection by exact name, odd names, and the filter applied before selection."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import write_deltalake

from spark_explore.readers import open_source

ODD = ["plain", "with space", "dot.ted", "back`tick", "count", "a.b`c d"]


@pytest.fixture(scope="module")
def odd_parquet(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("odd") / "odd.parquet"
    pq.write_table(pa.table({name: [i, i + 10] for i, name in enumerate(ODD)}), path)
    return str(path)


def test_all_columns_keep_table_order(spark, odd_parquet):
    assert open_source(spark, odd_parquet).df.columns == ODD


def test_requested_order_is_kept(spark, odd_parquet):
    wanted = ["a.b`c d", "count", "plain"]

    df = open_source(spark, odd_parquet, columns=wanted).df

    assert df.columns == wanted
    assert [tuple(r) for r in df.orderBy(df.columns[2]).collect()] == [(5, 4, 0), (15, 14, 10)]


def test_odd_names_with_filter_on_an_unselected_column(spark, odd_parquet):
    df = open_source(
        spark, odd_parquet, columns=["dot.ted", "back`tick"], where="`with space` > 5"
    ).df

    assert df.columns == ["dot.ted", "back`tick"]
    assert [tuple(r) for r in df.collect()] == [(12, 13)]


def test_odd_names_in_a_partitioned_delta_table(spark, tmp_path):
    table = pa.table(
        {
            "dot.ted": ["x", "y"],
            "_metadata": [1, 2],
            "count": [3.0, 4.0],
            "_partition_index": [5, 6],
        }
    )
    write_deltalake(str(tmp_path), table, partition_by=["dot.ted"])

    source = open_source(spark, str(tmp_path))
    picked = open_source(spark, str(tmp_path), columns=["count", "dot.ted"])

    assert source.df.columns == ["dot.ted", "_metadata", "count", "_partition_index"]
    assert sorted(tuple(r) for r in source.df.collect()) == [("x", 1, 3.0, 5), ("y", 2, 4.0, 6)]
    assert picked.df.columns == ["count", "dot.ted"]
    assert sorted(tuple(r) for r in picked.df.collect()) == [(3.0, "x"), (4.0, "y")]
