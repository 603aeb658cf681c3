"""Exploration protocol 5: collinearity of the numeric covariates.

Everything exact is finished from the co-moment matrix the scan keeps; only the rank
correlations read the uniform sample.

Tests run
---------
* Pearson correlation of every pair of columns in the co-moment matrix, each over the rows
  where both values are finite (pairwise-complete counts reported), with its t-test.
  Exact from the co-moments (:func:`~spark_explore.stats.collinearity.correlation_tests`).
* Spearman rank correlation of every pair, ``scipy.stats.spearmanr`` on the sample's rows
  where both values are finite. Sample-based.
* Variance inflation factors of the covariates
  (:func:`~spark_explore.stats.collinearity.variance_inflation_factors`).
* Belsley-Kuh-Welsch diagnostics of the standardised design ``[1, X]``: condition number,
  condition indices and variance-decomposition proportions, and the near-dependencies they
  reveal (:func:`~spark_explore.stats.collinearity.condition_diagnostics`,
  :func:`~spark_explore.stats.collinearity.collinear_groups`); also the unscaled condition
  number that ``statsmodels`` reports.
* With a target (``ScanConfig.target``): the least-squares fit of the target on the
  covariates (:func:`~spark_explore.stats.collinearity.ols_from_moments`), whose
  coefficients and standard errors show what the collinearity costs.

The covariates are the co-moment columns other than the target. VIF and the condition
diagnostics need one design matrix; when missingness differs between columns the
co-moments are pairwise-complete over different rows, and both are then computed from the
pairwise statistics, marked approximate and warned about.

States used
-----------
``"comoments"`` (:class:`~spark_explore.states.comoments.CoMomentState`) and
``"reservoir"`` (:class:`~spark_explore.states.reservoir.ReservoirState`).

Verdicts
--------
Verdicts weigh effect sizes, not p-values alone: a pair is called correlated when its
Holm-adjusted p-value (one family: every correlation test of this protocol) is below
``alpha`` *and* ``|r|`` reaches ``min_effect["correlation"]``; a covariate's variance is
called inflated when its VIF reaches ``min_effect["vif"]``; a near-dependency is named
when a condition index exceeds ``min_effect["condition_index"]`` and at least two
variance-decomposition proportions on it exceed 0.5 (BKW's rule).

This module also holds what the protocols 5-7 share beyond the helpers of
:mod:`~spark_explore.protocols._common`: the effect-size-aware decision (:func:`decide`)
over one Holm family (:class:`Family`), warnings of non-test results (:func:`captured`)
and the sample as a matrix (:func:`sample_matrix`).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy import stats

from spark_explore.columns import Leaf
from spark_explore.protocols._common import (
    failure_entry,
    format_p,
    holm_adjust,
    quietly,
    with_warnings,
)
from spark_explore.protocols.base import ProtocolConfig, ProtocolContext, ProtocolReport
from spark_explore.states._algebra import CoMoments
from spark_explore.states.batch import to_float64
from spark_explore.stats.collinearity import (
    INTERCEPT,
    collinear_groups,
    condition_diagnostics,
    correlation_matrix,
    correlation_tests,
    ols_from_moments,
    variance_inflation_factors,
)
from spark_explore.stats.results import EXACT, SAMPLE, TestResult, not_applicable

NAME = "collinearity"

#: Findings name at most this many correlated pairs (strongest first); all are in results.
MAX_PAIR_FINDINGS = 10

_REF_SPEARMAN = (
    "Spearman (1904), Am. J. Psychol. 15:72-101; scipy.stats.spearmanr (t approximation)"
)
_REF_VIF = "Marquardt (1970), Technometrics 12:591-612"


def captured(
    function: Callable[..., Any], *args: Any, **kwargs: Any
) -> tuple[Any, tuple[str, ...]]:
    """Call ``function`` and return its value with the texts of the warnings it raised.

    For results that are not a :class:`TestResult` (a matrix of VIFs, a dictionary of
    tests), whose warnings :func:`~spark_explore.protocols._common.quietly` cannot attach;
    the caller adds the texts to the results they concern with ``with_warnings``.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = function(*args, **kwargs)
    return value, tuple(dict.fromkeys(str(item.message) for item in caught))


def decide(pvalue_holm: float | None, effect: float | None, threshold: float, alpha: float) -> str:
    """The protocols' three-way call on one test: ``"effect"``, ``"negligible"`` or
    ``"no evidence"`` (or ``"not applicable"`` without a p-value).

    ``"effect"`` needs both a Holm-adjusted p-value below ``alpha`` and ``|effect|`` at
    least ``threshold``; a significant test with a smaller effect is ``"negligible"``,
    because with many rows tiny effects are significant.
    """
    if pvalue_holm is None or effect is None or not math.isfinite(effect):
        return "not applicable"
    if pvalue_holm >= alpha:
        return "no evidence"
    return "effect" if abs(effect) >= threshold else "negligible"


