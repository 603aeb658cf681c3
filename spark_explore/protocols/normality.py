"""Normality protocol: is each numeric column plausibly normal, and how far from it is it?

Subjects are the numeric columns (role ``"numeric"``); columns of other number roles
(dates, lengths) get a not-applicable entry, and so does a column with fewer than 8 finite
values.

Tests run
---------
From the exact moments (n, M2, M3, M4 of every finite value)
    D'Agostino's skewness test, Anscombe-Glynn's kurtosis test, D'Agostino-Pearson's K²
    and Jarque-Bera (:mod:`spark_explore.stats.normality`); each equals scipy on the raw
    column.
From the uniform sample
    Shapiro-Wilk on at most 5000 of the column's sampled values (the first 5000 in the
    sample's random key order, themselves a uniform sample) and Anderson-Darling on all of
    them.
From the quantile sketch
    The Kolmogorov-Smirnov distance between the column and the normal with its exact mean
    and standard deviation, evaluated at the sketch quantiles 1 %, ..., 99 %, and the QQ
    points (fitted normal quantiles against sketch quantiles) for the report's plot.

States used
-----------
``"moments"``, ``"kll/<slot>"``, ``"reservoir"``.

Verdicts
--------
Holm's correction runs over every p-value of the protocol. A column is called *not normal*
when some test's Holm-adjusted p-value is below ``ProtocolConfig.alpha`` and its skewness
or excess kurtosis reaches ``min_effect["skewness"]`` or ``min_effect["excess_kurtosis"]``
in absolute value; a significant departure with smaller shape statistics is reported as
negligible, since with millions of rows every p-value is tiny.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from spark_explore.columns import NUMBER_ROLES, NUMERIC, Leaf
from spark_explore.protocols._common import (
    apply_holm,
    exact_moments,
    failure_entry,
    format_p,
    format_share,
    not_applicable_entry,
    quietly,
    sketch_error,
    state_of,
)
from spark_explore.protocols.base import ProtocolContext, ProtocolReport
from spark_explore.states.quantiles import KllState
from spark_explore.stats.normality import (
    MAX_N_SHAPIRO,
    MIN_N_SKEW,
    anderson_darling,
    dagostino_pearson,
    jarque_bera,
    ks_distance_from_cdf,
    kurtosis_test,
    qq_points,
    shapiro_wilk,
    skewness_test,
)
from spark_explore.stats.results import not_applicable
from spark_explore.summary import moment_statistics

NAME = "normality"

#: The test keys of a column's results that carry p-values, in report order.
TESTS = (
    "skewness",
    "kurtosis",
    "dagostino_pearson",
    "jarque_bera",
    "shapiro_wilk",
    "anderson_darling",
)

#: Probabilities of the QQ points and of the KS evaluation grid.
GRID = tuple(round(0.01 * i, 2) for i in range(1, 100))


def run(context: ProtocolContext) -> ProtocolReport:
    """Normality tests, KS distance and QQ data of every numeric column."""
    report = ProtocolReport(NAME)
    columns: list[str] = []
    for leaf in context.plan.leaves:
        if leaf.role in NUMBER_ROLES and leaf.role != NUMERIC:
            report.results[leaf.name] = not_applicable_entry(
                f"normality is tested for numeric columns; this is a {leaf.role} column"
            )
            continue
        if leaf.role != NUMERIC:
            continue
        try:
            report.results[leaf.name] = column_normality(context, leaf)
        except Exception as exc:  # one bad column must not abort the protocol
            report.results[leaf.name] = failure_entry(leaf.name, exc)
            continue
        columns.append(leaf.name)
    apply_holm([report.results[c][t] for c in columns for t in TESTS if t in report.results[c]])
    ranked: list[tuple[float, str]] = []
    negligible: list[str] = []
    for name in columns:
        entry = report.results[name]
        if entry.get("applicable") is False:
            continue
        verdict, sentence, shape = _verdict(context, name, entry)
        entry["verdict"] = verdict
        if sentence:
            ranked.append((shape, sentence))
        elif verdict["decision"].startswith("negligible"):
            negligible.append(name)
    report.findings.extend(text for _, text in sorted(ranked, key=lambda item: -item[0]))
    if negligible:
        cfg = context.config
        report.findings.append(
            f"{', '.join(negligible)}: departures from normality are statistically "
            f"significant but small (|skewness| < {cfg.min_effect['skewness']:g} and "
            f"|excess kurtosis| < {cfg.min_effect['excess_kurtosis']:g}); treat as "
            "approximately normal"
        )
    report.notes.extend(_notes(context))
    return report


def column_normality(context: ProtocolContext, leaf: Leaf) -> dict[str, Any]:
    """One numeric column's tests, KS distance and QQ points."""
    n, mean, m2, m3, m4 = exact_moments(context, leaf)
    if n < MIN_N_SKEW:
        return not_applicable_entry(f"needs at least {MIN_N_SKEW} finite values, found {int(n)}")
    statistics, undefined = moment_statistics(n, mean, m2, m3, m4)
    if "std" in undefined:  # M2 overflows or underflows float64
        return not_applicable_entry(undefined["std"])
    if m2 <= 0:
        return not_applicable_entry("the column is constant (zero variance)")
    std = statistics["std"]
    skew_na, kurt_na = undefined.get("skewness"), undefined.get("kurtosis")
    entry: dict[str, Any] = {
        "n": int(n),
        "mean": mean,
        "std": std,
        "shape": {
            "skewness": statistics.get("skewness"),
            "excess_kurtosis": statistics.get("kurtosis"),
        },
    }
    entry["skewness"] = _exact_test(skew_na, skewness_test, n, m2, m3, mean=mean)
    entry["kurtosis"] = _exact_test(kurt_na, kurtosis_test, n, m2, m4, mean=mean)
    both_na = skew_na or kurt_na
    entry["dagostino_pearson"] = _exact_test(both_na, dagostino_pearson, n, m2, m3, m4, mean=mean)
    entry["jarque_bera"] = _exact_test(both_na, jarque_bera, n, m2, m3, m4, mean=mean)
    values = context.sample_values(leaf)
    shapiro = quietly(shapiro_wilk, values[:MAX_N_SHAPIRO]).to_dict()
    shapiro["details"]["sample_values"] = int(values.size)
    shapiro["details"]["values_used"] = int(min(values.size, MAX_N_SHAPIRO))
    entry["shapiro_wilk"] = shapiro
    entry["anderson_darling"] = quietly(anderson_darling, values).to_dict()
    kll = state_of(context, f"kll/{leaf.slot}", KllState)
    eps = sketch_error(kll)
    quantiles = kll.quantiles(list(GRID))
    points = np.unique(np.array([q for q in quantiles if q is not None], dtype=np.float64))
    entry["ks_distance"] = quietly(
        ks_distance_from_cdf, kll.rank, mean, std, eps, points=points, n=int(n)
    ).to_dict()
    qq = qq_points(dict(zip(GRID, quantiles, strict=True)), mean, std).to_dict()
    qq.update(method="sketch", rank_error=eps)
    entry["qq"] = qq
    return entry


