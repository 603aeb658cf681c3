"""The collinearity protocol through the pipeline (profile -> protocol).

References: statsmodels 0.15 ``variance_inflation_factor`` on a design with a constant,
``OLS(...).fit()`` (``params``, ``bse``, ``condition_number``) and
``stats.multitest.multipletests(method="holm")``; numpy 2.4 ``linalg.svd`` / ``linalg.cond``
of the unit-length-scaled design for the BKW diagnostics; scipy 1.17 ``stats.pearsonr`` and
``stats.spearmanr``; NIST StRD Longley certified values (certified.json); exact rational
arithmetic (``fractions``) for Wilkinson's NASTY columns.
"""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
import statsmodels.api as sm
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.outliers_influence import variance_inflation_factor

from spark_explore.api import profile
from spark_explore.config import ScanConfig
from spark_explore.protocols import collinearity
from spark_explore.protocols.base import ProtocolContext
from tests.nist import certified, lre
from tests.protocols import extremes_report
from tests.stats.test_collinearity import _exact_r

COVARIATES = ["GNPDEFL", "GNP", "UNEMP", "ARMED", "POP", "YEAR"]


def _run(spark, df, config: ScanConfig | None = None) -> dict:
    result = profile(df.repartition(3), config)
    return collinearity.run(ProtocolContext(result.bundle, result.plan)).to_dict()


@pytest.fixture(scope="module")
def longley_table(shared_data):
    return pq.read_table(shared_data / "real" / "longley.parquet").to_pandas()


@pytest.fixture(scope="module")
def longley(spark, shared_data) -> dict:
    df = spark.read.parquet(str(shared_data / "real" / "longley.parquet"))
    return _run(spark, df, ScanConfig(target="TOTEMP"))


@pytest.fixture(scope="module")
def nist_longley(spark, shared_data) -> dict:
    """Longley.dat as NIST ships it (y, x1..x6), parsed with Python's float()."""
    info = certified(shared_data)["linear_regression"]["Longley"]
    lines = (shared_data / "nist" / info["file"]).read_text().splitlines()
    first, last = info["data_lines"]
    rows = [tuple(float(v) for v in line.split()) for line in lines[first - 1 : last]]
    df = spark.createDataFrame(rows, ", ".join(f"{c} double" for c in info["columns"]))
    return _run(spark, df, ScanConfig(target="y"))


def test_longley_vif_and_condition_number_match_statsmodels(longley, longley_table) -> None:
    design = longley["results"]["(design)"]
    assert design["covariates"] == COVARIATES  # the target is not a covariate
    exog = sm.add_constant(longley_table[COVARIATES].to_numpy())
    for j, name in enumerate(COVARIATES):
        vif = longley["results"][name]["vif"]
        np.testing.assert_allclose(
            vif["statistic"], variance_inflation_factor(exog, j + 1), rtol=1e-9
        )
        assert vif["method"] == "exact-from-aggregates" and not vif["approximate"]
    assert max(longley["results"][n]["vif"]["statistic"] for n in COVARIATES) == pytest.approx(
        1788.5, abs=0.05
    )
    fit = sm.OLS(longley_table["TOTEMP"].to_numpy(), exog).fit()
    raw = design["condition_number_unscaled"]
    np.testing.assert_allclose(raw["statistic"], fit.condition_number, rtol=1e-9)
    # BKW: singular values of the design scaled to unit column length
    scaled = exog / np.linalg.norm(exog, axis=0)
    _, mu, vt = np.linalg.svd(scaled, full_matrices=False)
    diag = design["condition_diagnostics"]
    np.testing.assert_allclose(diag["statistic"], np.linalg.cond(scaled), rtol=1e-9)
    np.testing.assert_allclose(diag["details"]["condition_indices"], mu[0] / mu, rtol=1e-9)
    phi = vt.T**2 / mu**2
    proportions = (phi / phi.sum(axis=1, keepdims=True)).T
    np.testing.assert_allclose(diag["details"]["proportions"], proportions, atol=1e-9)


