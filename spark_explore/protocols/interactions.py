"""Exploration protocol 6: interactions between variables.

With a target (``ScanConfig.target``, a numeric column) the protocol asks whether the effect
of one variable on the target depends on another; without one, whether the association of
two numeric columns depends on the level of a categorical column.

Tests run
---------
With a target:

* Two-way ANOVA interaction F-test of the target on every pair of categorical (group)
  columns, with Type II and Type III tables, exact from the per-cell count, mean and sum
  of squares the scan keeps (:func:`~spark_explore.stats.anova.two_way_interaction`);
  unbalanced designs are fitted exactly, empty cells are listed and reduce the
  interaction's degrees of freedom. Rows with a null level are left out; levels beyond the
  cap are pooled into one "other" level, which is reported.
* Numeric x numeric: for every pair of numeric columns, the F-test of the product term
  added to ``target ~ 1 + x1 + x2`` (OLS, ``numpy.linalg.lstsq``, ``scipy.stats.f``), on the
  sample. Sample-based.
* Numeric x categorical: for every numeric column and group column, the F-test of the
  level-specific slopes ``x * C(g)`` added to ``target ~ 1 + x + C(g)``, on the sample; both
  fits decompose by level, so their residual sums of squares come from each level's centred
  sums (the test of parallel slopes). Sample-based.

Without a target:

* Conditional correlation: for every pair of numeric columns and every group column, the
  Pearson correlation within each level of the group on the sample and the chi-square test
  of their equality through Fisher's z, ``Q = sum (n_l - 3)(z_l - zbar)^2`` on ``L - 1``
  df. Sample-based.

States used
-----------
``"cells/<row slot>/<column slot>"``
(:class:`~spark_explore.states.cells.CellMomentsState`, kept for every pair of group
columns when a target is set) and ``"reservoir"``
(:class:`~spark_explore.states.reservoir.ReservoirState`).

Verdicts
--------
Verdicts weigh effect sizes, not p-values alone: an interaction is reported when its
Holm-adjusted p-value (one family: every test of this protocol) is below ``alpha`` and its
partial eta squared (ANOVA) or partial R squared of the added terms (regressions) reaches
``min_effect["eta_squared"]``; a conditional correlation is reported when the spread of the
level correlations (largest minus smallest) reaches ``min_effect["correlation"]``.

References
----------
.. [1] R. A. Fisher, "On the 'probable error' of a coefficient of correlation deduced from
       a small sample", Metron 1, 1921, pp. 3-32 (the z transformation).
.. [2] J. Cohen, P. Cohen, S. G. West and L. S. Aiken, *Applied Multiple
       Regression/Correlation Analysis for the Behavioral Sciences*, 3rd ed., 2003, ch. 7
       (product terms for interactions).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple

import numpy as np
from scipy import stats

from spark_explore.columns import NUMERIC, Leaf
from spark_explore.protocols._common import failure_entry, format_p, quietly, with_warnings
from spark_explore.protocols.base import ProtocolContext, ProtocolReport
from spark_explore.protocols.collinearity import Family, sample_matrix
from spark_explore.protocols.independence import (
    OTHER_LABEL,
    abandoned_reason,
    fold_caveats,
    fold_details,
    level_label,
)
from spark_explore.states._algebra import batch_comoments
from spark_explore.states.grouped import level_codes
from spark_explore.stats.anova import CellStatistics, two_way_interaction
from spark_explore.stats.collinearity import correlation_matrix
from spark_explore.stats.results import SAMPLE, TestResult, not_applicable

NAME = "interactions"

#: At most this many numeric columns (table order) enter the sample screens.
MAX_SCREEN_COLUMNS = 25
#: Levels of a group column kept in the sample screens (most frequent first); the rest
#: are pooled into one "(other)" level.
MAX_SAMPLE_LEVELS = 20
#: A level needs this many complete sampled rows for its correlation to enter Fisher's z.
MIN_LEVEL_ROWS = 4

SLOPES_TEST = "interaction F-test (slopes by level)"
FISHER_Z_TEST = "equality of correlations across levels (Fisher z)"
_REF_PRODUCT = "Cohen, Cohen, West & Aiken (2003), ch. 7: F-test of added product terms"

#: A reduced fit whose residual sum of squares is below this share of the target's total
#: sum of squares fits exactly: what is left is rounding, about eps times the total in the
#: slopes test's ``Syy - Sxy^2 / Sxx``, and an F-test of rounding means nothing.
_EXACT_FIT = 64 * float(np.finfo(np.float64).eps)
_REF_FISHER_Z = "Fisher (1921), Metron 1:3-32: chi-square test of equal correlations via z"


def run(context: ProtocolContext) -> ProtocolReport:
    """Interaction tests with the target, or conditional correlations without one."""
    report = ProtocolReport(NAME)
    family = Family(context.config)
    target = context.plan.config.target
    if target is None:
        report.notes.append(
            "No target column was given (ScanConfig.target): the two-way ANOVA and the "
            "regression screens need one, so only conditional correlations are screened."
        )
        _conditional_correlations(context, family, report)
    else:
        _two_way_anova(context, target, family, report)
        _screen_with_target(context, target, family, report)
    family.close()
    report.findings.extend(family.findings())
    cfg = context.config
    report.notes.append(
        "Verdicts weigh effect sizes, not p-values alone: an interaction is reported when "
        f"its Holm-adjusted p-value is below {cfg.alpha} and its partial eta squared (or "
        f"partial R squared) is at least {cfg.min_effect['eta_squared']}; a conditional "
        "correlation when the level correlations also differ by at least "
        f"{cfg.min_effect['correlation']}."
    )
    return report


def _two_way_anova(
    context: ProtocolContext, target: str, family: Family, report: ProtocolReport
) -> None:
    pairs = context.plan.group_pairs
    if not pairs:
        report.notes.append("Fewer than two group columns: no two-way ANOVA.")
    threshold = context.config.min_effect["eta_squared"]
    for a, b in pairs:
        subject = f"{target} ~ {a.name} * {b.name}"
        family.record(
            report,
            subject,
            "two_way_anova",
            threshold,
            _anova_finding(target, a.name, b.name),
            _cell_anova,
            context,
            a,
            b,
        )


def _cell_anova(context: ProtocolContext, a: Leaf, b: Leaf) -> TestResult:
    key = f"cells/{a.slot}/{b.slot}"
    test = "two-way ANOVA interaction"
    if key not in context.bundle:
        return not_applicable(test, "the scan kept no cell moments for this pair of columns")
    state = context.bundle[key]
    reason = abandoned_reason(state, (a.name, b.name), state.max_levels)
    if reason:
        return not_applicable(test, reason, n=state.n)
    rows, cols, counts, moments = state.cells(drop_null=True)
    cells = CellStatistics(
        tuple(str(level_label(level)) for level in rows),
        tuple(str(level_label(level)) for level in cols),
        moments.n,
        moments.mean + moments.mean_lo,
        moments.m2,
    )
    result = quietly(two_way_interaction, cells, factor_names=(a.name, b.name))
    folds = {a.name: state.row_fold, b.name: state.col_fold}
    caveats = fold_caveats(folds, state.max_levels)
    null_rows = state.n - int(counts.sum())
    missing_target = int(counts.sum() - moments.n.sum())
    if null_rows:
        caveats.append(f"{null_rows} rows with a null level were left out")
    if missing_target:
        caveats.append(f"{missing_target} rows without a finite target value were left out")
    details = {
        **result.details,
        "max_levels": state.max_levels,
        "folded_levels": fold_details(folds),
        "rows_with_null_level": null_rows,
        "rows_without_finite_target": missing_target,
    }
    return dataclasses.replace(with_warnings(result, caveats), details=details)


def _anova_finding(target: str, a: str, b: str) -> Any:
    def describe(entry: dict[str, Any]) -> str:
        empty = entry["details"].get("empty_cells") or []
        tail = f"; {len(empty)} empty cell(s)" if empty else ""
        return (
            f"The effect of {a} on {target} depends on {b} (two-way ANOVA interaction: "
            f"partial eta squared {entry['effect_size']:.3f}, F = {entry['statistic']:.3g}, "
            f"Holm-adjusted {format_p(entry['pvalue_holm'])}{tail})."
        )

    return describe


def _screen_with_target(
    context: ProtocolContext, target: str, family: Family, report: ProtocolReport
) -> None:
    plan = context.plan
    numeric = [leaf for leaf in plan.leaves if leaf.role == NUMERIC and leaf.name != target]
    if len(numeric) > MAX_SCREEN_COLUMNS:
        report.notes.append(
            f"The sample screens use the first {MAX_SCREEN_COLUMNS} numeric columns; "
            f"{[leaf.name for leaf in numeric[MAX_SCREEN_COLUMNS:]][:10]} are left out."
        )
        numeric = numeric[:MAX_SCREEN_COLUMNS]
    y = sample_matrix(context, [plan.leaf(target)])[:, 0]
    x = sample_matrix(context, numeric)
    threshold = context.config.min_effect["eta_squared"]
    for i, first in enumerate(numeric):
        for j in range(i + 1, len(numeric)):
            subject = f"{target} ~ {first.name} * {numeric[j].name}"
            family.record(
                report,
                subject,
                "product_term",
                threshold,
                _screen_finding(target, first.name, numeric[j].name),
                _product_term,
                y,
                x[:, i],
                x[:, j],
            )
    for group in plan.group_leaves:
        reason = _not_grouping(context, group)
        labels = None if reason else _sample_levels(context, group)
        for i, leaf in enumerate(numeric):
            subject = f"{target} ~ {leaf.name} * {group.name}"
            compute, args = (
                (not_applicable, (SLOPES_TEST, reason))
                if reason
                else (_slopes_by_level, (y, x[:, i], labels))
            )
            family.record(
                report,
                subject,
                "slopes_by_level",
                threshold,
                _screen_finding(target, leaf.name, group.name),
                compute,
                *args,
            )
    report.notes.append(
        "Numeric x numeric and numeric x categorical interactions are screened on the "
        f"uniform sample (marked '{SAMPLE}')."
    )


def _screen_finding(target: str, a: str, b: str) -> Any:
    def describe(entry: dict[str, Any]) -> str:
        return (
            f"On the sample, the effect of {a} on {target} changes with {b} (interaction "
            f"F-test: partial R squared {entry['effect_size']:.3f}, Holm-adjusted "
            f"{format_p(entry['pvalue_holm'])}; sample-based)."
        )

    return describe


def _unit_scaled(v: np.ndarray) -> tuple[np.ndarray, int]:
    """``v * 2**-e`` and ``e``, the binary exponent of the largest finite ``|v|``.

    The rescaling is exact (but for results that become subnormal) and the F-tests here
    are invariant to it; it keeps the sums of squares of values near the float64 limits
    (say 1e308) finite.
    """
    finite = v[np.isfinite(v)]
    top = float(np.abs(finite).max()) if finite.size else 0.0
    if top == 0.0:
        return v, 0
    e = int(np.frexp(top)[1])
    return np.ldexp(v, -e), e


def _standardised(v: np.ndarray) -> np.ndarray:
    """Centred and scaled copy (the F-test of a product term is invariant to both)."""
    v = _unit_scaled(v)[0]
    spread = v.std()
    return (v - v.mean()) / (spread if spread > 0 else 1.0)


def _product_term(y: np.ndarray, x1: np.ndarray, x2: np.ndarray) -> TestResult:
    """F-test of ``x1 * x2`` added to ``y ~ 1 + x1 + x2`` on complete sampled rows."""
    rows = np.isfinite(y) & np.isfinite(x1) & np.isfinite(x2)
    a, b = _standardised(x1[rows]), _standardised(x2[rows])
    one = np.ones(a.size)
    reduced = np.column_stack([one, a, b])
    full = np.column_stack([reduced, a * b])
    y, e = _unit_scaled(y[rows])
    test = "interaction F-test (added product term)"
    return _nested_f(y, reduced, full, test, {}, scale=2 * e)


class _Levels(NamedTuple):
    """A group column on the sample: each row's level index (-1 for null) and the names."""

    codes: np.ndarray
    names: list[str]