#: Names of the tests from the exact moments, for their not-applicable entries.
_EXACT_TESTS = {
    skewness_test: "skewness test",
    kurtosis_test: "kurtosis test",
    dagostino_pearson: "D'Agostino-Pearson K2",
    jarque_bera: "Jarque-Bera",
}


def _exact_test(
    undefined: str | None, test: Callable[..., Any], n: float, *args: Any, **kw: Any
) -> dict[str, Any]:
    """A moment test's entry, or not applicable where a moment it needs is undefined (an
    M3 or M4 beyond float64)."""
    if undefined is not None:
        return not_applicable(_EXACT_TESTS[test], undefined, n=int(n)).to_dict()
    return quietly(test, n, *args, **kw).to_dict()


def _verdict(
    context: ProtocolContext, name: str, entry: dict[str, Any]
) -> tuple[dict[str, Any], str | None, float]:
    cfg = context.config
    skew_min = cfg.min_effect["skewness"]
    kurt_min = cfg.min_effect["excess_kurtosis"]
    skew = entry["shape"]["skewness"]
    kurt = entry["shape"]["excess_kurtosis"]
    significant = {
        key: entry[key]["pvalue_holm"]
        for key in TESTS
        if entry[key].get("pvalue_holm") is not None and entry[key]["pvalue_holm"] < cfg.alpha
    }
    shapes = [(v, t) for v, t in ((skew, skew_min), (kurt, kurt_min)) if v is not None]
    large = any(abs(v) >= t for v, t in shapes)
    if significant and large:
        decision = "not normal"
    elif significant:
        decision = "negligible departure (below the effect-size thresholds)"
    else:
        decision = "consistent with normal"
    verdict = {
        "decision": decision,
        "significant_tests": sorted(significant),
        "skewness": skew,
        "excess_kurtosis": kurt,
        "thresholds": {"skewness": skew_min, "excess_kurtosis": kurt_min},
        "alpha": cfg.alpha,
        "basis": "Holm-adjusted p-value below alpha and |skewness| or |excess kurtosis| "
        "at or above its threshold",
    }
    shape = max((abs(v) / t for v, t in shapes), default=0.0)
    if decision != "not normal":
        return verdict, None, shape
    best = min(significant, key=lambda key: significant[key])
    ks = entry["ks_distance"]
    ks_text = ""
    if ks.get("statistic") is not None:
        bound = ks.get("error_bound") or 0.0
        accuracy = "exact" if bound == 0 else f"sketch, +/- {format_share(bound)}"
        ks_text = (
            f"; the largest gap between its distribution and the fitted normal is "
            f"{format_share(ks['statistic'])} of rows ({accuracy})"
        )
    sentence = (
        f"{name}: not normal, skewness {_shape_text(skew)} and excess kurtosis "
        f"{_shape_text(kurt)} "
        f"(thresholds {skew_min:g} and {kurt_min:g}); {entry[best]['test']} Holm-adjusted "
        f"{format_p(significant[best])}{ks_text}"
    )
    return verdict, sentence, shape


def _shape_text(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.3g}"


def _notes(context: ProtocolContext) -> list[str]:
    cfg = context.config
    return [
        "Skewness, kurtosis, D'Agostino-Pearson K² and Jarque-Bera are exact, from the "
        "central moments of every finite value; they equal scipy on the raw column.",
        "Shapiro-Wilk and Anderson-Darling run on the uniform sample (Shapiro-Wilk on at "
        f"most {MAX_N_SHAPIRO} of its values, the first in the sample's random key order); "
        "their power is that of the sample, not of the table.",
        "The Kolmogorov-Smirnov distance compares the quantile sketch with the normal of "
        "the exact mean and standard deviation at the sketch's 1 %..99 % quantiles; it is "
        "an effect size (no p-value: the parameters are estimated and the CDF sketched), "
        "within the sketch's rank error. QQ points pair the fitted normal's quantiles with "
        "the sketch's.",
        f"Holm's correction runs over all {NAME} tests; a column is called not normal only "
        f"when a Holm-adjusted p-value is below {cfg.alpha:g} and |skewness| >= "
        f"{cfg.min_effect['skewness']:g} or |excess kurtosis| >= "
        f"{cfg.min_effect['excess_kurtosis']:g}: with millions of rows every p-value is tiny.",
    ]
