"""Outlier rules: fences against hand formulas, shares and MAD from exact ranks and from a
real KLL sketch, Mahalanobis distances against scipy.spatial.distance.mahalanobis (1.17)."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pyarrow as pa
import pytest
import scipy.stats
from scipy.spatial.distance import mahalanobis

from spark_explore.errors import DegenerateDataWarning, InvalidArgumentError
from spark_explore.states.batch import Batch
from spark_explore.states.quantiles import KllState
from spark_explore.stats.outliers import (
    MAD_SCALE,
    mad_from_rank,
    mahalanobis_outliers,
    robust_z_bounds,
    share_beyond,
    tukey_fences,
    z_bounds,
)
from spark_explore.stats.results import EXACT, SAMPLE, SKETCH


def _kll(x: np.ndarray, k: int = 200) -> KllState:
    state = KllState.empty("x", k)
    state.update(Batch(pa.record_batch({"x": pa.array(x)})))
    return state


def _exact_rank(x: np.ndarray):
    xs = np.sort(x)
    return lambda v: float(np.searchsorted(xs, v, side="right") / xs.size)


def _planted(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """20 000 normal values with 12 planted at 8 to 12 sd on either side."""
    rng = np.random.default_rng(seed)
    base = rng.normal(50.0, 4.0, 20_000)
    planted = 50.0 + 4.0 * np.concatenate([rng.uniform(8, 12, 6), -rng.uniform(8, 12, 6)])
    return np.concatenate([base, planted]), planted


class TestFences:
    def test_tukey(self) -> None:
        res = tukey_fences(1.0, 3.0)
        assert tuple(res) == (-2.0, 6.0) and res.rule == "tukey" and res.method == EXACT
        assert tuple(tukey_fences(1.0, 3.0, k=3)) == (-5.0, 9.0)
        approx = tukey_fences(1.0, 3.0, rank_error=0.013)
        assert approx.method == SKETCH and approx.approximate and approx.error_bound == 0.013
        assert json.loads(json.dumps(res.to_dict()))["parameters"]["iqr"] == 2.0

    def test_robust_z_matches_iglewicz_hoaglin_score(self) -> None:
        rng = np.random.default_rng(1)
        x = rng.standard_t(3, 2001)
        med = np.median(x)
        mad = scipy.stats.median_abs_deviation(x)
        low, high = robust_z_bounds(med, mad)
        assert high - med == pytest.approx(3.5 * 1.4826 * mad)
        modified_z = 0.6745 * (x - med) / mad  # their definition
        flagged = (x < low) | (x > high)
        # identical except within the rounding of 0.6745 vs 1 / 1.4826
        borderline = np.abs(np.abs(modified_z) - 3.5) < 1e-3
        assert np.array_equal(flagged[~borderline], (np.abs(modified_z) > 3.5)[~borderline])
        assert MAD_SCALE == pytest.approx(1 / scipy.stats.norm.ppf(0.75), rel=1e-4)

    def test_z_bounds_and_unreachable_cutoff(self) -> None:
        res = z_bounds(10.0, 2.0, n=1000)
        assert tuple(res) == (4.0, 16.0) and not res.warnings
        with pytest.warns(DegenerateDataWarning, match="flags nothing"):
            res = z_bounds(10.0, 2.0, n=10)
        assert res.applicable and res.warnings
        assert (10 - 1) / math.sqrt(10) < 3

    @pytest.mark.parametrize(
        ("call", "reason"),
        [
            (lambda: tukey_fences(2.0, 2.0), "interquartile range is zero"),
            (lambda: tukey_fences(None, None), "no quartiles"),
            (lambda: robust_z_bounds(3.0, 0.0), "MAD is zero"),
            (lambda: robust_z_bounds(None, None), "no median"),
            (lambda: z_bounds(3.0, 0.0), "constant"),
            (lambda: z_bounds(None, None), "no mean"),
        ],
    )
    def test_degenerate_not_applicable(self, call, reason) -> None:
        with pytest.warns(DegenerateDataWarning):
            res = call()
        assert not res.applicable and reason in res.reason and tuple(res) == (None, None)
        json.dumps(res.to_dict())

    @pytest.mark.parametrize(
        "call",
        [
            lambda: tukey_fences(3.0, 1.0),
            lambda: tukey_fences(1.0, 3.0, k=0),
            lambda: tukey_fences(1.0, np.inf),
            lambda: tukey_fences(1.0, 2.0, rank_error=-0.1),
            lambda: robust_z_bounds(1.0, -1.0),
            lambda: robust_z_bounds(1.0, 1.0, z=-3),
            lambda: z_bounds(1.0, -2.0),
            lambda: z_bounds(np.nan, 1.0),
        ],
    )
    def test_bad_arguments_raise(self, call) -> None:
        with pytest.raises(InvalidArgumentError):
            call()


class TestShareBeyond:
    def test_exact_ranks_count_strictly_beyond(self) -> None:
        x = np.array([1.0, 2.0, 2.0, 3.0, 4.0, 5.0, 5.0, 6.0, 9.0, 9.0])
        res = share_beyond(_exact_rank(x), 2.0, 5.0, x.size, 0.0)
        # values equal to a fence are not beyond it
        assert (res.share_low, res.share_high) == pytest.approx((0.1, 0.3), abs=1e-15)
        assert (res.count_low, res.count_high) == (1, 3)
        assert res.error_bound == 0.0 and not res.approximate and res.method == SKETCH
        share_low, share_high, bound = res
        assert (share_low, share_high, bound) == (res.share_low, res.share_high, 0.0)

    def test_exact_extremes_make_a_side_exact(self) -> None:
        x = np.arange(100.0)
        res = share_beyond(_exact_rank(x), -5.0, 90.0, 100, 0.02, min_value=0.0, max_value=99.0)
        assert res.share_low == 0.0 and res.share_high == pytest.approx(0.09)
        assert res.error_bound == 0.02
        res = share_beyond(_exact_rank(x), -5.0, 150.0, 100, 0.02, min_value=0.0, max_value=99.0)
        assert (res.share_low, res.share_high, res.error_bound) == (0.0, 0.0, 0.0)

    def test_planted_outliers_caught_by_every_rule_from_a_sketch(self) -> None:
        x, planted = _planted()
        state = _kll(x)
        eps = state.rank_error
        q1, med, q3 = state.quantiles([0.25, 0.5, 0.75])
        mad, mad_bound = mad_from_rank(state.rank, med, state.min, state.max, eps)
        mean, std = x.mean(), x.std(ddof=1)
        rules = [
            tukey_fences(q1, q3, k=3.0, rank_error=eps),
            robust_z_bounds(med, mad, rank_error=mad_bound),
            z_bounds(mean, std, z=5.0, n=x.size),
        ]
        for fences in rules:
            low, high = fences
            assert np.all((planted < low) | (planted > high)), fences.rule
            res = share_beyond(
                state.rank, low, high, state.n, eps, min_value=state.min, max_value=state.max
            )
            exact_low = np.mean(x < low)
            exact_high = np.mean(x > high)
            assert abs(res.share_low - exact_low) <= res.error_bound
            assert abs(res.share_high - exact_high) <= res.error_bound
            # every planted value is beyond the fences, and few others are (a normal
            # tail beyond 3.5 sd, the robust rule's cut-off, holds 0.05 % of the rows)
            assert exact_low + exact_high >= 12 / x.size
            assert exact_low + exact_high < 0.002

    def test_not_applicable_and_bad_arguments(self) -> None:
        with pytest.warns(DegenerateDataWarning):
            assert not share_beyond(_exact_rank(np.ones(3)), None, None, 3, 0.0).applicable
        with pytest.warns(DegenerateDataWarning, match="empty"):
            res = share_beyond(KllState.empty("x").rank, 0.0, 1.0, 0, 0.01)
        assert not res.applicable
        json.dumps(res.to_dict())
        with pytest.raises(InvalidArgumentError):
            share_beyond(_exact_rank(np.ones(3)), 2.0, 1.0, 3, 0.0)
        with pytest.raises(InvalidArgumentError):
            share_beyond(_exact_rank(np.ones(3)), 0.0, 1.0, 3, 1.5)
        with pytest.raises(InvalidArgumentError):
            share_beyond(_exact_rank(np.ones(3)), np.nan, 1.0, 3, 0.0)


class TestMadFromRank:
    @pytest.mark.parametrize("seed", range(5))
    def test_exact_ranks_give_the_lower_median_of_deviations(self, seed: int) -> None:
        rng = np.random.default_rng(seed)
        x = np.round(rng.lognormal(1, 1, int(rng.integers(5, 400))), 3)
        med = float(np.sort(x)[(x.size - 1) // 2])
        mad, bound = mad_from_rank(_exact_rank(x), med, x.min(), x.max(), 0.0)
        dev = np.sort(np.abs(x - med))
        lower_median = dev[math.ceil(x.size / 2) - 1]
        assert mad == pytest.approx(lower_median, rel=1e-12, abs=1e-12)
        assert bound == 0.0
        if x.size % 2:
            assert mad == pytest.approx(np.median(dev), rel=1e-12, abs=1e-12)

    def test_zero_mad_when_half_the_values_tie(self) -> None:
        x = np.array([1.0, 2.0, 2.0, 2.0, 7.0])
        assert mad_from_rank(_exact_rank(x), 2.0, 1.0, 7.0, 0.0) == (0.0, 0.0)

    def test_sketch_mad_within_its_rank_bound(self) -> None:
        x = np.random.default_rng(7).gamma(2.0, 3.0, 300_000)
        state = _kll(x)
        med = state.quantiles([0.5])[0]
        mad, bound = mad_from_rank(state.rank, med, state.min, state.max, state.rank_error)
        assert bound == 2 * state.rank_error
        share = np.mean(np.abs(x - med) <= mad)
        assert abs(share - 0.5) <= bound
        exact = scipy.stats.median_abs_deviation(x)
        assert mad == pytest.approx(exact, rel=0.05)

    def test_bad_arguments(self) -> None:
        with pytest.raises(InvalidArgumentError):
            mad_from_rank(_exact_rank(np.arange(5.0)), 9.0, 0.0, 4.0, 0.0)
        with pytest.raises(InvalidArgumentError):
            mad_from_rank(KllState.empty("x").rank, 0.5, 0.0, 1.0, 0.0)


class TestMahalanobis:
    def _data(self, seed: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        cov = np.array([[4.0, 3.0, 0.5], [3.0, 4.0, 0.2], [0.5, 0.2, 1.0]])
        mean = np.array([10.0, -2.0, 0.5])
        x = rng.multivariate_normal(mean, cov, 2000)
        return x, mean, cov

    def test_distances_equal_scipy(self) -> None:
        x, mean, cov = self._data()
        res = mahalanobis_outliers(x, mean, cov)
        vi = np.linalg.inv(cov)
        ref = np.array([mahalanobis(row, mean, vi) ** 2 for row in x])
        np.testing.assert_allclose(res.distances, ref, rtol=1e-9)
        assert res.cutoff == scipy.stats.chi2.ppf(0.999, 3) and res.df == 3
        assert res.method == SAMPLE and res.approximate and res.n == 2000
        indices, distances, cutoff = res
        assert set(indices) == set(np.flatnonzero(ref > cutoff))

    def test_planted_multivariate_outliers_caught(self) -> None:
        x, mean, cov = self._data()
        # unremarkable marginally (within 2 sd on every column), but against the correlation
        planted = mean + np.array([[3.5, -3.5, 0.0], [-3.5, 3.5, 0.5], [3.0, -3.0, -1.0]])
        assert np.all(np.abs(planted - mean) / np.sqrt(np.diag(cov)) < 2.0)
        sample = np.vstack([x[:500], planted, x[500:1000]])
        res = mahalanobis_outliers(sample, mean, cov, alpha=0.001)
        assert {500, 501, 502} <= set(res.indices)
        assert res.indices[:3] == tuple(sorted((500, 501, 502), key=lambda i: -res.distances[i]))
        assert res.share < 0.01

    def test_rows_with_non_finite_values_are_left_out(self) -> None:
        x, mean, cov = self._data()
        x = x[:50].copy()
        x[[3, 7], [0, 2]] = [np.nan, np.inf]
        res = mahalanobis_outliers(x, mean, cov)
        assert res.n == 48 and res.n_dropped == 2
        assert (
            np.isnan(res.distances[[3, 7]]).all()
            and np.isfinite(np.delete(res.distances, [3, 7])).all()
        )
        data = json.loads(json.dumps(res.to_dict(include_distances=True)))
        assert data["distances"][3] is None and data["n"] == 48

    def test_singular_covariance_uses_the_pseudo_inverse(self) -> None:
        rng = np.random.default_rng(5)
        a = rng.normal(size=(1000, 2))
        x = np.column_stack([a, a[:, 0] + 2 * a[:, 1]])  # third column is collinear
        mean, cov = x.mean(axis=0), np.cov(x, rowvar=False)
        with pytest.warns(DegenerateDataWarning, match="rank 2 of 3"):
            res = mahalanobis_outliers(x, mean, cov)
        assert res.applicable and res.df == 2 and res.warnings
        ref = mahalanobis_outliers(a, mean[:2], cov[:2, :2])
        np.testing.assert_allclose(res.distances, ref.distances, rtol=1e-8)

    def test_not_applicable(self) -> None:
        x, mean, cov = self._data()
        with pytest.warns(DegenerateDataWarning, match="positive semi-definite"):
            bad = np.array([[1.0, 2.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
            assert not mahalanobis_outliers(x, mean, bad).applicable
        with pytest.warns(DegenerateDataWarning, match="constant"):
            assert not mahalanobis_outliers(
                np.ones((5, 3)), np.ones(3), np.zeros((3, 3))
            ).applicable
        with pytest.warns(DegenerateDataWarning, match="no complete rows"):
            res = mahalanobis_outliers(np.full((4, 3), np.nan), mean, cov)
        assert not res.applicable
        json.dumps(res.to_dict())

    @pytest.mark.parametrize(
        "args",
        [
            (np.ones((4, 2)), np.ones(3), np.eye(3)),
            (np.ones(3), np.ones(3), np.eye(3)),
            (np.ones((4, 3)), np.ones(3), np.eye(2)),
            (np.ones((4, 2)), np.ones(2), np.array([[1.0, 0.5], [0.4, 1.0]])),
            (np.ones((4, 2)), np.array([np.nan, 1.0]), np.eye(2)),
        ],
    )
    def test_bad_arguments_raise(self, args) -> None:
        with pytest.raises(InvalidArgumentError):
            mahalanobis_outliers(*args)
        with pytest.raises(InvalidArgumentError):
            mahalanobis_outliers(np.ones((4, 2)), np.ones(2), np.eye(2), alpha=1.0)

    def test_false_positive_rate_close_to_alpha(self) -> None:
        rng = np.random.default_rng(9)
        x = rng.normal(size=(200_000, 4))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            res = mahalanobis_outliers(x, np.zeros(4), np.eye(4), alpha=0.01)
        assert res.share == pytest.approx(0.01, rel=0.1)
