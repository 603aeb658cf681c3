"""ContingencyState against pandas crosstabs and Counter, the level cap, and the merge laws."""

from __future__ import annotations

import pickle
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spark_explore.errors import IncompatibleStatesError, InvalidArgumentError
from spark_explore.states.base import State
from spark_explore.states.batch import Batch
from spark_explore.states.contingency import ContingencyState
from spark_explore.states.grouped import OTHER, level_rank


def _state(data: pa.Table | dict, max_levels: int = 50, a: str = "a", b: str = "b"):
    table = pa.table(data) if isinstance(data, dict) else data
    state = ContingencyState(a, b, max_levels)
    state.update(Batch(table))
    return state


def _as_counter(state: ContingencyState, **options) -> Counter:
    rows, cols, counts = state.table(**options)
    return Counter(
        {
            (r, c): int(counts[i, j])
            for i, r in enumerate(rows)
            for j, c in enumerate(cols)
            if counts[i, j]
        }
    )


def test_penguins_species_by_sex_matches_pandas_crosstab(shared_data: Path) -> None:
    table = pq.read_table(shared_data / "real" / "penguins.parquet")
    frame = table.to_pandas()
    state = _state(table, a="species", b="sex")
    # pandas 2.3: crosstab(dropna=False) keeps NaN as a column, sorted last
    want = pd.crosstab(frame["species"], frame["sex"].fillna("<null>"))
    rows, cols, counts = state.table()
    assert rows == ["Adelie", "Chinstrap", "Gentoo"] and cols == ["female", "male", None]
    np.testing.assert_array_equal(counts, want[["female", "male", "<null>"]].to_numpy())
    assert counts[:, 2].tolist() == [6, 0, 5]  # the 11 penguins of unknown sex
    rows, cols, counts = state.table(drop_null=True)
    assert cols == ["female", "male"] and counts.sum() == 333
    assert counts.dtype == np.int64 and state.n == 344


def test_species_by_island_and_iris_match_counter(shared_data: Path) -> None:
    penguins = pq.read_table(shared_data / "real" / "penguins.parquet")
    state = _state(penguins, a="island", b="species")
    pairs = Counter(zip(penguins["island"].to_pylist(), penguins["species"].to_pylist()))
    assert _as_counter(state) == pairs
    iris = pq.read_table(shared_data / "real" / "iris.parquet")
    state = _state(iris, a="species", b="species")
    np.testing.assert_array_equal(state.table()[2], np.diag([50, 50, 50]))


def test_integer_boolean_null_and_empty_columns() -> None:
    state = _state({"a": [3, 10, None, 3], "b": [True, False, None, True]})
    rows, cols, counts = state.table()
    assert rows == ["10", "3", None] and cols == ["false", "true", None]
    assert counts.tolist() == [[1, 0, 0], [0, 2, 0], [0, 0, 1]]
    all_null = _state({"a": pa.array([None] * 4, pa.null()), "b": ["x", "y", "x", None]})
    rows, cols, counts = all_null.table()
    assert rows == [None] and cols == ["x", "y", None] and counts.tolist() == [[2, 1, 1]]
    assert all_null.table(drop_null=True)[2].shape == (0, 2)
    empty = ContingencyState("a", "b")
    empty.update(Batch(pa.table({"a": pa.array([], pa.string()), "b": pa.array([], pa.int32())})))
    assert empty.is_empty and empty.table()[2].shape == (0, 0)
    with pytest.raises(InvalidArgumentError) as info:
        _state({"a": [1.5], "b": ["x"]})
    assert info.value.code == "INVALID_ARGUMENT"


def _capped(rows: int, seed: int) -> dict[str, list]:
    rng = np.random.default_rng(seed)
    a = [f"r{i}" for i in rng.integers(0, 20, rows)]
    b = [None if i == 0 else f"c{i}" for i in rng.integers(0, 15, rows)]
    return {"a": a, "b": b}


