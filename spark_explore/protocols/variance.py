"""Homogeneity-of-variance protocol: does each numeric column's spread differ between groups?

Subjects are ``"<numeric column> by <group column>"`` for every numeric column of the
co-moment matrix (the value columns of the grouped states) and every group column of the
plan (``ScanPlan.group_leaves``: the configured ``group_columns``, by default the first
string and boolean columns). A group column is tested when 2 to ``max_groups`` of its
levels remain after the scan; rows whose group is null are left out, and levels beyond the
state's cap are folded into "other" by the scan, reported, and left out of the tests.

Tests run
---------
Bartlett
    Exact, from each group's count and second central sum
    (:func:`~spark_explore.stats.variance.bartlett_from_moments`).
Levene (mean-centred) and Brown-Forsythe (median-centred)
    On the group samples (:func:`~spark_explore.stats.variance.levene_from_samples`).
Fligner-Killeen
    On the group samples (:func:`~spark_explore.stats.variance.fligner_from_samples`).
Variance ratio
    Largest over smallest group variance, exact from the group moments: the effect size.

States used
-----------
``"grouped/<group slot>"`` (per-level row counts and moments, the fold), ``"reservoir"``
(the group samples: the uniform sample's rows of each group).

Verdicts
--------
Holm's correction runs over every p-value of the protocol. A subject's variances are called
*unequal* when some test's Holm-adjusted p-value is below ``ProtocolConfig.alpha`` and the
exact variance ratio reaches ``min_effect["variance_ratio"]``; a significant test with a
smaller ratio is reported as a *small* difference, because with millions of rows every
p-value is tiny.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from spark_explore.columns import Leaf
from spark_explore.protocols._common import (
    apply_holm,
    failure_entry,
    format_p,
    not_applicable_entry,
    quietly,
    sample_column,
    state_of,
)
from spark_explore.protocols.base import ProtocolContext, ProtocolReport
from spark_explore.states.batch import to_float64
from spark_explore.states.grouped import GroupedMomentsState, level_codes
from spark_explore.stats.variance import (
    bartlett_from_moments,
    fligner_from_samples,
    levene_from_samples,
)

NAME = "variance"

#: The test keys of a subject's results, in report order.
TESTS = ("bartlett", "levene", "brown_forsythe", "fligner_killeen")


def run(context: ProtocolContext) -> ProtocolReport:
    """Variance homogeneity of every numeric column across every group column."""
    report = ProtocolReport(NAME)
    values = list(context.plan.comoment_leaves)
    subjects: list[str] = []
    for group in context.plan.group_leaves:
        try:
            info, samples = _group_info(context, group)
        except _Abandoned as exc:
            for leaf in values:
                report.results[f"{leaf.name} by {group.name}"] = not_applicable_entry(str(exc))
            continue
        except Exception as exc:  # one bad group column must not abort the protocol
            report.results[f"* by {group.name}"] = failure_entry(group.name, exc)
            continue
        for leaf in values:
            subject = f"{leaf.name} by {group.name}"
            try:
                report.results[subject] = _subject(context, leaf, info, samples)
            except Exception as exc:  # one bad column must not abort the protocol
                report.results[subject] = failure_entry(subject, exc)
            subjects.append(subject)
    tests = [
        report.results[s][t]
        for s in subjects
        for t in TESTS
        if isinstance(report.results[s].get(t), dict)
    ]
    apply_holm(tests)
    ranked = []
    for subject in subjects:
        entry = report.results[subject]
        if entry.get("applicable") is False:
            continue
        verdict, sentence = _verdict(context, subject, entry)
        entry["verdict"] = verdict
        if sentence:
            ranked.append((entry["variance_ratio"].get("ratio") or 0.0, sentence))
    report.findings.extend(text for _, text in sorted(ranked, key=lambda item: -item[0]))
    report.notes.extend(_notes(context, values))
    return report


class _Abandoned(Exception):
    """The scan gave up on a group column's moments."""