def _sample_levels(context: ProtocolContext, group: Leaf) -> _Levels:
    """The sample's levels of a group column, the less frequent levels beyond
    ``MAX_SAMPLE_LEVELS - 1`` pooled into one ``OTHER_LABEL`` level (listed last)."""
    reservoir = context.bundle["reservoir"]
    if reservoir.num_rows == 0:
        return _Levels(np.zeros(0, dtype=np.intp), [])
    levels, codes = level_codes(reservoir.column(group.slot), group.slot, NAME)
    sizes = np.bincount(codes, minlength=len(levels))
    order = [int(c) for c in np.argsort(-sizes, kind="stable") if levels[c] is not None]
    pooled = len(order) > MAX_SAMPLE_LEVELS
    names = sorted(str(levels[c]) for c in (order[: MAX_SAMPLE_LEVELS - 1] if pooled else order))
    index = {level: i for i, level in enumerate(names)}
    target = np.array(
        [-1 if level is None else index.get(level, len(names)) for level in levels],
        dtype=np.intp,
    )
    return _Levels(target[codes], [*names, OTHER_LABEL] if pooled else names)


def _not_grouping(context: ProtocolContext, group: Leaf) -> str | None:
    """Why the scan treats a group column as no grouping column, or None."""
    state = context.bundle.get(f"grouped/{group.slot}")
    return None if state is None else abandoned_reason(state, (group.name,), state.max_groups)


