"""The missing-values protocol against numpy/scipy/statsmodels on the values it profiled.

References: counts by numpy/pyarrow on the raw table; Welch's t by
``scipy.stats.ttest_ind(equal_var=False)`` (scipy 1.17) on the raw values split by the other
column's missingness; two-proportion z tests by
``statsmodels.stats.proportion.proportions_ztest`` (statsmodels 0.15, pooled variance) on
raw counts; Little's test by :func:`spark_explore.stats.missingness.little_mcar` on
:func:`~spark_explore.stats.missingness.pattern_stats` of the raw numeric matrix, i.e. the
same statistic computed from the rows instead of the scan's per-pattern states.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import scipy.stats
from statsmodels.stats.proportion import proportions_ztest

from spark_explore.protocols import missing_values
from spark_explore.stats.missingness import little_mcar, pattern_stats
from tests.protocols import extremes_report, profiled

RTOL = 1e-9
MEASUREMENTS = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]


@pytest.fixture(scope="module")
def penguins(spark):
    data = profiled(spark, "penguins")
    return data, missing_values.run(data.context)


@pytest.fixture(scope="module")
def planted(spark):
    data = profiled(spark, "planted")
    return data, missing_values.run(data.context)


def _missing(data, name: str) -> np.ndarray:
    return np.asarray(data.table.column(name).is_null())


def _check_welch(data, test: dict, missing: np.ndarray, other: str) -> None:
    y = data.values(other)
    a, b = y[missing & np.isfinite(y)], y[~missing & np.isfinite(y)]
    want = scipy.stats.ttest_ind(a, b, equal_var=False)
    np.testing.assert_allclose(
        [test["statistic"], test["pvalue"]], [want.statistic, want.pvalue], rtol=RTOL
    )
    pooled = math.sqrt(
        ((a.size - 1) * a.var(ddof=1) + (b.size - 1) * b.var(ddof=1)) / (a.size + b.size - 2)
    )
    assert test["effect_size"] == pytest.approx((a.mean() - b.mean()) / pooled, rel=RTOL)


def _check_proportion(test: dict, k1: int, n1: int, k2: int, n2: int) -> None:
    z, p = proportions_ztest([k1, k2], [n1, n2])
    np.testing.assert_allclose([test["statistic"], test["pvalue"]], [z, p], rtol=RTOL)


def _check_little(data, entry: dict) -> None:
    matrix = np.column_stack([data.values(c) for c in entry["columns"]])
    want = little_mcar(pattern_stats(matrix))
    np.testing.assert_allclose(
        [entry["statistic"], entry["pvalue"]], [want.statistic, want.pvalue], rtol=RTOL
    )
    assert entry["df"] == want.df


def test_penguins_counts_patterns_and_co_missingness(penguins) -> None:
    data, report = penguins
    for name in data.table.column_names:
        nulls = data.table.column(name).null_count
        assert report.results[name]["null"] == report.results[name]["missing"] == nulls
    assert report.results["sex"]["missing"] == 11
    co = report.results["co-missingness"]
    assert co["columns"] == [*MEASUREMENTS, "sex"]
    assert co["matrix"] == [[2, 2, 2, 2, 2]] * 4 + [[2, 2, 2, 2, 11]]
    top = report.results["patterns"]["top"]
    assert [(p["missing"], p["rows"]) for p in top] == [
        ([], 333),
        (["sex"], 9),
        ([*MEASUREMENTS, "sex"], 2),
    ]
    text = "\n".join(report.findings)
    assert "sex alone in 9 rows" in text
    assert "body_mass_g and sex together in 2 rows" in text


def test_penguins_mcar_signals_agree_with_scipy_and_statsmodels(penguins) -> None:
    data, report = penguins
    sex = report.results["sex missingness"]
    missing = _missing(data, "sex")
    for other in [*MEASUREMENTS, "year"]:
        _check_welch(data, sex["means"][other], missing, other)
    species = np.array(data.table.column("species").to_pylist())
    for level, test in sex["levels"]["species"]["by_level"].items():
        is_level = species == level
        _check_proportion(
            test,
            int((is_level & missing).sum()),
            int(missing.sum()),
            int((is_level & ~missing).sum()),
            int((~missing).sum()),
        )
    joint = report.results["bill_length_mm missingness"]["joint"]["sex"]
    bill = _missing(data, "bill_length_mm")
    _check_proportion(
        joint,
        int((bill & missing).sum()),
        int(bill.sum()),
        int((~bill & missing).sum()),
        int((~bill).sum()),
    )
    assert "no association" in sex["verdict"]["decision"]
    little = report.results["Little's MCAR"]
    _check_little(data, little)
    assert little["columns"] == [*MEASUREMENTS, "year"] and not little["approximate"]


def test_planted_mar_column_is_named_and_mcar_is_not(planted) -> None:
    data, report = planted
    mar = report.results["m_mar missingness"]
    _check_welch(data, mar["means"]["normal_col"], _missing(data, "m_mar"), "normal_col")
    assert mar["verdict"]["signals"][0] == "mean of normal_col"
    assert mar["verdict"]["decision"].startswith("associated")
    mcar = report.results["m_mcar missingness"]
    assert not mcar["verdict"]["signals"]
    named = [f for f in report.findings if "its missingness goes with" in f]
    assert len(named) == 1 and named[0].startswith("m_mar:") and "normal_col" in named[0]
    # numeric column by group column: proportions from the grouped state
    missing = _missing(data, "m_mcar")
    g = np.array(data.table.column("g").to_pylist())
    for level, test in mcar["levels"]["g"]["by_level"].items():
        k1, k2 = int((missing & (g == level)).sum()), int((~missing & (g == level)).sum())
        _check_proportion(test, k1, int(missing.sum()), k2, int((~missing).sum()))
    little = report.results["Little's MCAR"]
    _check_little(data, little)
    assert little["pvalue_holm"] < 0.01
    assert any(f.startswith("Little's MCAR test rejects") for f in report.findings)


def test_kinds_are_counted_apart_and_degenerate_columns_reported(spark) -> None:
    data = profiled(spark, "degenerate")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing may reach the console
        report = missing_values.run(data.context)
    num = report.results["messy_num"]
    assert (num["null"], num["nan"], num["posinf"], num["neginf"]) == (1, 1, 1, 1)
    assert num["sentinels"] == [{"value": -999.0, "count": 1}] and num["missing"] == 3
    txt = report.results["messy_txt"]
    assert (txt["null"], txt["empty"], txt["blank"]) == (1, 1, 1)
    assert txt["sentinels"] == [{"value": "NA", "count": 1}] and txt["missing"] == 2
    assert report.results["all_null"]["missing"] == 12
    assert report.results["all_null missingness"]["applicable"] is False
    assert any(f.startswith("all_null: every row is missing") for f in report.findings)
    assert any("+inf" in f and f.startswith("messy_num:") for f in report.findings)
    # numeric by group column is unavailable when the column has infinities or sentinels
    levels = report.results["messy_num missingness"]["levels"]["g"]
    assert levels["applicable"] is False and "not available" in levels["reason"]
    # the text sentinel counts as missing in the contingency-based proportions
    by_level = report.results["messy_txt missingness"]["levels"]["g"]
    assert by_level["rows_missing"] == 2
    little = report.results["Little's MCAR"]
    assert "all_null" not in little["columns"] and "constant" not in little["columns"]
    assert little["approximate"]  # messy_num's infinities are left out of their patterns
    assert any("constant or empty" in w for w in little["warnings"])


def test_values_near_the_float64_limits_are_reported_not_raised() -> None:
    table, report = extremes_report(missing_values)
    means = report["results"]["w missingness"]["means"]
    assert means["v"]["applicable"] is False
    assert "sum of squared deviations overflows float64" in means["v"]["reason"]
    # Welch's test of big where w is missing or not; scipy's own Welch df overflows for
    # values near 1e100, so it runs on them scaled by an exact power of two
    missing = np.isnan(table.column("w").to_numpy())
    big = np.ldexp(table.column("big").to_numpy(), -332)
    want = scipy.stats.ttest_ind(big[missing], big[~missing], equal_var=False)
    got = means["big"]
    np.testing.assert_allclose([got["statistic"], got["pvalue"]], list(want), rtol=1e-9)
    little = report["results"]["Little's MCAR"]
    assert little["applicable"] and little["columns"] == ["w", "big", "x"]
    assert any("overflows float64" in text and text.endswith(": v") for text in little["warnings"])
