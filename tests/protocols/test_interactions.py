"""The interactions protocol through the pipeline (profile -> protocol).

References: statsmodels 0.15 ``anova_lm(ols("y ~ C(a)*C(b)"), typ=2)``,
``anova_lm(ols("y ~ C(a, Sum)*C(b, Sum)"), typ=3)``, residual sums of squares of nested
``ols`` fits (designs with empty cells) and ``anova_lm(reduced, full)`` for the added
product terms; scipy 1.17 ``stats.pearsonr`` and ``stats.chi2`` for Fisher's z test;
``stats.multitest.multipletests(method="holm")``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import statsmodels.formula.api as smf
from scipy import stats
from statsmodels.stats.anova import anova_lm
from statsmodels.stats.multitest import multipletests

from spark_explore.api import profile
from spark_explore.config import ScanConfig
from spark_explore.protocols import interactions
from spark_explore.protocols.base import ProtocolContext
from tests.protocols import extremes_report, local_context, profiled
from tests.spark.test_single_scan import _stage_metrics
from tests.stats.test_anova import _assert_table

RTOL = 1e-8


def _design(seed: int = 3) -> pd.DataFrame:
    """Unbalanced cells of a (3 levels) x b (4 levels) x c (3 levels); no row has a = a3 and
    c = c3, so the a x c design has an empty cell. y depends on the a x b cell, on x1 * x2
    and on x1 within a2 (slope 2); a few targets and levels are null."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(3, 25, size=(3, 4))
    effect = rng.normal(0.0, 1.0, size=(3, 4))
    a, b = [], []
    for i in range(3):
        for j in range(4):
            a += [f"a{i + 1}"] * sizes[i, j]
            b += [f"b{j + 1}"] * sizes[i, j]
    n = len(a)
    c = np.array([f"c{k}" for k in rng.integers(1, 4, n)], dtype=object)
    c[(np.array(a) == "a3") & (c == "c3")] = "c1"
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    ia = np.array([int(v[1]) - 1 for v in a])
    ib = np.array([int(v[1]) - 1 for v in b])
    y = 10 + effect[ia, ib] + 0.8 * x1 * x2 + 2.0 * x1 * (ia == 1) + rng.normal(size=n)
    frame = pd.DataFrame({"a": a, "b": b, "c": c, "x1": x1, "x2": x2, "y": y})
    frame.loc[rng.choice(n, 5, replace=False), "y"] = np.nan
    frame.loc[rng.choice(n, 3, replace=False), "a"] = None
    return frame


@pytest.fixture(scope="module")
def design() -> pd.DataFrame:
    return _design()


@pytest.fixture(scope="module")
def with_target(spark, design, tmp_path_factory) -> dict:
    path = tmp_path_factory.mktemp("interactions") / "design.parquet"
    pq.write_table(pa.Table.from_pandas(design, preserve_index=False), path)
    df = spark.read.parquet(str(path)).repartition(3)
    spark.sparkContext.setJobGroup("interactions-profile", "one scan with cell moments")
    try:
        result = profile(df, ScanConfig(target="y", group_columns=("a", "b", "c")))
    finally:
        spark.sparkContext.setLocalProperty("spark.jobGroup.id", None)
    stages = [s for s in _stage_metrics(spark, "interactions-profile") if s[2] != "SKIPPED"]
    report = interactions.run(ProtocolContext(result.bundle, result.plan)).to_dict()
    return {"report": report, "stages": stages, "rows": len(design), "result": result}


def test_cell_states_are_kept_in_the_one_scan(with_target) -> None:
    result = with_target["result"]
    assert sorted(k for k in result.bundle if k.startswith("cells/")) == [
        "cells/_c0/_c1",
        "cells/_c0/_c2",
        "cells/_c1/_c2",
    ]
    reading = [s for s in with_target["stages"] if s[0] > 0]
    assert len(reading) == 1 and reading[0][0] == with_target["rows"]