class Family:
    """The tests whose decisions one protocol makes together under Holm's correction.

    :meth:`add` registers a result's JSON entry with the effect size and threshold it is
    judged by, and optionally a function that states it as a finding; :meth:`close` writes
    ``pvalue_holm`` and ``verdict`` into every entry; :meth:`findings` then states the
    tests whose verdict is ``"effect"``, in the order they were added.
    """

    def __init__(self, config: ProtocolConfig) -> None:
        self.config = config
        self._members: list[_Member] = []

    def add(
        self,
        result: TestResult,
        threshold: float,
        describe: Callable[[dict[str, Any]], str] | None = None,
    ) -> dict[str, Any]:
        entry = result.to_dict()
        self._members.append(_Member(entry, result.effect_size, threshold, describe))
        return entry

    def record(
        self,
        report: ProtocolReport,
        subject: str,
        test: str,
        threshold: float | None,
        describe: Callable[[dict[str, Any]], str] | None,
        compute: Callable[..., TestResult],
        *args: Any,
    ) -> dict[str, Any]:
        """Compute one test of a subject into ``report.results[subject][test]`` and add it
        to the family (unless ``threshold`` is None: reported, not judged); a failure is
        recorded there instead of raised, so one bad subject never aborts the protocol."""
        try:
            result = compute(*args)
            entry = result.to_dict() if threshold is None else self.add(result, threshold, describe)
        except Exception as exc:  # one bad subject must not lose the others
            entry = failure_entry(subject, exc)
        report.results.setdefault(subject, {})[test] = entry
        return entry

    def close(self) -> None:
        tested = [m for m in self._members if m.entry.get("pvalue") is not None]
        adjusted = holm_adjust([m.entry["pvalue"] for m in tested])
        for member, p in zip(tested, adjusted, strict=True):
            member.entry["pvalue_holm"] = float(p)
            member.entry["verdict"] = decide(p, member.effect, member.threshold, self.config.alpha)
        for member in self._members:
            member.entry.setdefault("pvalue_holm", None)
            member.entry.setdefault("verdict", "not applicable")

    def findings(self) -> list[str]:
        return [
            m.describe(m.entry)
            for m in self._members
            if m.describe is not None and m.entry.get("verdict") == "effect"
        ]


@dataclasses.dataclass
class _Member:
    entry: dict[str, Any]
    effect: float | None
    threshold: float
    describe: Callable[[dict[str, Any]], str] | None


def sample_matrix(context: ProtocolContext, leaves: Sequence[Leaf]) -> np.ndarray:
    """The sample's values of numeric leaves as a ``(rows, k)`` float64 matrix (NaN: none)."""
    reservoir = context.bundle["reservoir"]
    if reservoir.num_rows == 0:
        return np.empty((0, len(leaves)))
    return np.column_stack([to_float64(reservoir.column(leaf.slot)) for leaf in leaves])


def _constant(values: np.ndarray) -> bool:
    """All values equal (compared, not subtracted: a range near 1e308 overflows)."""
    return bool(values.max() == values.min())


def pair_subject(a: str, b: str) -> str:
    return f"{a} ~ {b}"


def run(context: ProtocolContext) -> ProtocolReport:
    """Correlations, VIF, condition indices and the collinear groups of the covariates."""
    report = ProtocolReport(NAME)
    plan, cfg = context.plan, context.config
    leaves = list(plan.comoment_leaves)
    if plan.comoment_left_out:
        left_out = [leaf.name for leaf in plan.comoment_left_out]
        report.notes.append(
            f"{len(left_out)} numeric column(s) beyond max_comoment_columns="
            f"{plan.config.max_comoment_columns} are not examined: {left_out[:10]}"
        )
    if len(leaves) < 2:
        report.results["(design)"] = {
            "condition_diagnostics": not_applicable(
                "BKW condition diagnostics",
                f"{len(leaves)} numeric column(s) in the co-moment matrix; at least 2 needed",
            ).to_dict()
        }
        report.notes.append("Collinearity needs at least two numeric columns.")
        return report
    comoments = context.bundle["comoments"].comoments
    family = Family(cfg)
    pairs = _pairs(context, leaves, comoments, family, report)
    design = _design(context, leaves, comoments, report)
    family.close()
    report.findings.extend(design)
    report.findings.extend(_pair_findings(pairs, cfg))
    report.notes.append(
        "Verdicts weigh effect sizes, not p-values alone: a pair is correlated when its "
        f"Holm-adjusted p-value is below {cfg.alpha} and |r| >= "
        f"{cfg.min_effect['correlation']}; a VIF of {cfg.min_effect['vif']} or more is "
        f"inflated; a condition index above {cfg.min_effect['condition_index']} with two or "
        "more variance-decomposition proportions above 0.5 is a near-dependency."
    )
    report.notes.append(
        "Spearman correlations are computed on the uniform sample (marked "
        f"'{SAMPLE}'); Pearson correlations, VIF and condition indices are exact."
    )
    return report


