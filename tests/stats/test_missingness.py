"""Missingness: Little's MCAR test and EM from per-pattern aggregates against a row-by-row
reference implementation and naniar's published value; Welch and two-proportion tests
against scipy 1.17 (ttest_ind) and statsmodels 0.15 (proportions_ztest)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pyarrow.parquet as pq
import pytest
import scipy.stats
from statsmodels.stats.proportion import proportions_ztest

from spark_explore.errors import (
    ConstantColumnWarning,
    DegenerateDataWarning,
    InvalidArgumentError,
    SmallSampleWarning,
)
from spark_explore.stats.missingness import (
    PatternStats,
    em_mean_cov,
    little_mcar,
    missingness_association,
    pattern_stats,
    proportion_difference,
)
from spark_explore.stats.results import EXACT, SAMPLE

RTOL = 1e-9

#: R's datasets::airquality (New York, May-September 1973; Chambers et al. 1983), 153 rows
#: of Ozone, Solar.R, Wind, Temp, Month, Day; NA marks a missing value.
AIRQUALITY = """41,190,7.4,67,5,1
36,118,8,72,5,2
12,149,12.6,74,5,3
18,313,11.5,62,5,4
NA,NA,14.3,56,5,5
28,NA,14.9,66,5,6
23,299,8.6,65,5,7
19,99,13.8,59,5,8
8,19,20.1,61,5,9
NA,194,8.6,69,5,10
7,NA,6.9,74,5,11
16,256,9.7,69,5,12
11,290,9.2,66,5,13
14,274,10.9,68,5,14
18,65,13.2,58,5,15
14,334,11.5,64,5,16
34,307,12,66,5,17
6,78,18.4,57,5,18
30,322,11.5,68,5,19
11,44,9.7,62,5,20
1,8,9.7,59,5,21
11,320,16.6,73,5,22
4,25,9.7,61,5,23
32,92,12,61,5,24
NA,66,16.6,57,5,25
NA,266,14.9,58,5,26
NA,NA,8,57,5,27
23,13,12,67,5,28
45,252,14.9,81,5,29
115,223,5.7,79,5,30
37,279,7.4,76,5,31
NA,286,8.6,78,6,1
NA,287,9.7,74,6,2
NA,242,16.1,67,6,3
NA,186,9.2,84,6,4
NA,220,8.6,85,6,5
NA,264,14.3,79,6,6
29,127,9.7,82,6,7
NA,273,6.9,87,6,8
71,291,13.8,90,6,9
39,323,11.5,87,6,10
NA,259,10.9,93,6,11
NA,250,9.2,92,6,12
23,148,8,82,6,13
NA,332,13.8,80,6,14
NA,322,11.5,79,6,15
21,191,14.9,77,6,16
37,284,20.7,72,6,17
20,37,9.2,65,6,18
12,120,11.5,73,6,19
13,137,10.3,76,6,20
NA,150,6.3,77,6,21
NA,59,1.7,76,6,22
NA,91,4.6,76,6,23
NA,250,6.3,76,6,24
NA,135,8,75,6,25
NA,127,8,78,6,26
NA,47,10.3,73,6,27
NA,98,11.5,80,6,28
NA,31,14.9,77,6,29
NA,138,8,83,6,30
135,269,4.1,84,7,1
49,248,9.2,85,7,2
32,236,9.2,81,7,3
NA,101,10.9,84,7,4
64,175,4.6,83,7,5
40,314,10.9,83,7,6
77,276,5.1,88,7,7
97,267,6.3,92,7,8
97,272,5.7,92,7,9
85,175,7.4,89,7,10
NA,139,8.6,82,7,11
10,264,14.3,73,7,12
27,175,14.9,81,7,13
NA,291,14.9,91,7,14
7,48,14.3,80,7,15
48,260,6.9,81,7,16
35,274,10.3,82,7,17
61,285,6.3,84,7,18
79,187,5.1,87,7,19
63,220,11.5,85,7,20
16,7,6.9,74,7,21
NA,258,9.7,81,7,22
NA,295,11.5,82,7,23
80,294,8.6,86,7,24
108,223,8,85,7,25
20,81,8.6,82,7,26
52,82,12,86,7,27
82,213,7.4,88,7,28
50,275,7.4,86,7,29
64,253,7.4,83,7,30
59,254,9.2,81,7,31
39,83,6.9,81,8,1
9,24,13.8,81,8,2
16,77,7.4,82,8,3
78,NA,6.9,86,8,4
35,NA,7.4,85,8,5
66,NA,4.6,87,8,6
122,255,4,89,8,7
89,229,10.3,90,8,8
110,207,8,90,8,9
NA,222,8.6,92,8,10
NA,137,11.5,86,8,11
44,192,11.5,86,8,12
28,273,11.5,82,8,13
65,157,9.7,80,8,14
NA,64,11.5,79,8,15
22,71,10.3,77,8,16
59,51,6.3,79,8,17
23,115,7.4,76,8,18
31,244,10.9,78,8,19
44,190,10.3,78,8,20
21,259,15.5,77,8,21
9,36,14.3,72,8,22
NA,255,12.6,75,8,23
45,212,9.7,79,8,24
168,238,3.4,81,8,25
73,215,8,86,8,26
NA,153,5.7,88,8,27
76,203,9.7,97,8,28
118,225,2.3,94,8,29
84,237,6.3,96,8,30
85,188,6.3,94,8,31
96,167,6.9,91,9,1
78,197,5.1,92,9,2
73,183,2.8,93,9,3
91,189,4.6,93,9,4
47,95,7.4,87,9,5
32,92,15.5,84,9,6
20,252,10.9,80,9,7
23,220,10.3,78,9,8
21,230,10.9,75,9,9
24,259,9.7,73,9,10
44,236,14.9,81,9,11
21,259,15.5,76,9,12
28,238,6.3,77,9,13
9,24,10.9,71,9,14
13,112,11.5,71,9,15
46,237,6.9,78,9,16
18,224,13.8,67,9,17
13,27,10.3,76,9,18
24,238,10.3,68,9,19
16,201,8,82,9,20
13,238,12.6,64,9,21
23,14,9.2,71,9,22
36,139,10.3,81,9,23
7,49,10.3,69,9,24
14,20,16.6,63,9,25
30,193,6.9,70,9,26
NA,145,13.2,77,9,27
14,191,14.3,75,9,28
18,131,8,76,9,29
20,223,11.5,68,9,30"""


def _airquality() -> np.ndarray:
    rows = [
        [np.nan if v == "NA" else float(v) for v in line.split(",")]
        for line in AIRQUALITY.splitlines()
    ]
    return np.array(rows)


def _reference_em(y: np.ndarray, tol: float = 1e-13, max_iter: int = 100_000):
    """Textbook EM for the multivariate normal, one row at a time (Little & Rubin 11.2)."""
    obs = np.isfinite(y)
    y, obs = y[obs.any(axis=1)], obs[obs.any(axis=1)]
    n, p = y.shape
    mu = np.array([y[obs[:, j], j].mean() for j in range(p)])
    sigma = np.diag([y[obs[:, j], j].var() for j in range(p)])
    for _ in range(max_iter):
        s1, s2 = np.zeros(p), np.zeros((p, p))
        for row, o in zip(y, obs, strict=True):
            m = ~o
            yhat, c = row.copy(), np.zeros((p, p))
            if m.any():
                beta = sigma[np.ix_(m, o)] @ np.linalg.inv(sigma[np.ix_(o, o)])
                yhat[m] = mu[m] + beta @ (row[o] - mu[o])
                c[np.ix_(m, m)] = sigma[np.ix_(m, m)] - beta @ sigma[np.ix_(o, m)]
            s1 += yhat
            s2 += np.outer(yhat, yhat) + c
        new_mu = s1 / n
        new_sigma = s2 / n - np.outer(new_mu, new_mu)
        done = max(np.abs(new_mu - mu).max(), np.abs(new_sigma - sigma).max()) < tol
        mu, sigma = new_mu, new_sigma
        if done:
            break
    return mu, sigma


def _reference_little(y: np.ndarray, mu: np.ndarray, sigma: np.ndarray):
    """Little's d2 straight from the rows, grouped by pattern with a dict."""
    groups: dict[tuple[bool, ...], list[np.ndarray]] = {}
    for row in y:
        key = tuple(np.isfinite(row))
        if any(key):
            groups.setdefault(key, []).append(row)
    d2, df = 0.0, -int(np.isfinite(y).any(axis=0).sum())
    for key, rows in groups.items():
        o = np.array(key)
        diff = np.mean(rows, axis=0)[o] - mu[o]
        d2 += len(rows) * diff @ np.linalg.inv(sigma[np.ix_(o, o)]) @ diff
        df += int(o.sum())
    return d2, df, scipy.stats.chi2.sf(d2, df)


