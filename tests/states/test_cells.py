"""CellMomentsState against pandas group-bys, the level cap, the merge laws and the codec.

Reference values: pandas 2.3 ``DataFrame.groupby([a, b], dropna=False)`` (count, mean,
``var(ddof=1)``) and scipy 1.17 ``stats.skew`` / ``stats.kurtosis`` per cell.
"""

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
from spark_explore.states.base import State
from spark_explore.states.batch import Batch
from spark_explore.states.cells import CellMomentsState
from spark_explore.states.contingency import ContingencyState
from spark_explore.states.grouped import OTHER, level_rank

RTOL = 1e-9


def _state(
    data: pa.Table | dict, max_levels: int = 50, y="y", a="a", b="b", give_up: bool = False
) -> CellMomentsState:
    table = pa.table(data) if isinstance(data, dict) else data
    state = CellMomentsState(y, a, b, max_levels, give_up)
    state.update(Batch(table))
    return state


def _text(level: object) -> str | None:
    """A level as the state labels it: null as None, booleans as ``true`` / ``false``."""
    if level is None or (isinstance(level, float) and np.isnan(level)):
        return None
    return str(level).lower() if isinstance(level, (bool, np.bool_)) else str(level)


def _check_against_pandas(
    state: CellMomentsState, frame: pd.DataFrame, y: str, a: str, b: str
) -> None:
    rows, cols, counts, moments = state.cells()
    cell_of = {(r, c): (i, j) for i, r in enumerate(rows) for j, c in enumerate(cols)}
    labels = frame[[a, b]].astype(object).where(frame[[a, b]].notna(), None)
    seen = 0
    for (ra, cb), part in frame.groupby([labels[a], labels[b]], dropna=False):
        key = (_text(ra), _text(cb))
        i, j = cell_of[key]
        assert counts[i, j] == len(part)
        x = part[y].to_numpy(dtype=float)
        x = x[np.isfinite(x)]
        assert moments.n[i, j] == x.size
        seen += len(part)
        if x.size == 0:
            continue
        mean = moments.mean[i, j] + moments.mean_lo[i, j]
        np.testing.assert_allclose(mean, x.mean(), rtol=RTOL)
        if x.size >= 2:
            np.testing.assert_allclose(
                moments.m2[i, j] / (x.size - 1), x.var(ddof=1), rtol=RTOL, atol=1e-300
            )
        if x.size >= 2 and x.var() > 0:
            m2 = moments.m2[i, j]
            skew = np.sqrt(x.size) * moments.m3[i, j] / m2**1.5
            kurt = x.size * moments.m4[i, j] / m2**2 - 3
            np.testing.assert_allclose(skew, scipy.stats.skew(x), rtol=1e-8, atol=1e-10)
            np.testing.assert_allclose(kurt, scipy.stats.kurtosis(x), rtol=1e-8, atol=1e-10)
    assert seen == counts.sum() == state.n


def test_penguins_body_mass_by_species_and_island_matches_pandas(shared_data: Path) -> None:
    table = pq.read_table(shared_data / "real" / "penguins.parquet")
    frame = table.to_pandas()
    state = _state(table, y="body_mass_g", a="species", b="sex")
    _check_against_pandas(state, frame, "body_mass_g", "species", "sex")
    rows, cols, counts, moments = state.cells(drop_null=True)
    assert rows == ["Adelie", "Chinstrap", "Gentoo"] and cols == ["female", "male"]
    by_cell = frame.dropna(subset=["sex"]).groupby(["species", "sex"])["body_mass_g"]
    np.testing.assert_allclose(
        moments.mean + moments.mean_lo, by_cell.mean().unstack().to_numpy(), rtol=RTOL
    )
    island = _state(table, y="flipper_length_mm", a="species", b="island")
    _check_against_pandas(island, frame, "flipper_length_mm", "species", "island")
    # the count table is the contingency table of the same pair
    contingency = ContingencyState("species", "island")
    contingency.update(Batch(table))
    np.testing.assert_array_equal(island.table()[2], contingency.table()[2])


