"""GroupedMomentsState against pandas/scipy group-bys, the level cap, and the merge laws."""

from __future__ import annotations

import pickle
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st

from spark_explore.errors import IncompatibleStatesError, InvalidArgumentError
from spark_explore.states import _algebra
from spark_explore.states.base import State
from spark_explore.states.batch import Batch
from spark_explore.states.grouped import (
    DISTINCT_SKETCH_SIZE,
    GroupedMomentsState,
    bucket_moments,
    level_rank,
)

RTOL = 1e-9
PENGUIN_VALUES = ("bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g")


def _state(
    table: pa.Table | dict, values: tuple[str, ...], group: str, max_groups: int = 50
) -> GroupedMomentsState:
    if isinstance(table, dict):
        table = pa.table(table)
    state = GroupedMomentsState(values, group, max_groups)
    state.update(Batch(table))
    return state


def _stats(state: GroupedMomentsState, slot: str) -> dict[str, np.ndarray]:
    m = state.moments(slot)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "n": m.n,
            "mean": m.mean + m.mean_lo,
            "var": m.m2 / (m.n - 1),
            "skew": np.sqrt(m.n) * m.m3 / m.m2**1.5,
            "kurt": m.n * m.m4 / m.m2**2 - 3,
        }


def _check_against_pandas(state: GroupedMomentsState, frame: pd.DataFrame, group: str) -> None:
    """Per-group count, mean, variance, skewness and kurtosis (pandas 2.3, scipy 1.17)."""
    grouped = frame.groupby(group, dropna=False, sort=True)
    sizes = grouped.size()
    want_levels = [None if pd.isna(g) else g for g in sizes.index]
    assert state.levels() == want_levels
    np.testing.assert_array_equal(state.counts, sizes.to_numpy())
    for slot in state.value_slots:
        got = _stats(state, slot)
        for i, (_, rows) in enumerate(grouped):
            x = rows[slot].to_numpy(dtype=float)
            x = x[np.isfinite(x)]
            assert got["n"][i] == len(x)
            np.testing.assert_allclose(got["mean"][i], x.mean(), rtol=RTOL)
            np.testing.assert_allclose(got["var"][i], x.var(ddof=1), rtol=RTOL)
            np.testing.assert_allclose(got["skew"][i], scipy.stats.skew(x), rtol=RTOL)
            np.testing.assert_allclose(got["kurt"][i], scipy.stats.kurtosis(x), rtol=RTOL)


def test_penguins_by_species_and_by_sex_match_pandas(shared_data: Path) -> None:
    table = pq.read_table(shared_data / "real" / "penguins.parquet")
    frame = table.to_pandas()
    _check_against_pandas(_state(table, PENGUIN_VALUES, "species"), frame, "species")
    by_sex = _state(table, PENGUIN_VALUES, "sex")
    assert by_sex.levels() == ["female", "male", None]
    assert by_sex.counts.tolist() == [165, 168, 11]
    # the null-sex group: 11 rows, of which 2 have no measurement at all
    assert by_sex.moments("body_mass_g").n[-1] == 9
    _check_against_pandas(by_sex, frame, "sex")


def test_iris_by_species_matches_pandas(shared_data: Path) -> None:
    table = pq.read_table(shared_data / "real" / "iris.parquet")
    values = tuple(n for n in table.column_names if n != "species")
    state = _state(table, values, "species")
    assert state.counts.tolist() == [50, 50, 50]
    _check_against_pandas(state, table.to_pandas(), "species")


def test_integer_boolean_and_dictionary_groups_are_labelled_by_text() -> None:
    ints = _state({"x": [1.0, 2.0, 3.0, 4.0], "g": [10, -3, 2, 10]}, ("x",), "g")
    assert ints.levels() == ["-3", "10", "2"]  # text order
    assert ints.counts.tolist() == [1, 2, 1]
    bools = _state({"x": [1.0, 2.0, 3.0], "g": [True, None, True]}, ("x",), "g")
    assert bools.levels() == ["true", None]
    codes = pa.array(["b", "a", "b"]).dictionary_encode()
    dictionary = _state({"x": [1.0, 2.0, 3.0], "g": codes}, ("x",), "g")
    assert dictionary.levels() == ["a", "b"] and dictionary.counts.tolist() == [1, 2]