def _slopes_by_level(y: np.ndarray, x: np.ndarray, levels: _Levels) -> TestResult:
    """F-test of level-specific slopes ``x * C(g)`` added to ``y ~ 1 + x + C(g)``.

    Both fits decompose by level, so the residual sums of squares come from each level's
    centred sums ``Sxx``, ``Sxy`` and ``Syy`` (the test of parallel slopes): separate lines
    leave ``sum (Syy - Sxy^2 / Sxx)``, a common slope ``sum Syy - (sum Sxy)^2 / sum Sxx``.
    A level whose x is constant has no slope of its own and costs no degree of freedom.
    """
    test = SLOPES_TEST
    rows = np.isfinite(y) & np.isfinite(x) & (levels.codes >= 0)
    codes, (yv, e), (xv, _) = levels.codes[rows], _unit_scaled(y[rows]), _unit_scaled(x[rows])
    counts = np.bincount(codes, minlength=len(levels.names))
    present = np.flatnonzero(counts)
    n = int(rows.sum())
    if present.size < 2:
        return not_applicable(
            test,
            f"{present.size} level(s) in the complete sampled rows; 2 are needed",
            n=n,
            method=SAMPLE,
            reference=_REF_PRODUCT,
        )
    sums = np.zeros((present.size, 3))  # Sxx, Sxy, Syy per level
    sloped = np.zeros(present.size, dtype=bool)
    for k, level in enumerate(present):
        xl, yl = xv[codes == level], yv[codes == level]
        xc, yc = xl - xl.mean(), yl - yl.mean()
        sums[k] = (xc @ xc, xc @ yc, yc @ yc)
        sloped[k] = xl.max() > xl.min()
    sxx, sxy, syy = sums[sloped].T
    if sloped.sum() < 2:
        return not_applicable(
            test,
            "x varies within fewer than 2 levels, so slopes cannot differ",
            n=n,
            method=SAMPLE,
            reference=_REF_PRODUCT,
        )
    sse_full = float(sums[:, 2].sum() - (sxy * sxy / sxx).sum())
    sse_reduced = float(sums[:, 2].sum() - sxy.sum() ** 2 / sxx.sum())
    details = {"levels": {levels.names[i]: int(counts[i]) for i in present}}
    df1, df2 = float(sloped.sum() - 1), float(n - present.size - sloped.sum())
    total = float(((yv - yv.mean()) ** 2).sum())
    return _partial_f(
        sse_reduced, max(sse_full, 0.0), df1, df2, n, test, details, scale=2 * e, total=total
    )