def test_longley_verdict_names_the_collinear_regressors(longley) -> None:
    design = longley["results"]["(design)"]
    assert design["verdict"] == "collinear"
    groups = design["collinear_groups"]
    assert [g["names"] for g in groups] == [
        ["(intercept)", "GNP", "UNEMP", "YEAR"],
        ["GNPDEFL", "POP"],
    ]
    assert all(g["condition_index"] > 30 and not g["exact"] for g in groups)
    sentences = [f for f in longley["findings"] if f.startswith("Collinear group")]
    assert len(sentences) == 2
    assert all(name in sentences[0] for name in ("GNP", "UNEMP", "YEAR", "intercept"))
    assert "GNPDEFL" in sentences[1] and "POP" in sentences[1]
    verdicts = {n: longley["results"][n]["vif"]["verdict"] for n in COVARIATES}
    assert verdicts == {n: "acceptable" if n == "ARMED" else "inflated" for n in COVARIATES}
    assert any("GNP has VIF 1,788.5" in f for f in longley["findings"])
    assert any("effect sizes" in note for note in longley["notes"])


def test_longley_coefficients_match_statsmodels_and_nist(
    longley, nist_longley, longley_table, shared_data
) -> None:
    exog = sm.add_constant(longley_table[COVARIATES].to_numpy())
    fit = sm.OLS(longley_table["TOTEMP"].to_numpy(), exog).fit()
    ols = longley["results"]["(regression of TOTEMP)"]["ols"]
    np.testing.assert_allclose(ols["details"]["coefficients"], fit.params, rtol=1e-8)
    np.testing.assert_allclose(ols["details"]["std_errors"], fit.bse, rtol=1e-8)
    np.testing.assert_allclose(ols["effect_size"], fit.rsquared, rtol=1e-12)
    cert = certified(shared_data)["linear_regression"]["Longley"]["certified"]
    got = nist_longley["results"]["(regression of y)"]["ols"]["details"]
    for value, param in zip(got["coefficients"], cert["parameters"], strict=True):
        assert lre(value, param["estimate"]["value"]) >= 11.0, param["name"]
    for value, param in zip(got["std_errors"], cert["parameters"], strict=True):
        assert lre(value, param["std_error"]["value"]) >= 12.0, param["name"]
    assert lre(got["residual_std"], cert["residual_std"]["value"]) >= 12.0
    # the same data under NIST's names give the same diagnosis
    assert [g["names"] for g in nist_longley["results"]["(design)"]["collinear_groups"]] == [
        ["(intercept)", "x2", "x3", "x6"],
        ["x1", "x5"],
    ]


def test_correlations_spearman_and_holm_decisions(longley, longley_table) -> None:
    names = ["TOTEMP", *COVARIATES]
    results = longley["results"]
    pvalues, entries = [], []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            pair = results[f"{a} ~ {b}"]
            x, y = longley_table[a].to_numpy(), longley_table[b].to_numpy()
            ref = stats.pearsonr(x, y)
            pearson = pair["pearson"]
            np.testing.assert_allclose(pearson["effect_size"], ref.statistic, rtol=1e-13)
            np.testing.assert_allclose(pearson["pvalue"], ref.pvalue, rtol=1e-9, atol=1e-300)
            assert pearson["n"] == 16
            rho = stats.spearmanr(x, y)
            spearman = pair["spearman"]
            assert spearman["method"] == "reservoir-sample" and spearman["approximate"]
            np.testing.assert_allclose(spearman["statistic"], rho.statistic, rtol=1e-13)
            np.testing.assert_allclose(spearman["pvalue"], rho.pvalue, rtol=1e-9, atol=1e-300)
            for entry in (pearson, spearman):
                pvalues.append(entry["pvalue"])
                entries.append(entry)
    holm = multipletests(pvalues, method="holm")[1]
    for entry, want in zip(entries, holm, strict=True):
        np.testing.assert_allclose(entry["pvalue_holm"], want, rtol=1e-12)
        expected = (
            "effect"
            if want < 0.01 and abs(entry["effect_size"]) >= 0.1
            else ("negligible" if want < 0.01 else "no evidence")
        )
        assert entry["verdict"] == expected


# --- Wilkinson's NASTY columns --------------------------------------------------------------

_I = np.arange(1.0, 10.0)
NASTY = {
    "X": _I,
    "ZERO": np.zeros(9),
    "MISS": np.full(9, np.nan),
    "BIG": 99999990.0 + _I,
    "LITTLE": 0.99999990 + _I * 1e-8,
    "HUGE": _I * 1e12,
    "TINY": _I * 1e-12,
    "ROUND": _I - 0.5,
    "GAPPY": np.array([3.0, 1.0, np.nan, 4.0, 1.0, 5.0, 9.0, np.nan, 6.0]),
}


