"""Outliers protocol: fences and outlier shares per numeric column, Mahalanobis on the sample.

For every numeric column (role ``"numeric"``) the protocol computes four pairs of fences
and, for each, the share of the column's finite values beyond them, read from the quantile
sketch with its error bound. For the numeric columns of the co-moment matrix together, it
scores the uniform sample's complete rows by their Mahalanobis distance under the table's
exact mean and covariance and lists the rows beyond the chi-square cut-off. The fences are
what ``jobs/flag_outliers.py`` applies, in a second job, to write the outlier rows out.

Tests run
---------
Tukey's fences, inner and outer (``ProtocolConfig.tukey_k``, 1.5 and 3 IQR)
    From the sketch quartiles (:func:`~spark_explore.stats.outliers.tukey_fences`).
Robust z rule (``ProtocolConfig.robust_z``, 3.5)
    Median and MAD from the sketch (:func:`~spark_explore.stats.outliers.mad_from_rank`,
    :func:`~spark_explore.stats.outliers.robust_z_bounds`).
z rule (``ProtocolConfig.z``, 3)
    Exact mean and standard deviation (:func:`~spark_explore.stats.outliers.z_bounds`).
Share beyond each pair of fences
    From the sketch (:func:`~spark_explore.stats.outliers.share_beyond`): within the
    sketch's rank error on each side, exact when the sketch still holds every value.
Mahalanobis distance of the sample rows
    :func:`~spark_explore.stats.outliers.mahalanobis_outliers` with the chi-square cut-off
    at ``1 - ProtocolConfig.mahalanobis_alpha``; a binomial tail probability says whether
    more rows lie beyond it than multivariate normal data would put there.

States used
-----------
``"kll/<slot>"`` (quartiles, median, MAD, shares), ``"moments"`` (mean, sd, counts),
``"comoments"`` (covariance), ``"reservoir"`` (the sample rows).

Verdicts
--------
No p-value decides a column: a rule's share is *notable* when it exceeds its error bound
(so it is distinguishable from zero) and twice the share a normal distribution puts beyond
the same fences. The sample's multivariate outliers are notable when the binomial tail
probability of their count is below ``ProtocolConfig.alpha`` and their share is at least
twice the cut-off's tail probability.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
from scipy import stats

from spark_explore.columns import NUMBER_ROLES, NUMERIC, Leaf
from spark_explore.protocols._common import (
    exact_moments,
    failure_entry,
    format_p,
    format_share,
    not_applicable_entry,
    quietly,
    sample_column,
    sample_rows,
    sketch_error,
    state_of,
)
from spark_explore.protocols.base import ProtocolConfig, ProtocolContext, ProtocolReport
from spark_explore.states.batch import to_float64
from spark_explore.states.comoments import CoMomentState
from spark_explore.states.quantiles import KllState
from spark_explore.stats.outliers import (
    mad_from_rank,
    mahalanobis_outliers,
    robust_z_bounds,
    share_beyond,
    tukey_fences,
    z_bounds,
)

logger = logging.getLogger(__name__)


NAME = "outliers"

#: Sample rows listed for the multivariate rule (the count of all of them is reported).
MAX_LISTED_ROWS = 20

#: Column added to the flagged rows' values: the squared Mahalanobis distance.
DISTANCE_KEY = "_mahalanobis_d2"


# ---------------------------------------------------------------------------------------
# Helpers shared by the protocols
# ---------------------------------------------------------------------------------------


def run(context: ProtocolContext) -> ProtocolReport:
    """Fences, outlier shares and multivariate outliers of the profiled table."""
    report = ProtocolReport(NAME)
    ranked: list[tuple[float, str]] = []
    for leaf in context.plan.leaves:
        if leaf.role in NUMBER_ROLES and leaf.role != NUMERIC:
            report.results[leaf.name] = not_applicable_entry(
                f"outlier rules apply to numeric columns; this is a {leaf.role} column"
                f" ({leaf.measure})"
            )
            continue
        if leaf.role != NUMERIC:
            continue
        try:
            entry, finding = column_outliers(context, leaf)
        except Exception as exc:  # one bad column must not abort the protocol
            entry, finding = failure_entry(leaf.name, exc), None
        report.results[leaf.name] = entry
        if finding is not None:
            ranked.append(finding)
    report.findings.extend(text for _, text in sorted(ranked, key=lambda item: -item[0]))
    try:
        entry, sentence = multivariate_outliers(context)
    except Exception as exc:  # the univariate results stand on their own
        entry, sentence = failure_entry("multivariate", exc), None
    report.results["multivariate (Mahalanobis)"] = entry
    if sentence:
        report.findings.append(sentence)
    report.notes.extend(_notes(context))
    return report


def rule_names(config: ProtocolConfig) -> list[str]:
    """The rule keys of a column's results, e.g. ``["tukey1.5", "tukey3", "robust_z", "z"]``;
    these are also the names ``jobs/flag_outliers.py --rules`` accepts."""
    return [f"tukey{k:g}" for k in config.tukey_k] + ["robust_z", "z"]


def column_outliers(
    context: ProtocolContext, leaf: Leaf
) -> tuple[dict[str, Any], tuple[float, str] | None]:
    """One numeric column's fences and shares, and its finding (ranked by share) if any."""
    cfg = context.config
    kll = state_of(context, f"kll/{leaf.slot}", KllState)
    n = kll.n
    if n == 0:
        return not_applicable_entry("the column has no finite values"), None
    eps = sketch_error(kll)
    errors = (eps, sketch_error(kll, double_sided=True))
    q1, median, q3 = kll.quantiles([0.25, 0.5, 0.75])
    lowest, highest = kll.min, kll.max
    assert median is not None and lowest is not None and highest is not None  # n > 0
    fences: dict[str, Any] = {}
    expected: dict[str, float] = {}
    for k in cfg.tukey_k:
        name = f"tukey{k:g}"
        fences[name] = quietly(tukey_fences, q1, q3, k, rank_error=eps)
        # a normal distribution's share beyond q1 - k IQR and q3 + k IQR
        expected[name] = float(2 * stats.norm.sf(stats.norm.ppf(0.75) * (1 + 2 * k)))
    mad, mad_bound = mad_from_rank(kll.rank, median, lowest, highest, eps)
    fences["robust_z"] = quietly(
        robust_z_bounds, median, mad, cfg.robust_z, rank_error=min(1.0, mad_bound)
    )
    expected["robust_z"] = float(2 * stats.norm.sf(cfg.robust_z))
    _, mean, m2, _, _ = exact_moments(context, leaf)
    std = math.sqrt(m2 / (n - 1)) if n >= 2 else None
    fences["z"] = quietly(z_bounds, mean, std, cfg.z, n=n)
    expected["z"] = float(2 * stats.norm.sf(cfg.z))
    entry: dict[str, Any] = {"n": n, "rank_error": eps, "sketch_exact": eps == 0.0}
    for name, rule in fences.items():
        share = quietly(
            share_beyond,
            kll.rank,
            rule.low,
            rule.high,
            n,
            eps,
            min_value=lowest,
            max_value=highest,
        )
        entry[name] = _rule_entry(rule, share, expected[name], errors, lowest, highest)
    entry["mad"] = {"value": mad, "rank_error_bound": mad_bound, "method": "sketch"}
    return entry, _column_finding(leaf.name, entry, cfg.tukey_k)


