"""Homogeneity of variance: Bartlett from merged moments, Levene/Brown-Forsythe/Fligner on
samples, each against scipy 1.17 (scipy.stats.bartlett/levene/fligner) on the same values."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pyarrow.parquet as pq
import pytest
import scipy.stats

from spark_explore.errors import (
    ConstantColumnWarning,
    DegenerateDataWarning,
    InvalidArgumentError,
    SmallSampleWarning,
)
from spark_explore.states._algebra import batch_moments, merge_moments
from spark_explore.stats.results import EXACT, SAMPLE
from spark_explore.stats.variance import (
    bartlett_from_moments,
    fligner_from_samples,
    levene_from_samples,
)

RTOL = 1e-9


def _moments(groups: list[np.ndarray], chunks: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Per-group n and M2 as the scan computes them: per-chunk moments, then merges."""
    n, m2 = [], []
    for g in groups:
        parts = [p.reshape(-1, 1) for p in np.array_split(g, chunks)]
        acc = batch_moments(parts[0], np.isfinite(parts[0]))
        for p in parts[1:]:
            acc = merge_moments(acc, batch_moments(p, np.isfinite(p)))
        n.append(acc.n[0])
        m2.append(acc.m2[0])
    return np.array(n), np.array(m2)


def _iris(shared_data) -> dict[str, list[np.ndarray]]:
    table = pq.read_table(shared_data / "real" / "iris.parquet").to_pandas()
    out = {}
    for col in ["sepal_length_cm", "sepal_width_cm", "petal_length_cm", "petal_width_cm"]:
        out[col] = [g[col].to_numpy(float) for _, g in table.groupby("species")]
    return out


def _assert_scipy(result, reference) -> None:
    assert result.applicable, result.reason
    np.testing.assert_allclose(result.statistic, reference.statistic, rtol=RTOL, atol=0)
    np.testing.assert_allclose(result.pvalue, reference.pvalue, rtol=RTOL, atol=0)


