"""HllState and FrequentItemsState against exact counts, and the merge laws."""

from __future__ import annotations

import datetime
import pickle
from collections import Counter
from decimal import Decimal
from typing import TypeVar

import datasketches
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spark_explore.errors import IncompatibleStatesError, InvalidArgumentError
from spark_explore.states.base import State
from spark_explore.states.batch import Batch
from spark_explore.states.distinct import FrequentItemsState, HllState
from tests.states.merging import merge_randomly

S = TypeVar("S", bound=State)


def _batch(values: list | np.ndarray | pa.Array, type: pa.DataType | None = None) -> Batch:
    array = values if isinstance(values, pa.Array) else pa.array(values, type=type)
    return Batch(pa.RecordBatch.from_arrays([array], ["x"]))


def _hll(values: list | np.ndarray | pa.Array, type: pa.DataType | None = None) -> HllState:
    state = HllState.empty("x")
    state.update(_batch(values, type))
    return state


def _fi(values: list | np.ndarray, lg_max_size: int = 10) -> FrequentItemsState:
    state = FrequentItemsState.empty("x", lg_max_size)
    state.update(_batch(values))
    return state


def _split(values: list, cuts: list[int]) -> list[list]:
    bounds = [0, *sorted(min(c, len(values)) for c in cuts), len(values)]
    return [values[a:b] for a, b in zip(bounds, bounds[1:])]


# --- HllState ------------------------------------------------------------------------------


def test_hll_estimate_within_three_relative_errors_on_100k_values() -> None:
    rng = np.random.default_rng(11)
    values = rng.integers(0, 60_000, 100_000)
    state = HllState.empty("x")
    for chunk in np.array_split(values, 4):
        state.update(_batch(chunk))
    truth = len(np.unique(values))
    assert state.n == 100_000
    assert state.relative_error == pytest.approx(1.04 / 64, rel=0.01)
    assert abs(state.estimate() - truth) <= 3 * state.relative_error * truth
    assert state.lower_bound(2) <= truth <= state.upper_bound(2)
    assert state.lower_bound(1) <= state.estimate() <= state.upper_bound(1)
    assert state.lower_bound(3) < state.lower_bound(1)


def test_hll_is_near_exact_on_few_values() -> None:
    words = ["a", "b", "é", "😀", "中文", "", " ", "a"]
    state = _hll(words + [None])
    assert state.estimate() == pytest.approx(7, rel=1e-4) and state.n == 8
    ints = _hll(list(range(100)) * 3)
    assert ints.estimate() == pytest.approx(100, rel=1e-4)


def test_hll_float_special_values_are_distinct_values() -> None:
    values = [1.5, 1.5, 0.0, -0.0, np.nan, np.nan, np.inf, -np.inf, None]
    state = _hll(values)
    # 1.5, 0.0 (= -0.0), NaN, +inf, -inf
    assert round(state.estimate()) == 5 and state.n == 8
    float32 = _hll(pa.array([1.5, 2.5, 1.5], type=pa.float32()))
    assert round(float32.estimate()) == 2


def test_hll_keeps_int64_and_uint64_extremes_distinct() -> None:
    big = [2**63 - 1, 2**63 - 2, -(2**63), -(2**63) + 1]  # pairs equal as float64
    assert float(big[0]) == float(big[1])
    assert round(_hll(big, pa.int64()).estimate()) == 4
    unsigned = [2**64 - 1, 2**64 - 2, 0, 2**63]
    assert round(_hll(unsigned, pa.uint64()).estimate()) == 4
    small = _hll([1, 2, 3], pa.int8())
    assert round(small.estimate()) == 3


