"""Collinearity from co-moments: NIST Longley, statsmodels/scipy references, NASTY columns.

References: NIST StRD Longley certified values (certified.json); scipy 1.17
``stats.pearsonr``; statsmodels 0.15 ``OLS``, ``variance_inflation_factor`` and
``OLSResults.condition_number``; exact rational arithmetic (``fractions``) for NASTY.
"""

from __future__ import annotations

import math
import warnings
from decimal import Decimal, localcontext
from fractions import Fraction

import numpy as np
import pyarrow.parquet as pq
import pytest
import statsmodels.api as sm
from scipy import stats
from statsmodels.stats.outliers_influence import variance_inflation_factor

from spark_explore.errors import DegenerateDataWarning, InvalidArgumentError
from spark_explore.states import _algebra
from spark_explore.stats import collinearity as co
from tests.nist import certified, lre

LONGLEY = ["GNPDEFL", "GNP", "UNEMP", "ARMED", "POP", "YEAR", "TOTEMP"]


def _comoments(matrix: np.ndarray, cuts: list[int] | None = None) -> _algebra.CoMoments:
    """Co-moments as the scan builds them: one batch per chunk, merged pairwise."""
    acc = _algebra.CoMoments.zeros(matrix.shape[1])
    for part in np.split(matrix, cuts or []):
        part = np.asfortranarray(part)
        acc = _algebra.merge_comoments(acc, _algebra.batch_comoments(part, np.isfinite(part)))
    return acc


@pytest.fixture(scope="module")
def longley(shared_data) -> np.ndarray:
    table = pq.read_table(shared_data / "real" / "longley.parquet", columns=LONGLEY)
    return np.column_stack([table[c].to_numpy() for c in LONGLEY])


def _sub(c: _algebra.CoMoments, k: int) -> _algebra.CoMoments:
    return _algebra.CoMoments(*(a[:k, :k] for a in c))


# --- OLS on Longley ------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [None, 0, 1, 2, 3, 4])
def test_longley_ols_reaches_nist_certified_values(longley, shared_data, seed) -> None:
    """Coefficients >= 11 digits, std errors >= 12 (statsmodels' own pinv OLS: 10.9)."""
    cuts = None
    if seed is not None:
        rng = np.random.default_rng(seed)
        cuts = sorted(rng.choice(np.arange(1, 16), rng.integers(1, 15), replace=False).tolist())
    fit = co.ols_from_moments(_comoments(longley, cuts), 6, names=LONGLEY)
    cert = certified(shared_data)["linear_regression"]["Longley"]["certified"]
    assert fit.details["names"] == ["(intercept)", *LONGLEY[:6]]
    for value, param in zip(fit.details["coefficients"], cert["parameters"], strict=True):
        assert lre(value, param["estimate"]["value"]) >= 11.0, param["name"]
    for value, param in zip(fit.details["std_errors"], cert["parameters"], strict=True):
        assert lre(value, param["std_error"]["value"]) >= 12.0, param["name"]
    assert lre(fit.details["residual_std"], cert["residual_std"]["value"]) >= 12.0
    assert lre(fit.details["r_squared"], cert["r_squared"]["value"]) >= 14.0
    assert lre(fit.statistic, cert["anova"]["regression"]["F"]["value"]) >= 12.0
    assert lre(fit.details["ss_residual"], cert["anova"]["residual"]["sum_sq"]["value"]) >= 12
    assert fit.df == (6.0, 9.0)


def test_longley_ols_matches_statsmodels(longley) -> None:
    ref = sm.OLS(longley[:, 6], sm.add_constant(longley[:, :6])).fit()
    fit = co.ols_from_moments(_comoments(longley), 6)
    np.testing.assert_allclose(fit.details["coefficients"], ref.params, rtol=1e-9)
    np.testing.assert_allclose(fit.details["std_errors"], ref.bse, rtol=1e-9)
    np.testing.assert_allclose(
        [fit.statistic, fit.pvalue, fit.effect_size],
        [ref.fvalue, ref.f_pvalue, ref.rsquared],
        rtol=1e-9,
    )
    # the tuple form (n, means, C) gives the same fit, and y may sit anywhere
    c = _comoments(longley)
    same = co.ols_from_moments((16, np.diag(c.mean), c.c), 6)
    assert same.details["coefficients"] == fit.details["coefficients"]
    order = [6, 0, 1, 2, 3, 4, 5]
    moved = co.ols_from_moments(_comoments(longley[:, order]), 0)
    np.testing.assert_allclose(moved.details["coefficients"], ref.params, rtol=1e-10)


# --- VIF and condition diagnostics ---------------------------------------------------------


