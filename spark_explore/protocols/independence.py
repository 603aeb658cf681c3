"""Exploration protocol 7: independence between variables and between observations.

Tests run
---------
Between variables, all exact from the scan's aggregates:

* every pair of categorical (group) columns: Pearson's chi-square test of independence
  with Cramér's V and Cochran's expected-count caveat
  (:func:`~spark_explore.stats.contingency.chi_square_independence`), and the mutual
  information with its normalisations
  (:func:`~spark_explore.stats.contingency.mutual_information`). Rows with a null in either
  column are left out; levels beyond the cap are folded into one "other" level, and the cap
  and the folds are reported;
* every numeric column by every group column: the one-way ANOVA F-test and the correlation
  ratio (eta, and eta squared) from the per-group moments
  (:func:`~spark_explore.stats.anova.one_way_from_groups`);
* every pair of numeric columns: the Pearson correlation t-test over the pair's complete
  rows (:func:`~spark_explore.stats.collinearity.correlation_tests`), which detects linear
  dependence only.

Between observations:

* the share of duplicate rows, ``1 - distinct / rows``, with the distinct count estimated by
  the HyperLogLog sketch of a 64-bit hash of every row's values, and bounds from the
  sketch's two-standard-error bounds. Approximate.
* Serial dependence along an ordering column (lag-1 autocorrelation, Durbin-Watson, runs
  test) needs the rows sorted, which the one-pass profile does not do; it is the separate,
  named job ``jobs/ordered_tests.py``, which also counts duplicate rows exactly.

States used
-----------
``"contingency/<a>/<b>"`` (:class:`~spark_explore.states.contingency.ContingencyState`),
``"grouped/<group>"`` (:class:`~spark_explore.states.grouped.GroupedMomentsState`),
``"comoments"`` (:class:`~spark_explore.states.comoments.CoMomentState`), ``"hll/_key"``
(:class:`~spark_explore.states.distinct.HllState`) and ``"table"``.

Verdicts
--------
Verdicts weigh effect sizes, not p-values alone: an association is reported when its
Holm-adjusted p-value (one family: every test of this protocol) is below ``alpha`` and its
effect size reaches ``min_effect``: Cramér's V (``"cramers_v"``), eta squared
(``"eta_squared"``) or ``|r|`` (``"correlation"``). Duplicates are reported when the lower
bound of their share is above zero.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from spark_explore.columns import Leaf
from spark_explore.protocols._common import format_p, quietly, with_warnings
from spark_explore.protocols.base import ProtocolContext, ProtocolReport
from spark_explore.protocols.collinearity import Family, captured, pair_subject
from spark_explore.scan.plan import KEY_SLOT
from spark_explore.states.grouped import OTHER, FoldSummary
from spark_explore.stats.anova import one_way_from_groups
from spark_explore.stats.collinearity import correlation_tests
from spark_explore.stats.contingency import chi_square_independence, mutual_information
from spark_explore.stats.results import SKETCH, TestResult, not_applicable

NAME = "independence"

OTHER_LABEL = "(other)"
_REF_HLL = "Flajolet, Fusy, Gandouet & Meunier (2007), HyperLogLog, AofA; Apache DataSketches HLL"


def run(context: ProtocolContext) -> ProtocolReport:
    """Associations between columns, and the duplicate-row share."""
    report = ProtocolReport(NAME)
    family = Family(context.config)
    _categorical_pairs(context, family, report)
    _numeric_by_group(context, family, report)
    _numeric_pairs(context, family, report)
    family.close()
    report.findings.extend(_duplicates(context, report))
    report.findings.extend(family.findings())
    cfg = context.config
    report.notes.append(
        "Verdicts weigh effect sizes, not p-values alone: an association is reported when "
        f"its Holm-adjusted p-value is below {cfg.alpha} and Cramér's V >= "
        f"{cfg.min_effect['cramers_v']}, eta squared >= {cfg.min_effect['eta_squared']} or "
        f"|r| >= {cfg.min_effect['correlation']}. Mutual information is reported, not judged."
    )
    report.notes.append(
        "Serial dependence along an ordering column needs a sort: run the separate job "
        "`jobs/ordered_tests.py --table T --order-by COL` (it costs a shuffle)."
    )
    return report


def level_label(level: Any) -> Any:
    """A level as reported: the folded-levels bucket as ``OTHER_LABEL``, others as they are."""
    return OTHER_LABEL if level is OTHER else level


def fold_caveats(folds: dict[str, FoldSummary], cap: int) -> list[str]:
    """One caveat per column whose level cap folded rows into the other level."""
    return [
        f"{name}: {fold.levels} level(s) beyond the cap of {cap} ({fold.rows} rows) were "
        f"folded into one '{OTHER_LABEL}' level"
        for name, fold in folds.items()
        if fold.rows
    ]


def abandoned_reason(state: Any, names: Sequence[str], cap: int) -> str | None:
    """Why a group state holds no levels, or None when it does.

    Automatically chosen group columns stop being groups once they show more than ``cap``
    distinct levels (ids, free text); the scan then counts only their rows.
    """
    if not getattr(state, "abandoned", False):
        return None
    return (
        f"{' or '.join(f'`{n}`' for n in names)} has more than {cap} distinct levels, so the "
        "scan kept no levels for it (not a grouping column; name it in group_columns to "
        "fold the extra levels into 'other' instead)"
    )


def fold_details(folds: dict[str, FoldSummary]) -> dict[str, Any]:
    """What each column's level cap folded, for a result's details."""
    return {
        name: {"levels": f.levels, "exact": f.exact, "rows": f.rows} for name, f in folds.items()
    }


def _categorical_pairs(context: ProtocolContext, family: Family, report: ProtocolReport) -> None:
    threshold = context.config.min_effect["cramers_v"]
    for a, b in context.plan.group_pairs:
        subject = pair_subject(a.name, b.name)
        family.record(
            report,
            subject,
            "chi_square",
            threshold,
            _association(a.name, b.name, "V"),
            _contingency_test,
            context,
            a,
            b,
            chi_square_independence,
            "Pearson chi-square independence",
        )
        family.record(
            report,
            subject,
            "mutual_information",
            None,
            None,
            _contingency_test,
            context,
            a,
            b,
            mutual_information,
            "mutual information",
        )


def _contingency_test(
    context: ProtocolContext,
    a: Leaf,
    b: Leaf,
    test: Callable[[np.ndarray], TestResult],
    name: str,
) -> TestResult:
    """A test of the pair's contingency table, nulls left out, with the cap and the folds."""
    state = context.bundle[f"contingency/{a.slot}/{b.slot}"]
    reason = abandoned_reason(state, (a.name, b.name), state.max_levels)
    if reason:
        return not_applicable(name, reason, n=state.n)
    rows, cols, table = state.table(drop_null=True)
    folds = {a.name: state.row_fold, b.name: state.col_fold}
    caveats = fold_caveats(folds, state.max_levels)
    null_rows = state.n - int(table.sum())
    if null_rows:
        caveats.append(f"{null_rows} rows with a null in either column were left out")
    result = with_warnings(quietly(test, table), caveats)
    details = {
        **result.details,
        "row_levels": [level_label(v) for v in rows],
        "column_levels": [level_label(v) for v in cols],
        "max_levels": state.max_levels,
        "folded_levels": fold_details(folds),
        "rows_with_null": null_rows,
    }
    return dataclasses.replace(result, details=details)


