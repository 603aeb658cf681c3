"""The normality protocol against scipy on the values it profiled.

References (scipy 1.17): ``skewtest``, ``kurtosistest``, ``normaltest`` and ``jarque_bera``
on each column's raw finite values (exact aggregates, to 1e-9); ``shapiro`` and
``anderson(..., method="interpolate")`` on the sample values the protocol used, pulled
from the bundle's reservoir; the KS distance against the exact empirical CDF at the same
points, within the sketch's rank error.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.stats

from spark_explore.protocols import normality
from tests.protocols import PLANTED_ROWS, extremes_report, finite_values, profiled

RTOL = 1e-9


def _close(got: dict, want) -> None:
    np.testing.assert_allclose(
        [got["statistic"], got["pvalue"]], [want.statistic, want.pvalue], rtol=RTOL, atol=0
    )


def _check_column(data, report, name: str) -> dict:
    entry = report.results[name]
    x = data.finite(name)
    assert entry["n"] == x.size
    _close(entry["skewness"], scipy.stats.skewtest(x))
    _close(entry["kurtosis"], scipy.stats.kurtosistest(x))
    _close(entry["dagostino_pearson"], scipy.stats.normaltest(x))
    _close(entry["jarque_bera"], scipy.stats.jarque_bera(x))
    assert entry["shape"]["skewness"] == pytest.approx(scipy.stats.skew(x), rel=RTOL)
    sample = data.sample_values(name)
    sample = sample[np.isfinite(sample)]
    used = sample[: normality.MAX_N_SHAPIRO]
    assert entry["shapiro_wilk"]["details"]["values_used"] == used.size
    _close(entry["shapiro_wilk"], scipy.stats.shapiro(used))
    _close(entry["anderson_darling"], scipy.stats.anderson(sample, method="interpolate"))
    # KS distance: within the sketch's rank error of the exact distance at the same points
    ks = entry["ks_distance"]
    kll = data.result.bundle[f"kll/{data.result.plan.leaf(name).slot}"]
    points = np.unique(np.array(kll.quantiles(list(normality.GRID))))
    exact = np.searchsorted(np.sort(x), points, side="right") / x.size
    mean, sd = np.mean(x), np.std(x, ddof=1)
    d = np.max(np.abs(exact - scipy.stats.norm.cdf((points - mean) / sd)))
    assert abs(ks["statistic"] - d) <= ks["error_bound"] + 1e-12
    qq = entry["qq"]
    np.testing.assert_allclose(
        qq["theoretical"], mean + sd * scipy.stats.norm.ppf(qq["p"]), rtol=RTOL
    )
    ordered = np.sort(x)
    for p, q in zip(qq["p"], qq["sample"], strict=True):
        below = np.searchsorted(ordered, q, side="left") / x.size
        upto = np.searchsorted(ordered, q, side="right") / x.size
        assert below - qq["rank_error"] <= p <= upto + qq["rank_error"]
    return entry


def test_penguins_agree_with_scipy(spark) -> None:
    data = profiled(spark, "penguins")
    report = normality.run(data.context)
    for name in ("bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "year"):
        _check_column(data, report, name)
    assert report.results["year"]["verdict"]["decision"] == "not normal"  # three values
    assert report.results["bill_depth_mm"]["verdict"]["decision"] != "not normal"


def test_planted_skewed_and_heavy_tailed_columns_are_named(spark) -> None:
    data = profiled(spark, "planted")
    report = normality.run(data.context)
    for name in ("normal_col", "skewed", "spiky", "m_mar"):
        _check_column(data, report, name)
    decisions = {n: e["verdict"]["decision"] for n, e in report.results.items()}
    assert decisions["skewed"] == decisions["spiky"] == "not normal"
    for name in ("normal_col", "y_homo", "x1", "m_mcar", "m_mar"):
        assert decisions[name] != "not normal", name
    named = {f.split(":")[0] for f in report.findings if ": not normal" in f}
    assert {"skewed", "spiky"} <= named and "normal_col" not in named
    sample = report.results["skewed"]["shapiro_wilk"]["details"]["sample_values"]
    assert sample < PLANTED_ROWS  # the sample-based tests used a strict subset


def test_shapiro_wilk_uses_the_first_5000_sample_values(spark) -> None:
    data = profiled(spark, "planted_full_sample")
    report = normality.run(data.context)
    entry = _check_column(data, report, "normal_col")
    details = entry["shapiro_wilk"]["details"]
    assert details["sample_values"] == PLANTED_ROWS and details["values_used"] == 5000


def test_degenerate_columns_are_not_applicable_with_reasons(spark) -> None:
    data = profiled(spark, "degenerate")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing may reach the console
        report = normality.run(data.context)
    assert report.results["few"] == {
        "applicable": False,
        "reason": "needs at least 8 finite values, found 5",
    }
    assert report.results["all_null"]["reason"] == "needs at least 8 finite values, found 0"
    assert "constant" in report.results["constant"]["reason"]
    x = report.results["x"]  # 12 values: computed, with the small-sample caveats carried
    assert x["skewness"]["applicable"] and x["jarque_bera"]["warnings"]
    _check_column(data, report, "x")


def test_values_near_the_float64_limits_are_reported_not_raised() -> None:
    table, report = extremes_report(normality)
    results = report["results"]
    assert results["v"] == {
        "applicable": False,
        "reason": "the sum of squared deviations overflows float64 (values near the float64 "
        "limits)",
    }
    big, x = results["big"], finite_values(table, "big")  # M2 and M3 fit in float64, M4 not
    _close(big["skewness"], scipy.stats.skewtest(x))
    assert big["shape"]["skewness"] == pytest.approx(scipy.stats.skew(x), rel=RTOL)
    assert big["shape"]["excess_kurtosis"] is None
    for test in ("kurtosis", "dagostino_pearson", "jarque_bera"):
        assert big[test]["applicable"] is False, test
        assert big[test]["reason"] == "the fourth central moment overflows float64", test
    assert big["verdict"]["decision"] == "consistent with normal"
    w, x = results["w"], finite_values(table, "w")
    _close(w["kurtosis"], scipy.stats.kurtosistest(x))
    _close(w["jarque_bera"], scipy.stats.jarque_bera(x))