def test_hll_reads_temporal_decimal_and_boolean_columns() -> None:
    day = datetime.date(2020, 1, 1)
    assert round(_hll([day, day, datetime.date(2021, 1, 1)]).estimate()) == 2
    stamps = [datetime.datetime(2020, 1, 1, 0, 0, 0, us) for us in (0, 1, 1)]
    assert round(_hll(stamps, pa.timestamp("us", tz="UTC")).estimate()) == 2
    assert round(_hll([Decimal("1.10"), Decimal("1.1"), Decimal("2")]).estimate()) == 2
    assert round(_hll([True, False, True, None]).estimate()) == 2
    assert round(_hll([1, 2], pa.duration("s")).estimate()) == 2
    assert round(_hll([1, 2], pa.time32("s")).estimate()) == 2
    strings = pa.array(["x", "y", "x"], type=pa.large_string())
    assert round(_hll(strings).estimate()) == 2
    assert round(_hll(pa.array(["p", "q", "p"]).dictionary_encode()).estimate()) == 2


def test_hll_empty_and_all_null() -> None:
    for state in (_hll([], pa.int64()), _hll([None, None], pa.string()), _hll(pa.nulls(3))):
        assert state.is_empty and state.estimate() == 0.0
        assert state.lower_bound() == 0.0 and state.upper_bound() == 0.0
        restored = State.from_bytes(state.to_bytes())
        assert isinstance(restored, HllState) and restored.estimate() == 0.0


def test_hll_bad_arguments_and_types_raise() -> None:
    with pytest.raises(InvalidArgumentError):
        HllState("x", lg_k=3)
    with pytest.raises(InvalidArgumentError):
        _hll([1]).lower_bound(4)
    with pytest.raises(InvalidArgumentError) as info:
        _hll([b"raw"], pa.binary())
    assert info.value.code == "INVALID_ARGUMENT"
    with pytest.raises(InvalidArgumentError):
        _hll([[1, 2]])
    with pytest.raises(IncompatibleStatesError):
        HllState("x").merge(HllState("x", lg_k=11))


def _assert_same_hll(a: HllState, b: HllState) -> None:
    assert (a.slot, a.lg_k, a.n) == (b.slot, b.lg_k, b.n)
    assert a.estimate() == b.estimate()
    assert a.lower_bound(2) == b.lower_bound(2) and a.upper_bound(1) == b.upper_bound(1)


@settings(max_examples=50, deadline=None)
@given(
    values=st.lists(st.none() | st.integers(-(2**63), 2**63 - 1), max_size=50),
    size=st.sampled_from([0, 100, 500, 3000]),
    high=st.sampled_from([10, 1000, 10**6, 2**62]),
    cuts=st.lists(st.integers(0, 3050), max_size=6),
    seed=st.integers(0, 2**32),
)
def test_hll_merge_of_any_split_equals_whole(
    values: list[int | None], size: int, high: int, cuts: list[int], seed: int
) -> None:
    # ``size`` values drawn from ``high`` cover the sketch's list, set and HLL modes
    data = values + np.random.default_rng(seed).integers(0, high, size).tolist()

    def state_of(part: list[int | None]) -> HllState:
        return _hll(part, pa.int64())

    whole = state_of(data)
    assert whole.n == sum(v is not None for v in data)
    parts = [state_of(part) for part in _split(data, cuts)]
    before = [p.to_bytes() for p in parts]
    _assert_same_hll(merge_randomly(parts, seed), whole)
    assert [p.to_bytes() for p in parts] == before
    _assert_same_hll(whole.merge(HllState.empty("x")), whole)
    _assert_same_hll(HllState.empty("x").merge(whole), whole)
    restored = State.from_bytes(whole.to_bytes())
    assert isinstance(restored, HllState)
    _assert_same_hll(restored, whole)
    assert restored.empty_string == whole.empty_string
    _assert_same_hll(pickle.loads(pickle.dumps(whole)), whole)


# --- FrequentItemsState --------------------------------------------------------------------


def _check_bounds(state: FrequentItemsState, truth: Counter) -> None:
    """Every reported item's true count lies in its bounds, within ``max_error``."""
    error = state.max_error
    for value, estimate, lower, upper in state.top(10**6):
        assert lower <= truth[value] <= upper
        assert abs(estimate - truth[value]) <= error
        assert lower > error  # no false positives