def _rule_entry(
    rule: Any,
    share: Any,
    expected: float,
    errors: tuple[float, float],
    lowest: float,
    highest: float,
) -> dict[str, Any]:
    """The JSON entry of one rule: its fences, the share beyond them and the verdict."""
    eps, pmf_eps = errors
    out: dict[str, Any] = {
        "low": rule.low,
        "high": rule.high,
        "fences": rule.to_dict(),
        "share": share.to_dict(),
        "normal_share": expected,
    }
    if not share.applicable:
        out.update(applicable=False, reason=rule.reason or share.reason)
        return out
    # each side's share is within eps of the truth unless the fence lies beyond the
    # column's exact extreme (that side is then exactly 0); with both sides estimated the
    # total is the mass outside an interval, within the sketch's double-sided error
    estimated = int(rule.low > lowest) + int(rule.high < highest)
    bound = (0.0, eps, pmf_eps)[estimated]
    total = share.share_low + share.share_high
    out.update(
        applicable=True,
        share_total=total,
        share_error_bound=bound,
        count_estimate=share.count_low + share.count_high,
        count_error_bound=bound * share.n,
        notable=bool(total > bound and total > 2 * expected),
    )
    return out


def _column_finding(
    name: str, entry: dict[str, Any], tukey_k: tuple[float, ...]
) -> tuple[float, str] | None:
    inner, outer = (f"tukey{k:g}" for k in (min(tukey_k), max(tukey_k)))
    first = entry.get(inner, {})
    second = entry.get(outer, {})
    if not (first.get("notable") or second.get("notable")):
        return None
    low, high = first["low"], first["high"]
    far = second.get("share_total", 0.0)
    outer = (
        f"{format_share(far)} beyond the outer {max(tukey_k):g} IQR fences"
        if far > 0
        else f"none beyond the outer {max(tukey_k):g} IQR fences"
    )
    text = (
        f"{name}: {format_share(first['share_total'])} of values lie beyond the Tukey "
        f"{min(tukey_k):g} IQR fences [{low:.4g}, {high:.4g}] ({_estimate_text(first)}), "
        f"{outer}; a normal distribution puts {format_share(first['normal_share'])} beyond "
        "the inner ones"
    )
    return float(first["share_total"]), text


def _estimate_text(rule: dict[str, Any]) -> str:
    if rule["share_error_bound"] == 0:
        return "exact: the sketch holds every value"
    return f"sketch estimate, +/- {format_share(rule['share_error_bound'])}"


