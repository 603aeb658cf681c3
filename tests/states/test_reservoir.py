"""Tests of ReservoirState: bottom-k exactness under any split, merge laws, codec, uniformity."""

from __future__ import annotations

import datetime as dt
import functools
import pickle
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from spark_explore.errors import (
    ColumnNotFoundError,
    IncompatibleStatesError,
    InvalidArgumentError,
)
from spark_explore.states.base import State
from spark_explore.states.batch import Batch
from spark_explore.states.moments import MomentsState
from spark_explore.states.reservoir import ReservoirState

KEY = "h"
SLOTS = ("x", "s")
INT64 = np.iinfo(np.int64)
SCHEMA = pa.schema([(KEY, pa.int64()), ("x", pa.float64()), ("s", pa.string())])


def rows_for(keys: list[int] | np.ndarray) -> pa.Table:
    """Rows whose values are a function of their key, as identical rows hash alike."""
    keys = np.asarray(keys, dtype=np.int64)
    return pa.table(
        {KEY: keys, "x": (keys % 1000).astype(np.float64), "s": [f"r{k}" for k in keys]},
        schema=SCHEMA,
    )


def build(keys: list[int] | np.ndarray, size: int, step: int = 7) -> ReservoirState:
    """A state fed ``keys`` in batches of ``step`` rows."""
    state = ReservoirState.empty(size, KEY, SLOTS)
    for start in range(0, len(keys), step):
        state.update(Batch(rows_for(keys[start : start + step])))
    return state


def assert_bottom_k(state: ReservoirState, keys: list[int] | np.ndarray, size: int) -> None:
    """The state holds exactly the rows of the ``size`` smallest keys, in key order."""
    expected = np.sort(np.asarray(keys, dtype=np.int64), kind="stable")[:size]
    assert state.rows_seen == state.n == len(keys)
    np.testing.assert_array_equal(state.keys, expected)
    if expected.size:
        assert state.sample().equals(rows_for(expected))
    else:
        assert state.sample().num_columns == 0


def assert_same(a: ReservoirState, b: ReservoirState) -> None:
    assert a._merge_key() == b._merge_key()
    assert a.rows_seen == b.rows_seen
    np.testing.assert_array_equal(a.keys, b.keys)
    assert a.sample().equals(b.sample())


key_values = st.one_of(st.integers(-3, 3), st.integers(int(INT64.min), int(INT64.max)))


@settings(max_examples=150, deadline=None)
@given(keys=st.lists(key_values, max_size=60), size=st.integers(0, 12), data=st.data())
def test_sample_is_bottom_k_for_any_split_batches_and_merge_tree(
    keys: list[int], size: int, data: st.DataObject
) -> None:
    keys = data.draw(st.permutations(keys), label="row order")
    n_parts = data.draw(st.integers(1, 5), label="parts")
    part_of = data.draw(
        st.lists(st.integers(0, n_parts - 1), min_size=len(keys), max_size=len(keys))
    )
    states = []
    for part in range(n_parts):
        part_keys = [k for k, p in zip(keys, part_of, strict=True) if p == part]
        state = ReservoirState.empty(size, KEY, SLOTS)
        if data.draw(st.booleans(), label="empty batch first"):
            state.update(Batch(rows_for([])))
        start = 0
        while start < len(part_keys):
            step = data.draw(st.integers(1, len(part_keys)), label="batch size")
            state.update(Batch(rows_for(part_keys[start : start + step])))
            start += step
        states.append(state)
    states = [states[i] for i in data.draw(st.permutations(range(n_parts)), label="order")]
    while len(states) > 1:
        i = data.draw(st.integers(0, len(states) - 2), label="merge position")
        left, right = states[i], states[i + 1]
        if data.draw(st.booleans(), label="swap"):
            left, right = right, left
        states[i : i + 2] = [left.merge(right)]
    assert_bottom_k(states[0], keys, size)


def test_large_batches_into_a_full_reservoir_match_a_direct_sort() -> None:
    keys = np.random.default_rng(7).integers(INT64.min, INT64.max, 200_000, endpoint=True)
    state = build(keys, 100, step=25_000)
    assert_bottom_k(state, keys, 100)
    assert state.fraction == pytest.approx(100 / 200_000)


def test_keys_compare_as_signed_int64() -> None:
    keys = [int(INT64.max), int(INT64.min), 0, -1, 1]
    state = build(keys, 3)
    assert state.keys.tolist() == [int(INT64.min), -1, 0]


def test_identical_rows_share_a_key_and_the_sample_does_not_depend_on_which_copies() -> None:
    keys = [5, 2, 2, 2, 9, 2, 1]
    forward, backward = build(keys, 3, step=2), build(keys[::-1], 3, step=3)
    assert forward.keys.tolist() == [1, 2, 2]
    assert_same(forward, backward)