def _mvn_with_missing(seed: int, n: int = 300, mechanism: str = "mcar") -> np.ndarray:
    rng = np.random.default_rng(seed)
    cov = np.array([[1.0, 0.5, 0.3], [0.5, 2.0, 0.4], [0.3, 0.4, 1.5]])
    y = rng.multivariate_normal([1.0, 100.0, -3.0], cov, n)
    if mechanism == "mcar":
        y[rng.random((n, 3)) < 0.15] = np.nan
    else:  # MAR: column 1 goes missing where column 0 (always observed) is high
        y[(y[:, 0] > 1.3) & (rng.random(n) < 0.8), 1] = np.nan
        y[rng.random(n) < 0.1, 2] = np.nan
    return y


class TestPatternStats:
    def test_groups_rows_by_pattern(self) -> None:
        y = _mvn_with_missing(1)
        pats = pattern_stats(y)
        assert sum(p.n for p in pats) == y.shape[0]
        for pat in pats:
            rows = y[(np.isfinite(y) == pat.observed).all(axis=1)][:, pat.observed]
            np.testing.assert_allclose(pat.mean, rows.mean(axis=0), rtol=1e-12)
            if rows.shape[0] > 1 and rows.shape[1] > 0:
                np.testing.assert_allclose(
                    pat.m2,
                    np.cov(rows, rowvar=False, bias=True).reshape(pat.m2.shape) * rows.shape[0],
                    rtol=1e-9,
                    atol=1e-9,
                )

    def test_from_sums_and_validation(self) -> None:
        rows = np.array([[1.0, 2.0], [3.0, 5.0], [4.0, 4.0]])
        pat = PatternStats.from_sums([True, True], 3, rows.sum(axis=0), rows.T @ rows)
        ref = pattern_stats(rows)[0]
        np.testing.assert_allclose(pat.mean, ref.mean)
        np.testing.assert_allclose(pat.m2, ref.m2, atol=1e-12)
        with pytest.raises(InvalidArgumentError):
            PatternStats([True, False], 3, [1.0, 2.0])
        with pytest.raises(InvalidArgumentError):
            PatternStats([True, False], -1, [1.0])
        with pytest.raises(InvalidArgumentError):
            PatternStats([True, True], 3, [1.0, 2.0], np.eye(3))
        assert pattern_stats(np.empty((0, 3))) == []