def test_cap_folds_each_axis_deterministically() -> None:
    data = _capped(3000, seed=5)
    state = _state(data, max_levels=4)
    kept_a = sorted(sorted(set(data["a"]), key=level_rank)[:4])
    # null ranks first, so it is always kept
    kept_b = [*sorted(sorted(set(data["b"]) - {None}, key=level_rank)[:3]), None]
    rows, cols, counts = state.table()
    assert rows == [*kept_a, OTHER] and cols == [*kept_b, OTHER]

    def fold(value: str | None, kept: list) -> str | None | object:
        return value if value in kept else OTHER

    want = Counter((fold(x, kept_a), fold(y, kept_b)) for x, y in zip(data["a"], data["b"]))
    assert _as_counter(state) == want
    assert state.row_fold.levels == 16 and state.col_fold.levels == 11
    assert state.row_fold.rows == sum(1 for x in data["a"] if x not in kept_a)
    inner = sum(c for (x, y), c in want.items() if x is not OTHER and y is not OTHER)
    assert state.table(include_other=False)[2].sum() == inner
    rng = np.random.default_rng(6)
    for _ in range(5):
        bounds = [0, *np.sort(rng.integers(0, 3000, 5)).tolist(), 3000]
        parts = [
            _state({k: v[lo:hi] for k, v in data.items()}, max_levels=4)
            for lo, hi in zip(bounds, bounds[1:])
        ]
        rng.shuffle(parts)
        merged = ContingencyState.empty("a", "b", 4)
        for part in parts:
            merged = merged.merge(part)
        assert merged.to_bytes() == state.to_bytes()


levels = st.sampled_from(["p", "q", "r", "s", "t", None])


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(st.tuples(levels, st.one_of(st.integers(-3, 3), st.none())), max_size=60),
    cuts=st.lists(st.integers(0, 60), max_size=5),
    max_levels=st.sampled_from([1, 2, 50]),
    seed=st.integers(0, 2**32 - 1),
)
def test_merge_of_any_split_in_any_order_equals_the_whole(rows, cuts, max_levels, seed) -> None:
    data = {
        "a": pa.array([r[0] for r in rows], pa.string()),
        "b": pa.array([r[1] for r in rows], pa.int64()),
    }
    whole = _state(data, max_levels)
    bounds = sorted({0, len(rows), *[min(c, len(rows)) for c in cuts]})
    parts = [
        _state({k: v[lo:hi] for k, v in data.items()}, max_levels)
        for lo, hi in zip(bounds, bounds[1:])
    ]
    rng = np.random.default_rng(seed)
    rng.shuffle(parts)
    merged = ContingencyState.empty("a", "b", max_levels)
    for part in parts:
        before = part.to_bytes()
        merged = merged.merge(part) if rng.random() < 0.5 else part.merge(merged)
        assert part.to_bytes() == before
    assert merged.to_bytes() == whole.to_bytes()  # counts are exact: bytes agree
    assert whole.n == len(rows) == int(whole.table()[2].sum())
    if max_levels == 50:
        want = Counter((a, None if b is None else str(b)) for a, b in rows)
        assert _as_counter(whole) == want


def test_identity_purity_round_trip_and_pickle() -> None:
    left = _state({"a": ["x", None], "b": ["u", "v"]})
    right = _state({"a": ["y", "x"], "b": ["v", "v"]})
    before = left.to_bytes()
    merged = left.merge(right)
    assert left.to_bytes() == before
    assert merged.table()[2].tolist() == [[1, 1], [0, 1], [0, 1]]
    assert ContingencyState.empty("a", "b").merge(merged).to_bytes() == merged.to_bytes()
    for restored in (State.from_bytes(merged.to_bytes()), pickle.loads(pickle.dumps(merged))):
        assert isinstance(restored, ContingencyState)
        assert restored.to_bytes() == merged.to_bytes()
        rows, cols, counts = restored.table()
        assert rows == ["x", "y", None] and cols == ["u", "v"]
    with pytest.raises(IncompatibleStatesError):
        left.merge(ContingencyState("a", "c"))


def test_give_up_when_either_column_has_too_many_levels() -> None:
    import pyarrow as pa

    from spark_explore.states.batch import Batch as _Batch

    data = {"a": [f"id{i}" for i in range(20)], "b": ["x", "y"] * 10}
    state = ContingencyState("a", "b", max_levels=5, give_up=True)
    state.update(_Batch(pa.record_batch(data)))
    assert state.abandoned and state.n == 20
    left = ContingencyState("a", "b", max_levels=5, give_up=True)
    right = ContingencyState("a", "b", max_levels=5, give_up=True)
    left.update(_Batch(pa.record_batch({k: v[:4] for k, v in data.items()})))
    right.update(_Batch(pa.record_batch({k: v[4:8] for k, v in data.items()})))
    assert not left.abandoned and not right.abandoned
    merged = left.merge(right)
    assert merged.abandoned and merged.n == 8
    assert ContingencyState.from_bytes(merged.to_bytes()).abandoned
