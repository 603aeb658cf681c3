"""The file reader: Python workers reading Parquet files give the states Spark would give.

Each table is profiled twice in the same session, once with ``reader: spark`` and once with
``reader: arrow``; every exact statistic must agree to 1e-9, the sample must hold the same
rows (its keys are Spark's ``xxhash64``, recomputed in the workers), and the quantiles of
both must lie within the sketch's rank error of the truth.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import write_deltalake

from spark_explore.api import profile_table
from spark_explore.config import ProfileOptions, ScanConfig
from spark_explore.errors import InvalidArgumentError
from tests.spark.reference import check_numeric, check_quantiles

APPROXIMATE = {"quantiles", "top_values", "top_values_max_error"}


def _profile(spark, path, reader, **options):
    config = ScanConfig(reader=reader, **options.pop("scan", {}))
    run = ProfileOptions(table=str(path), output="unused", scan=config, **options)
    result, _ = profile_table(spark, run, progress=False)
    return result


def _same(spark_value, arrow_value, where: str) -> None:
    if isinstance(spark_value, dict):
        assert spark_value.keys() == arrow_value.keys(), where
        for key in spark_value:
            if key not in APPROXIMATE:
                _same(spark_value[key], arrow_value[key], f"{where}.{key}")
    elif isinstance(spark_value, list):
        assert len(spark_value) == len(arrow_value), where
        for i, (a, b) in enumerate(zip(spark_value, arrow_value)):
            _same(a, b, f"{where}[{i}]")
    elif isinstance(spark_value, float) and isinstance(arrow_value, float):
        if math.isnan(spark_value):
            assert math.isnan(arrow_value), where
        else:
            assert arrow_value == pytest.approx(spark_value, rel=1e-9, abs=1e-300), where
    else:
        assert spark_value == arrow_value, where


def assert_same_profile(by_spark, by_arrow) -> None:
    assert by_spark.source["reader"] == "spark" and by_arrow.source["reader"] == "arrow"
    assert by_arrow.rows == by_spark.rows
    _same(by_spark.columns, by_arrow.columns, "columns")
    _same(by_spark.correlations, by_arrow.correlations, "correlations")
    np.testing.assert_array_equal(
        by_arrow.bundle["reservoir"].keys, by_spark.bundle["reservoir"].keys
    )
    for name in by_spark.bundle:
        if name.startswith("hll/"):
            assert by_arrow.bundle[name].estimate() == by_spark.bundle[name].estimate(), name


def _messy(rows: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    nulls = rng.random(rows) < 0.1
    x = rng.normal(5.0, 2.0, rows)
    x[rng.random(rows) < 0.03] = np.nan
    x[rng.random(rows) < 0.01] = np.inf
    big = rng.integers(-(2**62), 2**62, rows)
    words = np.array(["alpha", "", "  ", "été", "数据", "a much longer string " * 3])
    start = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)
    return pa.table(
        {
            "tiny": pa.array(rng.integers(-100, 100, rows), pa.int8()),
            "small": pa.array(rng.integers(-3000, 3000, rows), pa.int16(), mask=nulls),
            "int": pa.array(rng.integers(-(2**31), 2**31, rows), pa.int32()),
            "big": pa.array(big, pa.int64()),
            "single": pa.array(rng.normal(size=rows), pa.float32()),
            "x": pa.array(x, mask=nulls),
            "price": pa.array(
                [Decimal(int(v)).scaleb(-2) for v in rng.integers(-(10**8), 10**8, rows)],
                pa.decimal128(12, 2),
            ),
            "huge": pa.array(
                [Decimal(int(v)) * 10**20 for v in rng.integers(-(10**9), 10**9, rows)],
                pa.decimal128(38, 0),
            ),
            "word": pa.array(words[rng.integers(0, len(words), rows)], mask=rng.random(rows) < 0.2),
            "flag": pa.array(rng.random(rows) < 0.3, mask=nulls),
            "day": pa.array(rng.integers(0, 20_000, rows), pa.int32()).cast(pa.date32()),
            "at_ms": pa.array(
                [start + dt.timedelta(milliseconds=int(v)) for v in rng.integers(0, 10**10, rows)],
                pa.timestamp("ms", tz="UTC"),
            ),
            "local": pa.array(rng.integers(0, 10**15, rows), pa.timestamp("us")),
            "blob": pa.array([b"\x00" * int(n) for n in rng.integers(0, 9, rows)], pa.binary()),
            "Group": pa.array(rng.choice(["a", "b", "c"], rows)),
            "point": pa.array(
                [
                    None if v < 0.1 else {"x": v, "inner": None if v < 0.2 else {"y": str(v)}}
                    for v in rng.random(rows)
                ],
                pa.struct([("x", pa.float64()), ("inner", pa.struct([("y", pa.string())]))]),
            ),
            "tags": pa.array(
                [None if n == 0 else list(range(n - 1)) for n in rng.integers(0, 5, rows)],
                pa.list_(pa.int32()),
            ),
            "attrs": pa.array(
                [
                    None if n == 0 else [("k", i) for i in range(n - 1)]
                    for n in rng.integers(0, 4, rows)
                ],
                pa.map_(pa.string(), pa.int32()),
            ),
        }
    )


@pytest.fixture(scope="module")
def messy_folder(tmp_path_factory):
    """Three files of one table, with many small row groups; the last lacks a column."""
    folder = tmp_path_factory.mktemp("parquet") / "messy table"
    folder.mkdir()
    table = _messy(9_000, 7)
    for i, start in enumerate((0, 4_000, 8_000)):
        part = table.slice(start, 4_000)
        if i == 2:
            part = part.drop_columns(["single"])
        pq.write_table(part, folder / f"part-{i}.parquet", row_group_size=700)
    return folder, table


def test_parquet_folder_profiles_alike(spark, messy_folder) -> None:
    folder, table = messy_folder
    with_spark = _profile(spark, folder, "spark")
    with_arrow = _profile(spark, folder, "arrow")
    assert_same_profile(with_spark, with_arrow)
    assert with_arrow.rows == table.num_rows
    check_numeric(with_arrow.columns["x"], table.column("x").combine_chunks())
    single = with_arrow.columns["single"]
    assert single["null_count"] == 1_000  # the file without the column reads as nulls


@pytest.mark.parametrize("max_partition_bytes", ["16k", "1m"])
def test_splits_read_each_row_once(spark, messy_folder, max_partition_bytes) -> None:
    folder, table = messy_folder
    key = "spark.sql.files.maxPartitionBytes"
    spark.conf.set(key, max_partition_bytes)
    try:
        with_arrow = _profile(spark, folder, "arrow")
    finally:
        spark.conf.unset(key)
    assert with_arrow.rows == table.num_rows
    check_numeric(with_arrow.columns["big"], table.column("big").combine_chunks())
    x = table.column("x").to_numpy(zero_copy_only=False)
    check_quantiles(with_arrow.columns["x"], x[np.isfinite(x)])


def test_real_tables_profile_alike(spark, shared_data) -> None:
    for name in ("penguins", "german_credit", "wine"):
        path = shared_data / "real" / f"{name}.parquet"
        assert_same_profile(_profile(spark, path, "spark"), _profile(spark, path, "arrow"))


def test_delta_fallback_without_partitions_profiles_alike(spark, tmp_path) -> None:
    path = tmp_path / "delta"
    # nested columns left out: deltalake aborts the process appending them
    table = _messy(3_000, 11).drop_columns(["local", "at_ms", "attrs", "point", "tags"])
    write_deltalake(str(path), table.slice(0, 2_000))
    write_deltalake(str(path), table.slice(2_000), mode="append")
    with_arrow = _profile(spark, path, "auto")
    assert with_arrow.source["reader"] == "arrow"
    assert_same_profile(_profile(spark, path, "spark"), with_arrow)


def test_auto_falls_back_to_spark_with_the_reason(spark, tmp_path, messy_folder) -> None:
    folder, _ = messy_folder
    filtered = _profile(spark, folder, "auto", where="tiny > 0")
    assert filtered.source["reader"] == "spark"
    assert "row filter" in filtered.source["notes"][-1]
    partitioned = tmp_path / "partitioned"
    pq.write_to_dataset(pa.table({"k": [1, 2], "v": [0.5, 1.5]}), partitioned, partition_cols=["k"])
    by_spark = _profile(spark, partitioned, "auto")
    assert by_spark.source["reader"] == "spark"
    assert "`k` is a partition column" in by_spark.source["notes"][-1]
    assert _profile(spark, folder, "auto").source["reader"] == "arrow"


def test_arrow_reader_refuses_what_it_cannot_read(spark, tmp_path) -> None:
    unsigned = tmp_path / "unsigned.parquet"  # Spark reads uint32 as bigint by its own rules
    pq.write_table(pa.table({"n": pa.array([1, 2**32 - 1], pa.uint32())}), unsigned)
    with pytest.raises(InvalidArgumentError, match="reader: arrow cannot read") as caught:
        _profile(spark, unsigned, "arrow")
    assert caught.value.code == "READER_NOT_APPLICABLE"
    by_spark = _profile(spark, unsigned, "auto")
    assert by_spark.source["reader"] == "spark" and by_spark.columns["n"]["max"] == 2**32 - 1


def test_unknown_reader_is_a_config_error() -> None:
    with pytest.raises(InvalidArgumentError, match="`reader` must be one of"):
        dataclasses.replace(ScanConfig(), reader="pandas")


def test_every_file_is_checked_and_odd_names_open(spark, tmp_path) -> None:
    folder = tmp_path / "mixed widths"
    folder.mkdir()
    for name, kind in (("a ñ%.parquet", np.int64), ("b é.parquet", np.int32)):
        pq.write_table(pa.table({"x": np.arange(100, dtype=kind)}), folder / name)
    by_spark = _profile(spark, folder, "auto")  # Spark reads the int32 file as bigint
    assert by_spark.source["reader"] == "spark" and by_spark.rows == 200
    assert "é.parquet" in by_spark.source["notes"][-1]
    (folder / "b é.parquet").unlink()
    pq.write_table(pa.table({"x": np.arange(50, dtype=np.int64)}), folder / "c ü.parquet")
    assert_same_profile(_profile(spark, folder, "spark"), _profile(spark, folder, "auto"))