class TestBartlett:
    @pytest.mark.parametrize("seed", range(6))
    def test_matches_scipy_on_random_groups_split_into_partitions(self, seed: int) -> None:
        rng = np.random.default_rng(seed)
        k = int(rng.integers(2, 7))
        groups = [
            rng.normal(rng.normal(0, 100), rng.uniform(0.5, 3), int(rng.integers(3, 300)))
            for _ in range(k)
        ]
        n, m2 = _moments(groups, chunks=3)
        res = bartlett_from_moments(n, m2)
        _assert_scipy(res, scipy.stats.bartlett(*groups))
        assert res.df == k - 1 and res.n == sum(len(g) for g in groups)
        assert res.method == EXACT and not res.approximate

    def test_matches_scipy_on_iris_by_species(self, shared_data) -> None:
        for col, groups in _iris(shared_data).items():
            n, m2 = _moments(groups)
            res = bartlett_from_moments(n, m2, labels=["setosa", "versicolor", "virginica"])
            _assert_scipy(res, scipy.stats.bartlett(*groups))
            variances = [np.var(g, ddof=1) for g in groups]
            np.testing.assert_allclose(res.details["variances"], variances, rtol=RTOL)
            np.testing.assert_allclose(res.effect_size, max(variances) / min(variances), rtol=RTOL)
            assert res.details["groups"] == ["setosa", "versicolor", "virginica"], col

    def test_large_offset_groups_keep_precision(self) -> None:
        rng = np.random.default_rng(3)
        groups = [1e9 + rng.normal(0, s, 500) for s in (1.0, 1.1, 1.3)]
        n, m2 = _moments(groups, chunks=4)
        _assert_scipy(bartlett_from_moments(n, m2), scipy.stats.bartlett(*groups))

    def test_detects_heteroscedastic_groups_and_not_homoscedastic_ones(self) -> None:
        rng = np.random.default_rng(11)
        hetero = [rng.normal(0, s, 400) for s in (1.0, 1.0, 1.6)]
        homo = [rng.normal(5, 2.0, 400) for _ in range(3)]
        assert bartlett_from_moments(*_moments(hetero)).pvalue < 1e-10
        assert bartlett_from_moments(*_moments(homo)).pvalue > 0.01

    def test_group_of_one_is_left_out_with_a_warning(self) -> None:
        rng = np.random.default_rng(4)
        groups = [rng.normal(size=30), rng.normal(size=40), np.array([3.0])]
        n, m2 = _moments(groups)
        with pytest.warns(SmallSampleWarning, match="fewer than two values"):
            res = bartlett_from_moments(n, m2, labels=["a", "b", "c"])
        _assert_scipy(res, scipy.stats.bartlett(*groups[:2]))
        assert res.warnings and "['c']" in res.warnings[0]
        assert res.details["groups"] == ["a", "b"]

    def test_empty_group_is_left_out(self) -> None:
        with pytest.warns(SmallSampleWarning):
            res = bartlett_from_moments([5, 0, 6], [4.0, 0.0, 9.0])
        assert res.applicable and res.df == 1

    @pytest.mark.parametrize(
        ("n", "m2", "category", "reason"),
        [
            ([30], [12.0], SmallSampleWarning, "at least two groups"),
            ([30, 1], [12.0, 0.0], SmallSampleWarning, "at least two groups"),
            ([1, 1, 0], [0.0, 0.0, 0.0], SmallSampleWarning, "at least two groups"),
            ([], [], SmallSampleWarning, "at least two groups"),
            ([10, 12], [0.0, 0.0], ConstantColumnWarning, "constant"),
            ([10, 12], [3.0, 0.0], DegenerateDataWarning, "zero variance"),
        ],
    )
    def test_degenerate_input_is_not_applicable(self, n, m2, category, reason) -> None:
        with pytest.warns(category):
            res = bartlett_from_moments(n, m2)
        assert not res.applicable and reason in res.reason
        assert res.statistic is None and res.pvalue is None
        json.dumps(res.to_dict())

    @pytest.mark.parametrize(
        ("n", "m2"),
        [
            ([3, 4], [1.0]),
            ([3, -4], [1.0, 2.0]),
            ([3, 4.5], [1.0, 2.0]),
            ([3, 4], [1.0, -2.0]),
            ([3, 4], [1.0, np.nan]),
            ([[3, 4]], [[1.0, 2.0]]),
        ],
    )
    def test_bad_arguments_raise(self, n, m2) -> None:
        with pytest.raises(InvalidArgumentError):
            bartlett_from_moments(n, m2)

    def test_labels_must_match_groups(self) -> None:
        with pytest.raises(InvalidArgumentError, match="labels"):
            bartlett_from_moments([3, 4], [1.0, 2.0], labels=["a"])

    def test_result_is_json_friendly_and_unpacks(self) -> None:
        res = bartlett_from_moments([10, 12, 15], [9.0, 33.0, 14.0])
        stat, p = res
        assert (stat, p) == (res.statistic, res.pvalue)
        assert type(stat) is float and type(p) is float
        data = json.loads(json.dumps(res.to_dict()))
        assert data["details"]["group_sizes"] == [10, 12, 15]