def _nested_f(
    y: np.ndarray,
    reduced: np.ndarray,
    full: np.ndarray,
    test: str,
    details: dict[str, Any],
    *,
    scale: int = 0,
) -> TestResult:
    """Partial F-test of the columns ``full`` adds to ``reduced`` (least squares, ranks
    from ``numpy.linalg.lstsq``, so aliased columns cost no degrees of freedom)."""
    n = y.size
    if n == 0:
        return not_applicable(test, "no complete sampled rows", n=0, method=SAMPLE)
    sse_r, rank_r = _least_squares(reduced, y)
    sse_f, rank_f = _least_squares(full, y)
    df1, df2 = float(rank_f - rank_r), float(n - rank_f)
    total = float(((y - y.mean()) ** 2).sum())
    return _partial_f(sse_r, sse_f, df1, df2, n, test, details, scale=scale, total=total)


def _partial_f(
    sse_r: float,
    sse_f: float,
    df1: float,
    df2: float,
    n: int,
    test: str,
    details: dict[str, Any],
    *,
    scale: int = 0,
    total: float = 0.0,
) -> TestResult:
    """F = ((SSE_r - SSE_f) / df1) / (SSE_f / df2), with partial R^2 as the effect size.

    The sums of squares are those of the target times ``2**(-scale / 2)``; the details
    report them in the target's units (``inf``, so null, where that overflows float64).
    ``total`` is the target's sum of squares about its mean, in the same units: an SSE_r
    within rounding of it (:data:`_EXACT_FIT`) is an exact fit.
    """
    if df1 <= 0:
        return not_applicable(
            test,
            "the interaction columns are collinear with the main effects",
            n=n,
            method=SAMPLE,
            reference=_REF_PRODUCT,
        )
    if df2 <= 0:
        return not_applicable(
            test,
            f"{n} complete sampled rows leave no residual degrees of freedom",
            n=n,
            method=SAMPLE,
            reference=_REF_PRODUCT,
        )
    if sse_r <= _EXACT_FIT * total:
        return not_applicable(
            test,
            "the main effects fit the target exactly (up to rounding)",
            n=n,
            method=SAMPLE,
            reference=_REF_PRODUCT,
        )
    gain = max(sse_r - sse_f, 0.0)
    f_stat = math.inf if sse_f <= 0 else (gain / df1) / (sse_f / df2)
    return TestResult(
        f_stat,
        float(stats.f.sf(f_stat, df1, df2)),
        test,
        n=n,
        df=(df1, df2),
        effect_size=gain / sse_r,
        effect_size_name="partial R^2 of the interaction terms",
        method=SAMPLE,
        approximate=True,
        reference=_REF_PRODUCT,
        details={
            **details,
            "ss_residual_reduced": _unscaled(sse_r, scale),
            "ss_residual_full": _unscaled(sse_f, scale),
        },
    )


