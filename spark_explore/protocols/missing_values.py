"""Missing-values protocol: what is missing, together with what, and is it missing at random?

A value is *missing* when it is null, NaN or equal to a configured sentinel; infinities,
empty strings and blank strings are counted apart but are not missing (the missingness
state's definition). Subjects are every profiled column (its counts), ``"co-missingness"``,
``"patterns"``, ``"<column> missingness"`` for each column with missing values (the MCAR
vs MAR signals) and ``"Little's MCAR"``.

Tests run
---------
Welch's t test and the standardized mean difference
    For each column A with missing values and each numeric column B of the per-pattern
    moments: B's mean where A is missing against where A is present
    (:func:`~spark_explore.stats.missingness.missingness_association`). The two sides are
    exact, merged from the per-pattern co-moments of the patterns where A is missing or
    present.
Difference in proportions (two-proportion z test, Cohen's h)
    For each column A with missing values and each group column B: the share of each of
    B's levels where A is missing against where A is present
    (:func:`~spark_explore.stats.missingness.proportion_difference`), from the contingency
    state of two group columns or, for a numeric A without infinities or sentinel hits,
    from the grouped moments (rows per level minus finite values per level). Also, for
    each pair of columns with missing values, whether one is missing more often where the
    other is (from the co-missingness matrix): joint missingness, reported but not taken
    as evidence against MCAR, which allows dependent missingness indicators.
Little's MCAR test
    From the per-pattern counts, means and co-moments of the numeric columns, with the
    EM estimates of the mean and covariance (:func:`~spark_explore.stats.missingness.
    little_mcar`); patterns that differ only in non-numeric columns are merged.

States used
-----------
``"missingness"`` (kind counts, sentinels, co-missingness, patterns and their
co-moments), ``"table"`` (rows and nulls of columns the state does not track),
``"contingency/<a>/<b>"`` and ``"grouped/<slot>"`` (level proportions), ``"moments"``
(infinity counts).

Verdicts
--------
Holm's correction runs over every p-value of the protocol. A column's missingness is said
to be *associated with observed values* (evidence against MCAR, consistent with MAR) when
a mean or level-proportion comparison has a Holm-adjusted p-value below
``ProtocolConfig.alpha`` and an effect (standardized mean difference or Cohen's h) of at
least ``min_effect["standardized_difference"]`` in absolute value; significant but smaller
effects are reported as negligible, since with millions of rows every p-value is tiny.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from spark_explore.columns import NUMERIC, UNSUPPORTED, Leaf
from spark_explore.protocols._common import (
    apply_holm,
    failure_entry,
    format_p,
    format_share,
    not_applicable_entry,
    quietly,
    state_of,
)
from spark_explore.protocols.base import ProtocolContext, ProtocolReport
from spark_explore.states import _algebra
from spark_explore.states.contingency import ContingencyState
from spark_explore.states.grouped import OTHER, GroupedMomentsState
from spark_explore.states.missing import MissingnessState
from spark_explore.states.moments import MomentsState
from spark_explore.states.table import TableState
from spark_explore.stats.missingness import (
    WELCH_REF,
    PatternStats,
    little_mcar,
    missingness_association,
    proportion_difference,
)
from spark_explore.stats.results import not_applicable

NAME = "missing_values"

#: Most frequent patterns listed.
TOP_PATTERNS = 10

#: Association signals named in a column's finding.
TOP_SIGNALS = 3


@dataclasses.dataclass
class _Columns:
    """The missingness state and the leaves it tracks, by slot."""

    state: Any
    leaves: dict[str, Leaf]
    rows: int

    def name(self, slot: str) -> str:
        return self.leaves[slot].name


def run(context: ProtocolContext) -> ProtocolReport:
    """Missing-value counts, co-missingness, patterns and MCAR/MAR signals."""
    report = ProtocolReport(NAME)
    state = state_of(context, "missingness", MissingnessState)
    cols = _Columns(
        state,
        {leaf.slot: leaf for leaf in context.plan.leaves if leaf.slot in state.slots},
        int(state.rows),
    )
    missing = _counts(context, cols, report)
    for subject, step in (
        ("co-missingness", lambda: _co_missingness(cols, missing)),
        ("patterns", lambda: _patterns(cols, report)),
    ):
        try:
            report.results[subject] = step()
        except Exception as exc:  # one failed part must not lose the others
            report.results[subject] = failure_entry(subject, exc)
    tests: list[dict[str, Any]] = []
    associations: list[str] = []
    for slot in missing:
        subject = f"{cols.name(slot)} missingness"
        try:
            report.results[subject] = _associations(context, cols, slot, missing, tests)
        except Exception as exc:  # one bad column must not abort the protocol
            report.results[subject] = failure_entry(subject, exc)
            continue
        associations.append(subject)
    try:
        report.results["Little's MCAR"] = _little(context, cols)
    except Exception as exc:  # the other results stand on their own
        report.results["Little's MCAR"] = failure_entry("Little's MCAR", exc)
    little = report.results["Little's MCAR"]
    if little.get("pvalue") is not None:
        tests.append(little)
    apply_holm(tests)
    _mirror_joint(cols, missing, report)
    for subject in associations:
        _verdict(context, cols, subject, report)
    _joint_finding(context, cols, report)
    _little_finding(context, little, report)
    report.notes.extend(_notes(context, cols))
    return report


# ---------------------------------------------------------------------------------------
# Counts, co-missingness and patterns
# ---------------------------------------------------------------------------------------


def _counts(context: ProtocolContext, cols: _Columns, report: ProtocolReport) -> list[str]:
    """Each column's counts (into ``report``); returns the slots with missing values."""
    table = state_of(context, "table", TableState)
    missing: list[str] = []
    for leaf in context.plan.leaves:
        if leaf.slot not in cols.leaves:
            nulls = int(table.nulls[table.slots.index(leaf.slot)])
            report.results[leaf.name] = {
                "rows": int(table.rows),
                "null": nulls,
                "missing": nulls,
                "missing_share": nulls / table.rows if table.rows else None,
                "note": "only nulls are counted for a column of this type",
            }
            continue
        c = cols.state.counts(leaf.slot)
        sentinels = [
            {"value": value, "count": int(count)}
            for value, count in c["sentinels"].items()
            if count
        ]
        entry: dict[str, Any] = {
            "rows": cols.rows,
            "missing": int(c["missing"]),
            "missing_share": c["missing"] / cols.rows if cols.rows else None,
            "null": int(c["null"]),
            "nan": int(c["nan"]),
            "posinf": int(c["posinf"]),
            "neginf": int(c["neginf"]),
            "empty": int(c["empty"]),
            "blank": int(c["blank"]),
            "sentinels": sentinels,
            "sentinel_total": int(sum(s["count"] for s in sentinels)),
        }
        report.results[leaf.name] = entry
        if entry["missing"]:
            missing.append(leaf.slot)
        sentence = _count_sentence(leaf.name, entry)
        if sentence:
            report.findings.append(sentence)
    return missing