def _pairs(
    context: ProtocolContext,
    leaves: list[Leaf],
    comoments: CoMoments,
    family: Family,
    report: ProtocolReport,
) -> list[tuple[str, str, dict[str, Any]]]:
    names = [leaf.name for leaf in leaves]
    pearson, texts = captured(correlation_tests, comoments, names=names)
    ranks = _RankSample(context, leaves)
    threshold = context.config.min_effect["correlation"]
    out = []
    for i in range(len(leaves)):
        for j in range(i + 1, len(leaves)):
            subject = pair_subject(names[i], names[j])
            entry = family.record(
                report,
                subject,
                "pearson",
                threshold,
                None,
                with_warnings,
                pearson[names[i], names[j]],
                texts,
            )
            family.record(report, subject, "spearman", threshold, None, ranks.spearman, i, j)
            out.append((names[i], names[j], entry))
    return out


class _RankSample:
    """The sample's values of the co-moment columns, for Spearman's rho of any pair.

    Columns finite and non-constant on every sampled row share their rows, so they are
    ranked together in one ``spearmanr`` call; pairs with a gappy column are one call each,
    on the sampled rows where both values are finite.
    """

    def __init__(self, context: ProtocolContext, leaves: list[Leaf]) -> None:
        self.names = [leaf.name for leaf in leaves]
        self.x = sample_matrix(context, leaves)
        self.finite = np.isfinite(self.x)
        rows = self.x.shape[0]
        full = [
            j
            for j in range(len(leaves))
            if rows >= 3 and self.finite[:, j].all() and not _constant(self.x[:, j])
        ]
        self.shared: dict[tuple[int, int], tuple[float, float]] = {}
        if len(full) >= 3:
            rho, p = stats.spearmanr(self.x[:, full])
            for a, i in enumerate(full):
                for b, j in enumerate(full):
                    self.shared[i, j] = (float(rho[a, b]), float(p[a, b]))
        complete = context.bundle["reservoir"].is_complete
        self.details = {"sample_rows": rows, "sample_is_whole_table": complete}

    def spearman(self, i: int, j: int) -> TestResult:
        test = "Spearman rank correlation"
        if (i, j) in self.shared:  # complete, non-constant columns ranked together
            rho, p = self.shared[i, j]
            return self._result(rho, p, self.x.shape[0], ())
        both = self.finite[:, i] & self.finite[:, j]
        n = int(both.sum())
        if n < 3:
            return not_applicable(
                test,
                f"{n} sampled rows have both values; 3 are needed",
                n=n,
                method=SAMPLE,
                reference=_REF_SPEARMAN,
            )
        constant = [self.names[c] for c in (i, j) if _constant(self.x[both, c])]
        if constant:
            return not_applicable(
                test,
                f"{constant} constant on the sampled rows: rho is undefined",
                n=n,
                method=SAMPLE,
                reference=_REF_SPEARMAN,
            )
        res, texts = captured(stats.spearmanr, self.x[both, i], self.x[both, j])
        return self._result(float(res.statistic), float(res.pvalue), n, texts)

    def _result(self, rho: float, p: float, n: int, texts: tuple[str, ...]) -> TestResult:
        return TestResult(
            rho,
            p,
            "Spearman rank correlation",
            n=n,
            df=n - 2.0,
            effect_size=rho,
            effect_size_name="Spearman rho",
            method=SAMPLE,
            approximate=True,
            reference=_REF_SPEARMAN,
            warnings=texts,
            details=self.details,
        )