def _exact_r_complete(a: np.ndarray, b: np.ndarray) -> float | None:
    """The exact correlation of the stored doubles over the rows where both are finite."""
    rows = np.isfinite(a) & np.isfinite(b)
    return _exact_r(a[rows], b[rows]) if rows.sum() >= 2 else None


@pytest.fixture(scope="module")
def nasty(spark) -> dict:
    rows = [
        (f"row{i + 1}", *[None if np.isnan(v[i]) else float(v[i]) for v in NASTY.values()])
        for i in range(9)
    ]
    schema = "LABEL string, " + ", ".join(f"{name} double" for name in NASTY)
    return _run(spark, spark.createDataFrame(rows, schema))


def test_nasty_every_correlation_is_exactly_right_or_explicitly_undefined(nasty) -> None:
    names = list(NASTY)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            pair = nasty["results"][f"{a} ~ {b}"]
            exact = _exact_r_complete(NASTY[a], NASTY[b])
            for test in ("pearson", "spearman"):
                entry = pair[test]
                if exact is None:
                    assert not entry["applicable"] and entry["reason"], (a, b, test)
                    assert entry["statistic"] is None and entry["verdict"] == "not applicable"
                    continue
                assert entry["applicable"], (a, b, test)
                r = entry["effect_size"]
                if test == "pearson":  # within one rounding of the exact value
                    assert abs(r - exact) <= np.spacing(abs(exact)), (a, b, r, exact)
                else:  # the exact correlation of the ranks, to scipy's rounding
                    rows = np.isfinite(NASTY[a]) & np.isfinite(NASTY[b])
                    rho = _exact_r(stats.rankdata(NASTY[a][rows]), stats.rankdata(NASTY[b][rows]))
                    assert abs(r - rho) <= 4 * np.spacing(abs(rho)), (a, b, r, rho)
                    if abs(exact) == 1.0:  # monotone columns: identical ranks
                        assert r == exact, (a, b, r)
    assert "constant" in nasty["results"]["X ~ ZERO"]["pearson"]["reason"]
    assert "0 complete rows" in nasty["results"]["X ~ MISS"]["pearson"]["reason"]
    assert nasty["results"]["X ~ BIG"]["pearson"]["effect_size"] == 1.0


def test_nasty_design_reports_exact_dependencies_and_excluded_columns(nasty) -> None:
    results = nasty["results"]
    for name in ("ZERO", "MISS"):
        vif = results[name]["vif"]
        assert not vif["applicable"] and "excluded" in vif["reason"]
    assert "constant" in results["ZERO"]["vif"]["reason"]
    for name in ("X", "BIG", "HUGE", "TINY", "ROUND"):
        vif = results[name]["vif"]
        assert vif["verdict"] == "exact linear dependency", name
        assert vif["details"]["exact_dependency"] and vif["statistic"] is None  # inf in JSON
        # GAPPY has nulls, so the design comes from pairwise statistics: said, not hidden
        assert vif["approximate"] and any("pairwise-complete" in w for w in vif["warnings"])
    design = results["(design)"]
    assert design["verdict"] == "collinear"
    assert design["condition_diagnostics"]["approximate"]
    exact = design["collinear_groups"][0]
    assert exact["exact"] and exact["condition_index"] is None
    # the null space's proportions are summed, so the group does not depend on its basis
    assert exact["names"] == ["(intercept)", "X", "BIG", "LITTLE", "HUGE", "TINY", "ROUND"]
    assert any("exact linear combination" in f for f in nasty["findings"])


def test_values_near_the_float64_limits_are_reported_not_raised() -> None:
    table, report = extremes_report(collinearity)
    results = report["results"]
    for other in ("w", "big", "x"):
        pearson = results[f"v ~ {other}"]["pearson"]
        assert pearson["applicable"] is False and "constant" not in pearson["reason"]
        assert pearson["reason"] == (
            f"correlation of ('v', {other!r}) cannot be computed: the sum of squared deviations "
            "of ['v'] overflows float64 (values near the float64 limits)"
        )
    assert "overflows float64" in results["v"]["vif"]["reason"]
    big, x = table.column("big").to_numpy(), table.column("x").to_numpy()
    r = results["big ~ x"]["pearson"]["effect_size"]
    assert r == pytest.approx(np.corrcoef(np.ldexp(big, -332), x)[0, 1], rel=1e-9)