def test_frequent_items_find_the_heavy_hitters_of_a_zipf_column() -> None:
    rng = np.random.default_rng(2)
    values = [f"item-{v}" for v in rng.zipf(1.2, 50_000)]
    state = FrequentItemsState.empty("x", 6)
    for part in _split(values, [10_000, 30_000]):
        state.update(_batch(part))
    truth = Counter(values)
    assert state.n == 50_000
    error = state.max_error
    assert 0 < error <= state.sketch.epsilon * state.n
    _check_bounds(state, truth)
    found = {item[0] for item in state.top(10**6)}
    heavy = {value for value, count in truth.items() if count > 2 * error}
    assert heavy and heavy <= found
    top3 = [item[0] for item in state.top(3)]
    assert top3 == [value for value, _ in truth.most_common(3)]


def test_frequent_items_are_exact_while_few() -> None:
    values = ["é", "😀", "中文", "é", "", "😀", "é", None, "x" * 10_000]
    state = _fi(values)
    assert state.max_error == 0.0 and state.n == 8
    truth = Counter(v for v in values if v is not None)
    assert [(v, e) for v, e, _, _ in state.top(2)] == truth.most_common(2)
    assert all(lo == e == hi for _, e, lo, hi in state.top(10))
    assert {v for v, *_ in state.top(10)} == set(truth)


def test_frequent_items_of_non_string_columns_are_text() -> None:
    floats = _fi([1.5, 1.5, -0.0, 0.0, np.nan, np.nan, np.inf, None])
    assert {v: e for v, e, _, _ in floats.top(10)} == {"1.5": 2, "0": 2, "nan": 2, "inf": 1}
    ints = _fi([2**63 - 1, 2**63 - 1, 7])
    assert ints.top(1) == [(str(2**63 - 1), 2, 2, 2)]
    flags = _fi([True, True, False])
    assert [v for v, *_ in flags.top(2)] == ["true", "false"]
    days = _fi([datetime.date(2020, 1, 31)] * 2)
    assert days.top(1)[0][0] == "2020-01-31"


def test_frequent_items_empty_and_all_null() -> None:
    for state in (_fi([]), _fi([None, None])):
        assert state.is_empty and state.top(5) == [] and state.max_error == 0.0
        restored = State.from_bytes(state.to_bytes())
        assert isinstance(restored, FrequentItemsState) and restored.is_empty


def test_frequent_items_bad_arguments_raise() -> None:
    with pytest.raises(InvalidArgumentError):
        FrequentItemsState("x", lg_max_size=2)
    with pytest.raises(InvalidArgumentError):
        _fi(["a"]).top(-1)
    with pytest.raises(InvalidArgumentError):
        _fi([b"raw"])
    with pytest.raises(IncompatibleStatesError):
        FrequentItemsState("x").merge(FrequentItemsState("x", 9))


def _fi_summary(state: FrequentItemsState) -> tuple:
    return state.slot, state.lg_max_size, state.n, state.max_error, state.top(10**6)


@settings(max_examples=50, deadline=None)
@given(
    values=st.lists(st.none() | st.sampled_from(["a", "b", "c", "é", "😀", ""]), max_size=40),
    size=st.sampled_from([0, 200, 2000]),
    cuts=st.lists(st.integers(0, 2050), max_size=6),
    seed=st.integers(0, 2**32),
)
def test_frequent_items_merge_of_any_split_keeps_the_bounds(
    values: list[str | None], size: int, cuts: list[int], seed: int
) -> None:
    rng = np.random.default_rng(seed)
    data = values + [f"v{v}" for v in rng.zipf(1.5, size)]
    truth = Counter(v for v in data if v is not None)
    whole = _fi(data, lg_max_size=4)
    parts = [_fi(part, lg_max_size=4) for part in _split(data, cuts)]
    before = [p.to_bytes() for p in parts]
    merged = merge_randomly(parts, seed)
    assert [p.to_bytes() for p in parts] == before
    assert merged.n == whole.n == sum(truth.values())
    assert merged.max_error <= merged.sketch.epsilon * merged.n
    _check_bounds(merged, truth)
    _check_bounds(whole, truth)
    if len(truth) <= 12:  # 0.75 * 2**4 items fit: exact, whatever the split
        assert merged.max_error == 0.0
        assert {v: e for v, e, *_ in merged.top(100)} == dict(truth)
    assert _fi_summary(whole.merge(FrequentItemsState.empty("x", 4))) == _fi_summary(whole)
    assert _fi_summary(FrequentItemsState.empty("x", 4).merge(whole)) == _fi_summary(whole)
    restored = State.from_bytes(whole.to_bytes())
    assert isinstance(restored, FrequentItemsState)
    assert _fi_summary(restored) == _fi_summary(whole)
    assert _fi_summary(pickle.loads(pickle.dumps(whole))) == _fi_summary(whole)