def _group_info(context: ProtocolContext, group: Leaf) -> tuple[dict[str, Any], Any]:
    """The kept levels of a group column, their sizes and fold, and the sample's codes."""
    state = state_of(context, f"grouped/{group.slot}", GroupedMomentsState)
    if getattr(state, "abandoned", False):
        raise _Abandoned(
            f"`{group.name}` has more than {state.max_groups} distinct levels, so the scan "
            "kept no group moments for it (not a grouping column)"
        )
    levels = state.levels()
    counts = state.counts
    kept = [i for i, level in enumerate(levels) if level is not None]
    fold = state.fold
    info: dict[str, Any] = {
        "group": group.name,
        "state": state,
        "kept": kept,
        "levels": [levels[i] for i in kept],
        "rows": [int(counts[i]) for i in kept],
        "null_rows": int(sum(int(counts[i]) for i, lv in enumerate(levels) if lv is None)),
        "folded": {
            "levels": fold.levels,
            "levels_exact": fold.exact,
            "rows": fold.rows,
        },
    }
    sample = context.sample()
    if sample.num_rows == 0 or group.slot not in sample.column_names:
        return info, None
    sample_levels, codes = level_codes(
        sample_column(context, group.slot), group.slot, "variance protocol"
    )
    position = {level: j for j, level in enumerate(info["levels"])}
    # each sample row's index into the kept levels; -1 for null, folded or unknown levels
    lookup = np.array([position.get(level, -1) for level in sample_levels] + [-1])
    return info, lookup[codes] if len(codes) else np.zeros(0, dtype=np.intp)


def _subject(
    context: ProtocolContext, leaf: Leaf, info: dict[str, Any], codes: Any
) -> dict[str, Any]:
    groups = {
        "levels": info["levels"],
        "rows": info["rows"],
        "null_rows": info["null_rows"],
        "folded_into_other": info["folded"],
    }
    if len(info["levels"]) < 2:
        skipped = not_applicable_entry(
            f"`{info['group']}` has {len(info['levels'])} non-null level(s) kept by the scan; "
            "comparing variances needs two or more groups"
        )
        skipped["groups"] = groups
        return skipped
    moments = info["state"].moments(leaf.slot)
    kept = info["kept"]
    n = moments.n[kept]
    m2 = moments.m2[kept]
    labels = info["levels"]
    groups["values"] = [int(v) for v in n]
    overflow = [str(label) for label, v in zip(labels, m2, strict=True) if not np.isfinite(v)]
    if overflow:
        skipped = not_applicable_entry(
            f"the sum of squared deviations overflows float64 in group(s) {overflow} (values "
            "near the float64 limits): their variances cannot be compared"
        )
        skipped["groups"] = groups
        return skipped
    entry: dict[str, Any] = {"groups": groups}
    entry["bartlett"] = quietly(bartlett_from_moments, n, m2, labels=labels).to_dict()
    entry["variance_ratio"] = _ratio(n, m2, labels)
    samples = _group_samples(context, leaf, codes, len(labels))
    groups["sample_values"] = [int(s.size) for s in samples]
    if samples and sum(s.size for s in samples):
        entry["levene"] = quietly(levene_from_samples, samples, "mean", labels=labels).to_dict()
        entry["brown_forsythe"] = quietly(
            levene_from_samples, samples, "median", labels=labels
        ).to_dict()
        entry["fligner_killeen"] = quietly(
            fligner_from_samples, samples, "median", labels=labels
        ).to_dict()
    else:
        reason = (
            "the sample is empty"
            if codes is None
            else "the sample holds no finite value of this column in the kept groups"
        )
        for key in TESTS[1:]:
            entry[key] = not_applicable_entry(reason)
    if not any(entry[key].get("applicable", True) for key in TESTS):
        entry["applicable"] = False
        entry["reason"] = entry["bartlett"].get("reason") or "no test is applicable"
    return entry


def _group_samples(context: ProtocolContext, leaf: Leaf, codes: Any, k: int) -> list[np.ndarray]:
    """The finite sample values of a column in each kept group (in level order)."""
    if codes is None:
        return []
    values = to_float64(sample_column(context, leaf.slot))
    finite = np.isfinite(values)
    return [values[(codes == j) & finite] for j in range(k)]