@pytest.mark.filterwarnings("ignore:The design matrix is poorly conditioned")
def test_vif_equals_statsmodels_with_a_constant_column(longley) -> None:
    corr = co.correlation_matrix(_comoments(longley[:, :6]))
    vif = co.variance_inflation_factors(corr)
    exog = sm.add_constant(longley[:, :6])
    ref = [variance_inflation_factor(exog, j, standardize=False) for j in range(1, 7)]
    np.testing.assert_allclose(vif, ref, rtol=1e-9)
    assert vif.max() == pytest.approx(1788.5, abs=0.05)  # GNP, as the data README states
    # statsmodels >= 0.15 centres by default, which is the same as having the constant
    default = [variance_inflation_factor(longley[:, :6], j) for j in range(6)]
    np.testing.assert_allclose(vif, default, rtol=1e-9)


def test_vif_identity_needs_the_constant() -> None:
    """Without a constant (and uncentred), the auxiliary regressions go through the origin
    and give a different number; diag(R^-1) is the VIF of the model with an intercept."""
    rng = np.random.default_rng(10)
    x = rng.normal(size=(300, 3)) + [5.0, -2.0, 0.5]
    x[:, 2] += 0.7 * x[:, 0]
    vif = co.variance_inflation_factors(co.correlation_matrix(_comoments(x)))
    with_constant = [
        variance_inflation_factor(sm.add_constant(x), j, standardize=False) for j in (1, 2, 3)
    ]
    through_origin = [variance_inflation_factor(x, j, standardize=False) for j in range(3)]
    np.testing.assert_allclose(vif, with_constant, rtol=1e-9)
    assert not np.allclose(vif, through_origin, rtol=1e-2)


def test_condition_diagnostics_match_svd_of_scaled_design(longley) -> None:
    c = _sub(_comoments(longley), 6)
    result = co.condition_diagnostics(c, names=LONGLEY[:6])
    design = sm.add_constant(longley[:, :6])
    u, mu, vt = np.linalg.svd(design / np.linalg.norm(design, axis=0), full_matrices=False)
    assert result.statistic == pytest.approx(mu[0] / mu[-1], rel=1e-9)
    assert result.statistic == pytest.approx(43275.04, rel=1e-6)  # BKW's Longley value
    np.testing.assert_allclose(result.details["condition_indices"], mu[0] / mu, rtol=1e-9)
    phi = vt.T**2 / mu**2
    proportions = (phi / phi.sum(axis=1, keepdims=True)).T
    np.testing.assert_allclose(result.details["proportions"], proportions, atol=1e-9)
    np.testing.assert_allclose(np.sum(result.details["proportions"], axis=0), 1.0)
    assert result.pvalue is None and result.details["names"][0] == "(intercept)"


def test_unscaled_condition_number_matches_statsmodels(longley) -> None:
    ref = sm.OLS(longley[:, 6], sm.add_constant(longley[:, :6])).fit().condition_number
    result = co.condition_diagnostics(_sub(_comoments(longley), 6), scale=False)
    assert result.statistic == pytest.approx(ref, rel=1e-9)


def test_condition_diagnostics_without_intercept(longley) -> None:
    x = longley[:, :6]
    result = co.condition_diagnostics(_sub(_comoments(longley), 6), include_intercept=False)
    mu = np.linalg.svd(x / np.linalg.norm(x, axis=0), compute_uv=False)
    assert result.statistic == pytest.approx(mu[0] / mu[-1], rel=1e-9)
    c = _comoments(x)
    from_matrix = co.condition_diagnostics(c.c, np.diag(c.mean), 16, include_intercept=False)
    assert from_matrix.statistic == pytest.approx(result.statistic, rel=1e-12)


def test_collinear_groups_on_longley(longley) -> None:
    result = co.condition_diagnostics(_sub(_comoments(longley), 6), names=LONGLEY[:6])
    groups = co.collinear_groups(result)
    assert [g["names"] for g in groups] == [
        ["(intercept)", "GNP", "UNEMP", "YEAR"],
        ["GNPDEFL", "POP"],
    ]
    assert groups[0]["condition_index"] > groups[1]["condition_index"] > 30
    strict = co.collinear_groups(result, index_threshold=2000, proportion_threshold=0.9)
    assert [g["names"] for g in strict] == [["(intercept)", "YEAR"]]