def multivariate_outliers(context: ProtocolContext) -> tuple[dict[str, Any], str | None]:
    """Mahalanobis distances of the sample's complete rows under the exact mean and
    covariance of the co-moment columns; the rows beyond the cut-off, listed."""
    cfg = context.config
    state = state_of(context, "comoments", CoMomentState)
    leaves = list(context.plan.comoment_leaves)
    cov = state.covariance()
    keep = [j for j in range(len(leaves)) if np.isfinite(cov[j, j]) and cov[j, j] > 0]
    dropped = [leaves[j].name for j in range(len(leaves)) if j not in keep]
    # drop columns whose covariance with a kept column is undefined (< 2 common rows)
    while keep:
        sub = cov[np.ix_(keep, keep)]
        bad = (~np.isfinite(sub)).sum(axis=0)
        if not bad.any():
            break
        worst = keep[int(np.argmax(bad))]
        dropped.append(leaves[worst].name)
        keep.remove(worst)
    if len(keep) < 2:
        return (
            not_applicable_entry(
                "needs two or more numeric columns with a defined, non-zero variance in the "
                f"co-moment matrix; found {len(keep)}"
            ),
            None,
        )
    chosen = [leaves[j] for j in keep]
    mean = np.array([exact_moments(context, leaf)[1] for leaf in chosen])
    sigma = cov[np.ix_(keep, keep)]
    sample = context.sample()
    if sample.num_rows == 0:
        return not_applicable_entry("the sample is empty"), None
    matrix = np.column_stack([to_float64(sample_column(context, x.slot)) for x in chosen])
    result = quietly(mahalanobis_outliers, matrix, mean, sigma, cfg.mahalanobis_alpha)
    entry: dict[str, Any] = {"columns": [leaf.name for leaf in chosen], "left_out": dropped}
    entry.update(result.to_dict())
    if not result.applicable:
        return entry, None
    count = len(result.indices)
    tail = float(stats.binom.sf(count - 1, result.n, cfg.mahalanobis_alpha)) if count else 1.0
    rows = sample_rows(context, result.indices[:MAX_LISTED_ROWS])
    for row, i in zip(rows, result.indices, strict=False):
        row[DISTANCE_KEY] = float(result.distances[i])
    notable = tail < cfg.alpha and (result.share or 0.0) >= 2 * cfg.mahalanobis_alpha
    entry.update(
        count=count,
        rows_listed=len(rows),
        rows=rows,
        expected_share=cfg.mahalanobis_alpha,
        binomial_pvalue=tail,
        notable=bool(notable),
    )
    if not notable:
        return entry, None
    columns = ", ".join(entry["columns"][:6])
    if len(entry["columns"]) > 6:
        columns = f"{len(entry['columns'])} numeric columns ({columns}, ...)"
    sentence = (
        f"{count} of {result.n} complete sample rows ({format_share(result.share or 0.0)}) lie "
        f"beyond the chi-square({result.df}) {100 * (1 - cfg.mahalanobis_alpha):g} % cut-off "
        f"of the squared Mahalanobis distance over {columns}, where "
        f"{format_share(cfg.mahalanobis_alpha)} is expected (binomial {format_p(tail)}); "
        f"the most extreme row has D² = {rows[0][DISTANCE_KEY]:.4g}"
    )
    return entry, sentence


def _notes(context: ProtocolContext) -> list[str]:
    cfg = context.config
    notes = [
        "Shares beyond the fences are read from each column's KLL sketch: each side is "
        "within the sketch's rank error of the true share and the total within its "
        "double-sided (PMF) error, both the 99th percentile bounds DataSketches states for "
        "the sketch size; a side is exact where its fence lies beyond the column's exact "
        "minimum or maximum, and everything is exact for a column whose sketch still holds "
        "all its values.",
        f"Tukey fences use the sketch quartiles; the robust z rule (cut-off {cfg.robust_z:g}) "
        "the sketch median and the MAD found from the same sketch; the z rule (cut-off "
        f"{cfg.z:g}) the exact mean and standard deviation, which outliers inflate.",
        "Only finite values are judged; null, NaN and infinite values are counted by the "
        "missing-values protocol.",
        "A rule's share is notable when it exceeds its error bound and twice the share a "
        "normal distribution puts beyond the same fences; no p-value decides a column.",
        "Mahalanobis distances use the exact mean of each column and the pairwise-complete "
        "covariance of the co-moment state (each pair over the rows where both values are "
        "finite); with missing values that matrix need not describe any single set of rows, "
        "and only the sample's rows complete in every column are scored. Outliers inflate "
        "the covariance they are measured with and can mask one another.",
    ]
    left_out = [leaf.name for leaf in context.plan.comoment_left_out]
    if left_out:
        notes.append(
            f"{len(left_out)} numeric column(s) beyond the co-moment limit are not in the "
            f"multivariate rule: {', '.join(left_out[:10])}"
        )
    return notes