def test_nulls_nan_and_infinities_count_as_rows_but_not_as_values() -> None:
    data = {
        "y": [1.0, float("nan"), float("inf"), None, 4.0, 6.0],
        "a": ["p", "p", "q", None, None, "q"],
        "b": [True, True, False, False, True, None],
    }
    state = _state(data)
    _check_against_pandas(state, pd.DataFrame(data), "y", "a", "b")
    rows, cols, counts, moments = state.cells()
    assert rows == ["p", "q", None] and cols == ["false", "true", None]
    assert counts.tolist() == [[0, 2, 0], [1, 0, 1], [1, 1, 0]]
    assert moments.n.tolist() == [[0, 1, 0], [0, 0, 1], [0, 1, 0]]


def test_cap_folds_cells_of_dropped_levels_into_the_other_row_and_column() -> None:
    rng = np.random.default_rng(5)
    names = [f"lvl{i:02d}" for i in range(12)]
    a = [names[i] for i in rng.integers(0, 12, 3000)]
    b = [names[i] for i in rng.integers(0, 6, 3000)]
    y = rng.normal(size=3000) * 10 + 100
    state = _state({"y": y, "a": a, "b": b}, max_levels=4)
    kept_a = sorted(sorted(set(a), key=level_rank)[:4])
    kept_b = sorted(sorted(set(b), key=level_rank)[:4])
    rows, cols, counts, moments = state.cells()
    assert rows == [*kept_a, OTHER] and cols == [*kept_b, OTHER]
    frame = pd.DataFrame(
        {
            "y": y,
            "a": [v if v in kept_a else "~other" for v in a],
            "b": [v if v in kept_b else "~other" for v in b],
        }
    )
    want = frame.groupby(["a", "b"])["y"]
    mean, var, n = (want.mean().unstack(), want.var().unstack(), want.size().unstack())
    np.testing.assert_array_equal(counts, n.to_numpy())
    np.testing.assert_allclose(moments.mean + moments.mean_lo, mean.to_numpy(), rtol=RTOL)
    np.testing.assert_allclose(moments.m2 / (moments.n - 1), var.to_numpy(), rtol=RTOL)
    assert state.row_fold.levels == 8 and state.col_fold.levels == 2
    # the same cap reached through merges of small parts, in a shuffled order
    parts = [
        _state({"y": y[i : i + 250], "a": a[i : i + 250], "b": b[i : i + 250]}, 4)
        for i in range(0, 3000, 250)
    ]
    rng.shuffle(parts)
    merged = parts[0]
    for part in parts[1:]:
        merged = part.merge(merged) if rng.random() < 0.5 else merged.merge(part)
    got = merged.cells()
    assert got[0] == rows and got[1] == cols
    np.testing.assert_array_equal(got[2], counts)
    np.testing.assert_allclose(got[3].mean + got[3].mean_lo, mean.to_numpy(), rtol=RTOL)
    np.testing.assert_allclose(got[3].m2, moments.m2, rtol=1e-10)


def test_give_up_keeps_only_rows_once_a_factor_has_too_many_levels() -> None:
    data = {"y": np.arange(20.0), "a": [f"id{i}" for i in range(20)], "b": ["x", "y"] * 10}
    state = _state(data, max_levels=5, give_up=True)
    assert state.abandoned and state.n == 20
    rows, cols, counts, moments = state.cells()
    assert rows == [OTHER] and cols == [OTHER] and counts.tolist() == [[20]]
    assert moments.n.tolist() == [[0.0]]
    left = _state({k: v[:4] for k, v in data.items()}, max_levels=5, give_up=True)
    right = _state({k: v[4:8] for k, v in data.items()}, max_levels=5, give_up=True)
    assert not left.abandoned and not right.abandoned
    merged = left.merge(right)
    assert merged.abandoned and merged.n == 8 and merged.cells()[3].n.tolist() == [[0.0]]
    restored = State.from_bytes(merged.to_bytes())
    assert restored.abandoned and restored.give_up and restored.to_bytes() == merged.to_bytes()
    merged.update(Batch(pa.table({k: v[8:] for k, v in data.items()})))
    assert merged.n == 20 and merged.to_bytes() == state.to_bytes()
    with pytest.raises(IncompatibleStatesError):
        left.merge(CellMomentsState("y", "a", "b", max_levels=5))


def test_bad_arguments_raise() -> None:
    with pytest.raises(InvalidArgumentError) as info:
        _state({"y": [1.0], "a": [0.5], "b": ["x"]})
    assert info.value.code == "INVALID_ARGUMENT"
    with pytest.raises(InvalidArgumentError):
        CellMomentsState("y", "a", "b", max_levels=0)