def test_float_group_column_is_refused() -> None:
    with pytest.raises(InvalidArgumentError) as info:
        _state({"x": [1.0], "g": [0.5]}, ("x",), "g")
    assert info.value.code == "INVALID_ARGUMENT"
    with pytest.raises(InvalidArgumentError):
        GroupedMomentsState(("x",), "g", max_groups=0)


def test_all_null_groups_size_one_groups_and_empty_batches() -> None:
    nulls = pa.array([None, None, None], pa.null())
    all_null = _state({"x": [1.0, 2.0, 4.0], "g": nulls}, ("x",), "g")
    assert all_null.levels() == [None] and all_null.counts.tolist() == [3]
    np.testing.assert_allclose(_stats(all_null, "x")["mean"], [7 / 3], rtol=RTOL)
    single = _state({"x": [5.0, 1.0, 2.0], "g": ["solo", "b", "b"]}, ("x",), "g")
    solo = single.moments("x")
    assert solo.n.tolist() == [2.0, 1.0] and solo.m2[1] == 0.0 and solo.mean[1] == 5.0
    empty = GroupedMomentsState(("x",), "g")
    before = empty.to_bytes()
    empty.update(Batch(pa.table({"x": pa.array([], pa.float64()), "g": pa.array([], pa.string())})))
    assert empty.is_empty and empty.to_bytes() == before and empty.levels() == []
    assert empty.merge(single).to_bytes() == single.to_bytes()


def _capped_frame(levels: int, rows: int, seed: int) -> dict[str, list]:
    rng = np.random.default_rng(seed)
    names = [f"level{i:03d}" for i in range(levels)]
    group = [names[i] for i in rng.integers(0, levels, rows)]
    return {"x": rng.normal(size=rows).tolist(), "g": group}


def test_cap_keeps_the_smallest_ranked_levels_and_folds_the_rest() -> None:
    data = _capped_frame(30, 2000, seed=1)
    state = _state(data, ("x",), "g", max_groups=5)
    distinct = sorted(set(data["g"]), key=level_rank)
    kept = sorted(distinct[:5])
    assert state.levels() == kept
    counter = Counter(data["g"])
    assert state.counts.tolist() == [counter[level] for level in kept]
    assert state.other_count == sum(c for level, c in counter.items() if level not in kept)
    assert state.fold.levels == len(distinct) - 5 and state.fold.exact
    x, g = np.array(data["x"]), np.array(data["g"])
    folded = x[~np.isin(g, kept)]
    other = state.other_moments("x")
    np.testing.assert_allclose(other.mean + other.mean_lo, folded.mean(), rtol=RTOL)
    np.testing.assert_allclose(other.m2 / (other.n - 1), folded.var(ddof=1), rtol=RTOL)
    # whatever the partitioning and merge order, the same levels survive
    rng = np.random.default_rng(2)
    for _ in range(5):
        cuts = np.sort(rng.integers(0, 2000, 6))
        bounds = [0, *cuts.tolist(), 2000]
        parts = [
            _state({k: v[lo:hi] for k, v in data.items()}, ("x",), "g", max_groups=5)
            for lo, hi in zip(bounds, bounds[1:])
        ]
        rng.shuffle(parts)
        merged = parts[0]
        for part in parts[1:]:
            merged = part.merge(merged) if rng.random() < 0.5 else merged.merge(part)
        assert merged.levels() == kept
        np.testing.assert_array_equal(merged.counts, state.counts)
        assert merged.other_count == state.other_count and merged.fold == state.fold


def test_folded_level_count_is_estimated_beyond_the_sketch() -> None:
    levels = 3 * DISTINCT_SKETCH_SIZE
    data = {"x": np.ones(levels).tolist(), "g": [f"v{i}" for i in range(levels)]}
    whole = _state(data, ("x",), "g", max_groups=10)
    fold = whole.fold
    assert not fold.exact and 0 < fold.relative_error < 0.05
    assert abs(fold.levels - (levels - 10)) < 4 * fold.relative_error * levels
    assert fold.rows == levels - 10
    half = levels // 2
    left = _state({k: v[:half] for k, v in data.items()}, ("x",), "g", max_groups=10)
    right = _state({k: v[half:] for k, v in data.items()}, ("x",), "g", max_groups=10)
    assert right.merge(left).fold == fold and left.merge(right).levels() == whole.levels()


