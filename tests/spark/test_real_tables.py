"""Every statistic on the shared real tables and on messy generated data equals numpy/scipy."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from spark_explore.api import profile
from spark_explore.config import ScanConfig
from tests.spark.reference import check_numeric, check_string

REAL_TABLES = ["anes96", "german_credit", "iris", "longley", "penguins", "wine"]


def _check_table(result, table: pa.Table, cap: int) -> None:
    columns = result.columns
    assert result.rows == table.num_rows
    assert list(columns) == table.column_names
    for name in table.column_names:
        values = table.column(name).combine_chunks()
        if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
            check_string(columns[name], values, cap)
        else:
            check_numeric(columns[name], values)


@pytest.mark.parametrize("name", REAL_TABLES)
def test_real_table_matches_numpy(spark, shared_data, name) -> None:
    path = shared_data / "real" / f"{name}.parquet"
    result = profile(spark.read.parquet(str(path)).repartition(3))
    _check_table(result, pq.read_table(path), ScanConfig().exact_counts_cap)


def test_correlations_match_numpy_on_iris(spark, shared_data) -> None:
    path = shared_data / "real" / "iris.parquet"
    table = pq.read_table(path)
    numeric = [n for n in table.column_names if n != "species"]
    result = profile(spark.read.parquet(str(path)).repartition(4))
    corr = result.correlations
    assert corr["columns"] == numeric and corr["left_out"] == []
    want = np.corrcoef(np.column_stack([table.column(n).to_numpy() for n in numeric]).T)
    np.testing.assert_allclose(np.array(corr["matrix"], dtype=float), want, rtol=1e-9)
    assert corr["pair_counts"] == [[150] * 4] * 4


def _messy_table(rows: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    normal = rng.normal(10.0, 3.0, rows)
    skewed = rng.lognormal(0.0, 1.0, rows)
    for column, share in ((normal, 0.05), (skewed, 0.02)):
        column[rng.random(rows) < share] = np.nan
    skewed[rng.random(rows) < 0.01] = np.inf
    skewed[rng.random(rows) < 0.01] = -np.inf
    counts = rng.integers(-5, 5, rows)
    words = np.array(["alpha", "beta", "", "  ", "gamma", "été", "数据"])[rng.integers(0, 7, rows)]
    null_mask = rng.random(rows) < 0.1
    return pa.table(
        {
            "normal": pa.array(normal, mask=rng.random(rows) < 0.05),
            "skewed": pa.array(skewed, from_pandas=False),
            "counts": pa.array(counts, mask=null_mask),
            "small": pa.array(rng.integers(0, 3, rows).astype(np.int8)),
            "single": pa.array(
                np.where(np.arange(rows) == 7, 4.5, np.nan), mask=np.arange(rows) != 7
            ),
            "words": pa.array(words, mask=rng.random(rows) < 0.1),
        }
    )


def test_generated_data_with_null_nan_and_infinities(spark, tmp_path) -> None:
    table = _messy_table(20_000, seed=11)
    pq.write_table(table, tmp_path / "messy.parquet", row_group_size=3000)
    result = profile(spark.read.parquet(str(tmp_path / "messy.parquet")).repartition(5))
    _check_table(result, table, ScanConfig().exact_counts_cap)
    single = result.columns["single"]
    assert single["mean"] == 4.5 and single["std"] is None and "std" in single["undefined"]


def test_profile_does_not_depend_on_partitioning(spark, tmp_path) -> None:
    table = _messy_table(5_000, seed=12)
    pq.write_table(table, tmp_path / "messy.parquet")
    df = spark.read.parquet(str(tmp_path / "messy.parquet"))
    config = ScanConfig(reservoir_size=300)
    one, many = profile(df.coalesce(1), config), profile(df.repartition(7), config)
    sample_one = one.bundle["reservoir"].sample()
    sample_many = many.bundle["reservoir"].sample()
    assert sample_one.num_rows == 300 and sample_one.schema == sample_many.schema
    # compared as text, since NaN != NaN would fail a value comparison of equal samples
    assert str(sample_one.to_pylist()) == str(sample_many.to_pylist())
    for name, entry in one.columns.items():
        other = many.columns[name]
        for key in ("count", "null_count", "nan_count", "min", "max", "distinct_count"):
            assert entry.get(key) == other.get(key), (name, key)
        for key in ("mean", "std", "skewness", "kurtosis"):
            if entry.get(key) is not None:
                np.testing.assert_allclose(other[key], entry[key], rtol=1e-12)
