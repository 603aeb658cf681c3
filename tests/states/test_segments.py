"""Moments and co-moments of contiguous runs of rows, reduced together, against exact
rational arithmetic and numpy on each run alone."""

from __future__ import annotations

import warnings
from fractions import Fraction

import numpy as np
import pytest

from spark_explore.states import _algebra

RTOL = 1e-9


def _table(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows with NaN, infinities, a constant run and runs of one row, and their starts."""
    rng = np.random.default_rng(seed)
    x = rng.normal([1e6, 0.0, -3.0, 1e-3], [1.0, 5.0, 0.5, 1e-4], size=(3000, 4))
    x = np.asfortranarray(x)
    x[rng.random(x.shape) < 0.1] = np.nan
    x[rng.random(x.shape) < 0.005] = np.inf
    x[rng.random(x.shape) < 0.005] = -np.inf
    x[200:260, 1] = 0.1  # a constant run of one column
    x[900:1400, 2] = np.nan  # a run where one column is never observed
    starts = np.array([0, 200, 260, 261, 262, 900, 1400, 2999])
    return x, starts


def _runs(starts: np.ndarray, rows: int) -> list[tuple[int, int]]:
    ends = [*starts[1:].tolist(), rows]
    return list(zip(starts.tolist(), ends))


def _exact_central_sums(v: np.ndarray) -> tuple[float, list[float]]:
    """Mean and central sums of order 2, 3 and 4 in exact rational arithmetic (scipy's
    ``moment`` loses digits to cancellation on the column centred at 1e6)."""
    exact = [Fraction(float(a)) for a in v]
    mean = sum(exact) / len(exact)
    return float(mean), [float(sum((a - mean) ** order for a in exact)) for order in (2, 3, 4)]


@pytest.mark.parametrize("seed", [1, 2])
def test_segment_moments_match_exact_arithmetic_on_each_run(seed: int) -> None:
    x, starts = _table(seed)
    got = _algebra.segment_moments(x, np.isfinite(x), starts)
    for i, (lo, hi) in enumerate(_runs(starts, len(x))):
        for j in range(x.shape[1]):
            v = x[lo:hi, j]
            v = v[np.isfinite(v)]
            assert got.n[i, j] == v.size
            if v.size == 0:
                continue
            mean, sums = _exact_central_sums(v)
            spread = sums[0] / v.size
            error = abs(got.mean[i, j] + got.mean_lo[i, j] - mean)
            assert error <= RTOL * max(abs(mean), np.sqrt(spread)), (i, j)
            for order, field, reference in zip((2, 3, 4), (got.m2, got.m3, got.m4), sums):
                scale = max(abs(reference), spread ** (order / 2) * v.size, 1e-300)
                assert abs(field[i, j] - reference) <= RTOL * scale, (i, j, order)
    # a constant run has exactly its value as mean and no spread, not rounding noise
    assert got.mean[1, 1] == 0.1 and got.m2[1, 1] == 0.0


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("left_out", ["infinities", "masked numbers"])
def test_segment_extremes_skip_every_entry_the_mask_leaves_out(seed: int, left_out: str) -> None:
    x, starts = _table(seed)
    usable = np.isfinite(x)
    if left_out == "masked numbers":
        x[np.isinf(x)] = 3.0
        usable = np.isfinite(x) & (np.random.default_rng(seed).random(x.shape) > 0.2)
        x[200:260, 1][~usable[200:260, 1]] = 7.0  # hidden numbers inside the constant run
    low, high = _algebra.segment_extremes(x, usable, starts)
    for i, (lo, hi) in enumerate(_runs(starts, len(x))):
        for j in range(x.shape[1]):
            v = x[lo:hi, j][usable[lo:hi, j]]
            assert (low[i, j], high[i, j]) == ((v.min(), v.max()) if v.size else (np.inf, -np.inf))
    got = _algebra.segment_moments(x, usable, starts)
    assert got.mean[1, 1] == 0.1 and got.m2[1, 1] == 0.0


@pytest.mark.parametrize("seed", [1, 2])
def test_segment_comoments_match_exact_arithmetic_on_each_run(seed: int) -> None:
    x, starts = _table(seed)
    finite = np.isfinite(x)
    got = _algebra.segment_comoments(x, finite, starts)
    k = x.shape[1]
    for s, (lo, hi) in enumerate(_runs(starts, len(x))):
        for i in range(k):
            for j in range(k):
                both = finite[lo:hi, i] & finite[lo:hi, j]
                assert got.n[s, i, j] == both.sum()
                if not both.any():
                    continue
                xi, xj = x[lo:hi, i][both], x[lo:hi, j][both]
                mean_i, (m2_i, _, _) = _exact_central_sums(xi)
                mean = got.mean[s, i, j] + got.mean_lo[s, i, j]
                assert abs(mean - mean_i) <= RTOL * max(abs(mean_i), np.sqrt(m2_i / xi.size))
                assert abs(got.m2[s, i, j] - m2_i) <= RTOL * max(m2_i, 1e-300)
                c = _exact_co_moment(xi, xj)
                m2_j = _exact_central_sums(xj)[1][0]
                assert abs(got.c[s, i, j] - c) <= RTOL * max(np.sqrt(m2_i * m2_j), 1e-300)


def _exact_co_moment(x: np.ndarray, y: np.ndarray) -> float:
    fx, fy = [Fraction(float(a)) for a in x], [Fraction(float(b)) for b in y]
    mx, my = sum(fx) / len(fx), sum(fy) / len(fy)
    return float(sum((a - mx) * (b - my) for a, b in zip(fx, fy)))


def test_stacked_merge_equals_the_merge_of_each_matrix() -> None:
    x, starts = _table(4)
    finite = np.isfinite(x)
    a = _algebra.segment_comoments(x[:1500], finite[:1500], np.array([0, 700]))
    b = _algebra.segment_comoments(x[1500:], finite[1500:], np.array([0, 10]))
    stacked = _algebra.merge_comoments(a, b)
    for s in range(2):
        one = _algebra.merge_comoments(
            _algebra.CoMoments(*(field[s] for field in a)),
            _algebra.CoMoments(*(field[s] for field in b)),
        )
        for left, right in zip(stacked, one):
            np.testing.assert_array_equal(left[s], right)


def test_segment_means_of_values_near_the_float64_limits() -> None:
    pattern = np.array([1.7e308, 1.7e308, -1.7e308, 1.0, np.nan])
    x = np.asfortranarray(np.column_stack([np.tile(pattern, 200), np.arange(1000.0)]))
    starts = np.array([0, 3, 500])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a worker's warnings reach the console
        moments = _algebra.segment_moments(x, np.isfinite(x), starts)
        comoments = _algebra.segment_comoments(x, np.isfinite(x), starts)
    for i, (lo, hi) in enumerate(_runs(starts, x.shape[0])):
        v = x[lo:hi, 0][np.isfinite(x[lo:hi, 0])]
        want = float(sum(Fraction(float(a)) for a in v) / len(v))
        assert moments.mean[i, 0] + moments.mean_lo[i, 0] == pytest.approx(want, rel=1e-14)
        assert comoments.mean[i, 0, 0] + comoments.mean_lo[i, 0, 0] == pytest.approx(
            want, rel=1e-14
        )
        assert moments.m2[i, 0] == np.inf
        np.testing.assert_allclose(moments.m2[i, 1], np.var(x[lo:hi, 1]) * (hi - lo), rtol=RTOL)


def _in_place(x: np.ndarray, usable: np.ndarray, starts: np.ndarray) -> _algebra.Moments:
    sizes = np.diff(np.append(starts, x.shape[0]))
    row, col = np.nonzero(~usable)
    order = np.random.default_rng(0).permutation(len(row))  # any order of the entries
    return _algebra.segment_moments_in_place(
        np.asfortranarray(x.copy()), (row[order], col[order]), starts, sizes
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("left_out", ["non-finite", "masked numbers"])
def test_in_place_segment_moments_equal_segment_moments_bit_for_bit(
    seed: int, left_out: str
) -> None:
    x, starts = _table(seed)
    usable = np.isfinite(x)
    if left_out == "masked numbers":
        x[np.isinf(x)] = 3.0
        usable = np.isfinite(x) & (np.random.default_rng(seed).random(x.shape) > 0.2)
        x[200:260, 1][~usable[200:260, 1]] = 7.0  # hidden numbers inside the constant run
    want = _algebra.segment_moments(x, usable, starts)
    got = _in_place(x, usable, starts)
    for name, a, b in zip(want._fields, got, want):
        np.testing.assert_array_equal(a, b, err_msg=name)
    assert got.mean[1, 1] == 0.1 and got.m2[1, 1] == 0.0


def test_in_place_segment_moments_of_many_segments_extremes_and_tiny_values() -> None:
    rng = np.random.default_rng(5)
    rows = 5000
    starts = np.unique(np.concatenate([[0], rng.integers(1, rows, 60)]))  # > 16 segments
    x = np.asfortranarray(
        np.column_stack(
            [
                rng.normal(1e300, 1e299, rows),  # squares overflow
                rng.normal(0.0, 1e-160, rows),  # squares underflow
                np.tile([1.7e308, 1.7e308, -1.7e308, 1.0, np.nan], rows // 5),  # sums overflow
                np.where(rng.random(rows) < 0.9, np.nan, rng.normal(size=rows)),  # mostly NaN
                np.full(rows, -2.5),  # constant everywhere
                rng.normal(0.9999999, 1e-8, rows),  # large mean, small spread
            ]
        )
    )
    usable = np.isfinite(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a worker's warnings reach the console
        want = _algebra.segment_moments(x, usable, starts)
        got = _in_place(x, usable, starts)
    for name, a, b in zip(want._fields, got, want):
        np.testing.assert_array_equal(a, b, err_msg=name)
    assert (got.mean[:, 4] == -2.5).all() and (got.m2[:, 4] == 0.0).all()
    assert got.n[:, 3].min() == 0  # some segments never observe the column: identity