cells = st.one_of(
    st.floats(-1e6, 1e6, allow_nan=False),
    st.none(),
    st.just(float("nan")),
    st.just(float("inf")),
)
groups = st.sampled_from(["a", "b", "c", "d", "e", "f", None])


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(st.tuples(groups, cells, cells), min_size=0, max_size=60),
    cuts=st.lists(st.integers(0, 60), max_size=5),
    max_groups=st.sampled_from([1, 3, 50]),
    seed=st.integers(0, 2**32 - 1),
)
def test_merge_of_any_split_in_any_order_equals_the_whole(rows, cuts, max_groups, seed) -> None:
    data = {
        "g": pa.array([r[0] for r in rows], pa.string()),
        "x": pa.array([r[1] for r in rows], pa.float64()),
        "y": pa.array([r[2] for r in rows], pa.float64()),
    }
    whole = _state(data, ("x", "y"), "g", max_groups)
    bounds = sorted({0, len(rows), *[min(c, len(rows)) for c in cuts]})
    parts = [
        _state({k: v[lo:hi] for k, v in data.items()}, ("x", "y"), "g", max_groups)
        for lo, hi in zip(bounds, bounds[1:])
    ]
    rng = np.random.default_rng(seed)
    rng.shuffle(parts)
    merged = GroupedMomentsState.empty(("x", "y"), "g", max_groups)
    for part in parts:
        before = part.to_bytes()
        merged = merged.merge(part) if rng.random() < 0.5 else part.merge(merged)
        assert part.to_bytes() == before  # merge never mutates its inputs
    counter = Counter(r[0] for r in rows)
    assert whole.n == len(rows) and merged.n == len(rows)
    assert whole.counts.tolist() == [counter[level] for level in whole.levels()]
    assert merged.levels() == whole.levels()
    np.testing.assert_array_equal(merged.counts, whole.counts)
    assert merged.other_count == whole.other_count and merged.fold == whole.fold
    for slot in ("x", "y"):
        for pick in (GroupedMomentsState.moments, GroupedMomentsState.other_moments):
            got, want = pick(merged, slot), pick(whole, slot)
            np.testing.assert_array_equal(got.n, want.n)
            np.testing.assert_allclose(
                got.mean + got.mean_lo, want.mean + want.mean_lo, rtol=1e-12, atol=1e-9
            )
            scale = np.maximum(want.m2, 1.0)
            np.testing.assert_allclose(got.m2 / scale, want.m2 / scale, atol=1e-9)


def test_merge_identity_purity_round_trip_and_pickle() -> None:
    left = _state({"x": [1.0, 2.0, None], "g": ["a", None, "b"]}, ("x",), "g")
    right = _state({"x": [7.0, 3.0], "g": ["c", "a"]}, ("x",), "g")
    before = left.to_bytes(), right.to_bytes()
    merged = left.merge(right)
    assert (left.to_bytes(), right.to_bytes()) == before
    assert merged.levels() == ["a", "b", "c", None] and merged.counts.tolist() == [2, 1, 1, 1]
    assert GroupedMomentsState.empty(("x",), "g").merge(merged).to_bytes() == merged.to_bytes()
    assert merged.merge(GroupedMomentsState.empty(("x",), "g")).to_bytes() == merged.to_bytes()
    for restored in (State.from_bytes(merged.to_bytes()), pickle.loads(pickle.dumps(merged))):
        assert isinstance(restored, GroupedMomentsState)
        assert restored.to_bytes() == merged.to_bytes()
        assert restored.levels() == merged.levels()
        np.testing.assert_array_equal(restored.moments("x").m2, merged.moments("x").m2)
    with pytest.raises(IncompatibleStatesError):
        left.merge(GroupedMomentsState(("x",), "g", max_groups=3))