def _count_sentence(name: str, entry: dict[str, Any]) -> str | None:
    rows = entry["rows"]
    parts = []
    for key, label in (("null", "null"), ("nan", "NaN")):
        if entry[key]:
            parts.append(f"{entry[key]} {label}")
    for s in entry["sentinels"]:
        parts.append(f"{s['count']} equal to the sentinel {s['value']!r}")
    also = []
    for key, label in (
        ("posinf", "+inf"),
        ("neginf", "-inf"),
        ("empty", "empty strings"),
        ("blank", "blank strings"),
    ):
        if entry[key]:
            also.append(f"{entry[key]} {label}")
    if not parts and not also:
        return None
    if entry["missing"] == rows and rows:
        text = f"{name}: every row is missing ({', '.join(parts)})"
    elif parts:
        text = (
            f"{name}: {entry['missing']} of {rows} rows ({format_share(entry['missing'] / rows)})"
            f" are missing ({', '.join(parts)})"
        )
    else:
        text = f"{name}: no missing values"
    if also:
        text += f"; also {', '.join(also)}, counted but not treated as missing"
    return text


def _co_missingness(cols: _Columns, missing: list[str]) -> dict[str, Any]:
    """Rows where two columns are both missing, for the columns with missing values."""
    index = [cols.state.slots.index(slot) for slot in missing]
    matrix = cols.state.co_missing()[np.ix_(index, index)]
    return {
        "columns": [cols.name(slot) for slot in missing],
        "matrix": matrix.tolist(),
        "description": "rows where both columns are missing; the diagonal is each "
        "column's missing count (columns without missing values are left out)",
    }