def _design(
    context: ProtocolContext, leaves: list[Leaf], comoments: CoMoments, report: ProtocolReport
) -> list[str]:
    """VIF, condition diagnostics and (with a target) the regression; returns findings."""
    cfg = context.config
    target = context.plan.config.target
    covariates = [i for i, leaf in enumerate(leaves) if leaf.name != target]
    defined = []
    for i in covariates:
        n, m2 = comoments.n[i, i], comoments.m2[i, i]
        if n >= 2 and 0 < m2 < np.inf:
            defined.append(i)
            continue
        if n < 2:
            reason = f"{n:.0f} finite value(s); at least 2 are needed"
        elif not np.isfinite(m2):
            reason = "its sum of squared deviations overflows float64 (values near the limits)"
        else:
            reason = "the column is constant: it is collinear with the intercept"
        entry = not_applicable(
            "variance inflation factor",
            f"excluded from VIF and condition indices: {reason}",
            n=int(n),
            reference=_REF_VIF,
        ).to_dict()
        report.results.setdefault(leaves[i].name, {})["vif"] = {
            **entry,
            "verdict": "not applicable",
        }
    design: dict[str, Any] = {"covariates": [leaves[i].name for i in defined]}
    report.results["(design)"] = design
    if not defined:
        design["condition_diagnostics"] = not_applicable(
            "BKW condition diagnostics", "no covariate with at least 2 distinct finite values"
        ).to_dict()
        return []
    sub = CoMoments(*(field[np.ix_(defined, defined)] for field in comoments))
    counts = sub.n
    complete = bool((counts == counts.flat[0]).all())
    caveat = (
        ()
        if complete
        else (
            "missingness differs between covariates, so this is computed from pairwise-complete "
            f"statistics (rows per pair {int(counts.min())} to {int(counts.max())}), not from one "
            "design matrix; it is approximate",
        )
    )
    names = [leaves[i].name for i in defined]
    findings = _vif(sub, names, caveat, cfg, report)
    findings[:0] = _condition(sub, names, complete, caveat, cfg, design)
    if target is not None:
        _regression(leaves, comoments, defined, target, report)
    return findings


def _vif(
    sub: CoMoments,
    names: list[str],
    caveat: tuple[str, ...],
    cfg: ProtocolConfig,
    report: ProtocolReport,
) -> list[str]:
    vif, texts = captured(variance_inflation_factors, correlation_matrix(sub))
    limit = cfg.min_effect["vif"]
    findings = []
    for j, name in enumerate(names):
        v = float(vif[j])
        if math.isnan(v):
            result = not_applicable(
                "variance inflation factor",
                "undefined: the correlation with another covariate is undefined over their "
                "common rows, or the correlations are not positive semi-definite",
                n=int(sub.n[j, j]),
                reference=_REF_VIF,
            )
            entry = with_warnings(result, texts + caveat).to_dict()
            entry["verdict"] = "not applicable"
        else:
            result = TestResult(
                v,
                None,
                "variance inflation factor",
                n=int(sub.n[j, j]),
                effect_size=v,
                effect_size_name="VIF = 1 / (1 - R_j^2)",
                method=EXACT,
                approximate=bool(caveat),
                reference=_REF_VIF,
                warnings=texts + caveat,
                details={"r_squared": 1.0 - 1.0 / v, "exact_dependency": math.isinf(v)},
            )
            entry = result.to_dict()
            if math.isinf(v):
                entry["verdict"] = "exact linear dependency"
                findings.append(
                    f"{name} is an exact linear combination of other covariates (VIF is infinite)."
                )
            elif v >= limit:
                entry["verdict"] = "inflated"
                findings.append(
                    f"{name} has VIF {v:,.1f} (>= {limit:g}): {1 - 1 / v:.2%} of "
                    "its variance is explained by the other covariates."
                )
            else:
                entry["verdict"] = "acceptable"
        report.results.setdefault(name, {})["vif"] = entry
    return findings