def _numeric_by_group(context: ProtocolContext, family: Family, report: ProtocolReport) -> None:
    threshold = context.config.min_effect["eta_squared"]
    for group in context.plan.group_leaves:
        for leaf in context.plan.comoment_leaves:
            subject = pair_subject(leaf.name, group.name)
            family.record(
                report,
                subject,
                "correlation_ratio",
                threshold,
                _association(leaf.name, group.name, "eta2"),
                _correlation_ratio,
                context,
                leaf,
                group,
            )


def _correlation_ratio(context: ProtocolContext, leaf: Leaf, group: Leaf) -> TestResult:
    state = context.bundle[f"grouped/{group.slot}"]
    reason = abandoned_reason(state, (group.name,), state.max_groups)
    if reason:
        return not_applicable("one-way ANOVA", reason, n=state.n)
    levels = state.levels()
    keep = [i for i, level in enumerate(levels) if level is not None]
    moments = state.moments(leaf.slot)
    n, mean, m2 = moments.n[keep], (moments.mean + moments.mean_lo)[keep], moments.m2[keep]
    labels: list[Any] = [levels[i] for i in keep]
    caveats = fold_caveats({group.name: state.fold}, state.max_groups)
    other = state.other_moments(leaf.slot)
    if other.n[0] > 0:
        n, mean, m2 = (
            np.append(n, other.n),
            np.append(mean, other.mean + other.mean_lo),
            np.append(m2, other.m2),
        )
        labels.append(OTHER_LABEL)
    if None in levels:
        caveats.append(
            f"{int(state.counts[levels.index(None)])} rows with a null {group.name} were left out"
        )
    result = quietly(one_way_from_groups, n, mean, m2)
    details = {
        **result.details,
        "levels": {str(label): int(count) for label, count in zip(labels, n, strict=True)},
        "max_levels": state.max_groups,
        "folded_levels": fold_details({group.name: state.fold}),
    }
    return dataclasses.replace(with_warnings(result, caveats), details=details)