@pytest.mark.parametrize(
    ("func", "center", "reference"),
    [
        (levene_from_samples, "mean", lambda *g: scipy.stats.levene(*g, center="mean")),
        (levene_from_samples, "median", lambda *g: scipy.stats.levene(*g, center="median")),
        (fligner_from_samples, "median", lambda *g: scipy.stats.fligner(*g, center="median")),
        (fligner_from_samples, "mean", lambda *g: scipy.stats.fligner(*g, center="mean")),
    ],
)
class TestSampleTests:
    def test_equal_to_scipy(self, func, center, reference) -> None:
        rng = np.random.default_rng(8)
        groups = [rng.gamma(2.0, s, int(rng.integers(10, 200))) for s in (1, 1.5, 2, 1)]
        res = func(groups, center=center)
        ref = reference(*groups)
        assert res.statistic == float(ref.statistic) and res.pvalue == float(ref.pvalue)
        assert res.method == SAMPLE and res.approximate
        assert res.details["center"] == center

    def test_equal_to_scipy_on_iris(self, func, center, reference, shared_data) -> None:
        for groups in _iris(shared_data).values():
            res = func(groups, center=center)
            ref = reference(*groups)
            assert res.statistic == float(ref.statistic) and res.pvalue == float(ref.pvalue)

    def test_non_finite_values_are_left_out(self, func, center, reference) -> None:
        rng = np.random.default_rng(9)
        clean = [rng.normal(size=25), rng.normal(0, 2, 30)]
        dirty = [np.append(clean[0], [np.nan, np.inf]), np.append(clean[1], -np.inf)]
        res = func(dirty, center=center)
        assert res.statistic == float(reference(*clean).statistic)
        assert res.n == 55

    def test_detects_heteroscedastic_groups(self, func, center, reference) -> None:
        rng = np.random.default_rng(12)
        groups = [rng.normal(0, s, 300) for s in (1.0, 1.0, 2.0)]
        assert func(groups, center=center).pvalue < 1e-8

    def test_small_group_dropped_and_degenerate_groups_not_applicable(
        self, func, center, reference
    ) -> None:
        rng = np.random.default_rng(13)
        a, b = rng.normal(size=20), rng.normal(size=25)
        with pytest.warns(SmallSampleWarning):
            res = func([a, b, [1.0]], center=center)
        assert res.statistic == float(reference(a, b).statistic)
        with pytest.warns(SmallSampleWarning):
            assert not func([a], center=center).applicable
        with pytest.warns(SmallSampleWarning):
            assert not func([a, [np.nan, 2.0]], center=center).applicable
        with pytest.warns(ConstantColumnWarning):
            res = func([np.ones(5), np.full(7, 2.0)], center=center)
        assert not res.applicable and "constant" in res.reason

    def test_one_constant_group_has_no_variance_ratio(self, func, center, reference) -> None:
        rng = np.random.default_rng(14)
        groups = [rng.normal(size=20), np.full(10, 3.0)]
        res = func(groups, center=center)
        assert res.applicable and res.effect_size is None
        assert res.statistic == float(reference(*groups).statistic)
        json.dumps(res.to_dict())


def test_undefined_levene_statistic_is_not_applicable() -> None:
    # |x - mean| is the same for every value of every group: W = 0 / 0
    groups = [np.array([0.0, 2.0]), np.array([5.0, 7.0])]
    with pytest.warns(DegenerateDataWarning, match="undefined"):
        res = levene_from_samples(groups)
    assert not res.applicable


def test_bad_center_and_shapes_raise() -> None:
    with pytest.raises(InvalidArgumentError, match="center"):
        levene_from_samples([[1.0, 2.0], [3.0, 5.0]], center="trimmed")
    with pytest.raises(InvalidArgumentError, match="center"):
        fligner_from_samples([[1.0, 2.0], [3.0, 5.0]], center="mode")
    with pytest.raises(InvalidArgumentError, match="1-D"):
        levene_from_samples([np.ones((2, 2)), [1.0, 2.0]])


def test_brown_forsythe_is_named_as_such() -> None:
    groups = [[1.0, 2.0, 4.0], [2.0, 3.0, 9.0]]
    assert levene_from_samples(groups, center="median").test == "Brown-Forsythe"
    assert levene_from_samples(groups).test == "Levene"


@pytest.mark.slow
def test_bartlett_pvalues_are_uniform_under_the_null() -> None:
    rng = np.random.default_rng(20260101)
    pvalues = []
    for _ in range(2000):
        groups = [rng.normal(3.0, 2.0, size) for size in (15, 25, 40, 60)]
        pvalues.append(bartlett_from_moments(*_moments(groups)).pvalue)
    pvalues = np.array(pvalues)
    assert scipy.stats.kstest(pvalues, "uniform").pvalue > 0.01
    np.testing.assert_allclose(np.quantile(pvalues, [0.1, 0.5, 0.9]), [0.1, 0.5, 0.9], atol=0.03)


def test_no_warning_on_clean_input() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bartlett_from_moments([10, 12], [9.0, 33.0])
        levene_from_samples([[1.0, 2.0, 4.0], [2.0, 3.0, 9.0]])