def test_interaction_f_matches_statsmodels_type2_and_type3(with_target, design) -> None:
    entry = with_target["report"]["results"]["y ~ a * b"]["two_way_anova"]
    frame = design.dropna(subset=["a", "b", "y"])
    type2 = anova_lm(smf.ols("y ~ C(a)*C(b)", frame).fit(), typ=2)
    type3 = anova_lm(smf.ols("y ~ C(a, Sum)*C(b, Sum)", frame).fit(), typ=3)
    details = entry["details"]
    _assert_table(
        details["type2"],
        type2,
        {"a": "C(a)", "b": "C(b)", "a:b": "C(a):C(b)", "Residual": "Residual"},
    )
    _assert_table(
        details["type3"],
        type3,
        {
            "Intercept": "Intercept",
            "a": "C(a, Sum)",
            "b": "C(b, Sum)",
            "a:b": "C(a, Sum):C(b, Sum)",
            "Residual": "Residual",
        },
    )
    assert entry["statistic"] == pytest.approx(type2.loc["C(a):C(b)", "F"], rel=RTOL)
    assert entry["pvalue"] == pytest.approx(type2.loc["C(a):C(b)", "PR(>F)"], rel=RTOL)
    assert entry["n"] == len(frame) and details["empty_cells"] == []
    assert entry["method"] == "exact-from-aggregates" and not entry["approximate"]
    assert details["rows_with_null_level"] == 3 and details["rows_without_finite_target"] > 0
    assert any("null level" in w for w in entry["warnings"])
    assert entry["verdict"] == "effect"
    assert any("effect of a on y depends on b" in f for f in with_target["report"]["findings"])


@pytest.mark.filterwarnings("ignore:The design matrix is rank-deficient")
def test_empty_cells_are_reported_and_type2_matches_nested_fits(with_target, design) -> None:
    entry = with_target["report"]["results"]["y ~ a * c"]["two_way_anova"]
    frame = design.dropna(subset=["a", "c", "y"])
    full = smf.ols("y ~ C(a)*C(c)", frame).fit()  # pinv: the right projection
    additive = smf.ols("y ~ C(a) + C(c)", frame).fit()
    table = entry["details"]["type2"]
    assert [list(cell) for cell in entry["details"]["empty_cells"]] == [["a3", "c3"]]
    assert table["Residual"]["sum_sq"] == pytest.approx(full.ssr, rel=RTOL)
    assert table["Residual"]["df"] == len(frame) - 8
    assert table["a:c"]["sum_sq"] == pytest.approx(additive.ssr - full.ssr, rel=RTOL)
    assert table["a:c"]["df"] == 3.0 and entry["df"] == [3.0, len(frame) - 8]
    assert entry["details"]["type3"] is None and "empty" in entry["details"]["type3_reason"]
    assert any("empty cell" in w for w in entry["warnings"])


def test_sample_screens_match_statsmodels(with_target, design) -> None:
    results = with_target["report"]["results"]
    frame = design.dropna(subset=["y"])
    product = results["y ~ x1 * x2"]["product_term"]
    ref = anova_lm(smf.ols("y ~ x1 + x2", frame).fit(), smf.ols("y ~ x1 * x2", frame).fit())
    assert product["statistic"] == pytest.approx(ref["F"].iloc[1], rel=RTOL)
    assert product["pvalue"] == pytest.approx(ref["Pr(>F)"].iloc[1], rel=1e-6)
    assert product["method"] == "reservoir-sample" and product["approximate"]
    assert product["df"] == [1.0, len(frame) - 4]
    for group in ("a", "b", "c"):
        slopes = results[f"y ~ x1 * {group}"]["slopes_by_level"]
        rows = frame.dropna(subset=[group])
        ref = anova_lm(
            smf.ols(f"y ~ x1 + C({group})", rows).fit(), smf.ols(f"y ~ x1 * C({group})", rows).fit()
        )
        assert slopes["statistic"] == pytest.approx(ref["F"].iloc[1], rel=RTOL), group
        assert slopes["df"][0] == ref["df_diff"].iloc[1], group
        assert slopes["effect_size"] == pytest.approx(
            ref["ss_diff"].iloc[1] / ref["ssr"].iloc[0], rel=RTOL
        )
    assert results["y ~ x1 * a"]["slopes_by_level"]["verdict"] == "effect"
    assert any("sample" in note for note in with_target["report"]["notes"])


def test_holm_family_and_effect_size_verdicts(with_target) -> None:
    entries = [e for subject in with_target["report"]["results"].values() for e in subject.values()]
    tested = [e for e in entries if e.get("pvalue") is not None]
    holm = multipletests([e["pvalue"] for e in tested], method="holm")[1]
    for entry, want in zip(tested, holm, strict=True):
        assert entry["pvalue_holm"] == pytest.approx(want, rel=1e-12)
        assert entry["verdict"] in ("effect", "negligible", "no evidence")
        if entry["verdict"] == "effect":
            assert want < 0.01 and entry["effect_size"] >= 0.01
    assert any("effect sizes, not p-values alone" in n for n in with_target["report"]["notes"])