class TestEM:
    @pytest.mark.parametrize("seed", [1, 2])
    def test_matches_row_by_row_reference(self, seed: int) -> None:
        y = _mvn_with_missing(seed, n=150)
        em = em_mean_cov(pattern_stats(y), tol=1e-13)
        mu, sigma = _reference_em(y)
        assert em.converged
        np.testing.assert_allclose(em.mean, mu, rtol=1e-9)
        np.testing.assert_allclose(em.cov, sigma, rtol=1e-8)

    def test_complete_data_gives_sample_mean_and_ml_covariance(self) -> None:
        y = np.random.default_rng(3).normal(size=(100, 3)) * [1, 10, 100]
        em = em_mean_cov(pattern_stats(y))
        np.testing.assert_allclose(em.mean, y.mean(axis=0), rtol=1e-12)
        np.testing.assert_allclose(em.cov, np.cov(y, rowvar=False, bias=True), rtol=1e-10)

    def test_log_likelihood_never_decreases(self) -> None:
        pats = pattern_stats(_mvn_with_missing(4, mechanism="mar"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DegenerateDataWarning)  # stopped early on purpose
            lls = [em_mean_cov(pats, max_iter=k).loglik for k in range(1, 15)]
        assert np.all(np.diff(lls) >= -1e-9)

    def test_loglik_matches_scipy_on_complete_rows(self) -> None:
        y = np.random.default_rng(5).normal(size=(50, 2))
        em = em_mean_cov(pattern_stats(y))
        ref = scipy.stats.multivariate_normal(em.mean, em.cov).logpdf(y).sum()
        assert em.loglik == pytest.approx(ref, rel=1e-10)

    def test_degenerate(self) -> None:
        y = _mvn_with_missing(6)
        y[:, 2] = 7.0
        y[::5, 2] = np.nan
        with pytest.warns(ConstantColumnWarning):
            em = em_mean_cov(pattern_stats(y))
        assert not em.applicable and "constant" in em.reason and np.isnan(em.mean).all()
        y = _mvn_with_missing(6)
        y[:, 2] = 2 * y[:, 0] - y[:, 1]
        with pytest.warns(DegenerateDataWarning, match="singular"):
            assert not em_mean_cov(pattern_stats(y)).applicable
        with pytest.warns(DegenerateDataWarning, match="no row"):
            assert not em_mean_cov(pattern_stats(np.full((4, 2), np.nan))).applicable
        json.dumps(em.to_dict())

    def test_never_observed_variable_is_nan(self) -> None:
        y = _mvn_with_missing(7)
        y[:, 1] = np.nan
        with pytest.warns(DegenerateDataWarning, match="never observed"):
            em = em_mean_cov(pattern_stats(y))
        assert em.applicable and np.isnan(em.mean[1]) and np.isfinite(em.mean[[0, 2]]).all()
        mu, sigma = _reference_em(y[:, [0, 2]])
        np.testing.assert_allclose(em.mean[[0, 2]], mu, rtol=1e-8)

    def test_bad_arguments(self) -> None:
        pats = pattern_stats(_mvn_with_missing(8))
        with pytest.raises(InvalidArgumentError, match="m2"):
            em_mean_cov([PatternStats(p.observed, p.n, p.mean) for p in pats])
        with pytest.raises(InvalidArgumentError):
            em_mean_cov(pats, tol=0)
        with pytest.raises(InvalidArgumentError):
            em_mean_cov([])
        with pytest.raises(InvalidArgumentError, match="same variables"):
            em_mean_cov([pats[0], PatternStats([True], 2, [1.0], [[0.5]])])


class TestLittle:
    def test_published_value_for_airquality(self) -> None:
        # naniar (CRAN, 2024) tests/testthat/test-mcar-test.R: mcar_test(airquality) gives
        # statistic 35.1061288689702, df 14, p.value 0.00141778113856683, 4 patterns
        # (norm::em.norm's convergence tolerance limits the agreement to ~1e-6)
        res = little_mcar(pattern_stats(_airquality()))
        assert res.df == 14 and res.details["n_patterns"] == 4 and res.n == 153
        assert res.statistic == pytest.approx(35.1061288689702, rel=1e-5)
        assert res.pvalue == pytest.approx(0.00141778113856683, rel=1e-4)
        # a row with every value missing is left out (naniar: same statistic, 5 patterns)
        y = np.vstack([_airquality(), np.full(6, np.nan)])
        res2 = little_mcar(pattern_stats(y))
        assert res2.statistic == pytest.approx(res.statistic, rel=1e-12)
        assert res2.details["rows_all_missing"] == 1

    @pytest.mark.parametrize(("seed", "mechanism"), [(1, "mcar"), (2, "mar")])
    def test_matches_row_by_row_reference(self, seed: int, mechanism: str) -> None:
        y = _mvn_with_missing(seed, n=120, mechanism=mechanism)
        res = little_mcar(pattern_stats(y), tol=1e-13)
        mu, sigma = _reference_em(y)
        d2, df, p = _reference_little(y, mu, sigma)
        assert res.df == df and res.method == EXACT and not res.approximate
        np.testing.assert_allclose(res.statistic, d2, rtol=1e-8)
        np.testing.assert_allclose(res.pvalue, p, rtol=1e-7)
        np.testing.assert_allclose(
            sum(c["contribution"] for c in res.details["patterns"]), res.statistic, rtol=1e-12
        )

    def test_given_estimates_equal_em_path(self) -> None:
        y = _mvn_with_missing(3)
        pats = pattern_stats(y)
        em = em_mean_cov(pats)
        a = little_mcar(pats)
        # the means alone suffice when the estimates are given
        b = little_mcar(
            [PatternStats(p.observed, p.n, p.mean) for p in pats], em.mean, em.cov, method=SAMPLE
        )
        assert a.statistic == pytest.approx(b.statistic, rel=1e-12) and a.df == b.df
        assert b.approximate and b.method == SAMPLE
        with pytest.raises(InvalidArgumentError):
            little_mcar(pats, em.mean)
        with pytest.raises(InvalidArgumentError):
            little_mcar(pats, em.mean[:2], em.cov)

    def test_mar_rejected_mcar_not(self) -> None:
        assert little_mcar(pattern_stats(_mvn_with_missing(10, 2000, "mar"))).pvalue < 1e-10
        assert little_mcar(pattern_stats(_mvn_with_missing(10, 2000, "mcar"))).pvalue > 0.001

    def test_complete_data_not_applicable(self, shared_data) -> None:
        with pytest.warns(DegenerateDataWarning, match="nothing to compare"):
            res = little_mcar(pattern_stats(np.random.default_rng(0).normal(size=(30, 3))))
        assert not res.applicable
        # penguins: the four measurements are missing together on two whole rows
        table = pq.read_table(shared_data / "real" / "penguins.parquet").to_pandas()
        y = table[["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]].to_numpy(
            float
        )
        assert np.isnan(y).any()
        with pytest.warns(DegenerateDataWarning):
            res = little_mcar(pattern_stats(y))
        assert not res.applicable and res.n == 342
        json.dumps(res.to_dict())

    def test_constant_or_collinear_variables_not_applicable(self) -> None:
        y = _mvn_with_missing(6)
        y[:, 0] = 1.5
        y[::7, 0] = np.nan
        with pytest.warns(DegenerateDataWarning, match="no ML estimates"):
            res = little_mcar(pattern_stats(y))
        assert "constant" in res.reason

    def test_json(self) -> None:
        res = little_mcar(pattern_stats(_airquality()))
        data = json.loads(json.dumps(res.to_dict()))
        assert len(data["details"]["patterns"]) == 4


class TestMissingnessAssociation:
    def _groups(self, seed: int = 0):
        rng = np.random.default_rng(seed)
        return rng.normal(10.3, 2.0, 80), rng.normal(10.0, 3.0, 900)

    def _moments(self, a: np.ndarray, b: np.ndarray):
        return (a.size, b.size, a.mean(), b.mean(), a.var(ddof=1), b.var(ddof=1))

    @pytest.mark.parametrize("seed", range(4))
    def test_equals_scipy_welch(self, seed: int) -> None:
        a, b = self._groups(seed)
        res = missingness_association(*self._moments(a, b))
        ref = scipy.stats.ttest_ind(a, b, equal_var=False)
        np.testing.assert_allclose(res.statistic, ref.statistic, rtol=RTOL)
        np.testing.assert_allclose(res.pvalue, ref.pvalue, rtol=RTOL)
        np.testing.assert_allclose(res.df, ref.df, rtol=RTOL)
        sp = np.sqrt(
            ((a.size - 1) * a.var(ddof=1) + (b.size - 1) * b.var(ddof=1)) / (a.size + b.size - 2)
        )
        np.testing.assert_allclose(res.effect_size, (a.mean() - b.mean()) / sp, rtol=RTOL)

    def test_real_data_penguins_mass_by_missing_sex(self, shared_data) -> None:
        table = pq.read_table(shared_data / "real" / "penguins.parquet").to_pandas()
        mass = table["body_mass_g"].to_numpy(float)
        missing = table["sex"].isna().to_numpy()
        a, b = mass[missing & np.isfinite(mass)], mass[~missing & np.isfinite(mass)]
        res = missingness_association(*self._moments(a, b))
        ref = scipy.stats.ttest_ind(a, b, equal_var=False)
        np.testing.assert_allclose(
            [res.statistic, res.pvalue], [ref.statistic, ref.pvalue], rtol=RTOL
        )

    def test_planted_mar_detected(self) -> None:
        rng = np.random.default_rng(1)
        x = rng.normal(size=20_000)
        other_missing = rng.random(x.size) < 1 / (1 + np.exp(-2 * x))  # likelier for high x
        res = missingness_association(*self._moments(x[other_missing], x[~other_missing]))
        assert res.pvalue < 1e-100 and res.effect_size > 1.0

    def test_one_constant_side_still_equals_scipy(self) -> None:
        a, b = np.full(5, 2.0), np.random.default_rng(2).normal(size=40)
        res = missingness_association(*self._moments(a, b))
        with warnings.catch_warnings():  # scipy warns about the constant sample
            warnings.simplefilter("ignore", RuntimeWarning)
            ref = scipy.stats.ttest_ind(a, b, equal_var=False)
        np.testing.assert_allclose(
            [res.statistic, res.pvalue], [ref.statistic, ref.pvalue], rtol=RTOL
        )

    def test_degenerate_and_bad_input(self) -> None:
        with pytest.warns(SmallSampleWarning):
            assert not missingness_association(1, 10, 1.0, 2.0, 0.0, 1.0).applicable
        with pytest.warns(SmallSampleWarning):
            assert not missingness_association(0, 0, 0.0, 0.0, 0.0, 0.0).applicable
        with pytest.warns(ConstantColumnWarning):
            res = missingness_association(5, 10, 1.0, 2.0, 0.0, 0.0)
        assert not res.applicable
        json.dumps(res.to_dict())
        with pytest.raises(InvalidArgumentError):
            missingness_association(5, 10, 1.0, 2.0, -1.0, 1.0)
        with pytest.raises(InvalidArgumentError):
            missingness_association(5.5, 10, 1.0, 2.0, 1.0, 1.0)
        with pytest.raises(InvalidArgumentError):
            missingness_association(5, 10, np.nan, 2.0, 1.0, 1.0)


class TestProportionDifference:
    @pytest.mark.parametrize(
        "counts",
        [
            (30, 200, 45, 210),
            (1, 1000, 10, 1000),
            (500, 600, 100, 700),
            (12345, 1_000_000, 13000, 1_000_000),
        ],
    )
    def test_equals_statsmodels(self, counts) -> None:
        k1, n1, k2, n2 = counts
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SmallSampleWarning)
            res = proportion_difference(k1, n1, k2, n2)
        z, p = proportions_ztest([k1, k2], [n1, n2])
        np.testing.assert_allclose([res.statistic, res.pvalue], [z, p], rtol=RTOL)
        assert res.effect_size == pytest.approx(k1 / n1 - k2 / n2)
        assert res.details["cohens_h"] == pytest.approx(
            2 * np.arcsin(np.sqrt(k1 / n1)) - 2 * np.arcsin(np.sqrt(k2 / n2))
        )

    def test_small_expected_count_warned(self) -> None:
        with pytest.warns(SmallSampleWarning, match="Fisher"):
            assert proportion_difference(1, 30, 3, 40).warnings

    def test_degenerate_and_bad_input(self) -> None:
        with pytest.warns(DegenerateDataWarning, match="pooled"):
            assert not proportion_difference(0, 10, 0, 20).applicable
        with pytest.warns(DegenerateDataWarning, match="pooled"):
            assert not proportion_difference(10, 10, 20, 20).applicable
        with pytest.warns(SmallSampleWarning):
            assert not proportion_difference(0, 0, 3, 20).applicable
        with pytest.raises(InvalidArgumentError):
            proportion_difference(11, 10, 3, 20)
        with pytest.raises(InvalidArgumentError):
            proportion_difference(-1, 10, 3, 20)
        with pytest.raises(InvalidArgumentError):
            proportion_difference(1.5, 10, 3, 20)


@pytest.mark.slow
def test_little_pvalues_are_uniform_under_mcar() -> None:
    pvalues = [
        little_mcar(pattern_stats(_mvn_with_missing(1000 + seed, n=300))).pvalue
        for seed in range(300)
    ]
    assert scipy.stats.kstest(pvalues, "uniform").pvalue > 0.01
    np.testing.assert_allclose(np.quantile(pvalues, [0.1, 0.5, 0.9]), [0.1, 0.5, 0.9], atol=0.06)
