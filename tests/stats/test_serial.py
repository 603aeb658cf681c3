"""Serial dependence from the ordered lag accumulator: NIST r(1), merges, statsmodels.

References: NIST StRD certified lag-1 autocorrelations (certified.json), with the exact
r(1) of the stored doubles computed in rational arithmetic as the float64 ceiling;
statsmodels 0.15 ``stats.stattools.durbin_watson`` and
``sandbox.stats.runs.runstest_1samp``; full enumeration of permutations.
"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from statsmodels.sandbox.stats.runs import runstest_1samp
from statsmodels.stats.stattools import durbin_watson as sm_durbin_watson

from spark_explore.errors import InvalidArgumentError
from spark_explore.stats.serial import (
    LagMoments,
    durbin_watson,
    lag1_autocorrelation,
    merge_lag_moments,
    runs_test,
)
from tests.conftest import SHARED_DATA
from tests.nist import certified, lre, univariate_values

NIST_SETS = sorted(certified(SHARED_DATA)["univariate"]) if SHARED_DATA.is_dir() else []


def _exact_r1(values: np.ndarray) -> float:
    """NIST's r(1) of the stored doubles, in exact rational arithmetic, rounded once."""
    y = [Fraction(v) for v in values]
    mean = sum(y) / len(y)
    d = [v - mean for v in y]
    return float(sum(a * b for a, b in zip(d[1:], d[:-1], strict=True)) / sum(v * v for v in d))


@pytest.fixture(scope="module")
def nist_series() -> dict[str, tuple[np.ndarray, float, float]]:
    """name -> (values, certified r1, exact r1 of the doubles)."""
    info = certified(SHARED_DATA)["univariate"]
    out = {}
    for name in NIST_SETS:
        values = np.array(univariate_values(SHARED_DATA, name))
        out[name] = (values, info[name]["certified"]["autocorr_lag1"]["value"], _exact_r1(values))
    return out


def _chunked(values: np.ndarray, cuts: list[int]) -> LagMoments:
    acc = LagMoments.empty()
    for part in np.split(values, sorted(set(cuts))):
        acc = merge_lag_moments(acc, LagMoments.from_values(part))
    return acc


@pytest.mark.parametrize("name", NIST_SETS)
def test_nist_lag1_autocorrelation_at_the_float64_ceiling(nist_series, name) -> None:
    values, cert, exact = nist_series[name]
    r1 = lag1_autocorrelation(LagMoments.from_values(values)).effect_size
    # the ceiling: float64 cannot hold the decimal data, so no method beats `exact`
    assert lre(r1, exact) >= 14.0
    assert lre(r1, cert) >= min(lre(exact, cert), 14.0) - 0.1
    assert lre(r1, cert) >= 11.0  # NumAcc4, the hardest set, has a ceiling of 11.03


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(NIST_SETS), data=st.data())
def test_nist_r1_under_any_ordered_split(nist_series, name, data) -> None:
    values, cert, exact = nist_series[name]
    n = values.size
    cuts = data.draw(st.lists(st.integers(0, n), max_size=min(n + 1, 40)))
    acc = _chunked(values, cuts)
    assert acc.n == n and acc.first == values[0] and acc.last == values[-1]
    assert lre(acc.c1 / acc.m2, exact) >= 13.5
    assert lre(acc.c1 / acc.m2, cert) >= min(lre(exact, cert), 13.5) - 0.2


_values = st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=0, max_size=30)


@settings(max_examples=100, deadline=None)
@given(a=_values, b=_values, c=_values)
def test_merge_is_associative_with_an_identity(a, b, c) -> None:
    sa, sb, sc = (LagMoments.from_values(np.array(v)) for v in (a, b, c))
    left = merge_lag_moments(merge_lag_moments(sa, sb), sc)
    right = merge_lag_moments(sa, merge_lag_moments(sb, sc))
    whole = LagMoments.from_values(np.array(a + b + c))
    for merged in (left, right):
        assert merged.n == whole.n
        if whole.n:
            assert merged.first == whole.first and merged.last == whole.last
        scale = max(whole.m2, 1e-300)
        for field in ("m2", "c1", "sdiff"):
            assert math.isclose(
                getattr(merged, field), getattr(whole, field), rel_tol=1e-9, abs_tol=1e-9 * scale
            ), field
    empty = LagMoments.empty()
    assert merge_lag_moments(empty, sa) == sa and merge_lag_moments(sa, empty) == sa


def test_merge_is_not_commutative() -> None:
    a, b = (
        LagMoments.from_values(np.array([1.0, 2.0])),
        LagMoments.from_values(np.array([10.0, 0.0])),
    )
    assert merge_lag_moments(a, b).c1 != merge_lag_moments(b, a).c1