def test_exact_dependency_gives_infinite_index_and_vif() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(200, 3))
    x = np.column_stack([x, x[:, 0] + 2 * x[:, 1]])  # x3 = x0 + 2 x1 exactly
    c = _comoments(x)
    result = co.condition_diagnostics(c, names=["a", "b", "c", "d"])
    assert math.isinf(result.statistic)
    assert math.isinf(co.condition_diagnostics(c, scale=False).statistic)
    (group, *_) = co.collinear_groups(result)
    assert set(group["names"]) == {"a", "b", "d"}
    vif = co.variance_inflation_factors(co.correlation_matrix(c))
    assert np.isinf(vif[[0, 1, 3]]).all() and vif[2] == pytest.approx(1.0, abs=0.05)
    assert not co.ols_from_moments(c, 2).applicable


def test_singular_correlation_gives_inf_vif_for_the_dependent_columns_only() -> None:
    corr = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    vif = co.variance_inflation_factors(corr)
    assert np.isinf(vif[:2]).all() and vif[2] == pytest.approx(1.0)


def test_constant_column_is_collinear_with_the_intercept() -> None:
    rng = np.random.default_rng(6)
    x = np.column_stack([rng.normal(size=50), np.full(50, 3.0)])
    result = co.condition_diagnostics(_comoments(x), names=["x", "k"])
    assert math.isinf(result.statistic)
    assert co.collinear_groups(result)[0]["names"] == ["(intercept)", "k"]
    zero = co.condition_diagnostics(_comoments(np.column_stack([x[:, 0], np.zeros(50)])))
    assert not zero.applicable and "zero" in zero.reason
    with pytest.warns(DegenerateDataWarning):
        vif = co.variance_inflation_factors(co.correlation_matrix(_comoments(x)))
    assert np.isnan(vif).all() or (np.isnan(vif[1]) and vif[0] == 1.0)


def test_pairwise_complete_comoments_are_not_a_design() -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(100, 3))
    x[:10, 0] = np.nan
    c = _comoments(x)
    assert not co.condition_diagnostics(c).applicable
    assert not co.ols_from_moments(c, 2).applicable
    assert "pairwise" in co.ols_from_moments(c, 2).reason


def test_indefinite_correlation_warns_and_gives_nan() -> None:
    corr = np.array([[1.0, 0.9, -0.9], [0.9, 1.0, 0.9], [-0.9, 0.9, 1.0]])
    with pytest.warns(DegenerateDataWarning):
        assert np.isnan(co.variance_inflation_factors(corr)).all()


def test_bad_arguments_raise() -> None:
    with pytest.raises(InvalidArgumentError) as err:
        co.condition_diagnostics(np.eye(2))
    assert err.value.code == "MISSING_ARGUMENT"
    with pytest.raises(InvalidArgumentError) as err:
        co.correlation_tests(np.eye(2), 10, alternative="bigger")
    assert err.value.code == "INVALID_ALTERNATIVE"
    with pytest.raises(InvalidArgumentError):
        co.ols_from_moments((10, np.zeros(2), np.eye(2)), 2)


# --- correlation tests ---------------------------------------------------------------------


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_correlation_tests_match_pearsonr(longley, alternative) -> None:
    rng = np.random.default_rng(8)
    noise = rng.normal(size=(16, 2)) * [1.0, 1e5]
    data = np.column_stack([longley, noise])
    names = [*LONGLEY, "noise", "noise2"]
    results = co.correlation_tests(_comoments(data), names=names, alternative=alternative)
    assert len(results) == 9 * 8 // 2
    for (a, b), result in results.items():
        ref = stats.pearsonr(
            data[:, names.index(a)], data[:, names.index(b)], alternative=alternative
        )
        assert result.effect_size == pytest.approx(ref.statistic, rel=1e-12)
        assert result.pvalue == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-300)
        assert result.statistic == pytest.approx(
            ref.statistic * math.sqrt(14 / (1 - ref.statistic**2)), rel=1e-9
        )
        assert result.df == 14


def test_correlation_tests_from_a_matrix_and_degenerate_pairs() -> None:
    r = np.array([[1.0, 0.5, np.nan], [0.5, 1.0, np.nan], [np.nan, np.nan, np.nan]])
    out = co.correlation_tests(r, 30, names=["x", "y", "z"])
    assert out[("x", "y")].pvalue == pytest.approx(stats.pearsonr(*_with_r(0.5, 30)).pvalue)
    assert not out[("x", "z")].applicable and "undefined" in out[("x", "z")].reason
    tiny = co.correlation_tests(np.eye(2), 2)
    assert not tiny[("c0", "c1")].applicable and "needs 3" in tiny[("c0", "c1")].reason
    perfect = co.correlation_tests(np.array([[1.0, -1.0], [-1.0, 1.0]]), 10)[("c0", "c1")]
    assert perfect.pvalue == 0.0 and perfect.statistic == -math.inf