def _patterns(cols: _Columns, report: ProtocolReport) -> dict[str, Any]:
    state = cols.state
    kept = state.patterns(top=None)
    fold = state.pattern_fold
    listed = []
    for mask, rows in kept[:TOP_PATTERNS]:
        names = [cols.name(slot) for slot, miss in zip(state.slots, mask, strict=True) if miss]
        listed.append({"missing": names, "rows": rows, "share": rows / cols.rows})
    entry = {
        "top": listed,
        "kept_patterns": len(kept),
        "folded": {"patterns": fold.levels, "exact": fold.exact, "rows": fold.rows},
        "max_patterns": state.max_patterns,
    }
    incomplete = [p for p in listed if p["missing"]]
    if incomplete:
        parts = [
            f"{_join(p['missing'])} {'alone' if len(p['missing']) == 1 else 'together'} in "
            f"{p['rows']} rows ({format_share(p['share'])})"
            for p in incomplete[:3]
        ]
        total = len(kept) + fold.levels
        report.findings.append(
            f"{total} missingness pattern(s) (complete rows included); the most frequent "
            f"incomplete ones: {'; '.join(parts)}"
        )
    return entry


def _join(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


# ---------------------------------------------------------------------------------------
# MCAR vs MAR signals
# ---------------------------------------------------------------------------------------


def _associations(
    context: ProtocolContext,
    cols: _Columns,
    slot: str,
    missing: list[str],
    tests: list[dict[str, Any]],
) -> dict[str, Any]:
    """How one column's missingness goes with the other columns' values and missingness."""
    state = cols.state
    j = state.slots.index(slot)
    n_missing = int(state.co_missing()[j, j])
    if n_missing == cols.rows:
        return not_applicable_entry("every row is missing: there is nothing to compare")
    entry: dict[str, Any] = {"missing_rows": n_missing, "means": {}, "levels": {}, "joint": {}}
    warn = _fold_warning(state)
    sides = _pattern_sides(state, j)
    for b, other in enumerate(state.moment_slots):
        if other == slot:
            continue
        result = _welch(sides, b)
        if warn:
            result = dataclasses.replace(
                result, approximate=True, warnings=(*result.warnings, warn)
            )
        entry["means"][cols.name(other)] = result.to_dict()
        tests.append(entry["means"][cols.name(other)])
    for group in context.plan.group_leaves:
        if group.slot == slot:
            continue
        levels = _level_proportions(context, cols, slot, group)
        entry["levels"][group.name] = levels
        tests.extend(v for v in levels.get("by_level", {}).values() if "pvalue" in v)
    co = state.co_missing()
    for other in missing:
        if other == slot:
            continue
        k = state.slots.index(other)
        both, mine, theirs = int(co[j, k]), int(co[j, j]), int(co[k, k])
        result = quietly(proportion_difference, both, mine, theirs - both, cols.rows - mine)
        entry["joint"][cols.name(other)] = result.to_dict()
        if j < k:  # each pair enters Holm's family once; the mirror copies its p-value
            entry["joint"][cols.name(other)]["holm_family"] = True
            tests.append(entry["joint"][cols.name(other)])
    return entry


def _mirror_joint(cols: _Columns, missing: list[str], report: ProtocolReport) -> None:
    """Give each pair's second joint-missingness entry the first one's Holm p-value."""
    for slot in missing:
        entry = report.results.get(f"{cols.name(slot)} missingness", {})
        for other, test in entry.get("joint", {}).items():
            if "pvalue_holm" in test or test.get("pvalue") is None:
                continue
            mirror = report.results.get(f"{other} missingness", {}).get("joint", {})
            first = mirror.get(cols.name(slot), {})
            if "pvalue_holm" in first:
                test["pvalue_holm"] = first["pvalue_holm"]


def _fold_warning(state: Any) -> str | None:
    fold = state.pattern_fold
    if not fold.rows:
        return None
    return (
        f"{fold.rows} rows in {fold.levels} folded missingness pattern(s) have no kept "
        "moments and are left out of both sides"
    )


def _pattern_sides(state: Any, j: int) -> tuple[Any, Any]:
    """Co-moments of the numeric columns merged over the kept patterns where slot j is
    missing, and where it is present (exact: pairwise merges of the pattern states)."""
    m = len(state.moment_slots)
    missing, present = _algebra.CoMoments.zeros(m), _algebra.CoMoments.zeros(m)
    for mask, comoments in state.pattern_comoments():
        if mask[j]:
            missing = _algebra.merge_comoments(missing, comoments)
        else:
            present = _algebra.merge_comoments(present, comoments)
    return missing, present


def _side(cm: Any, b: int) -> tuple[int, float, float]:
    n = int(cm.n[b, b])
    mean = float(cm.mean[b, b] + cm.mean_lo[b, b]) if n else 0.0
    var = float(cm.m2[b, b] / (n - 1)) if n >= 2 else 0.0
    return n, mean, max(var, 0.0)


def _welch(sides: tuple[Any, Any], b: int) -> Any:
    (n1, m1, v1), (n2, m2, v2) = _side(sides[0], b), _side(sides[1], b)
    if not np.isfinite([m1, m2, v1, v2]).all():
        return not_applicable(
            "Welch t (missing vs present)",
            "the column's sum of squared deviations overflows float64 (values near the "
            "float64 limits)",
            n=n1 + n2,
            reference=WELCH_REF,
        )
    return quietly(missingness_association, n1, n2, m1, m2, v1, v2)


def _level_proportions(
    context: ProtocolContext, cols: _Columns, slot: str, group: Leaf
) -> dict[str, Any]:
    """Share of each of the group column's levels where ``slot`` is missing vs present."""
    counts = _split_counts(context, cols, slot, group)
    if isinstance(counts, str):
        return not_applicable_entry(counts)
    levels, k_missing, k_present = counts
    n1, n2 = int(k_missing.sum()), int(k_present.sum())
    by_level = {}
    for level, k1, k2 in zip(levels, k_missing, k_present, strict=True):
        by_level[str(level)] = quietly(proportion_difference, int(k1), n1, int(k2), n2).to_dict()
    return {"rows_missing": n1, "rows_present": n2, "by_level": by_level}


def _split_counts(
    context: ProtocolContext, cols: _Columns, slot: str, group: Leaf
) -> tuple[list[Any], np.ndarray, np.ndarray] | str:
    """Rows of each observed level of ``group`` where ``slot`` is missing and present, or
    the reason they cannot be had from the states."""
    bundle = context.bundle
    leaf = cols.leaves[slot]
    group_missing = _missing_texts(cols, group.slot)
    for key, transpose in (
        (f"contingency/{slot}/{group.slot}", False),
        (f"contingency/{group.slot}/{slot}", True),
    ):
        if key in bundle:
            contingency = state_of(context, key, ContingencyState)
            if getattr(contingency, "abandoned", False):
                return _ABANDONED
            row_levels, columns, table = contingency.table()
            if transpose:
                row_levels, columns, table = columns, row_levels, table.T
            mine = _missing_texts(cols, slot)
            is_missing = np.array([level in mine for level in row_levels])
            keep = [i for i, c in enumerate(columns) if c not in group_missing and c is not OTHER]
            table = np.asarray(table)[:, keep]
            return (
                [columns[i] for i in keep],
                table[is_missing].sum(axis=0),
                table[~is_missing].sum(axis=0),
            )
    grouped_key = f"grouped/{group.slot}"
    grouped = state_of(context, grouped_key, GroupedMomentsState) if grouped_key in bundle else None
    if leaf.role == NUMERIC and grouped is not None and slot in grouped.value_slots:
        if getattr(grouped, "abandoned", False):
            return _ABANDONED
        moments_state = state_of(context, "moments", MomentsState)
        j = moments_state.column_index(slot)
        infinite = int(moments_state.counts["posinf"][j] + moments_state.counts["neginf"][j])
        sentinels = cols.state.counts(slot)["sentinels"]
        if infinite or any(sentinels.values()):
            return (
                "not available: the column has infinite values or sentinel hits, which the "
                "grouped state cannot tell apart from missing or present values per level"
            )
        levels = grouped.levels()
        keep = [i for i, level in enumerate(levels) if level not in group_missing]
        level_rows = grouped.counts[keep]
        finite = grouped.moments(slot).n[keep].astype(np.int64)
        return [levels[i] for i in keep], level_rows - finite, finite
    return (
        "not available: no state splits this column's missingness by the group column's "
        "levels (kept for pairs of group columns, and for numeric columns by group)"
    )


_ABANDONED = (
    "not available: the group column has more distinct levels than the scan keeps, so no "
    "per-level counts were kept"
)


def _missing_texts(cols: _Columns, slot: str) -> set[Any]:
    """Level texts that stand for missing in a categorical column: null and the text
    sentinels that hit it."""
    hits = {
        value
        for value, count in cols.state.counts(slot)["sentinels"].items()
        if count and isinstance(value, str)
    }
    return {None, *hits}


def _verdict(
    context: ProtocolContext, cols: _Columns, subject: str, report: ProtocolReport
) -> None:
    cfg = context.config
    entry = report.results[subject]
    if entry.get("applicable") is False:
        return
    threshold = cfg.min_effect["standardized_difference"]
    signals: list[tuple[float, str, dict[str, Any]]] = []
    small: list[tuple[float, str, dict[str, Any]]] = []
    for other, test in entry["means"].items():
        effect = test.get("effect_size")
        if test.get("pvalue_holm") is not None and test["pvalue_holm"] < cfg.alpha:
            (signals if abs(effect or 0.0) >= threshold else small).append(
                (abs(effect or 0.0), f"mean of {other}", test)
            )
    for other, levels in entry["levels"].items():
        for level, test in levels.get("by_level", {}).items():
            effect = (test.get("details") or {}).get("cohens_h")
            if test.get("pvalue_holm") is not None and test["pvalue_holm"] < cfg.alpha:
                (signals if abs(effect or 0.0) >= threshold else small).append(
                    (abs(effect or 0.0), f"share of {other} = {level!r}", test)
                )
    if signals:
        decision = "associated with observed values (not MCAR; consistent with MAR)"
    elif small:
        decision = "negligible associations (below the effect-size threshold)"
    else:
        decision = "no association detected (consistent with MCAR)"
    entry["verdict"] = {
        "decision": decision,
        "signals": [label for _, label, _ in sorted(signals, key=lambda s: -s[0])],
        "negligible": [label for _, label, _ in small],
        "threshold": threshold,
        "alpha": cfg.alpha,
        "basis": "Holm-adjusted p-value below alpha and |standardized mean difference| "
        "or |Cohen's h| at or above the threshold",
    }
    if signals:
        name = subject[: -len(" missingness")]
        parts = [
            _signal_text(name, label, test)
            for _, label, test in sorted(signals, key=lambda s: -s[0])[:TOP_SIGNALS]
        ]
        report.findings.append(
            f"{name}: its missingness goes with {'; '.join(parts)} (Holm-adjusted): not "
            "missing completely at random, consistent with missing at random given those "
            "columns"
        )


def _joint_finding(context: ProtocolContext, cols: _Columns, report: ProtocolReport) -> None:
    """One sentence per group of columns that tend to be missing together."""
    cfg = context.config
    threshold = cfg.min_effect["standardized_difference"]
    parent: dict[str, str] = {}

    def root(name: str) -> str:
        while parent.setdefault(name, name) != name:
            name = parent[name]
        return name

    examples: dict[str, str] = {}
    for slot in cols.state.slots:
        name = cols.name(slot)
        for other, test in report.results.get(f"{name} missingness", {}).get("joint", {}).items():
            p, h = test.get("pvalue_holm"), (test.get("details") or {}).get("cohens_h")
            if not test.get("holm_family") or p is None or h is None:
                continue
            if p < cfg.alpha and abs(h) >= threshold:
                parent[root(other)] = root(name)
                d = test["details"]
                examples.setdefault(
                    name,
                    f"{other} is missing in {format_share(d['p1'])} of rows where {name} is "
                    f"missing and in {format_share(d['p2'])} where it is present, "
                    f"{format_p(p)}",
                )
    groups: dict[str, list[str]] = {}
    for name in parent:
        groups.setdefault(root(name), []).append(name)
    order = [cols.name(slot) for slot in cols.state.slots]
    for members in groups.values():
        members.sort(key=order.index)
        example = next(examples[m] for m in members if m in examples)
        report.findings.append(
            f"{_join(members)} tend to be missing together (e.g. {example}, Holm-adjusted); "
            "joint missingness alone is not evidence against MCAR"
        )


def _signal_text(name: str, label: str, test: dict[str, Any]) -> str:
    d = test["details"]
    if label.startswith("mean of "):
        return (
            f"the {label} ({d['mean_missing']:.4g} where {name} is missing vs "
            f"{d['mean_present']:.4g} where present, standardized difference "
            f"{test['effect_size']:.2f}, Welch {format_p(test['pvalue_holm'])})"
        )
    return (
        f"the {label} ({format_share(d['p1'])} where {name} is missing vs "
        f"{format_share(d['p2'])} where present, Cohen's h {d['cohens_h']:.2f}, "
        f"{format_p(test['pvalue_holm'])})"
    )


# ---------------------------------------------------------------------------------------
# Little's test
# ---------------------------------------------------------------------------------------


def _little(context: ProtocolContext, cols: _Columns) -> dict[str, Any]:
    """Little's MCAR test from the per-pattern moments of the numeric columns that vary."""
    state = cols.state
    moments = state_of(context, "moments", MomentsState)
    use: list[int] = []
    left_out: list[str] = []
    overflow: list[str] = []
    for b, slot in enumerate(state.moment_slots):
        j = moments.column_index(slot)
        m2 = moments.moments.m2[j]
        if not np.isfinite(m2):
            overflow.append(cols.name(slot))
        elif moments.moments.n[j] >= 2 and m2 > 0:
            use.append(b)
        else:
            left_out.append(cols.name(slot))
    if not use:
        return not_applicable_entry(
            "no numeric column with two or more distinct values"
            + (f" and moments within float64 ({', '.join(overflow)} overflow)" if overflow else "")
        )
    index = [state.slots.index(state.moment_slots[b]) for b in use]
    merged: dict[tuple[bool, ...], tuple[int, Any]] = {}
    notes: list[str] = []
    if left_out:
        notes.append(f"constant or empty column(s) left out: {', '.join(left_out)}")
    if overflow:
        notes.append(
            "column(s) whose sum of squared deviations overflows float64 (values near the "
            f"float64 limits) left out: {', '.join(overflow)}"
        )
    for (mask, rows), (_, cm) in zip(
        state.patterns(top=None), state.pattern_comoments(), strict=True
    ):
        finite = np.diag(cm.n)[use]
        present = [not mask[i] for i in index]
        observed = tuple(bool(p and f > 0) for p, f in zip(present, finite, strict=True))
        if any(p and 0 < f < rows for p, f in zip(present, finite, strict=True)):
            notes.append("some observed values are infinite and left out of their pattern")
        zero = _algebra.CoMoments.zeros(len(state.moment_slots))
        before_rows, before = merged.get(observed, (0, zero))
        merged[observed] = (before_rows + rows, _algebra.merge_comoments(before, cm))
    patterns = []
    for observed, (rows, cm) in merged.items():
        o = np.asarray(use)[np.flatnonzero(observed)]
        mean = np.diag(cm.mean)[o] + np.diag(cm.mean_lo)[o]
        patterns.append(PatternStats(np.array(observed), rows, mean, cm.c[np.ix_(o, o)]))
    fold = state.pattern_fold
    if fold.rows:
        notes.append(
            f"{fold.rows} rows in {fold.levels} folded pattern(s) have no kept moments: the "
            "test uses the kept patterns only and is approximate"
        )
    result = quietly(little_mcar, patterns)
    if notes:
        result = dataclasses.replace(
            result,
            approximate=bool(fold.rows) or any("infinite" in n for n in notes),
            warnings=(*result.warnings, *dict.fromkeys(notes)),
        )
    entry = result.to_dict()
    entry["columns"] = [cols.name(state.moment_slots[b]) for b in use]
    return entry


def _little_finding(
    context: ProtocolContext, little: dict[str, Any], report: ProtocolReport
) -> None:
    p = little.get("pvalue_holm")
    if p is None:
        return
    if p < context.config.alpha:
        report.findings.append(
            f"Little's MCAR test rejects missing completely at random over the numeric "
            f"columns (d² = {little['statistic']:.4g}, df = {little['df']}, {format_p(p)}, "
            "Holm-adjusted); the per-column comparisons above show where and how much"
        )
    else:
        report.findings.append(
            f"Little's MCAR test does not reject missing completely at random over the "
            f"numeric columns (d² = {little['statistic']:.4g}, df = {little['df']}, "
            f"{format_p(p)}, Holm-adjusted); this does not prove MCAR"
        )


def _notes(context: ProtocolContext, cols: _Columns) -> list[str]:
    cfg = context.config
    state = cols.state
    notes = [
        "A value is missing when it is null, NaN or equal to a configured sentinel "
        f"({', '.join(repr(s) for s in context.plan.config.sentinels or ())}); infinities, "
        "empty and blank strings are counted apart and not treated as missing.",
        "Mean comparisons are exact: each side merges the per-pattern co-moments of the "
        "patterns where the column is missing, or present, over the rows where the compared "
        "column is observed and finite.",
        "Level proportions compare the distribution of a group column's observed levels "
        "where the column is missing and where it is present; they are available for pairs "
        "of group columns and for numeric columns by group column, not otherwise.",
        "Joint missingness of two columns is reported but does not count against MCAR, "
        "which allows missingness indicators to depend on one another.",
        f"Holm's correction runs over all {NAME} tests; an association is a signal only "
        f"with a Holm-adjusted p-value below {cfg.alpha:g} and an effect of at least "
        f"{cfg.min_effect['standardized_difference']:g} (standardized mean difference or "
        "Cohen's h): with millions of rows every p-value is tiny.",
        "Little's test assumes multivariate normal numeric columns and detects only "
        "missingness related to means; patterns differing only in non-numeric columns are "
        "merged, and a non-significant result does not establish MCAR.",
    ]
    if len(state.numeric_slots) > len(state.moment_slots):
        notes.append(
            f"Per-pattern moments are kept for the first {len(state.moment_slots)} numeric "
            "columns only; the others enter neither the mean comparisons nor Little's test."
        )
    unsupported = [leaf.name for leaf in context.plan.leaves if leaf.role == UNSUPPORTED]
    if unsupported:
        notes.append(f"Only nulls are counted for {', '.join(unsupported[:10])}.")
    return notes
