"""Mean and standard deviation against NIST StRD certified values, whatever the partitioning.

Thresholds are the best float64 allows for each set (see the shared data's README): the
certified values are exact for the decimal inputs, which float64 itself cannot hold. All nine
sets are profiled together as columns of one table (shorter ones padded with nulls, which
the moments skip), under several partitionings down to about one row per partition.
"""

from __future__ import annotations

import pytest

from spark_explore.api import profile
from tests.nist import certified, lre, univariate_values

SETS = [
    "PiDigits",
    "Lottery",
    "Lew",
    "Mavro",
    "Michelso",
    "NumAcc1",
    "NumAcc2",
    "NumAcc3",
    "NumAcc4",
]
STD_LRE = {"NumAcc3": 9.4, "NumAcc4": 8.2}


@pytest.fixture(scope="module")
def nist_table(spark, shared_data):
    columns = {name: univariate_values(shared_data, name) for name in SETS}
    length = max(len(values) for values in columns.values())
    rows = [
        (i, *[values[i] if i < len(values) else None for values in columns.values()])
        for i in range(length)
    ]
    schema = "i long, " + ", ".join(f"{name} double" for name in SETS)
    return spark.createDataFrame(rows, schema)


@pytest.mark.parametrize(("partitions", "interleaved"), [(4, False), (7, True), (50, True)])
def test_mean_and_std_reach_the_float64_ceiling(
    nist_table, shared_data, partitions, interleaved
) -> None:
    # interleaved: row i goes to partition i % partitions, so with 50 partitions each of
    # Mavro's 50 rows lands in a partition of its own
    key = nist_table.i % partitions if interleaved else nist_table.i
    df = nist_table.repartitionByRange(partitions, key).drop("i")
    columns = profile(df).columns
    for name in SETS:
        want = certified(shared_data)["univariate"][name]["certified"]
        got = columns[name]
        assert got["finite_count"] == certified(shared_data)["univariate"][name]["n"]
        assert lre(got["mean"], want["mean"]["value"]) >= 14, (name, got["mean"])
        assert lre(got["std"], want["std"]["value"]) >= STD_LRE.get(name, 13), (name, got["std"])


def test_shuffled_rows_give_the_same_precision(nist_table, shared_data) -> None:
    df = nist_table.orderBy(nist_table.i * 7919 % 5003).repartition(5).drop("i")
    columns = profile(df).columns
    for name in ("Mavro", "Michelso", "NumAcc4"):
        want = certified(shared_data)["univariate"][name]["certified"]
        assert lre(columns[name]["std"], want["std"]["value"]) >= STD_LRE.get(name, 13)