def _with_r(r: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Two samples whose Pearson correlation is r to rounding."""
    rng = np.random.default_rng(9)
    a, b = rng.normal(size=(2, n))
    a = (a - a.mean()) / np.linalg.norm(a - a.mean())
    b = b - b.mean() - (b @ a) * a
    b /= np.linalg.norm(b)
    return a, r * a + math.sqrt(1 - r * r) * b


# --- Wilkinson's NASTY columns -------------------------------------------------------------

_I = np.arange(1.0, 10.0)
NASTY = {
    "X": _I,
    "ZERO": np.zeros(9),
    "CONST": np.full(9, 0.1),
    "BIG": 99999990.0 + _I,
    "LITTLE": 0.99999990 + _I * 1e-8,
    "HUGE": _I * 1e12,
    "TINY": _I * 1e-12,
    "ROUND": _I - 0.5,
    "OFFSET": 1e12 + _I,
    "NEG": 3.0 - _I * 1e12,
    "SQUARE": _I * _I,
    "BIGREV": 99999999.0 - _I,
}


def _exact_r(a: np.ndarray, b: np.ndarray) -> float | None:
    """The correlation of the stored doubles, exactly, then rounded once."""
    fa, fb = [Fraction(v) for v in a], [Fraction(v) for v in b]
    ma, mb = sum(fa) / len(fa), sum(fb) / len(fb)
    c = sum((x - ma) * (y - mb) for x, y in zip(fa, fb, strict=True))
    sa, sb = sum((x - ma) ** 2 for x in fa), sum((y - mb) ** 2 for y in fb)
    if sa == 0 or sb == 0:
        return None
    r2 = c * c / (sa * sb)
    with localcontext() as ctx:
        ctx.prec = 50
        return math.copysign(float((Decimal(r2.numerator) / Decimal(r2.denominator)).sqrt()), c)


@pytest.fixture(scope="module")
def nasty_exact() -> dict[tuple[str, str], float | None]:
    return {(a, b): _exact_r(NASTY[a], NASTY[b]) for a in NASTY for b in NASTY}


def _ulps(value: float, exact: float) -> float:
    return abs(value - exact) / np.spacing(abs(exact))


# columns that are exact affine functions of X in binary floating point
AFFINE = {"X", "BIG", "HUGE", "TINY", "ROUND", "OFFSET", "NEG", "BIGREV"}


def test_nasty_correlations_are_exact_or_undefined(nasty_exact) -> None:
    """Affine pairs give exactly +-1; every other pair is within 1 ulp of the exact value
    of the stored doubles; pairs with a constant column are undefined, with the reason."""
    names = list(NASTY)
    c = _comoments(np.column_stack(list(NASTY.values())))
    r = co.correlation_matrix(c)
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            exact = nasty_exact[(a, b)]
            if exact is None:
                assert np.isnan(r[i, j]), (a, b)
            elif {a, b} <= AFFINE:
                assert r[i, j] == exact and abs(exact) == 1.0, (a, b)  # Wilkinson: 1
            else:
                assert _ulps(r[i, j], exact) <= 1.0, (a, b)
    tests = co.correlation_tests(c, names=names)
    for (a, b), result in tests.items():
        if nasty_exact[(a, b)] is None:
            assert not result.applicable and result.statistic is None
            constant = {a, b} & {"ZERO", "CONST"}
            assert all(name in result.reason for name in constant)
        else:
            assert result.effect_size == r[names.index(a), names.index(b)]


@pytest.mark.parametrize("seed", range(8))
def test_nasty_correlations_survive_any_split(nasty_exact, seed) -> None:
    """Within 2 ulps of the exact value under merges (LITTLE excluded: see the report)."""
    names = [n for n in NASTY if n != "LITTLE"]
    matrix = np.column_stack([NASTY[n] for n in names])
    rng = np.random.default_rng(seed)
    cuts = sorted(rng.choice(np.arange(1, 9), rng.integers(1, 8), replace=False).tolist())
    r = co.correlation_matrix(_comoments(matrix, cuts))
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            exact = nasty_exact[(a, b)]
            if exact is None:
                assert np.isnan(r[i, j])
            else:
                assert _ulps(r[i, j], exact) <= 2.0, (a, b, cuts)


def test_vif_of_nasty_linear_columns_is_infinite_or_huge() -> None:
    c = _comoments(np.column_stack([NASTY["X"], NASTY["BIG"], NASTY["SQUARE"]]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        vif = co.variance_inflation_factors(co.correlation_matrix(c))
    assert np.all(vif[:2] > 1e12)