def _condition(
    sub: CoMoments,
    names: list[str],
    complete: bool,
    caveat: tuple[str, ...],
    cfg: ProtocolConfig,
    design: dict[str, Any],
) -> list[str]:
    if complete:
        source: Any = (sub,)
    else:  # pairwise covariances scaled to the smallest pair count
        rows = float(sub.n.min())
        with np.errstate(invalid="ignore", divide="ignore"):
            cov = np.where(sub.n > 1, sub.c / (sub.n - 1.0), np.nan)
        source = (cov * (rows - 1.0), np.diag(sub.mean) + np.diag(sub.mean_lo), rows)
    diag = quietly(condition_diagnostics, *source, names=names)
    raw = quietly(condition_diagnostics, *source, names=names, scale=False)
    diag = dataclasses.replace(with_warnings(diag, caveat), approximate=bool(caveat))
    raw = dataclasses.replace(with_warnings(raw, caveat), approximate=bool(caveat))
    limit = cfg.min_effect["condition_index"]
    groups = _dependencies(diag, limit)
    design["condition_diagnostics"] = diag.to_dict()
    design["condition_number_unscaled"] = raw.to_dict()
    design["collinear_groups"] = [
        {
            **g,
            "condition_index": g["condition_index"]
            if math.isfinite(g["condition_index"])
            else None,
            "exact": math.isinf(g["condition_index"]),
        }
        for g in groups
    ]
    if not diag.applicable:
        design["verdict"] = "not applicable"
        return []
    kappa = diag.statistic
    design["verdict"] = (
        "collinear"
        if groups
        else "ill-conditioned"
        if kappa is not None and kappa > limit
        else "well-conditioned"
    )
    findings = [_group_sentence(g, limit) for g in groups]
    if not groups and kappa is not None and kappa > limit:
        findings.append(
            f"The scaled design has condition number {kappa:,.0f} (> {limit:g}) but no "
            "dimension has two or more variance-decomposition proportions above 0.5."
        )
    return findings


def _dependencies(diag: TestResult, limit: float) -> list[dict[str, Any]]:
    """BKW's near-dependencies, with every exact one (infinite condition index) as one group.

    Near-dependencies are :func:`collinear_groups` dimension by dimension. The directions
    of a null space are arbitrary, so a variable's share of it can be split over its
    dimensions in any way; as BKW do for competing dimensions, the proportions are summed
    over the whole null space, which is invariant, and the variables with a sum above 0.5
    form the exact dependency.
    """
    groups = [
        g
        for g in collinear_groups(diag, index_threshold=limit)
        if math.isfinite(g["condition_index"])
    ]
    if not diag.applicable:
        return groups
    details = diag.details
    null = [k for k, eta in enumerate(details["condition_indices"]) if math.isinf(eta)]
    if null:
        summed = np.asarray(details["proportions"])[null].sum(axis=0)
        involved = [(n, float(p)) for n, p in zip(details["names"], summed, strict=True) if p > 0.5]
        if len(involved) >= 2:
            groups.insert(
                0,
                {
                    "condition_index": math.inf,
                    "names": [n for n, _ in involved],
                    "proportions": [p for _, p in involved],
                    "dimensions": len(null),
                },
            )
    return groups


def _group_sentence(group: dict[str, Any], limit: float) -> str:
    members = [n for n in group["names"] if n != INTERCEPT]
    eta = group["condition_index"]
    strength = "an exact" if math.isinf(eta) else f"a near (condition index {eta:,.0f} > {limit:g})"
    if members and len(members) == 1:  # BKW pair with the constant: too little variation
        return (
            f"{members[0]} varies little relative to its mean, so it and the intercept form "
            f"{strength} linear dependency; centre it before using it with an intercept."
        )
    listed = ", ".join(members)
    if INTERCEPT in group["names"]:
        listed += " and the intercept"
    return (
        f"Collinear group: {listed} form {strength} linear dependency, so their separate "
        "effects cannot be estimated precisely."
    )


def _regression(
    leaves: list[Leaf],
    comoments: CoMoments,
    defined: list[int],
    target: str,
    report: ProtocolReport,
) -> None:
    names = [leaf.name for leaf in leaves]
    subject = f"(regression of {target})"
    if target not in names:
        report.results[subject] = {
            "ols": not_applicable(
                "OLS overall F-test", "the target is not among the co-moment columns"
            ).to_dict()
        }
        return
    index = [*defined, names.index(target)]
    sub = CoMoments(*(field[np.ix_(index, index)] for field in comoments))
    result = quietly(ols_from_moments, sub, len(index) - 1, names=[names[i] for i in index])
    report.results[subject] = {"ols": result.to_dict()}


def _pair_findings(pairs: list[tuple[str, str, dict[str, Any]]], cfg: ProtocolConfig) -> list[str]:
    flagged = [(a, b, e) for a, b, e in pairs if e.get("verdict") == "effect"]
    flagged.sort(key=lambda item: -abs(item[2]["effect_size"]))
    findings = [
        f"{a} and {b} are correlated (Pearson r = {e['effect_size']:.3f}, "
        f"n = {e['n']:,}, Holm-adjusted {format_p(e['pvalue_holm'])})."
        for a, b, e in flagged[:MAX_PAIR_FINDINGS]
    ]
    if len(flagged) > MAX_PAIR_FINDINGS:
        findings.append(
            f"{len(flagged) - MAX_PAIR_FINDINGS} more correlated pairs with "
            f"|r| >= {cfg.min_effect['correlation']} are listed in the results."
        )
    return findings
