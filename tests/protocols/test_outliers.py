"""The outliers protocol against numpy/scipy on the raw values it profiled.

References: the z fences are numpy's mean and sd (ddof=1); shares beyond the fences are
counted in numpy on the raw column and must lie within the reported bound; Mahalanobis
distances are ``scipy.spatial.distance.mahalanobis`` with pandas' pairwise-complete
covariance (``DataFrame.cov``) and column means of the raw table.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.spatial.distance import mahalanobis
from statsmodels.stats.multitest import multipletests

from spark_explore.protocols import _common, outliers
from tests.protocols import PLANTED_ROWS, extremes_report, finite_values, profiled

RTOL = 1e-9


@pytest.fixture(scope="module")
def penguins(spark):
    return profiled(spark, "penguins")


@pytest.fixture(scope="module")
def planted(spark):
    return profiled(spark, "planted")


@pytest.fixture(scope="module")
def planted_report(planted):
    return outliers.run(planted.context)


def _check_column(data, report, name: str) -> None:
    entry = report.results[name]
    x = data.finite(name)
    n = x.size
    assert entry["n"] == n
    mean, sd = np.mean(x), np.std(x, ddof=1)
    z = entry["z"]
    np.testing.assert_allclose([z["low"], z["high"]], [mean - 3 * sd, mean + 3 * sd], rtol=RTOL)
    kll = data.result.bundle[f"kll/{data.result.plan.leaf(name).slot}"]
    q1, q3 = kll.quantiles([0.25, 0.75])
    for rule, k in (("tukey1.5", 1.5), ("tukey3", 3.0)):
        assert entry[rule]["low"] == pytest.approx(q1 - k * (q3 - q1), rel=1e-12)
        assert entry[rule]["high"] == pytest.approx(q3 + k * (q3 - q1), rel=1e-12)
    for rule in outliers.rule_names(data.context.config):
        r = entry[rule]
        true_share = np.mean((x < r["low"]) | (x > r["high"]))
        assert abs(r["share_total"] - true_share) <= r["share_error_bound"] + 1e-12, rule
        true_count = int(((x < r["low"]) | (x > r["high"])).sum())
        assert abs(r["count_estimate"] - true_count) <= r["count_error_bound"] + 1, rule
    # the MAD from the sketch: the true share of values in [median - MAD, median + MAD]
    # (as the sketch was queried, in float arithmetic) is 1/2 +- 2 eps, up to discreteness
    median, mad = entry["robust_z"]["fences"]["parameters"]["median"], entry["mad"]["value"]
    inside = (x >= median - mad) & (x <= median + mad)
    strictly = (x > median - mad) & (x < median + mad)
    bound = entry["mad"]["rank_error_bound"]
    assert inside.mean() >= 0.5 - bound and strictly.mean() <= 0.5 + bound


def test_fences_and_shares_agree_with_the_raw_values(penguins, planted, planted_report) -> None:
    report = outliers.run(penguins.context)
    for name in ("bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "year"):
        _check_column(penguins, report, name)
    for name in ("normal_col", "skewed", "spiky", "m_mcar", "m_mar"):
        _check_column(planted, planted_report, name)
    for name in ("species", "island", "sex"):
        assert name not in report.results


def test_planted_outliers_are_named(planted_report) -> None:
    named = {f.split(":")[0] for f in planted_report.findings}
    assert {"spiky", "skewed"} <= named
    assert not named & {"normal_col", "y_homo", "m_mcar", "x1", "x2"}
    spiky = planted_report.results["spiky"]
    assert spiky["tukey3"]["notable"] and spiky["tukey3"]["share_total"] > 0.02
    assert not planted_report.results["normal_col"]["tukey3"]["notable"]
    assert planted_report.results["spiky"]["rank_error"] > 0  # 6000 values: estimated


def test_mahalanobis_rows_agree_with_scipy_and_include_the_planted_rows(
    planted, planted_report
) -> None:
    entry = planted_report.results["multivariate (Mahalanobis)"]
    columns = entry["columns"]
    assert set(columns) == {
        "y_het",
        "y_homo",
        "normal_col",
        "skewed",
        "spiky",
        "x1",
        "x2",
        "m_mcar",
        "m_mar",
    }
    frame = planted.table.select(columns).to_pandas()
    mean, cov = frame.mean().to_numpy(), frame.cov().to_numpy()  # pairwise complete
    inverse = np.linalg.inv(cov)
    sample = np.column_stack([planted.sample_values(c) for c in columns])
    complete = np.flatnonzero(np.isfinite(sample).all(axis=1))
    assert entry["n"] == complete.size and entry["n_dropped"] == len(sample) - complete.size
    want = np.array([mahalanobis(sample[i], mean, inverse) ** 2 for i in entry["indices"]])
    np.testing.assert_allclose(entry["outlier_distances"], want, rtol=1e-8)
    d2 = np.array([mahalanobis(sample[i], mean, inverse) ** 2 for i in complete])
    assert set(entry["indices"]) == set(complete[d2 > entry["cutoff"]].tolist())
    planted_rows = np.intersect1d(
        np.flatnonzero((sample[:, 5] > 1.9) & (sample[:, 6] < -1.9)), complete
    )
    assert planted_rows.size >= 5  # about PLANTED_MV / 3 are sampled, most complete
    assert set(planted_rows.tolist()) <= set(entry["indices"])
    assert entry["count"] == len(entry["indices"]) and entry["notable"]
    assert entry["rows_listed"] == min(20, entry["count"]) == len(entry["rows"])
    first = entry["rows"][0]
    i = entry["indices"][0]
    assert [first[c] for c in columns] == pytest.approx(sample[i].tolist())
    assert first["g"] == planted.sample_column("g")[i].as_py()
    assert first[outliers.DISTANCE_KEY] == pytest.approx(want[0], rel=1e-8)
    assert any("Mahalanobis" in f for f in planted_report.findings)
    assert any("pairwise-complete" in note for note in planted_report.notes)
    assert planted.result.rows == PLANTED_ROWS


def test_degenerate_columns_are_not_applicable_with_reasons(spark) -> None:
    data = profiled(spark, "degenerate")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing may reach the console
        report = outliers.run(data.context)
    assert report.results["all_null"] == {
        "applicable": False,
        "reason": "the column has no finite values",
    }
    constant = report.results["constant"]
    for rule in ("tukey1.5", "tukey3", "robust_z", "z"):
        assert constant[rule]["applicable"] is False
        assert constant[rule]["reason"]
    assert "interquartile range is zero" in constant["tukey3"]["reason"]
    assert "standard deviation is zero" in constant["z"]["reason"]
    few = report.results["few"]
    assert few["n"] == 5 and few["z"]["applicable"]
    assert any("no z-score can exceed" in w for w in few["z"]["fences"]["warnings"])
    assert report.results["x"]["tukey1.5"]["share_total"] == 0.0
    assert report.results["x"]["sketch_exact"]


def test_holm_matches_statsmodels() -> None:
    p = np.array([0.01, 0.04, 0.03, 0.005, 0.5, 0.04, 1e-12])
    want = multipletests(p, method="holm")[1]
    np.testing.assert_allclose(_common.holm_adjust(p), want, rtol=1e-15)
    assert _common.holm_adjust([]).size == 0


def test_values_near_the_float64_limits_are_reported_not_raised() -> None:
    table, report = extremes_report(outliers)
    v = report["results"]["v"]
    assert v["z"]["applicable"] is False
    assert v["z"]["reason"] == (
        "the standard deviation overflows float64 (values near the float64 limits)"
    )
    assert v["tukey1.5"]["applicable"]  # the quartiles are representable
    for name in ("w", "big"):
        x = finite_values(table, name)
        mean, sd = np.mean(x), np.std(x, ddof=1)
        z = report["results"][name]["z"]
        np.testing.assert_allclose([z["low"], z["high"]], [mean - 3 * sd, mean + 3 * sd], rtol=RTOL)
