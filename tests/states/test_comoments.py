"""CoMomentState: pairwise-complete correlations against numpy, and the merge laws."""

from __future__ import annotations

import warnings
from fractions import Fraction

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spark_explore.states import _algebra
from spark_explore.states.base import State
from spark_explore.states.batch import Batch, to_float64
from spark_explore.states.comoments import CoMomentState


def _state(matrix: np.ndarray) -> CoMomentState:
    names = tuple(f"c{j}" for j in range(matrix.shape[1]))
    state = CoMomentState(names)
    state.update(Batch(pa.RecordBatch.from_pydict({n: matrix[:, j] for j, n in enumerate(names)})))
    return state


def _pairwise_reference(matrix: np.ndarray) -> np.ndarray:
    k = matrix.shape[1]
    r = np.full((k, k), np.nan)
    for i in range(k):
        for j in range(k):
            both = np.isfinite(matrix[:, i]) & np.isfinite(matrix[:, j])
            if both.sum() >= 2 and matrix[both, i].std() > 0 and matrix[both, j].std() > 0:
                r[i, j] = np.corrcoef(matrix[both, i], matrix[both, j])[0, 1]
    return r


def test_pairwise_complete_correlation_matches_numpy() -> None:
    rng = np.random.default_rng(3)
    base = rng.normal(size=(4000, 1))
    x = base + rng.normal(scale=[0.1, 1.0, 5.0, 0.5], size=(4000, 4)) + [1e6, 0, -3, 1e-3]
    x[rng.random(x.shape) < 0.1] = np.nan
    x[rng.random(x.shape) < 0.01] = np.inf
    state = _state(x)
    np.testing.assert_allclose(state.correlation(), _pairwise_reference(x), rtol=1e-9)
    finite = np.isfinite(x)
    np.testing.assert_array_equal(state.comoments.n, finite.T.astype(int) @ finite.astype(int))


def test_constant_column_correlation_is_undefined_not_noise() -> None:
    rng = np.random.default_rng(4)
    x = np.column_stack([np.full(500, 0.1), rng.normal(size=500)])
    r = _state(x).correlation()
    assert np.isnan(r[0, 1]) and np.isnan(r[0, 0]) and r[1, 1] == 1.0


@settings(max_examples=40, deadline=None)
@given(
    data=st.lists(
        st.tuples(*[st.one_of(st.floats(-1e3, 1e3), st.just(np.nan))] * 3),
        min_size=0,
        max_size=50,
    ),
    cut=st.integers(0, 50),
)
def test_merge_of_a_split_equals_the_whole(data, cut) -> None:
    x = np.array(data, dtype=float).reshape(-1, 3)
    cut = min(cut, len(x))
    whole = _state(x)
    merged = _state(x[:cut]).merge(_state(x[cut:]))
    np.testing.assert_array_equal(merged.comoments.n, whole.comoments.n)
    for name in ("mean", "m2", "c"):
        got, want = getattr(merged.comoments, name), getattr(whole.comoments, name)
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-7)


def test_round_trip_through_bytes() -> None:
    state = _state(np.arange(12.0).reshape(4, 3) ** 1.5)
    restored = State.from_bytes(state.to_bytes())
    assert restored.to_bytes() == state.to_bytes()
    np.testing.assert_array_equal(restored.correlation(), state.correlation())