def test_give_up_beyond_the_cap_whatever_the_split() -> None:
    import pyarrow as pa

    from spark_explore.states.batch import Batch as _Batch

    levels = [f"id{i}" for i in range(30)]
    data = {"x": [float(i) for i in range(30)], "g": levels}
    whole = GroupedMomentsState(("x",), "g", max_groups=10, give_up=True)
    whole.update(_Batch(pa.record_batch(data)))
    assert whole.abandoned and whole.n == 30 and whole.levels() == []
    parts = []
    for lo in range(0, 30, 6):  # each part alone stays under the cap
        part = GroupedMomentsState(("x",), "g", max_groups=10, give_up=True)
        part.update(_Batch(pa.record_batch({k: v[lo : lo + 6] for k, v in data.items()})))
        assert not part.abandoned
        parts.append(part)
    merged = parts[0]
    for part in parts[1:]:
        merged = merged.merge(part)
    assert merged.abandoned and merged.n == 30
    restored = GroupedMomentsState.from_bytes(merged.to_bytes())
    assert restored.abandoned and restored.n == 30
    few = GroupedMomentsState(("x",), "g", max_groups=10, give_up=True)
    few.update(_Batch(pa.record_batch({k: v[:10] for k, v in data.items()})))
    assert not few.abandoned and len(few.levels()) == 10


def _awkward_columns(rows: int, seed: int) -> np.ndarray:
    """Columns with nulls (NaN), infinities, extremes of float64, a constant and a
    large mean with a small spread."""
    rng = np.random.default_rng(seed)
    x = np.column_stack(
        [
            rng.normal(3.0, 2.0, rows),
            rng.normal(1e300, 1e299, rows),
            rng.normal(0.0, 1e-160, rows),
            rng.choice([1.7e308, -1.7e308, 1.0], rows),
            np.full(rows, 4.25),
            rng.normal(0.9999999, 1e-8, rows),
        ]
    )
    x[rng.random(x.shape) < 0.1] = np.nan
    x[rng.random(x.shape) < 0.02] = np.inf
    x[rng.random(x.shape) < 0.02] = -np.inf
    x[:, 0][rng.random(rows) < 0.5] = np.nan  # some small buckets never observe column 0
    return np.asfortranarray(x)


@pytest.mark.parametrize("levels", [1, 5, 40])  # one bucket, few, more than sliced
@pytest.mark.parametrize("seed", [1, 2])
def test_bucket_moments_equal_each_bucket_reduced_alone(levels: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    rows = 3000
    x = _awkward_columns(rows, seed)
    finite = np.isfinite(x)
    size = levels + 3  # buckets that hold no row stay the identity
    used = rng.choice(size, levels, replace=False)
    buckets = used[rng.integers(0, levels, rows) ** 2 % levels]  # uneven, some tiny
    buckets[rng.integers(0, rows)] = used[0]
    got = bucket_moments(x, finite, buckets, size)
    again = bucket_moments(
        x,
        finite,
        buckets,
        size,
        np.bincount(buckets, minlength=size),
        _algebra.skipped_entries(finite),
    )
    for a, b in zip(got, again):
        np.testing.assert_array_equal(a, b)
    for bucket in range(size):
        mine = buckets == bucket
        if not mine.any():
            assert all((field[bucket] == 0).all() for field in got)
            continue
        with np.errstate(over="ignore", invalid="ignore"):
            want = _algebra.segment_moments(
                np.asfortranarray(x[mine]), np.asfortranarray(finite[mine]), np.array([0])
            )
        for name, a, b in zip(want._fields, got, want):
            np.testing.assert_array_equal(a[bucket], b[0], err_msg=f"{name} {bucket}")
        assert (got.mean[bucket, 4] == 4.25) and (got.m2[bucket, 4] == 0.0)
        np.testing.assert_array_equal(got.n[bucket], finite[mine].sum(axis=0))
        kept = x[mine, 0][finite[mine, 0]]
        if kept.size > 1:  # against numpy on the plain column
            moments = got.mean[bucket, 0] + got.mean_lo[bucket, 0], got.m2[bucket, 0]
            np.testing.assert_allclose(moments, [kept.mean(), kept.var() * kept.size], rtol=1e-12)