def _unscaled(value: float, scale: int) -> float:
    with np.errstate(over="ignore"):
        return float(np.ldexp(value, scale))


def _least_squares(design: np.ndarray, y: np.ndarray) -> tuple[float, int]:
    """Residual sum of squares and numerical rank of a least-squares fit."""
    coef, _, rank, _ = np.linalg.lstsq(design, y, rcond=None)
    residual = y - design @ coef
    return float(residual @ residual), int(rank)


def _conditional_correlations(
    context: ProtocolContext, family: Family, report: ProtocolReport
) -> None:
    plan = context.plan
    numeric = [leaf for leaf in plan.leaves if leaf.role == NUMERIC][:MAX_SCREEN_COLUMNS]
    groups = plan.group_leaves
    if len(numeric) < 2 or not groups:
        report.notes.append(
            "Conditional correlations need two numeric columns and a group column; "
            f"the table has {len(numeric)} and {len(groups)}."
        )
        return
    x = sample_matrix(context, numeric)
    threshold = context.config.min_effect["correlation"]
    for group in groups:
        subject = f"(correlations by {group.name})"
        reason = _not_grouping(context, group)
        if reason:  # one entry for every pair
            family.record(
                report,
                subject,
                "equal_correlations",
                None,
                None,
                not_applicable,
                FISHER_Z_TEST,
                reason,
            )
            continue
        try:
            per_level, left_out = _level_correlations(x, _sample_levels(context, group))
        except Exception as exc:  # one bad group column must not lose the others
            report.results[subject] = {"equal_correlations": failure_entry(subject, exc)}
            continue
        for i, a in enumerate(numeric):
            for j in range(i + 1, len(numeric)):
                subject = f"{a.name} ~ {numeric[j].name} | {group.name}"
                family.record(
                    report,
                    subject,
                    "equal_correlations",
                    threshold,
                    _correlation_finding(a.name, numeric[j].name, group.name),
                    _fisher_z,
                    per_level,
                    left_out,
                    i,
                    j,
                )
    report.notes.append(
        f"Conditional correlations are computed on the uniform sample (marked '{SAMPLE}')."
    )


