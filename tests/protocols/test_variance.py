"""The variance-homogeneity protocol against scipy on the values it profiled.

References (scipy 1.17): ``scipy.stats.bartlett`` on each group's raw finite values for the
exact test; ``scipy.stats.levene`` (``center="mean"`` and ``"median"``) and
``scipy.stats.fligner`` on the very sample rows the protocol used, pulled from the bundle's
reservoir.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.stats

from spark_explore.config import ScanConfig
from spark_explore.protocols import variance
from tests.protocols import PLANTED_SAMPLE, extremes_report, profiled

RTOL = 1e-9


def _groups(values: np.ndarray, labels: list, levels: list) -> list[np.ndarray]:
    labels = np.array(labels, dtype=object)
    return [values[(labels == level) & np.isfinite(values)] for level in levels]


def _check_subject(data, report, column: str, group: str) -> dict:
    entry = report.results[f"{column} by {group}"]
    levels = entry["groups"]["levels"]
    raw = _groups(data.values(column), data.table.column(group).to_pylist(), levels)
    bartlett = entry["bartlett"]
    want = scipy.stats.bartlett(*raw)
    np.testing.assert_allclose(
        [bartlett["statistic"], bartlett["pvalue"]], [want.statistic, want.pvalue], rtol=RTOL
    )
    variances = [np.var(g, ddof=1) for g in raw]
    ratio = entry["variance_ratio"]["ratio"]
    np.testing.assert_allclose(ratio, max(variances) / min(variances), rtol=RTOL)
    sample_labels = data.sample_column(group).to_pylist()
    samples = _groups(data.sample_values(column), sample_labels, levels)
    assert entry["groups"]["sample_values"] == [g.size for g in samples]
    for key, run in (
        ("levene", lambda *g: scipy.stats.levene(*g, center="mean")),
        ("brown_forsythe", lambda *g: scipy.stats.levene(*g, center="median")),
        ("fligner_killeen", lambda *g: scipy.stats.fligner(*g, center="median")),
    ):
        got, want = entry[key], run(*samples)
        np.testing.assert_allclose(
            [got["statistic"], got["pvalue"]], [want.statistic, want.pvalue], rtol=RTOL
        )
        assert got["method"] == "reservoir-sample"
    return entry


@pytest.mark.parametrize("name", ["iris", "penguins"])
def test_real_tables_by_species_agree_with_scipy(spark, name) -> None:
    data = profiled(spark, name)
    report = variance.run(data.context)
    numeric = [n for n in data.table.column_names if data.result.plan.leaf(n).role == "numeric"]
    for column in numeric:
        _check_subject(data, report, column, "species")
    for subject, entry in report.results.items():
        p = [entry[k]["pvalue"] for k in variance.TESTS if entry.get(k, {}).get("pvalue")]
        assert all(0 <= x <= 1 for x in p), subject
    if name == "iris":  # petal sizes spread far more in virginica than in setosa
        petal = report.results["petal_length_cm by species"]
        assert petal["verdict"]["decision"] == "unequal variances"
        assert petal["variance_ratio"]["largest"]["group"] == "virginica"
        assert any(f.startswith("petal_length_cm by species:") for f in report.findings)
    else:  # sex: 11 null rows are left out, and the two sexes compared
        entry = _check_subject(data, report, "body_mass_g", "sex")
        assert entry["groups"]["levels"] == ["female", "male"]
        assert entry["groups"]["null_rows"] == 11


def test_planted_heteroscedastic_groups_are_named(spark) -> None:
    data = profiled(spark, "planted")
    report = variance.run(data.context)
    het = _check_subject(data, report, "y_het", "g")
    homo = _check_subject(data, report, "y_homo", "g")
    assert sum(het["groups"]["sample_values"]) == PLANTED_SAMPLE  # a strict subset of rows
    assert het["verdict"]["decision"] == "unequal variances"
    assert het["variance_ratio"]["ratio"] == pytest.approx(16, rel=0.15)
    assert homo["verdict"]["decision"] != "unequal variances"
    assert [f.split(":")[0] for f in report.findings] == ["y_het by g"]
    assert any("uniform sample's rows of that group" in n for n in report.notes)


def test_degenerate_groups_are_not_applicable_with_reasons(spark) -> None:
    data = profiled(spark, "degenerate")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing may reach the console
        report = variance.run(data.context)
    one = report.results["x by one_group"]
    assert one["applicable"] is False and "two or more groups" in one["reason"]
    assert report.results["all_null by g"]["applicable"] is False
    assert "constant" in report.results["constant by g"]["reason"]
    const = report.results["const_in_a by g"]  # group a constant, group c a single row
    assert const["bartlett"]["applicable"] is False
    assert "zero variance" in const["bartlett"]["reason"]
    assert const["variance_ratio"]["ratio"] is None
    assert "constant" in const["variance_ratio"]["reason"]
    assert const["levene"]["applicable"] is True
    assert any("fewer than two values" in w and "'c'" in w for w in const["levene"]["warnings"])
    x = report.results["x by g"]
    assert x["bartlett"]["details"]["groups"] == ["a", "b"]
    assert any("fewer than two values" in w for w in x["bartlett"]["warnings"])


def test_levels_beyond_the_cap_are_folded_and_reported(spark) -> None:
    config = ScanConfig(max_groups=2, group_columns=("species",))
    data = profiled(spark, "penguins", config, key="penguins-max-groups-2")
    report = variance.run(data.context)
    entry = report.results["body_mass_g by species"]
    folded = entry["groups"]["folded_into_other"]
    kept = entry["groups"]["levels"]
    assert len(kept) == 2 and folded["levels"] == 1
    assert folded["rows"] == data.table.num_rows - sum(entry["groups"]["rows"])
    _check_subject(data, report, "body_mass_g", "species")  # the kept levels only
    automatic = profiled(spark, "penguins", ScanConfig(max_groups=2), key="penguins-auto-2")
    state = automatic.result.bundle[f"grouped/{automatic.result.plan.leaf('species').slot}"]
    entry = variance.run(automatic.context).results["body_mass_g by species"]
    if getattr(state, "abandoned", False):  # an automatic group column with too many levels
        assert entry["applicable"] is False and "distinct levels" in entry["reason"]
    else:
        assert entry["groups"]["folded_into_other"]["levels"] == 1


def test_values_near_the_float64_limits_are_reported_not_raised() -> None:
    table, report = extremes_report(variance)
    results = report["results"]
    for group, levels in (("g", ["a", "b", "c"]), ("h", ["p", "q"])):
        entry = results[f"v by {group}"]
        assert entry["applicable"] is False and entry["groups"]["levels"] == levels
        assert entry["reason"] == (
            f"the sum of squared deviations overflows float64 in group(s) {levels} (values "
            "near the float64 limits): their variances cannot be compared"
        )
    labels = np.array(table.column("g").to_pylist())
    big = table.column("big").to_numpy()
    want = scipy.stats.bartlett(*(big[labels == level] for level in ("a", "b", "c")))
    got = results["big by g"]["bartlett"]
    np.testing.assert_allclose([got["statistic"], got["pvalue"]], list(want), rtol=RTOL)