def test_permutation_moments_by_enumeration() -> None:
    """E(r1) = -1/n and the variance formula, over all 7! orderings."""
    y = np.array([3.0, 1.0, 4.0, 1.5, 5.0, 9.0, 2.0])
    r1 = [LagMoments.from_values(np.array(p)) for p in itertools.permutations(y)]
    values = np.array([s.c1 / s.m2 for s in r1])
    result = lag1_autocorrelation(LagMoments.from_values(y))
    assert result.details["expected"] == pytest.approx(values.mean(), rel=1e-12)
    assert result.details["variance"] == pytest.approx(values.var(), rel=1e-12)


def test_test_of_randomness_detects_an_ar1_series() -> None:
    rng = np.random.default_rng(0)
    e = rng.normal(size=2000)
    ar = np.empty_like(e)
    ar[0] = e[0]
    for i in range(1, e.size):
        ar[i] = 0.3 * ar[i - 1] + e[i]
    strong = lag1_autocorrelation(LagMoments.from_values(ar))
    assert strong.pvalue < 1e-20 and strong.effect_size == pytest.approx(0.3, abs=0.05)
    iid = lag1_autocorrelation(LagMoments.from_values(e))
    assert iid.pvalue > 0.01


@pytest.mark.parametrize("seed", range(4))
def test_durbin_watson_equals_statsmodels_on_the_demeaned_series(seed) -> None:
    rng = np.random.default_rng(seed)
    y = np.cumsum(rng.normal(size=500)) * 0.1 + 1e4
    cuts = sorted(rng.integers(0, 500, size=6).tolist())
    result = durbin_watson(_chunked(y, cuts))
    assert result.statistic == pytest.approx(sm_durbin_watson(y - y.mean()), rel=1e-9)
    assert result.pvalue is None and result.details["residuals"] == "y - mean(y)"


def test_non_finite_values_are_skipped_with_a_warning() -> None:
    y = np.array([1.0, 2.0, np.nan, 4.0, 3.0, np.inf, 5.0])
    acc = _chunked(y, [3])
    assert acc.n == 5 and acc.n_missing == 2
    clean = LagMoments.from_values(y[np.isfinite(y)])
    assert acc.c1 == pytest.approx(clean.c1) and acc.sdiff == pytest.approx(clean.sdiff)
    assert lag1_autocorrelation(acc).warnings


@pytest.mark.parametrize("values", [[], [1.0], [1.0, 2.0], [4.0, 4.0, 4.0, 4.0]])
def test_degenerate_series_are_not_applicable(values) -> None:
    acc = LagMoments.from_values(np.array(values))
    result = lag1_autocorrelation(acc)
    assert not result.applicable and result.statistic is None and result.reason
    if len(values) != 2:
        assert not durbin_watson(acc).applicable


# --- runs test -----------------------------------------------------------------------------


def _runs(x: np.ndarray, cutoff: float) -> tuple[int, int, int]:
    above = x >= cutoff  # statsmodels' convention
    runs = 1 + int((above[1:] != above[:-1]).sum())
    return int(above.sum()), int((~above).sum()), runs


@pytest.mark.parametrize("size", [20, 49, 50, 300])
@pytest.mark.parametrize("cutoff", ["mean", "median", 0.3])
def test_runs_test_matches_statsmodels(size, cutoff) -> None:
    rng = np.random.default_rng(size)
    x = rng.normal(size=size)
    x[size // 2 :] += np.linspace(0, 1, size - size // 2)
    value = {"mean": np.mean(x), "median": np.median(x)}.get(cutoff, cutoff)
    counts = _runs(x, value)
    z0, p0 = runstest_1samp(x, cutoff=cutoff, correction=False)
    plain = runs_test(*counts, correction=False)
    assert plain.statistic == pytest.approx(z0, rel=1e-12)
    assert plain.pvalue == pytest.approx(p0, rel=1e-12)
    corrected = runs_test(*counts)
    if abs(counts[2] - corrected.details["expected"]) > 0.5 or size >= 50:
        z1, p1 = runstest_1samp(x, cutoff=cutoff, correction=True)
        assert corrected.statistic == pytest.approx(z1, rel=1e-12)
        assert corrected.pvalue == pytest.approx(p1, rel=1e-12)


def test_runs_test_correction_goes_toward_zero() -> None:
    result = runs_test(5, 5, 6, correction=True)  # E(R) = 6
    assert result.statistic == 0.0 and result.pvalue == 1.0


def test_runs_test_degenerate_and_invalid() -> None:
    assert not runs_test(10, 0, 1).applicable
    assert not runs_test(0, 0, 0).applicable
    for bad in ((3, 3, 8), (3, 3, 0), (-1, 4, 2), (2, 5, 6)):
        with pytest.raises(InvalidArgumentError) as err:
            runs_test(*bad)
        assert err.value.code == "INVALID_ARGUMENT"