def _numeric_pairs(context: ProtocolContext, family: Family, report: ProtocolReport) -> None:
    leaves = context.plan.comoment_leaves
    names = [leaf.name for leaf in leaves]
    if len(names) < 2:
        return
    tests, texts = captured(correlation_tests, context.bundle["comoments"].comoments, names=names)
    threshold = context.config.min_effect["correlation"]
    for (a, b), result in tests.items():
        family.record(
            report,
            pair_subject(a, b),
            "pearson",
            threshold,
            _association(a, b, "r"),
            with_warnings,
            result,
            texts,
        )


def _association(a: str, b: str, effect: str) -> Any:
    def describe(entry: dict[str, Any]) -> str:
        size = entry["effect_size"]
        measure = {
            "V": f"Cramér's V = {size:.2f}",
            "eta2": f"eta squared = {size:.3f}",
            "r": f"Pearson r = {size:.2f}",
        }[effect]
        caveat = (
            " (small expected counts: see warnings)"
            if effect == "V" and any("expected count" in w for w in entry["warnings"])
            else ""
        )
        return (
            f"{a} and {b} are not independent ({measure}, Holm-adjusted "
            f"{format_p(entry['pvalue_holm'])}){caveat}."
        )

    return describe


def _duplicates(context: ProtocolContext, report: ProtocolReport) -> list[str]:
    """Estimated share of rows that repeat another row, from the row-hash HLL sketch."""
    rows = int(context.bundle["table"].rows)
    key = f"hll/{KEY_SLOT}"
    test = "duplicate-row share (HLL of 64-bit row hashes)"
    if key not in context.bundle or rows == 0:
        reason = "the table has no rows" if rows == 0 else "the scan kept no row-hash sketch"
        result = not_applicable(test, reason, n=rows, method=SKETCH, reference=_REF_HLL)
        report.results["(rows)"] = {"duplicates": {**result.to_dict(), "verdict": "not applicable"}}
        return []
    hll = context.bundle[key]
    estimate, low, high = hll.estimate(), hll.lower_bound(2), hll.upper_bound(2)

    def share(distinct: float) -> float:
        return float(min(max(1.0 - distinct / rows, 0.0), 1.0))

    value, bounds = share(estimate), (share(high), share(low))
    result = TestResult(
        value,
        None,
        test,
        n=rows,
        effect_size=value,
        effect_size_name="share of rows that repeat another row (1 - distinct / rows)",
        method=SKETCH,
        approximate=True,
        error_bound=hll.relative_error,
        reference=_REF_HLL,
        warnings=(
            "approximate: the distinct count is a HyperLogLog estimate; the bounds are its "
            "2-standard-error bounds",
        ),
        details={
            "rows": rows,
            "distinct_rows_estimate": estimate,
            "duplicate_rows_estimate": max(rows - estimate, 0.0),
            "share_lower_bound": bounds[0],
            "share_upper_bound": bounds[1],
            "distinct_relative_error": hll.relative_error,
        },
    )
    entry = result.to_dict()
    entry["verdict"] = "duplicates" if bounds[0] > 0 else "no evidence"
    report.results["(rows)"] = {"duplicates": entry}
    report.notes.append(
        "The duplicate-row share hashes every profiled column into 64 bits (xxhash64); "
        "collisions of different rows are negligible at 64 bits (about N^2 / 2^65 expected "
        "for N distinct rows), but array, map and binary columns enter by their length or "
        "size and unsupported columns by null or not, so rows differing only there count as "
        "duplicates. The share is approximate; `jobs/ordered_tests.py --exact-duplicates` "
        "counts exactly in a separate job with a shuffle."
    )
    if entry["verdict"] != "duplicates":
        return []
    return [
        f"About {value:.1%} of rows repeat another row exactly (between {bounds[0]:.1%} and "
        f"{bounds[1]:.1%}; HyperLogLog estimate over row hashes, approximate)."
    ]