def test_rows_that_cannot_enter_a_full_reservoir_leave_it_unchanged() -> None:
    state = build([1, 2, 3], 3)
    table = state.sample()
    state.update(Batch(rows_for([3, 4, 50, 3])))
    assert state.sample() is table
    assert state.rows_seen == 7
    state.update(Batch(rows_for([10, 0])))
    assert state.keys.tolist() == [0, 1, 2]


def test_empty_is_the_identity() -> None:
    empty = ReservoirState.empty(4, KEY, SLOTS)
    state = build([8, -2, 5, 11, 0, 3], 4)
    assert_same(empty.merge(state), state)
    assert_same(state.merge(empty), state)
    both = empty.merge(ReservoirState.empty(4, KEY, SLOTS))
    assert both.is_empty and both.sample().num_columns == 0
    assert empty.is_empty and not state.is_empty
    assert np.isnan(empty.fraction)


def test_merge_does_not_mutate_its_inputs() -> None:
    a, b = build([5, 1, 9, 4], 3), build([2, 8, 0], 3)
    before = (a.to_bytes(), b.to_bytes())
    merged = a.merge(b)
    merged.update(Batch(rows_for([-7, -8])))
    merged._merge_in_place(build([-9], 3))
    assert (a.to_bytes(), b.to_bytes()) == before
    assert merged.keys.tolist() == [-9, -8, -7]
    with pytest.raises(ValueError):
        merged.keys[0] = 1


def test_fewer_rows_than_size_keeps_them_all_in_key_order() -> None:
    state = build([4, -1, 3, 2], 10, step=3)
    assert_bottom_k(state, [4, -1, 3, 2], 10)
    assert state.num_rows == 4 and state.is_complete and state.fraction == 1.0


def test_size_zero_keeps_nothing_but_counts_rows() -> None:
    state = build([4, -1, 3, 2], 0)
    assert state.rows_seen == 4 and state.num_rows == 0 and state.fraction == 0.0
    assert state.sample().num_columns == 0
    assert len(state.column("x")) == 0
    merged = state.merge(build([1], 0))
    assert merged.rows_seen == 5 and merged.num_rows == 0


@pytest.mark.parametrize(
    "state",
    [
        ReservoirState.empty(5, KEY, SLOTS),
        build([3, 1], 0),
        build([3, 1, 2], 5),
        build([9, 3, -1, 7, 3, 12, 0], 4),
    ],
    ids=["empty", "size-0", "partial", "full"],
)
def test_bytes_and_pickle_round_trip(state: ReservoirState) -> None:
    data = state.to_bytes()
    restored = State.from_bytes(data)
    assert isinstance(restored, ReservoirState)
    assert_same(restored, state)
    assert restored.to_bytes() == data
    assert_same(pickle.loads(pickle.dumps(state)), state)
    # The restored state keeps working.
    restored.update(Batch(rows_for([-100])))
    assert restored.rows_seen == state.rows_seen + 1


def test_key_slot_among_slots_is_kept_once_and_first() -> None:
    state = ReservoirState(2, KEY, ("s", KEY))
    state.update(Batch(rows_for([3, 1, 2])))
    assert state.sample().column_names == [KEY, "s"]
    assert state.column("s").to_pylist() == ["r1", "r2"]