def test_columns_near_the_float64_limits_are_correlated_or_undefined_never_zero() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=3000)
    y = x + rng.normal(scale=0.5, size=3000)
    # M2 of the first two near 1e155: their product overflows; the third's M2 itself does
    matrix = np.column_stack([x * 1e76, y * 1e76, np.where(np.arange(3000) % 3, 1e308, -1e308)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        state = _state(matrix)
        r = state.correlation()
    scaled = np.ldexp(matrix[:, :2], -600)  # exact; numpy's own sums would overflow
    np.testing.assert_allclose(r[0, 1], np.corrcoef(scaled.T)[0, 1], rtol=1e-9)
    assert np.isnan(r[2]).all() and np.isnan(r[:, 2]).all()
    mean = state.comoments.mean + state.comoments.mean_lo
    want = sum(Fraction(float(v)) for v in matrix[:, 2]) / len(matrix)
    assert mean[2, 2] == pytest.approx(float(want), rel=1e-14)


def _masked_batch_comoments(values: np.ndarray, finite: np.ndarray) -> _algebra.CoMoments:
    """The shifted co-moments with every pass masked by ``finite`` and the pair counts as
    a matrix product: what ``batch_comoments`` computes by overwriting the skipped
    entries and counting over the rows that skip some."""
    k = values.shape[1]
    n_col = finite.sum(axis=0).astype(np.float64)
    d = np.where(finite, values, 0.0)
    low = np.where(finite, values, np.inf).min(axis=0)
    high = np.where(finite, values, -np.inf).max(axis=0)
    safe = np.where(n_col > 0, n_col, 1.0)
    shift = _algebra._constant_or_mean(_algebra._means(d, safe), (low, high))
    with np.errstate(over="ignore", invalid="ignore"):
        d -= shift
        d *= finite
        p = d.T @ d
        if finite.all():
            s, q = d.sum(axis=0), (d * d).sum(axis=0)
            n = np.full((k, k), float(values.shape[0]))
            s_ij, q_ij = np.broadcast_to(s[:, None], (k, k)), np.broadcast_to(q[:, None], (k, k))
        else:
            f = finite.astype(np.float64)
            n, s_ij, q_ij = f.T @ f, d.T @ f, (d * d).T @ f
        return _algebra.pairwise_comoments(shift, n, s_ij, q_ij, p)


def _awkward(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows = int(rng.choice([1, 2, 5, 400, 3000]))
    x = rng.normal(rng.choice([0.0, 1e6, -2.0, 1e-300, 1e200]), 1.0, size=(rows, 4))
    x[:, 1] = 0.5 * x[:, 0] + rng.normal(0, 1e-3, rows)
    x[:, 2] = -7.0  # constant
    if seed % 2:
        x[rng.random(x.shape) < 0.1] = np.nan
        x[rng.random(x.shape) < 0.01] = np.inf
    if seed % 3 == 0:
        x[:, 3] = np.nan
    if seed % 4 == 0:
        x[::2, 0], x[1::2, 0] = 1.7e308, -1.7e308
    return np.asfortranarray(x) if seed % 5 else np.ascontiguousarray(x)


@pytest.mark.parametrize("seed", range(20))
def test_batch_comoments_equal_the_masked_passes_bit_for_bit(seed: int) -> None:
    x = _awkward(seed)
    finite = np.isfinite(x)
    reference = _masked_batch_comoments(x, finite)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        given_mask = _algebra.batch_comoments(x, finite)
        listed = _algebra.batch_comoments(x, None, _algebra.skipped_entries(finite))
    for got in (given_mask, listed):
        for field, a, b in zip(reference._fields, got, reference):
            assert np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes(), field


def test_update_equals_the_masked_passes_on_mixed_arrow_columns() -> None:
    rng = np.random.default_rng(11)
    rows = 700
    columns = {
        "x": pa.array(rng.normal(0, 1, rows), mask=rng.random(rows) < 0.1),
        "i": pa.array(rng.integers(-9, 9, rows), pa.int32(), mask=rng.random(rows) < 0.2),
        "n": pa.array(rng.integers(0, 5, rows), pa.int64()),
        "y": pa.array(np.where(rng.random(rows) < 0.02, np.inf, rng.normal(5, 2, rows))),
    }
    state = CoMomentState(tuple(columns))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        state.update(Batch(pa.RecordBatch.from_pydict(columns)))
    x = np.asfortranarray(np.column_stack([to_float64(a) for a in columns.values()]))
    reference = _masked_batch_comoments(x, np.isfinite(x))
    for field, a, b in zip(reference._fields, state.comoments, reference):
        assert a.tobytes() == b.tobytes(), field