def test_identity_purity_round_trip_pickle_and_incompatible_merges() -> None:
    left = _state({"y": [1.0, 2.0, None], "a": ["u", None, "v"], "b": ["s", "t", "t"]})
    right = _state({"y": [7.0, 3.0], "a": ["w", "u"], "b": ["s", "s"]})
    before = left.to_bytes(), right.to_bytes()
    merged = left.merge(right)
    assert (left.to_bytes(), right.to_bytes()) == before
    assert merged.cells()[0] == ["u", "v", "w", None] and merged.n == 5
    empty = CellMomentsState.empty("y", "a", "b")
    assert empty.is_empty and empty.n == 0
    assert empty.merge(merged).to_bytes() == merged.to_bytes()
    assert merged.merge(empty).to_bytes() == merged.to_bytes()
    empty.update(
        Batch(
            pa.table(
                {
                    "y": pa.array([], pa.float64()),
                    "a": pa.array([], pa.string()),
                    "b": pa.array([], pa.string()),
                }
            )
        )
    )
    assert empty.to_bytes() == CellMomentsState.empty("y", "a", "b").to_bytes()
    for restored in (State.from_bytes(merged.to_bytes()), pickle.loads(pickle.dumps(merged))):
        assert isinstance(restored, CellMomentsState)
        assert restored.target_slot == "y" and restored.to_bytes() == merged.to_bytes()
        for got, want in zip(restored.cells(), merged.cells(), strict=True):
            if isinstance(want, list):
                assert got == want
            else:
                np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    with pytest.raises(IncompatibleStatesError):
        left.merge(CellMomentsState("z", "a", "b"))
    with pytest.raises(IncompatibleStatesError):
        left.merge(CellMomentsState("y", "a", "b", max_levels=3))
    with pytest.raises(IncompatibleStatesError):
        left.merge(ContingencyState("a", "b"))


values = st.one_of(
    st.floats(-1e6, 1e6, allow_nan=False),
    st.none(),
    st.just(float("nan")),
    st.just(float("-inf")),
)
levels_a = st.sampled_from(["a", "b", "c", "d", "e", None])
levels_b = st.sampled_from(["x", "y", "z", None])


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(st.tuples(levels_a, levels_b, values), min_size=0, max_size=60),
    cuts=st.lists(st.integers(0, 60), max_size=5),
    max_levels=st.sampled_from([1, 2, 50]),
    give_up=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_merge_of_any_split_in_any_order_equals_the_whole(
    rows, cuts, max_levels, give_up, seed
) -> None:
    data = {
        "a": pa.array([r[0] for r in rows], pa.string()),
        "b": pa.array([r[1] for r in rows], pa.string()),
        "y": pa.array([r[2] for r in rows], pa.float64()),
    }
    whole = _state(data, max_levels, give_up=give_up)
    bounds = sorted({0, len(rows), *[min(c, len(rows)) for c in cuts]})
    parts = [
        _state({k: v[lo:hi] for k, v in data.items()}, max_levels, give_up=give_up)
        for lo, hi in zip(bounds, bounds[1:], strict=False)
    ]
    rng = np.random.default_rng(seed)
    rng.shuffle(parts)
    merged = CellMomentsState.empty("y", "a", "b", max_levels, give_up)
    for part in parts:
        before = part.to_bytes()
        merged = merged.merge(part) if rng.random() < 0.5 else part.merge(merged)
        assert part.to_bytes() == before  # merge never mutates its inputs
    restored = State.from_bytes(merged.to_bytes())
    assert restored.to_bytes() == merged.to_bytes()
    pairs = Counter((r[0], r[1]) for r in rows)
    assert whole.n == merged.n == len(rows) and merged.abandoned == whole.abandoned
    want_rows, want_cols, want_counts, want = whole.cells()
    got_rows, got_cols, got_counts, got = merged.cells()
    assert (got_rows, got_cols) == (want_rows, want_cols)
    np.testing.assert_array_equal(got_counts, want_counts)
    if max_levels == 50:  # nothing folded or abandoned: every pair is counted
        assert sum(int(c) for c in want_counts.ravel()) == sum(pairs.values())
    np.testing.assert_array_equal(got.n, want.n)
    np.testing.assert_allclose(
        got.mean + got.mean_lo, want.mean + want.mean_lo, rtol=1e-12, atol=1e-9
    )
    scale = np.maximum(want.m2, 1.0)
    np.testing.assert_allclose(got.m2 / scale, want.m2 / scale, atol=1e-9)