def test_without_target_conditional_correlations_by_fisher_z(spark) -> None:
    penguins = profiled(spark, "penguins")
    report = interactions.run(penguins.context).to_dict()
    assert any("No target" in note for note in report["notes"])
    entry = report["results"]["bill_length_mm ~ bill_depth_mm | species"]["equal_correlations"]
    frame = penguins.table.to_pandas().dropna(subset=["bill_length_mm", "bill_depth_mm"])
    r, n = [], []
    for _, rows in sorted(frame.groupby("species")):
        r.append(stats.pearsonr(rows["bill_length_mm"], rows["bill_depth_mm"]).statistic)
        n.append(len(rows))
    r, n = np.array(r), np.array(n, dtype=float)
    z, w = np.arctanh(r), n - 3
    q = float(w @ (z - w @ z / w.sum()) ** 2)
    assert entry["statistic"] == pytest.approx(q, rel=1e-10)
    assert entry["pvalue"] == pytest.approx(stats.chi2.sf(q, len(r) - 1), rel=1e-8)
    assert entry["effect_size"] == pytest.approx(r.max() - r.min(), rel=1e-12)
    assert [v["r"] for v in entry["details"]["levels"].values()] == pytest.approx(r, rel=1e-12)
    assert entry["method"] == "reservoir-sample" and entry["approximate"]
    flipper = report["results"]["bill_depth_mm ~ flipper_length_mm | island"]
    assert flipper["equal_correlations"]["verdict"] == "effect"
    assert any("changes with island" in f and "sample-based" in f for f in report["findings"])


def test_degenerate_groups_are_not_applicable_with_a_reason(spark) -> None:
    report = interactions.run(profiled(spark, "degenerate").context).to_dict()
    entry = report["results"]["const_in_a ~ x | g"]["equal_correlations"]
    assert "c" in entry["details"]["levels_left_out"]  # one row: too few for a correlation
    one = report["results"]["const_in_a ~ x | one_group"]["equal_correlations"]
    assert not one["applicable"] and "2 are needed" in one["reason"]
    assert one["verdict"] == "not applicable"
    nulls = report["results"]["x ~ all_null | g"]["equal_correlations"]
    assert not nulls["applicable"]


def test_values_near_the_float64_limits_are_reported_not_raised() -> None:
    table, report = extremes_report(interactions, ScanConfig(target="v"))
    results = report["results"]
    anova = results["v ~ g * h"]["two_way_anova"]
    assert anova["applicable"] is False
    assert (
        anova["reason"] == "the sums of squares overflow float64 (values near the float64 limits)"
    )
    # the sample screens: F does not change when y and x are scaled by powers of two, which
    # keeps statsmodels' sums of squares of y near 1e308 finite
    frame = table.to_pandas()
    frame = frame[np.isfinite(frame["v"])].assign(
        y=lambda f: np.ldexp(f["v"], -1024), x1=lambda f: np.ldexp(f["big"], -332)
    )
    ref = anova_lm(smf.ols("y ~ x1 + x", frame).fit(), smf.ols("y ~ x1 * x", frame).fit())
    product = results["v ~ big * x"]["product_term"]
    assert product["statistic"] == pytest.approx(ref["F"].iloc[1], rel=RTOL)
    assert product["details"]["ss_residual_full"] is None  # beyond float64 in v's units
    ref = anova_lm(smf.ols("y ~ x1 + C(g)", frame).fit(), smf.ols("y ~ x1 * C(g)", frame).fit())
    slopes = results["v ~ big * g"]["slopes_by_level"]
    assert slopes["statistic"] == pytest.approx(ref["F"].iloc[1], rel=RTOL)


def test_a_target_the_main_effects_fit_to_rounding_is_an_exact_fit() -> None:
    rng = np.random.default_rng(2)
    w = rng.normal(size=3000)
    table = pa.table(
        {
            "g": np.array(["a", "b", "c"])[np.arange(3000) % 3],
            "y": 3.0 * w + 2.0,  # exactly linear in w, up to the rounding of each value
            "w": w,
            "x": rng.normal(size=3000),
        }
    )
    results = interactions.run(local_context(table, ScanConfig(target="y"))).to_dict()["results"]
    for subject, test in (("y ~ w * x", "product_term"), ("y ~ w * g", "slopes_by_level")):
        entry = results[subject][test]
        assert entry["applicable"] is False, subject
        assert entry["reason"] == "the main effects fit the target exactly (up to rounding)"
    assert results["y ~ x * g"]["slopes_by_level"]["applicable"]