def _level_correlations(
    x: np.ndarray, levels: _Levels
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], dict[str, str]]:
    """Pairwise-complete correlation and count matrices of the sample within each level."""
    per_level: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    left_out: dict[str, str] = {}
    for index, level in enumerate(levels.names):
        rows = levels.codes == index
        if rows.sum() < MIN_LEVEL_ROWS:
            left_out[level] = f"{int(rows.sum())} sampled rows; {MIN_LEVEL_ROWS} are needed"
            continue
        part = x[rows]
        comoments = batch_comoments(part, np.isfinite(part))
        per_level[level] = (correlation_matrix(comoments), comoments.n)
    return per_level, left_out


def _fisher_z(
    per_level: dict[str, tuple[np.ndarray, np.ndarray]],
    left_out: dict[str, str],
    i: int,
    j: int,
) -> TestResult:
    """Chi-square test that a pair's correlation is the same in every level [1]_."""
    test = FISHER_Z_TEST
    used: dict[str, tuple[float, int]] = {}
    skipped = dict(left_out)
    for level, (r, n) in per_level.items():
        r_ij, n_ij = float(r[i, j]), int(n[i, j])
        if n_ij < MIN_LEVEL_ROWS:
            skipped[level] = f"{n_ij} complete sampled rows; {MIN_LEVEL_ROWS} are needed"
        elif not math.isfinite(r_ij):
            skipped[level] = (
                "a column is constant in this level, or its squares overflow float64: r is "
                "undefined"
            )
        elif abs(r_ij) == 1.0:
            skipped[level] = "perfect correlation in this level: Fisher's z is infinite"
        else:
            used[level] = (r_ij, n_ij)
    details = {
        "levels": {level: {"r": r, "n": n} for level, (r, n) in used.items()},
        "levels_left_out": skipped,
    }
    if len(used) < 2:
        return TestResult(
            None,
            None,
            test,
            n=sum(n for _, n in used.values()),
            method=SAMPLE,
            applicable=False,
            reason=f"{len(used)} level(s) with a defined correlation; 2 are needed",
            reference=_REF_FISHER_Z,
            details=details,
        )
    r = np.array([v[0] for v in used.values()])
    n = np.array([v[1] for v in used.values()], dtype=np.float64)
    w = n - 3.0  # var(z_l) = 1 / (n_l - 3) [1]
    z = np.arctanh(r)
    z_bar = float(w @ z / w.sum())
    q = float(w @ (z - z_bar) ** 2)
    df = len(used) - 1.0
    return TestResult(
        q,
        float(stats.chi2.sf(q, df)),
        test,
        n=int(n.sum()),
        df=df,
        effect_size=float(r.max() - r.min()),
        effect_size_name="spread of the level correlations (max r - min r)",
        method=SAMPLE,
        approximate=True,
        reference=_REF_FISHER_Z,
        details={**details, "pooled_r": math.tanh(z_bar)},
    )


def _correlation_finding(a: str, b: str, group: str) -> Any:
    def describe(entry: dict[str, Any]) -> str:
        levels = entry["details"]["levels"]
        low = min(levels, key=lambda k: levels[k]["r"])
        high = max(levels, key=lambda k: levels[k]["r"])
        return (
            f"On the sample, the correlation of {a} and {b} changes with {group}: r = "
            f"{levels[low]['r']:.2f} for {low} but {levels[high]['r']:.2f} for {high} "
            f"(Fisher z test, Holm-adjusted {format_p(entry['pvalue_holm'])}; sample-based)."
        )

    return describe
