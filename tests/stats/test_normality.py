"""Normality tests against scipy 1.17 on the same values: skewtest, kurtosistest,
normaltest and jarque_bera from exact (merged) moments; shapiro and anderson on the sample;
the sketched KS distance against scipy.stats.kstest and a real KLL sketch."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import scipy.stats

from spark_explore.errors import (
    ConstantColumnWarning,
    InvalidArgumentError,
    SmallSampleWarning,
)
from spark_explore.states._algebra import batch_moments, merge_moments
from spark_explore.states.batch import Batch
from spark_explore.states.quantiles import KllState
from spark_explore.stats.normality import (
    anderson_darling,
    dagostino_pearson,
    jarque_bera,
    ks_distance_from_cdf,
    kurtosis_test,
    qq_points,
    shapiro_wilk,
    skewness_test,
)
from spark_explore.stats.results import EXACT, SAMPLE, SKETCH

RTOL = 1e-9


def _moments(x: np.ndarray, chunks: int = 1) -> dict[str, float]:
    """n, M2, M3, M4 and the mean as the scan computes them (chunked, then merged)."""
    parts = [p.reshape(-1, 1) for p in np.array_split(np.asarray(x, float), chunks)]
    acc = batch_moments(parts[0], np.isfinite(parts[0]))
    for p in parts[1:]:
        acc = merge_moments(acc, batch_moments(p, np.isfinite(p)))
    return {
        "n": acc.n[0],
        "m2": acc.m2[0],
        "m3": acc.m3[0],
        "m4": acc.m4[0],
        "mean": acc.mean[0] + acc.mean_lo[0],
    }


def _datasets() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(2024)
    return {
        "normal-8": rng.normal(size=8),
        "normal-25": rng.normal(10, 3, 25),
        "normal-5000": rng.normal(-4, 0.1, 5000),
        "exponential-300": rng.exponential(2.0, 300),
        "neg-lognormal-1000": -rng.lognormal(0, 1, 1000),
        "t3-200": rng.standard_t(3, 200),
        "uniform-150": rng.uniform(0, 1, 150),
        "offset-400": 1e8 + rng.normal(0, 1, 400),
        "integers-60": rng.integers(0, 5, 60).astype(float),
    }


DATASETS = _datasets()
#: The statistics are shift-invariant and x - 1e8 is exact here (Sterbenz). scipy's float64
#: mean of the offset data is off by up to an ulp of 1e8, which costs it about 1e-7 in the
#: skewness, while the moment states carry the mean in double-double; so the reference for
#: the offset data is scipy on the shifted values (checked against exact rational
#: arithmetic when this test was written).
REFERENCE = {name: (x - 1e8 if name.startswith("offset") else x) for name, x in DATASETS.items()}


def _close(result, reference) -> None:
    assert result.applicable, result.reason
    np.testing.assert_allclose(result.statistic, reference.statistic, rtol=RTOL, atol=0)
    np.testing.assert_allclose(result.pvalue, reference.pvalue, rtol=RTOL, atol=0)


@pytest.mark.parametrize("name", sorted(DATASETS))
class TestFromMoments:
    def test_skewness_test_equals_scipy(self, name: str) -> None:
        x = DATASETS[name]
        m = _moments(x, chunks=3)
        for alt in ("two-sided", "less", "greater"):
            res = skewness_test(m["n"], m["m2"], m["m3"], alternative=alt)
            _close(res, scipy.stats.skewtest(REFERENCE[name], alternative=alt))
        ref = scipy.stats.skew(REFERENCE[name])
        np.testing.assert_allclose(res.effect_size, ref, rtol=RTOL)
        assert res.method == EXACT and not res.approximate and res.n == x.size

    def test_kurtosis_test_equals_scipy(self, name: str) -> None:
        x = DATASETS[name]
        m = _moments(x, chunks=3)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SmallSampleWarning)
            for alt in ("two-sided", "less", "greater"):
                res = kurtosis_test(m["n"], m["m2"], m["m4"], alternative=alt)
                _close(res, scipy.stats.kurtosistest(REFERENCE[name], alternative=alt))
        ref = scipy.stats.kurtosis(REFERENCE[name])
        np.testing.assert_allclose(res.effect_size, ref, rtol=RTOL)

    def test_dagostino_pearson_equals_scipy_normaltest(self, name: str) -> None:
        x = DATASETS[name]
        m = _moments(x, chunks=2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SmallSampleWarning)
            res = dagostino_pearson(m["n"], m["m2"], m["m3"], m["m4"], mean=m["mean"])
        _close(res, scipy.stats.normaltest(REFERENCE[name]))
        assert res.df == 2
        ref = scipy.stats.skew(REFERENCE[name])
        np.testing.assert_allclose(res.details["skewness"], ref, rtol=RTOL)

    def test_jarque_bera_equals_scipy(self, name: str) -> None:
        x = DATASETS[name]
        m = _moments(x, chunks=5)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SmallSampleWarning)
            res = jarque_bera(m["n"], m["m2"], m["m3"], m["m4"])
        _close(res, scipy.stats.jarque_bera(REFERENCE[name]))


def test_real_columns_equal_scipy(shared_data) -> None:
    table = pq.read_table(shared_data / "real" / "wine.parquet")
    for col in table.column_names[:8]:
        x = table[col].to_numpy().astype(float)
        m = _moments(x, chunks=4)
        _close(dagostino_pearson(m["n"], m["m2"], m["m3"], m["m4"]), scipy.stats.normaltest(x))
        _close(jarque_bera(m["n"], m["m2"], m["m3"], m["m4"]), scipy.stats.jarque_bera(x))
        _close(shapiro_wilk(x), scipy.stats.shapiro(x))


def test_zero_skewness_gives_zero_score() -> None:
    # documented difference: scipy substitutes y = 1 when the skewness is exactly 0
    res = skewness_test(20, 10.0, 0.0)
    assert res.statistic == 0.0 and res.pvalue == pytest.approx(1.0)


class TestDegenerate:
    @pytest.mark.parametrize("n", [0, 1, 5, 7])
    def test_fewer_than_8_values_skew_and_k2_not_applicable(self, n: int) -> None:
        x = np.arange(n, dtype=float) ** 1.5
        m = _moments(x) if n else {"n": 0, "m2": 0.0, "m3": 0.0, "m4": 0.0}
        with pytest.warns(SmallSampleWarning):
            res = skewness_test(m["n"], m["m2"], m["m3"])
        assert not res.applicable and res.statistic is None
        with pytest.warns(SmallSampleWarning):
            res = dagostino_pearson(m["n"], m["m2"], m["m3"], m["m4"])
        assert not res.applicable
        assert ("at least 8" in res.reason) if n else ("no finite values" in res.reason)

    def test_kurtosis_below_5_not_applicable_and_below_20_warned(self) -> None:
        with pytest.warns(SmallSampleWarning):
            assert not kurtosis_test(4, 2.0, 3.0).applicable
        x = DATASETS["normal-8"]
        m = _moments(x)
        with pytest.warns(SmallSampleWarning, match="< 20"):
            res = kurtosis_test(m["n"], m["m2"], m["m4"])
        assert res.applicable and res.warnings
        _close(res, scipy.stats.kurtosistest(x))
        with pytest.warns(SmallSampleWarning, match="< 20"):
            assert dagostino_pearson(m["n"], m["m2"], m["m3"], m["m4"]).warnings

    def test_jarque_bera_small_n_warned(self) -> None:
        m = _moments(DATASETS["normal-25"])
        with pytest.warns(SmallSampleWarning, match="small samples"):
            assert jarque_bera(m["n"], m["m2"], m["m3"], m["m4"]).warnings

    @pytest.mark.parametrize(
        "func",
        [skewness_test, kurtosis_test, dagostino_pearson, jarque_bera],
    )
    def test_constant_column_not_applicable(self, func) -> None:
        m = _moments(np.full(50, 3.25))
        assert m["m2"] == 0.0
        args = {"skewness_test": ("m2", "m3"), "kurtosis_test": ("m2", "m4")}.get(
            func.__name__, ("m2", "m3", "m4")
        )
        with pytest.warns(ConstantColumnWarning):
            res = func(m["n"], *(m[a] for a in args))
        assert not res.applicable and "constant" in res.reason
        json.dumps(res.to_dict())

    def test_near_constant_column_recognised_with_the_mean(self) -> None:
        x = np.full(30, 0.1)
        x[::2] = np.nextafter(0.1, 1.0)
        m = _moments(x)
        assert m["m2"] > 0
        with pytest.warns(ConstantColumnWarning):
            assert not dagostino_pearson(
                m["n"], m["m2"], m["m3"], m["m4"], mean=m["mean"]
            ).applicable

    @pytest.mark.parametrize(
        "args",
        [
            (10.5, 1.0, 0.0, 1.0),
            (-1, 1.0, 0.0, 1.0),
            (10, -1.0, 0.0, 1.0),
            (10, 1.0, np.nan, 1.0),
            (10, 1.0, 0.0, -2.0),
        ],
    )
    def test_bad_moments_raise(self, args) -> None:
        with pytest.raises(InvalidArgumentError):
            dagostino_pearson(*args)

    def test_bad_alternative_raises(self) -> None:
        with pytest.raises(InvalidArgumentError, match="alternative"):
            skewness_test(10, 1.0, 0.1, alternative="both")


def test_planted_skew_and_heavy_tails_detected_normal_passes() -> None:
    rng = np.random.default_rng(31)
    skewed = _moments(rng.lognormal(0, 0.5, 3000))
    heavy = _moments(rng.standard_t(4, 3000))
    normal = _moments(rng.normal(0, 1, 3000))
    args = ("n", "m2", "m3", "m4")
    assert dagostino_pearson(*(skewed[a] for a in args)).pvalue < 1e-12
    assert skewness_test(skewed["n"], skewed["m2"], skewed["m3"]).effect_size > 1.0
    assert kurtosis_test(heavy["n"], heavy["m2"], heavy["m4"]).pvalue < 1e-12
    assert jarque_bera(*(heavy[a] for a in args)).pvalue < 1e-12
    assert dagostino_pearson(*(normal[a] for a in args)).pvalue > 0.01
    assert jarque_bera(*(normal[a] for a in args)).pvalue > 0.01


class TestShapiroWilk:
    def test_equals_scipy_and_drops_non_finite(self) -> None:
        x = DATASETS["exponential-300"]
        res = shapiro_wilk(np.append(x, [np.nan, np.inf]))
        ref = scipy.stats.shapiro(x)
        assert (res.statistic, res.pvalue) == (float(ref.statistic), float(ref.pvalue))
        assert res.method == SAMPLE and res.approximate and res.n == 300

    def test_limits(self) -> None:
        with pytest.warns(SmallSampleWarning, match="at least 3"):
            assert not shapiro_wilk([1.0, 2.0, np.nan]).applicable
        with pytest.warns(SmallSampleWarning, match="5000"):
            res = shapiro_wilk(np.random.default_rng(0).normal(size=5001))
        assert not res.applicable and "exceeds 5000" in res.reason
        assert shapiro_wilk(np.random.default_rng(0).normal(size=5000)).applicable
        with pytest.warns(ConstantColumnWarning):
            assert not shapiro_wilk(np.ones(10)).applicable
        with pytest.raises(InvalidArgumentError):
            shapiro_wilk(np.ones((3, 3)))

    def test_detects_non_normal(self) -> None:
        rng = np.random.default_rng(5)
        assert shapiro_wilk(rng.exponential(size=500)).pvalue < 1e-10
        assert shapiro_wilk(rng.normal(size=500)).pvalue > 0.01


class TestAndersonDarling:
    @pytest.mark.parametrize("name", ["normal-25", "uniform-150", "t3-200", "normal-5000"])
    def test_equals_scipy(self, name: str) -> None:
        x = DATASETS[name]
        res = anderson_darling(x)
        ref = scipy.stats.anderson(x, dist="norm", method="interpolate")
        assert (res.statistic, res.pvalue) == (float(ref.statistic), float(ref.pvalue))
        with warnings.catch_warnings():
            # scipy 1.17 still returns the table when no method is given (deprecated)
            warnings.simplefilter("ignore", FutureWarning)
            legacy = scipy.stats.anderson(x, dist="norm")
        np.testing.assert_array_equal(res.details["critical_values"], legacy.critical_values)
        np.testing.assert_array_equal(res.details["significance_levels"], legacy.significance_level)

    def test_pvalue_bounds_flagged(self) -> None:
        rng = np.random.default_rng(6)
        res = anderson_darling(rng.exponential(size=2000))
        assert res.pvalue == 0.01 and res.details["pvalue_bound"] == "upper" and res.warnings
        res = anderson_darling(scipy.stats.norm.ppf((np.arange(200) + 0.5) / 200))
        assert res.pvalue == 0.15 and res.details["pvalue_bound"] == "lower"
        json.dumps(res.to_dict())

    def test_not_applicable(self) -> None:
        with pytest.warns(SmallSampleWarning):
            assert not anderson_darling(np.arange(7.0)).applicable
        with pytest.warns(ConstantColumnWarning):
            assert not anderson_darling(np.ones(20)).applicable


def _kll(x: np.ndarray, k: int = 200) -> KllState:
    state = KllState.empty("x", k)
    state.update(Batch(pa.record_batch({"x": pa.array(x)})))
    return state


class TestKsDistance:
    def test_exact_cdf_brackets_scipy_kstest(self) -> None:
        rng = np.random.default_rng(41)
        x = np.sort(rng.gamma(4.0, 1.0, 400))
        mean, std = x.mean(), x.std(ddof=1)

        def rank(v: float) -> float:
            return np.searchsorted(x, v, side="right") / x.size

        res = ks_distance_from_cdf(rank, mean, std, 0.0, points=x, n=x.size)
        ks = scipy.stats.kstest(x, "norm", args=(mean, std)).statistic
        assert res.statistic <= ks + 1e-15 <= res.details["grid_upper_bound"] + 2e-15
        # at the data points, the inclusive ECDF gives the D+ side exactly
        d_plus = np.max(np.arange(1, x.size + 1) / x.size - scipy.stats.norm.cdf(x, mean, std))
        assert res.statistic >= d_plus - 1e-15
        assert res.method == SKETCH and res.approximate and res.pvalue is None
        assert res.error_bound == 0.0 and res.effect_size == res.statistic

    def test_pairs_equal_callable(self) -> None:
        x = np.linspace(-2, 2, 9)
        ranks = scipy.stats.norm.cdf(x) + 0.01
        a = ks_distance_from_cdf((x, ranks), 0.0, 1.0, 0.01)
        b = ks_distance_from_cdf(
            lambda v: float(scipy.stats.norm.cdf(v) + 0.01), 0.0, 1.0, 0.01, points=x[::-1]
        )
        assert a.statistic == pytest.approx(0.01) and a.statistic == b.statistic
        assert a.details == b.details

    def test_kll_sketch_within_rank_error_of_exact(self) -> None:
        rng = np.random.default_rng(42)
        for x, big in ((rng.normal(5, 2, 200_000), False), (rng.exponential(2, 200_000), True)):
            state = _kll(x)
            probs = np.arange(1, 100) / 100
            points = state.quantiles(probs)
            mean, std = x.mean(), x.std(ddof=1)
            res = ks_distance_from_cdf(
                state.rank, mean, std, state.rank_error, points=points, n=state.n
            )
            xs = np.sort(x)
            exact = np.searchsorted(xs, points, side="right") / xs.size
            d_exact = np.max(np.abs(exact - scipy.stats.norm.cdf(points, mean, std)))
            assert abs(res.statistic - d_exact) <= res.error_bound
            assert res.error_bound == state.rank_error
            ks = scipy.stats.kstest(x, "norm", args=(mean, std)).statistic
            assert res.statistic - res.error_bound <= ks
            assert ks <= res.details["grid_upper_bound"] + res.error_bound
            assert (res.statistic > 0.05) is big

    def test_not_applicable_and_bad_arguments(self) -> None:
        with pytest.warns(SmallSampleWarning):
            res = ks_distance_from_cdf(KllState.empty("x").rank, 0.0, 1.0, 0.01, points=[0.0])
        assert not res.applicable and "empty" in res.reason
        with pytest.warns(ConstantColumnWarning):
            assert not ks_distance_from_cdf(([1.0], [1.0]), 1.0, 0.0, 0.0).applicable
        with pytest.raises(InvalidArgumentError, match="points"):
            ks_distance_from_cdf(lambda v: 0.5, 0.0, 1.0, 0.01)
        with pytest.raises(InvalidArgumentError):
            ks_distance_from_cdf(([0.0, 1.0], [0.5]), 0.0, 1.0, 0.01)
        with pytest.raises(InvalidArgumentError):
            ks_distance_from_cdf(([0.0], [1.5]), 0.0, 1.0, 0.01)
        with pytest.raises(InvalidArgumentError):
            ks_distance_from_cdf(([0.0], [0.5]), 0.0, -1.0, 0.01)
        with pytest.raises(InvalidArgumentError):
            ks_distance_from_cdf(([0.0], [0.5]), 0.0, 1.0, 2.0)
        with pytest.raises(InvalidArgumentError):
            ks_distance_from_cdf(([], []), 0.0, 1.0, 0.0)


class TestQQ:
    def test_pairs(self) -> None:
        quantiles = {0.0: -9.0, 0.75: 2.0, 0.25: -1.0, 0.5: 0.4, 1.0: 9.0, 0.9: None}
        qq = qq_points(quantiles, 0.5, 2.0)
        assert qq.p == (0.25, 0.5, 0.75)
        assert qq.sample == (-1.0, 0.4, 2.0)
        np.testing.assert_allclose(qq.z, scipy.stats.norm.ppf([0.25, 0.5, 0.75]))
        np.testing.assert_allclose(qq.theoretical, scipy.stats.norm.ppf(qq.p, 0.5, 2.0))
        theoretical, sample = qq
        assert sample == qq.sample and theoretical == qq.theoretical
        assert json.loads(json.dumps(qq.to_dict()))["p"] == [0.25, 0.5, 0.75]

    def test_from_a_sketch_lies_on_the_line_for_normal_data(self) -> None:
        x = np.random.default_rng(43).normal(10, 3, 100_000)
        state = _kll(x)
        probs = [i / 100 for i in range(1, 100)]
        qq = qq_points(
            dict(zip(probs, state.quantiles(probs), strict=True)), x.mean(), x.std(ddof=1)
        )
        assert np.max(np.abs(np.subtract(qq.sample, qq.theoretical))[5:-5]) < 0.3

    def test_empty_and_bad_input(self) -> None:
        assert qq_points({0.5: None}, 0.0, 1.0).p == ()
        with pytest.raises(InvalidArgumentError):
            qq_points({1.5: 1.0}, 0.0, 1.0)
        with pytest.raises(InvalidArgumentError):
            qq_points({0.5: np.inf}, 0.0, 1.0)
        with pytest.raises(InvalidArgumentError):
            qq_points({0.5: 1.0}, 0.0, -1.0)


@pytest.mark.slow
def test_dagostino_pearson_pvalues_are_uniform_under_the_null() -> None:
    rng = np.random.default_rng(20260102)
    pvalues = []
    for _ in range(2000):
        m = _moments(rng.normal(1.0, 3.0, 200))
        pvalues.append(dagostino_pearson(m["n"], m["m2"], m["m3"], m["m4"]).pvalue)
    pvalues = np.array(pvalues)
    assert scipy.stats.kstest(pvalues, "uniform").pvalue > 0.01
    np.testing.assert_allclose(np.quantile(pvalues, [0.1, 0.5, 0.9]), [0.1, 0.5, 0.9], atol=0.03)