@settings(max_examples=50, deadline=None)
@given(
    values=st.lists(st.none() | st.text(st.sampled_from(list("ab é😀")), max_size=3), max_size=80),
    cuts=st.lists(st.integers(0, 80), max_size=6),
    seed=st.integers(0, 2**32),
)
def test_hll_of_strings_counts_the_empty_string_whatever_the_split(
    values: list[str | None], cuts: list[int], seed: int
) -> None:
    whole = _hll(values, pa.string())
    truth = len({v for v in values if v is not None})
    assert round(whole.estimate()) == truth
    assert whole.empty_string == ("" in values)
    parts = [_hll(part, pa.string()) for part in _split(values, cuts)]
    merged = merge_randomly(parts, seed)
    _assert_same_hll(merged, whole)
    assert merged.empty_string == whole.empty_string


def test_hll_from_hashes_counts_the_rows_where_the_column_is_not_null() -> None:
    rng = np.random.default_rng(5)
    words = np.array([f"w{v}" for v in rng.integers(0, 30_000, 80_000)], dtype=object)
    words[::7] = None
    hashes = pa.array(rng.integers(-(2**63), 2**63 - 1, 30_000, dtype=np.int64))
    codes = np.array([int(w[1:]) if w is not None else 0 for w in words])
    batch = Batch(
        pa.RecordBatch.from_arrays(
            [pa.array(words.tolist()), hashes.take(pa.array(codes))], ["x", "x_hash"]
        )
    )
    state = HllState.empty("x", hash_slot="x_hash")
    state.update(batch)
    truth = len({w for w in words.tolist() if w is not None})
    assert state.n == sum(w is not None for w in words.tolist())
    assert abs(state.estimate() - truth) <= 3 * state.relative_error * truth
    with pytest.raises(IncompatibleStatesError):
        state.merge(HllState.empty("x"))


def test_frequent_items_hide_the_ids_of_a_column_but_keep_its_bounds() -> None:
    rng = np.random.default_rng(8)
    heavy = [f"h{v}" for v in rng.integers(0, 5, 30_000)]
    ids = [f"id{i}" for i in range(30_000)]
    values = heavy + ids
    rng.shuffle(values)
    state = FrequentItemsState.empty("x", 8)
    for part in _split(values, [20_000, 40_000]):
        state.update(_batch(part))
    truth = Counter(values)
    assert state.hidden_batches == 3 and state.n == 60_000
    assert state.max_error <= state.sketch.epsilon * state.n
    _check_bounds(state, truth)
    assert {v for v, *_ in state.top(5)} == {f"h{v}" for v in range(5)}
    restored = State.from_bytes(state.to_bytes())
    assert isinstance(restored, FrequentItemsState)
    assert _fi_summary(restored) == _fi_summary(state)


def _library_sketch(values: list) -> datasketches.hll_sketch:
    sketch = datasketches.hll_sketch(12, datasketches.HLL_8)
    for value in values:
        sketch.update(value)
    return sketch


def _same_registers(a: datasketches.hll_sketch, b: datasketches.hll_sketch) -> bool:
    def registers(sketch: datasketches.hll_sketch) -> bytes:
        union = datasketches.hll_union(12)
        union.update(sketch)
        union.update(sketch)
        return union.get_result(datasketches.HLL_8).serialize_compact()

    return registers(a) == registers(b)


