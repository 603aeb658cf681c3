"""KllState: quantiles, ranks and CDF checked by true rank, and the merge laws."""

from __future__ import annotations

import datetime
import pickle

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spark_explore.errors import IncompatibleStatesError, InvalidArgumentError
from spark_explore.states.base import State
from spark_explore.states.batch import Batch
from spark_explore.states.quantiles import KllState, counted_sketch
from tests.states.merging import merge_randomly

PROBS = np.linspace(0.0, 1.0, 41)


def _batch(values: list | np.ndarray, type: pa.DataType | None = None) -> Batch:
    return Batch(pa.RecordBatch.from_arrays([pa.array(values, type=type)], ["x"]))


def _state(values: list | np.ndarray, k: int = 200) -> KllState:
    state = KllState.empty("x", k)
    state.update(_batch(values))
    return state


def _rank_distance(sorted_values: np.ndarray, q: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """How far ``probs`` lie outside the true rank interval [P(X < q), P(X <= q)]."""
    n = len(sorted_values)
    low = np.searchsorted(sorted_values, q, side="left") / n
    high = np.searchsorted(sorted_values, q, side="right") / n
    return np.maximum(np.maximum(low - probs, probs - high), 0.0)


def _distributions() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(20240611)
    n = 4000
    return {
        "normal": rng.normal(10.0, 3.0, n),
        "lognormal": rng.lognormal(0.0, 2.0, n),
        "ties": rng.integers(0, 7, n).astype(float),
        "bimodal": np.concatenate([rng.normal(-5, 1, n // 2), rng.normal(5, 0.1, n // 2)]),
        "sorted_uniform": np.sort(rng.uniform(-1e9, 1e9, n)),
    }


@pytest.mark.parametrize("name", list(_distributions()))
def test_quantiles_ranks_and_cdf_within_rank_error(name: str) -> None:
    x = _distributions()[name]
    state = KllState.empty("x")
    for chunk in np.array_split(x, 3):  # several batches, and a merge
        state.update(_batch(chunk))
    other = _state(x[:0])
    state = state.merge(other)
    eps = state.rank_error
    assert eps == pytest.approx(0.0133, abs=1e-3)
    assert state.n == len(x) and state.min == x.min() and state.max == x.max()
    xs = np.sort(x)
    q = np.array(state.quantiles(PROBS))
    assert q[0] == x.min() and q[-1] == x.max()
    assert _rank_distance(xs, q, PROBS).max() <= eps
    points = np.quantile(x, [0.1, 0.3, 0.5, 0.9, 0.3])
    true_cdf = np.searchsorted(xs, points, side="right") / len(x)
    np.testing.assert_allclose(state.cdf(points), true_cdf, atol=eps)
    assert state.rank(points[2]) == pytest.approx(true_cdf[2], abs=eps)


def test_non_finite_and_null_values_are_left_out() -> None:
    values = [1.0, None, np.nan, np.inf, -np.inf, 2.0, 3.0]
    state = _state(values)
    assert state.n == 3
    assert state.quantiles([0.0, 0.5, 1.0]) == [1.0, 2.0, 3.0]
    assert state.cdf([-np.inf, 2.0, np.inf, 2.0]) == [0.0, 2 / 3, 1.0, 2 / 3]


def test_empty_and_all_null() -> None:
    for state in (
        _state([]),
        _state(
            [None, None],
        ),
        _state([np.nan, np.inf]),
    ):
        assert state.is_empty and state.n == 0
        assert state.quantiles([0.5, 0.9]) == [None, None]
        assert state.rank(1.0) is None and state.cdf([1.0]) == [None]
        assert state.min is None and state.max is None
        restored = State.from_bytes(state.to_bytes())
        assert isinstance(restored, KllState) and restored.is_empty


def test_single_value_and_integer_extremes() -> None:
    state = _state([42.0])
    assert state.quantiles([0.0, 0.5, 1.0]) == [42.0] * 3
    assert state.rank(41.0) == 0.0 and state.rank(42.0) == 1.0
    ints = KllState.empty("x")
    ints.update(_batch([2**63 - 1, -(2**63), 0], pa.int64()))
    assert ints.min == -(2.0**63) and ints.max == 2.0**63


def test_dates_and_timestamps_are_read_as_numbers() -> None:
    days = [datetime.date(2020, 1, 1), datetime.date(2020, 1, 3), None]
    state = KllState.empty("x")
    state.update(_batch(days))
    epoch = datetime.date(1970, 1, 1)
    assert state.min == (days[0] - epoch).days and state.max == (days[1] - epoch).days
    stamps = KllState.empty("x")
    stamps.update(_batch([datetime.datetime(1970, 1, 1, 0, 0, 1)], pa.timestamp("us")))
    assert stamps.min == 1e6


def test_bad_arguments_raise() -> None:
    with pytest.raises(InvalidArgumentError):
        KllState("x", k=4)
    state = _state([1.0, 2.0])
    with pytest.raises(InvalidArgumentError):
        state.quantiles([1.5])
    with pytest.raises(InvalidArgumentError):
        state.quantiles([float("nan")])
    with pytest.raises(InvalidArgumentError):
        state.rank(float("nan"))
    with pytest.raises(InvalidArgumentError):
        state.cdf([float("nan")])
    with pytest.raises(IncompatibleStatesError):
        state.merge(KllState("x", k=100))
    with pytest.raises(IncompatibleStatesError):
        state.merge(KllState("y"))


def _assert_same_sketch(a: KllState, b: KllState) -> None:
    assert (a.slot, a.k, a.n, a.min, a.max) == (b.slot, b.k, b.n, b.min, b.max)
    assert a.quantiles(PROBS) == b.quantiles(PROBS)


values_strategy = st.lists(
    st.none() | st.floats(-1e12, 1e12) | st.sampled_from([np.nan, np.inf, -np.inf]), max_size=150
)


@settings(max_examples=50, deadline=None)
@given(
    values=values_strategy,
    extra=st.integers(0, 3000),
    cuts=st.lists(st.integers(0, 3200), max_size=6),
    seed=st.integers(0, 2**32),
)
def test_merge_of_any_split_equals_whole(
    values: list[float | None], extra: int, cuts: list[int], seed: int
) -> None:
    # ``extra`` deterministic values push the sketch past k into its compacting regime
    data = values + np.random.default_rng(seed).standard_normal(extra).tolist()
    whole = _state(data, k=64)
    finite = np.sort([v for v in data if v is not None and np.isfinite(v)])
    assert whole.n == finite.size
    bounds = [0, *sorted(min(c, len(data)) for c in cuts), len(data)]
    parts = [_state(data[a:b], k=64) for a, b in zip(bounds, bounds[1:])]
    before = [p.to_bytes() for p in parts]
    merged = merge_randomly(parts, seed)
    assert [p.to_bytes() for p in parts] == before  # inputs untouched
    assert merged.n == whole.n and merged.min == whole.min and merged.max == whole.max
    if finite.size:
        eps = merged.rank_error
        q = np.array(merged.quantiles(PROBS))
        assert _rank_distance(finite, q, PROBS).max() <= eps
    if finite.size <= 64:  # no compaction yet: exact, whatever the split
        _assert_same_sketch(merged, whole)
    _assert_same_sketch(whole.merge(KllState.empty("x", 64)), whole)
    _assert_same_sketch(KllState.empty("x", 64).merge(whole), whole)
    restored = State.from_bytes(whole.to_bytes())
    assert isinstance(restored, KllState)
    _assert_same_sketch(restored, whole)
    assert restored.to_bytes() == whole.to_bytes()
    _assert_same_sketch(pickle.loads(pickle.dumps(whole)), whole)


def _exact_quantiles(x: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """The smallest value whose inclusive rank reaches each probability."""
    return np.quantile(x, probs, method="inverted_cdf")


def test_few_distinct_integers_are_counted_exactly() -> None:
    rng = np.random.default_rng(7)
    ages = rng.integers(-1, 100, 50_000).astype(float)
    state = KllState.empty("x")
    for chunk in np.array_split(ages, 5):
        state.update(_batch(chunk))
    assert state.exact and state.n == ages.size
    assert (state.min, state.max) == (ages.min(), ages.max())
    probs = np.array([0.0, 1e-5, 0.01, 0.25, 0.5, 0.75, 0.99, 1.0])
    np.testing.assert_array_equal(state.quantiles(probs), _exact_quantiles(ages, probs))
    points = np.array([-5.0, -1.0, 0.5, 42.0, 99.0, np.inf])
    true_cdf = np.searchsorted(np.sort(ages), points, side="right") / ages.size
    np.testing.assert_array_equal(state.cdf(points), true_cdf)
    assert state.rank(42.0) == true_cdf[3]
    restored = State.from_bytes(state.to_bytes())
    assert isinstance(restored, KllState) and restored.exact
    assert restored.quantiles(probs) == state.quantiles(probs)


def test_integers_near_two_to_the_sixty_are_counted_without_rounding() -> None:
    base = float(2**60)
    values = base + 256.0 * np.arange(-3, 4)  # neighbours 256 apart at this magnitude
    state = _state(np.repeat(values, [1, 2, 3, 4, 3, 2, 1]))
    assert state.exact
    assert state.quantiles([0.0, 0.5, 1.0]) == [values[0], values[3], values[-1]]


@pytest.mark.parametrize(
    "later",
    [[0.5, 0.25], np.arange(3.0e5, 3.0e5 + 500.0), [0.0, 1e9]],
    ids=["fraction", "many", "span"],
)
def test_counts_hand_over_to_the_sketch(later: list[float] | np.ndarray) -> None:
    rng = np.random.default_rng(11)
    first = rng.integers(0, 300, 20_000).astype(float)
    state = _state(first)
    assert state.exact
    state.update(_batch(np.asarray(later, dtype=float)))
    whole = np.sort(np.concatenate([first, later]))
    assert not state.exact and state.n == whole.size
    assert (state.min, state.max) == (whole[0], whole[-1])
    q = np.array(state.quantiles(PROBS))
    assert _rank_distance(whole, q, PROBS).max() <= state.rank_error


def test_merges_of_counts_and_sketches() -> None:
    rng = np.random.default_rng(5)
    parts = [rng.integers(300 * i, 300 * i + 300, 30_000).astype(float) for i in range(3)]
    parts.append(rng.normal(0.0, 1e4, 20_000))  # fractional: a sketch from the start
    states = [_state(p) for p in parts]
    assert [s.exact for s in states] == [True, True, True, False]
    whole = np.sort(np.concatenate(parts))
    exact_union = states[0].merge(states[1])  # 600 distinct > 2k: the sketch takes over
    assert not exact_union.exact and exact_union.n == 60_000
    for order in ([0, 1, 2, 3], [3, 2, 1, 0], [0, 3, 1, 2]):
        merged = states[order[0]]
        for i in order[1:]:
            merged = merged.merge(states[i])
        assert merged.n == whole.size and (merged.min, merged.max) == (whole[0], whole[-1])
        q = np.array(merged.quantiles(PROBS))
        assert _rank_distance(whole, q, PROBS).max() <= merged.rank_error
    same = states[0].merge(_state(parts[0]))  # counts add while under the cap
    assert same.exact and same.n == 2 * parts[0].size


def test_counted_sketch_takes_huge_counts_within_the_error_bound() -> None:
    rng = np.random.default_rng(9)
    values = np.sort(rng.choice(100_000, 400, replace=False)).astype(float)
    counts = rng.integers(1, 10**12, values.size)
    sketch = counted_sketch(values, counts, 200)
    assert sketch.n == counts.sum()
    ranks = np.array([sketch.get_rank(v, True) for v in values])
    true = np.cumsum(counts) / counts.sum()
    assert np.abs(ranks - true).max() <= sketch.normalized_rank_error(False)


def test_a_state_written_before_exact_counts_reads_as_a_sketch() -> None:
    state = _state(np.arange(1000.0) + 0.5)
    fields = state._fields()
    del fields["values"], fields["counts"]
    old = KllState._from_fields(fields)
    assert old.n == 1000 and old.quantiles([0.5]) == state.quantiles([0.5])