def _mixed_table(n: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    i = np.arange(n)
    epoch = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    return pa.table(
        {
            KEY: rng.integers(INT64.min, INT64.max, n, endpoint=True),
            "s": pa.array([None if k % 4 == 0 else f"é{k}" for k in i], pa.string()),
            "d": pa.array([Decimal(f"{k}.{k:04d}") for k in i], pa.decimal128(20, 4)),
            "t": pa.array(
                [None if k % 5 == 0 else epoch + dt.timedelta(seconds=int(k)) for k in i],
                pa.timestamp("us", tz="UTC"),
            ),
            "day": pa.array([dt.date(2020, 1, 1) + dt.timedelta(days=int(k)) for k in i]),
            "l": pa.array(
                [None if k % 7 == 0 else list(range(k % 3)) for k in i], pa.list_(pa.int32())
            ),
            "st": pa.array(
                [{"a": int(k % 100), "b": f"b{k}"} for k in i],
                pa.struct([("a", pa.int8()), ("b", pa.string())]),
            ),
            "m": pa.array([[(f"k{k}", float(k))] for k in i], pa.map_(pa.string(), pa.float64())),
            "bin": pa.array([bytes([k % 256]) * 3 for k in i], pa.binary()),
            "cat": pa.array([f"c{k % 3}" for k in i]).dictionary_encode(),
        }
    )


def test_columns_of_mixed_arrow_types_survive_update_merge_and_bytes() -> None:
    table = _mixed_table(60, seed=3)
    slots = tuple(name for name in table.column_names if name != KEY)
    parts = []
    for start, stop in [(0, 10), (10, 35), (35, 60)]:
        state = ReservoirState.empty(12, KEY, slots)
        for chunk in table.slice(start, stop - start).to_batches(max_chunksize=6):
            state.update(Batch(chunk))
        parts.append(state)
    merged = functools.reduce(ReservoirState.merge, [parts[2], parts[0], parts[1]])
    restored = pickle.loads(pickle.dumps(State.from_bytes(merged.to_bytes())))
    keys = table.column(KEY).to_numpy()
    expected = table.take(np.argsort(keys, kind="stable")[:12])
    for state in (merged, restored):
        sample = state.sample()
        assert sample.column_names == table.column_names
        assert [f.type for f in sample.schema] == [f.type for f in table.schema]
        assert sample.to_pylist() == expected.to_pylist()
        assert state.column("d").type == pa.decimal128(20, 4)
        assert state.column("s").null_count == expected.column("s").null_count


def test_inclusion_is_uniform_over_rows() -> None:
    # Each seed plays the role of a hash seed: keys are independent uniform int64 draws, as a
    # good 64-bit hash of distinct rows gives. Over R seeds, row i's inclusion count O_i has
    # mean R p with p = k / n; for sampling without replacement the counts' covariance is
    # R p (1 - p) n / (n - 1) (I - J / n), so the scaled sum of squares is chi-square with
    # n - 1 degrees of freedom.
    n, k, seeds = 40, 8, 3000
    counts = np.zeros(n, dtype=np.int64)
    rows = pa.array(np.arange(n))
    for seed in range(seeds):
        keys = np.random.default_rng(seed).integers(INT64.min, INT64.max, n, endpoint=True)
        table = pa.table({KEY: keys, "row": rows})
        state = ReservoirState.empty(k, KEY, ("row",))
        for batch in table.to_batches(max_chunksize=13):
            state.update(Batch(batch))
        sampled = state.column("row").to_numpy()
        assert sampled.size == k and np.unique(sampled).size == k
        counts[sampled] += 1
    p = k / n
    statistic = np.sum((counts - seeds * p) ** 2) / (seeds * p * (1 - p) * n / (n - 1))
    assert stats.chi2.sf(statistic, n - 1) > 1e-3
    assert np.all(np.abs(counts / seeds - p) < 0.05)


@pytest.mark.parametrize("size", [-1, 1.5, True, "3"])
def test_bad_size_raises(size: object) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        ReservoirState(size, KEY, SLOTS)  # type: ignore[arg-type]
    assert info.value.code == "INVALID_ARGUMENT"


def test_repeated_slots_raise() -> None:
    with pytest.raises(InvalidArgumentError) as info:
        ReservoirState(3, KEY, ("x", "x"))
    assert info.value.code == "INVALID_ARGUMENT"


@pytest.mark.parametrize(
    "table",
    [
        pa.table({KEY: pa.array([1, 2], pa.int32()), "x": [1.0, 2.0], "s": ["a", "b"]}),
        pa.table({KEY: pa.array([1, None], pa.int64()), "x": [1.0, 2.0], "s": ["a", "b"]}),
    ],
    ids=["int32-key", "null-key"],
)
def test_bad_key_column_raises(table: pa.Table) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        ReservoirState(3, KEY, SLOTS).update(Batch(table))
    assert info.value.code == "INVALID_ARGUMENT"


def test_missing_columns_raise() -> None:
    state = ReservoirState(3, KEY, ("x", "absent"))
    with pytest.raises(ColumnNotFoundError) as info:
        state.update(Batch(rows_for([1, 2])))
    assert info.value.code == "COLUMN_NOT_FOUND"
    with pytest.raises(ColumnNotFoundError):
        build([1, 2], 3).column("absent")


@pytest.mark.parametrize(
    "other",
    [
        ReservoirState(4, KEY, SLOTS),
        ReservoirState(3, "other_key", SLOTS),
        ReservoirState(3, KEY, ("s", "x")),
        MomentsState.empty(("x",)),
    ],
    ids=["size", "key", "slots", "kind"],
)
def test_incompatible_merges_raise(other: State) -> None:
    with pytest.raises(IncompatibleStatesError) as info:
        build([1, 2], 3).merge(other)  # type: ignore[arg-type]
    assert info.value.code == "INCOMPATIBLE_STATES"


def test_merging_samples_of_different_schemas_raises() -> None:
    other = ReservoirState(3, KEY, SLOTS)
    other.update(Batch(pa.table({KEY: [0, 5], "x": ["text", "x"], "s": ["a", "b"]})))
    with pytest.raises(IncompatibleStatesError) as info:
        build([1, 2], 3).merge(other)
    assert info.value.code == "INCOMPATIBLE_STATES"


def test_plan_caps_the_sample_cells_of_wide_tables() -> None:
    from pyspark.sql import types as T

    from spark_explore.config import ScanConfig
    from spark_explore.scan.plan import plan_from_schema

    def schema(width: int) -> T.StructType:
        return T.StructType([T.StructField(f"x{i}", T.DoubleType()) for i in range(width)])

    config = ScanConfig(reservoir_size=10_000, reservoir_cells=2_000_000)
    assert plan_from_schema(schema(20), config).sample_rows == 10_000
    wide = plan_from_schema(schema(1000), config)
    assert wide.sample_rows == 2000
    assert wide.empty_bundle()["reservoir"].size == 2000