def _awkward_numeric_arrays() -> list[tuple[pa.Array, list]]:
    """Arrays read from their buffers, each with the values the library is fed one by one."""
    rng = np.random.default_rng(3)
    ints = rng.integers(-(2**63), 2**63 - 1, 6_000).tolist()
    ints[:4] = [-(2**63), 2**63 - 1, 0, -1]
    with_nulls = [None if i % 5 == 0 else v for i, v in enumerate(ints)]
    floats = [0.0, -0.0, float("nan"), float("inf"), -float("inf"), 1.5, None, 2.5] * 700
    floats += rng.normal(size=3_000).tolist()
    days = [None if i % 3 == 0 else i % 900 for i in range(5_000)]
    unsigned = [2**64 - 1, 2**63, 0, None, 1] * 1_000
    cases = [
        (pa.array(with_nulls, pa.int64()), with_nulls),
        (pa.array(with_nulls, pa.int64()).slice(13, 4_000), with_nulls[13:4_013]),
        (pa.array(floats, pa.float64()).slice(5), floats[5:]),
        (pa.array(floats, pa.float32()).slice(1, 2_999), floats[1:3_000]),
        (pa.array(days, pa.int16()), days),
        (pa.array([d if d is None else d % 200 - 100 for d in days], pa.int8()), None),
        (pa.array(days, pa.date32()).slice(7), days[7:]),
        (pa.array(days, pa.timestamp("us", tz="UTC")).slice(2, 900), days[2:902]),
        (pa.array(days, pa.time32("s")), days),
        (pa.array(unsigned, pa.uint64()).slice(3), unsigned[3:]),
        (pa.array([None] * 50, pa.int32()), []),
        (pa.array([None, 1], pa.int16()).slice(0, 1), []),
    ]
    fed = []
    for array, values in cases:
        values = [v for v in (array.to_pylist() if values is None else values) if v is not None]
        if pa.types.is_float32(array.type):
            values = np.array(values, dtype=np.float32).astype(np.float64).tolist()
        elif pa.types.is_uint64(array.type):
            values = np.array(values, dtype=np.uint64).view(np.int64).tolist()
        fed.append((array, values))
    return fed


@pytest.mark.parametrize("array, values", _awkward_numeric_arrays(), ids=lambda a: str(a)[:30])
def test_hll_of_numbers_read_from_buffers_is_the_librarys_sketch(
    array: pa.Array, values: list
) -> None:
    """Sliced arrays with nulls, signed zeros, NaN, int64 and uint64 extremes, narrow
    temporal values: the same registers as feeding the library each non-null value."""
    state = HllState.empty("x")
    half = len(array) // 2
    state.update(_batch(array.slice(0, half)))
    state.update(_batch(array.slice(half)))
    assert state.n == len(values)
    assert _same_registers(state.sketch, _library_sketch(values))


def test_hll_hash_slot_skips_the_rows_where_a_sliced_value_column_is_null() -> None:
    values = pa.array([None if i % 4 == 1 else f"v{i % 300}" for i in range(3_000)]).slice(5)
    hashes = pa.array(np.arange(3_000, dtype=np.int64) * 104_729 % 7_777).slice(5)
    state = HllState.empty("x", hash_slot="h")
    state.update(Batch(pa.RecordBatch.from_arrays([values, hashes], ["x", "h"])))
    kept = [h for v, h in zip(values.to_pylist(), hashes.to_pylist()) if v is not None]
    assert state.n == len(kept)
    assert _same_registers(state.sketch, _library_sketch(kept))


@pytest.mark.parametrize(
    "array",
    [
        pa.array(["b", None, "a", "b", None, "", "a", "b"]),
        pa.array(["b", None, "a", "b", None, "", "a", "b"], pa.large_string()).slice(1),
        pa.DictionaryArray.from_arrays(pa.array([0, 1, None, 2, 1, 0]), pa.array(["a", None, "c"])),
        pa.array(["x", "y", None]).cast(pa.string_view()),
        pa.array([None, None], pa.string()),
    ],
)
def test_frequent_items_of_strings_count_the_non_null_values(array: pa.Array) -> None:
    state = FrequentItemsState.empty("x", 3)
    state.update(_batch(array))
    plain = array.dictionary_decode() if pa.types.is_dictionary(array.type) else array
    expected = Counter(v for v in plain.to_pylist() if v is not None)
    assert state.n == sum(expected.values())
    assert {v: e for v, e, _, _ in state.top(10)} == dict(expected)
