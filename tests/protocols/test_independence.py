"""The independence protocol through the pipeline (profile -> protocol).

References: scipy 1.17 ``stats.chi2_contingency(correction=False)`` (and with
``lambda_="log-likelihood"`` for the G statistic behind the mutual information),
``stats.contingency.association(method="cramer")`` and ``stats.f_oneway`` on pandas 2.3
crosstabs and group-bys; statsmodels 0.15 ``multipletests(method="holm")``; the true
duplicate counts of generated tables.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from spark_explore.api import profile
from spark_explore.config import ScanConfig
from spark_explore.protocols import independence
from spark_explore.protocols.base import ProtocolContext
from spark_explore.states.grouped import level_rank
from tests.protocols import extremes_report, local_context, profiled

DISTINCT, COPIES = 300, 200


@pytest.fixture(scope="module")
def penguins(spark):
    data = profiled(spark, "penguins")
    return data.table.to_pandas(), independence.run(data.context).to_dict()


def _generated() -> pd.DataFrame:
    """``DISTINCT`` distinct rows and ``COPIES`` exact copies of some of them; ``many`` has
    12 levels (more than the cap of 3), ``few`` depends on it."""
    rng = np.random.default_rng(4)
    i = np.arange(DISTINCT)
    many = np.array([f"L{k:02d}" for k in i % 12])
    few = np.where(
        rng.random(DISTINCT) < 0.6,
        np.array(["p", "q", "r"])[i % 12 % 3],
        np.array(["p", "q", "r"])[rng.integers(0, 3, DISTINCT)],
    )
    frame = pd.DataFrame({"many": many, "few": few, "v": i * 0.5 + rng.normal(size=DISTINCT)})
    copies = frame.iloc[rng.integers(0, DISTINCT, COPIES)]
    return pd.concat([frame, copies], ignore_index=True)


@pytest.fixture(scope="module")
def generated(spark, tmp_path_factory):
    frame = _generated()
    path = tmp_path_factory.mktemp("independence") / "generated.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
    config = ScanConfig(max_groups=3, group_columns=("many", "few"))  # named: fold, not give up
    result = profile(spark.read.parquet(str(path)).repartition(3), config)
    return frame, independence.run(ProtocolContext(result.bundle, result.plan)).to_dict()


@pytest.mark.parametrize(("a", "b"), [("species", "island"), ("species", "sex")])
def test_chi_square_and_cramers_v_match_scipy_on_penguins(penguins, a, b) -> None:
    table, report = penguins
    entry = report["results"][f"{a} ~ {b}"]["chi_square"]
    observed = pd.crosstab(table[a], table[b])  # drops rows with a null in either column
    ref = stats.chi2_contingency(observed, correction=False)
    assert entry["statistic"] == pytest.approx(ref.statistic, rel=1e-12)
    assert entry["pvalue"] == pytest.approx(ref.pvalue, rel=1e-9)
    assert entry["df"] == ref.dof and entry["n"] == observed.to_numpy().sum()
    cramer = stats.contingency.association(observed.to_numpy(), method="cramer")
    assert entry["effect_size"] == pytest.approx(cramer, rel=1e-12)
    np.testing.assert_allclose(entry["details"]["expected"], ref.expected_freq, rtol=1e-12)
    assert entry["details"]["row_levels"] == list(observed.index)
    assert entry["details"]["column_levels"] == list(observed.columns)
    assert "min_expected" in entry["details"] and entry["details"]["max_levels"] == 50
    g = stats.chi2_contingency(observed, correction=False, lambda_="log-likelihood")
    mi = report["results"][f"{a} ~ {b}"]["mutual_information"]
    assert mi["statistic"] == pytest.approx(g.statistic / (2 * entry["n"]), rel=1e-10)
    assert "verdict" not in mi  # reported, not judged
    if b == "sex":
        assert entry["details"]["rows_with_null"] == 11
        assert any("11 rows with a null" in w for w in entry["warnings"])
        assert entry["verdict"] == "no evidence"
    else:
        assert entry["verdict"] == "effect" and entry["effect_size"] > 0.5
        assert any("species and island are not independent" in f for f in report["findings"])


def test_correlation_ratio_matches_f_oneway_on_penguins(penguins) -> None:
    table, report = penguins
    for value in ("bill_length_mm", "body_mass_g"):
        for group in ("species", "island", "sex"):
            entry = report["results"][f"{value} ~ {group}"]["correlation_ratio"]
            rows = table.dropna(subset=[value, group])
            samples = [part[value].to_numpy() for _, part in rows.groupby(group)]
            ref = stats.f_oneway(*samples)
            assert entry["statistic"] == pytest.approx(ref.statistic, rel=1e-10)
            assert entry["pvalue"] == pytest.approx(ref.pvalue, rel=1e-8, abs=1e-300)
            y = rows[value].to_numpy()
            between = sum(s.size * (s.mean() - y.mean()) ** 2 for s in samples)
            eta2 = between / ((y - y.mean()) ** 2).sum()
            assert entry["effect_size"] == pytest.approx(eta2, rel=1e-10)
            assert entry["details"]["correlation_ratio"] == pytest.approx(np.sqrt(eta2), rel=1e-10)


def test_holm_family_verdicts_and_duplicates_on_penguins(penguins) -> None:
    _, report = penguins
    judged = [
        e
        for subject in report["results"].values()
        for name, e in subject.items()
        if name != "mutual_information" and e.get("pvalue") is not None
    ]
    holm = multipletests([e["pvalue"] for e in judged], method="holm")[1]
    for entry, want in zip(judged, holm, strict=True):
        assert entry["pvalue_holm"] == pytest.approx(want, rel=1e-12)
    duplicates = report["results"]["(rows)"]["duplicates"]
    assert duplicates["verdict"] == "no evidence" and duplicates["method"] == "sketch"
    assert duplicates["approximate"] and duplicates["details"]["share_lower_bound"] == 0.0
    assert any("negligible at 64 bits" in note for note in report["notes"])
    assert any("ordered_tests.py" in note and "shuffle" in note for note in report["notes"])
    assert any("effect sizes, not p-values alone" in note for note in report["notes"])


def test_duplicate_share_from_the_row_hash_sketch(generated) -> None:
    _, report = generated
    entry = report["results"]["(rows)"]["duplicates"]
    truth = COPIES / (DISTINCT + COPIES)
    details = entry["details"]
    assert details["rows"] == DISTINCT + COPIES
    assert details["share_lower_bound"] <= truth <= details["share_upper_bound"]
    assert entry["statistic"] == pytest.approx(truth, abs=0.01)
    assert entry["verdict"] == "duplicates" and details["share_lower_bound"] > 0
    assert entry["error_bound"] == pytest.approx(0.0162, abs=0.001)
    assert any("repeat another row" in f and "approximate" in f for f in report["findings"])


def test_level_cap_folds_into_other_and_is_reported(generated) -> None:
    frame, report = generated
    entry = report["results"]["many ~ few"]["chi_square"]
    kept = sorted(sorted(set(frame["many"]), key=level_rank)[:3])
    folded = frame["many"].where(frame["many"].isin(kept), "(other)")
    observed = pd.crosstab(folded, frame["few"])
    ref = stats.chi2_contingency(observed, correction=False)
    assert entry["statistic"] == pytest.approx(ref.statistic, rel=1e-12)
    assert entry["details"]["row_levels"] == [*kept, "(other)"]
    assert entry["details"]["max_levels"] == 3
    assert entry["details"]["folded_levels"]["many"]["levels"] == 9
    assert entry["details"]["folded_levels"]["many"]["rows"] == int(
        (~frame["many"].isin(kept)).sum()
    )
    assert any("beyond the cap of 3" in w for w in entry["warnings"])
    eta = report["results"]["v ~ many"]["correlation_ratio"]
    assert "(other)" in eta["details"]["levels"] and any("cap" in w for w in eta["warnings"])


def test_id_like_columns_are_not_grouping_columns_and_say_so() -> None:
    table = pa.table(
        {
            "ident": [f"id{i}" for i in range(40)],
            "kind": ["a", "b"] * 20,
            "v": np.arange(40.0),
        }
    )
    report = independence.run(local_context(table, ScanConfig(max_groups=5))).to_dict()
    for subject, test in (
        ("ident ~ kind", "chi_square"),
        ("ident ~ kind", "mutual_information"),
        ("v ~ ident", "correlation_ratio"),
    ):
        entry = report["results"][subject][test]
        assert not entry["applicable"] and "not a grouping column" in entry["reason"], subject
    assert report["results"]["v ~ kind"]["correlation_ratio"]["applicable"]
    # ranks 0..39 repeat no row: the sketch is exact at this size
    assert report["results"]["(rows)"]["duplicates"]["statistic"] == 0.0


def test_empty_table_and_no_pairs_are_reported_not_raised() -> None:
    table = pa.table({"v": pa.array([], pa.float64()), "g": pa.array([], pa.string())})
    report = independence.run(local_context(table, ScanConfig())).to_dict()
    duplicates = report["results"]["(rows)"]["duplicates"]
    assert not duplicates["applicable"] and "no rows" in duplicates["reason"]
    entry = report["results"]["v ~ g"]["correlation_ratio"]
    assert not entry["applicable"] and entry["verdict"] == "not applicable"


def test_values_near_the_float64_limits_are_reported_not_raised() -> None:
    table, report = extremes_report(independence)
    eta = report["results"]["v ~ g"]["correlation_ratio"]
    assert eta["applicable"] is False
    assert eta["reason"] == "the sums of squares overflow float64 (values near the float64 limits)"
    labels = np.array(table.column("g").to_pylist())
    big = table.column("big").to_numpy()
    ref = stats.f_oneway(*(big[labels == level] for level in ("a", "b", "c")))
    got = report["results"]["big ~ g"]["correlation_ratio"]
    assert got["statistic"] == pytest.approx(ref.statistic, rel=1e-10)