def _ratio(n: np.ndarray, m2: np.ndarray, labels: list[Any]) -> dict[str, Any]:
    """Largest over smallest group variance, exact, over groups with two or more values."""
    usable = n >= 2
    if usable.sum() < 2:
        return {
            "ratio": None,
            "method": "exact-from-aggregates",
            "reason": "fewer than two groups have two or more values",
        }
    variances = m2[usable] / (n[usable] - 1)
    names = [label for label, u in zip(labels, usable, strict=True) if u]
    hi, lo = int(np.argmax(variances)), int(np.argmin(variances))
    out: dict[str, Any] = {
        "ratio": float(variances[hi] / variances[lo]) if variances[lo] > 0 else None,
        "largest": {"group": names[hi], "variance": float(variances[hi])},
        "smallest": {"group": names[lo], "variance": float(variances[lo])},
        "variances": dict(zip([str(x) for x in names], variances.tolist(), strict=True)),
        "method": "exact-from-aggregates",
    }
    if variances[lo] == 0:
        out["reason"] = f"group {names[lo]!r} is constant (zero variance): the ratio is infinite"
    return out


def _verdict(
    context: ProtocolContext, subject: str, entry: dict[str, Any]
) -> tuple[dict[str, Any], str | None]:
    cfg = context.config
    threshold = cfg.min_effect["variance_ratio"]
    ratio_entry = entry["variance_ratio"]
    ratio = ratio_entry.get("ratio")
    infinite = ratio is None and "constant" in (ratio_entry.get("reason") or "")
    significant = {
        key: entry[key]["pvalue_holm"]
        for key in TESTS
        if entry[key].get("pvalue_holm") is not None and entry[key]["pvalue_holm"] < cfg.alpha
    }
    large = infinite or (ratio is not None and ratio >= threshold)
    if significant and large:
        decision = "unequal variances"
    elif significant:
        decision = "small difference (below the effect-size threshold)"
    else:
        decision = "no evidence of unequal variances"
    verdict = {
        "decision": decision,
        "significant_tests": sorted(significant),
        "variance_ratio": ratio,
        "variance_ratio_threshold": threshold,
        "alpha": cfg.alpha,
        "basis": "Holm-adjusted p-value below alpha and variance ratio at or above threshold",
    }
    if decision != "unequal variances":
        return verdict, None
    big, small = ratio_entry["largest"], ratio_entry["smallest"]
    ratio_text = "infinite" if infinite else f"{ratio:.3g}"
    tests = "; ".join(
        f"{entry[key]['test']} {format_p(entry[key]['pvalue_holm'])}"
        for key in TESTS
        if key in significant
    )
    sentence = (
        f"{subject}: group variances differ, largest/smallest ratio {ratio_text} "
        f"({big['group']} vs {small['group']}, threshold {threshold:g}); {tests} "
        "(Holm-adjusted)"
    )
    return verdict, sentence


def _notes(context: ProtocolContext, values: list[Leaf]) -> list[str]:
    cfg = context.config
    notes = [
        "Bartlett's test and the variance ratio are exact, from per-group moments of every "
        "row; Bartlett assumes normal data within groups and reacts to heavy tails as well "
        "as to unequal variances.",
        "Levene, Brown-Forsythe and Fligner-Killeen run on group samples: each group's "
        "sample is the uniform sample's rows of that group, so small groups get few rows "
        "(their sizes are under `groups.sample_values`).",
        f"Holm's correction runs over all {NAME} tests; a subject's variances are called "
        f"unequal only when a Holm-adjusted p-value is below {cfg.alpha:g} and the exact "
        f"variance ratio is at least {cfg.min_effect['variance_ratio']:g}: with millions of "
        "rows every p-value is tiny.",
        "Rows with a null group are left out; levels beyond the scan's cap "
        f"(max_groups = {context.plan.config.max_groups}) are folded into 'other', reported "
        "under `groups.folded_into_other`, and left out of the tests.",
    ]
    if not context.plan.group_leaves:
        notes.append("The table has no group column (string or boolean), so nothing is tested.")
    left_out = [leaf.name for leaf in context.plan.comoment_left_out]
    if left_out:
        notes.append(
            f"{len(left_out)} numeric column(s) beyond the co-moment limit have no group "
            f"moments and are not tested: {', '.join(left_out[:10])}"
        )
    if not values:
        notes.append("The table has no numeric column to compare across groups.")
    return notes
