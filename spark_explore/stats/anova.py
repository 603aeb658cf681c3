"""Analysis of variance completed from per-group and per-cell moments of a target.

The scan keeps, for each level of a factor (one-way) or each cell of two factors A x B
(two-way), the count ``n``, mean and M2 (central sum of squares) of a numeric target. Those
three numbers per cell are sufficient for every test here, for balanced and unbalanced
designs alike:

* the within-cell (residual) sum of squares of the full model is ``sum M2``;
* every model compared here (A, B, A + B, A x B) has design rows that are constant within a
  cell, so its residual sum of squares is ``sum M2 + sum n_ab (ybar_ab - fit_ab)^2``: the
  model is fitted exactly by weighted least squares on the cell means with the cell counts
  as weights.

References
----------
.. [1] R. A. Fisher, *Statistical Methods for Research Workers*, Oliver and Boyd, 1925,
       chapter 7 (one-way analysis of variance); K. Pearson, "On the general theory of
       skew correlation and non-linear regression", Drapers' Company Research Memoirs,
       1905 (the correlation ratio eta).
.. [2] F. Yates, "The analysis of multiple classifications with unequal numbers in the
       different classes", JASA 29(185), 1934, pp. 51-66 (fitting constants: Type II;
       weighted squares of means: Type III).
.. [3] S. R. Searle, *Linear Models for Unbalanced Data*, Wiley, 1987 (cell-means model,
       connectedness, the R(.|.) reductions and empty cells).
.. [4] D. G. Herr, "On the history of ANOVA in unbalanced, factorial designs: the first
       30 years", The American Statistician 40(4), 1986, pp. 265-270.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg
from scipy import stats

from spark_explore.errors import DegenerateDataWarning, InvalidArgumentError
from spark_explore.stats.results import EXACT, TestResult, not_applicable

__all__ = ["CellStatistics", "one_way_from_groups", "two_way_interaction"]

_REF_ONE_WAY = "Fisher (1925), Statistical Methods for Research Workers, ch. 7"
_REF_TWO_WAY = (
    "Yates (1934), JASA 29:51-66; Searle (1987), Linear Models for Unbalanced Data, ch. 4-5"
)

#: Why a test is not applicable when its sums of squares exceed float64.
_OVERFLOW = "the sums of squares overflow float64 (values near the float64 limits)"


@dataclass(frozen=True)
class CellStatistics:
    """Count, mean and M2 of a target in each cell of two factors A x B.

    Parameters
    ----------
    a_levels, b_levels
        Level labels of A (rows) and B (columns).
    n, mean, m2
        ``(len(a_levels), len(b_levels))`` arrays; an empty cell has ``n = 0`` (its mean
        and M2 are ignored).
    """

    a_levels: tuple[Hashable, ...]
    b_levels: tuple[Hashable, ...]
    n: np.ndarray
    mean: np.ndarray
    m2: np.ndarray

    @classmethod
    def from_mapping(
        cls, cells: Mapping[tuple[Hashable, Hashable], tuple[float, float, float]]
    ) -> CellStatistics:
        """Build from ``{(a, b): (n, mean, m2)}``, levels in first-seen order."""
        a_levels = tuple(dict.fromkeys(a for a, _ in cells))
        b_levels = tuple(dict.fromkeys(b for _, b in cells))
        shape = (len(a_levels), len(b_levels))
        n, mean, m2 = np.zeros(shape), np.zeros(shape), np.zeros(shape)
        ia = {a: i for i, a in enumerate(a_levels)}
        ib = {b: j for j, b in enumerate(b_levels)}
        for (a, b), (count, mu, sq) in cells.items():
            n[ia[a], ib[b]], mean[ia[a], ib[b]], m2[ia[a], ib[b]] = count, mu, sq
        return cls(a_levels, b_levels, n, mean, m2)


def one_way_from_groups(n: np.ndarray, mean: np.ndarray, m2: np.ndarray) -> TestResult:
    """One-way ANOVA F-test and eta squared from per-group count, mean and M2.

    Parameters
    ----------
    n, mean, m2
        One entry per group; groups with ``n = 0`` are ignored.

    Returns
    -------
    TestResult
        ``F`` with ``(k - 1, N - k)`` df, ``effect_size`` eta squared (the squared
        correlation ratio, SS_between / SS_total). Equal to ``scipy.stats.f_oneway``.
        Not applicable with fewer than two groups, no within-group degrees of freedom, or
        sums of squares beyond float64 (an ``inf`` M2, from values near its limits).

    Warns
    -----
    DegenerateDataWarning
        When every group is constant but the group means differ (F is infinite).

    Notes
    -----
    H0: all group means are equal, for independent normal observations with a common
    variance (Bartlett's test, from the same moments, checks the latter) [1]_.
    ``SS_between = sum n_i (ybar_i - ybar)^2`` with ``ybar`` the weighted grand mean, and
    ``SS_within = sum M2_i``; both are exact from the moments.

    Examples
    --------
    >>> res = one_way_from_groups([3, 4, 5], [1.0, 2.0, 4.0], [2.0, 3.0, 4.0])
    >>> round(res.statistic, 4), res.df, round(res.effect_size, 4)
    (9.4583, (2.0, 9.0), 0.6776)
    """
    n, mean, m2 = (np.asarray(v, dtype=np.float64).ravel() for v in (n, mean, m2))
    keep = n > 0
    n, mean, m2 = n[keep], mean[keep], m2[keep]
    k, total = n.size, float(n.sum())
    if k < 2:
        return not_applicable(
            "one-way ANOVA",
            f"{k} non-empty group(s); at least 2 are needed",
            n=int(total),
            reference=_REF_ONE_WAY,
        )
    if total - k <= 0:
        return not_applicable(
            "one-way ANOVA",
            "every group has one row: no within-group degrees of freedom",
            n=int(total),
            reference=_REF_ONE_WAY,
        )
    with np.errstate(over="ignore", invalid="ignore"):
        grand = float(n @ mean) / total
        if not math.isfinite(grand):  # the sum overflows; the weighted mean does not
            grand = float((n / total) @ mean)
        ss_between = float(n @ (mean - grand) ** 2)
        ss_within = float(m2.sum())
    if not (math.isfinite(ss_between) and math.isfinite(ss_within)):
        return not_applicable("one-way ANOVA", _OVERFLOW, n=int(total), reference=_REF_ONE_WAY)
    df_b, df_w = k - 1.0, total - k
    if ss_within == 0:
        if ss_between == 0:
            return not_applicable(
                "one-way ANOVA",
                "the target is constant in every group",
                n=int(total),
                reference=_REF_ONE_WAY,
            )
        warnings.warn(
            "every group is constant but the group means differ: F is infinite",
            DegenerateDataWarning,
            stacklevel=2,
        )
        f_stat, p = math.inf, 0.0
    else:
        f_stat = (ss_between / df_b) / (ss_within / df_w)
        p = float(stats.f.sf(f_stat, df_b, df_w))
    eta2 = ss_between / (ss_between + ss_within)
    return TestResult(
        f_stat,
        p,
        "one-way ANOVA",
        n=int(total),
        df=(df_b, df_w),
        effect_size=eta2,
        effect_size_name="eta squared",
        method=EXACT,
        reference=_REF_ONE_WAY,
        details={
            "ss_between": ss_between,
            "ss_within": ss_within,
            "correlation_ratio": math.sqrt(eta2),
            "groups": k,
        },
    )


def two_way_interaction(
    cells: CellStatistics | Mapping[tuple[Hashable, Hashable], tuple[float, float, float]],
    *,
    factor_names: Sequence[str] = ("A", "B"),
) -> TestResult:
    """Two-way ANOVA of a target on factors A x B from cell moments; tests the interaction.

    Parameters
    ----------
    cells
        A :class:`CellStatistics`, or a mapping ``{(a, b): (n, mean, m2)}``.
    factor_names
        Names for A and B in the tables.

    Returns
    -------
    TestResult
        The interaction F-test ``SS(AB | A, B)`` with ``(df_AB, N - cells)`` df;
        ``effect_size`` is the interaction's partial eta squared. ``details`` holds
        ``type2`` and ``type3``: ANOVA tables ``{row: {"sum_sq", "df", "F", "pvalue"}}``
        (``type3`` is None with ``type3_reason`` when cells are empty), ``empty_cells``
        (a list of ``(a, b)``), ``n_cells`` and ``dropped_levels``. Not applicable, with
        the reason, for degenerate designs and for sums of squares beyond float64.

    Notes
    -----
    Model: ``y = mu_ab + e`` with independent normal errors of common variance. The
    full (cell-means) model leaves ``SSE = sum M2`` on ``N - c`` df, c non-empty cells.

    *Type II* (Yates' fitting constants [2]_): each main effect is adjusted for the other
    and the interaction for both, ``SS(A | B)``, ``SS(B | A)``, ``SS(AB | A, B)``. The
    additive fit ``alpha_a + beta_b`` is found by weighted least squares on the cell means
    with weights ``n_ab``, B absorbed: ``C alpha = q`` with ``C = diag(n_a.) - N
    diag(n_.b)^-1 N'`` and ``q_a = sum_b n_ab (ybar_ab - ybar_.b)`` [3]_. Then
    ``SS(AB | A, B) = sum n_ab (ybar_ab - alpha_a - beta_b)^2``,
    ``SS(A | B) = sum n_ab (alpha_a + beta_b - ybar_.b)^2`` and symmetrically for B,
    each a weighted sum of squares of a difference of nested projections.

    *Type III* (Yates' weighted squares of means; sum-to-zero coding): each effect is
    adjusted for all others, interaction included; the main-effect hypotheses are that the
    *unweighted* marginal means ``mean_b(mu_ab)`` are equal. With every cell filled,
    ``SS = (L ybar)' (L D^-1 L')^-1 (L ybar)`` for the contrast matrix L of the
    hypothesis and ``D = diag(n_ab)``. The interaction SS equals Type II's. The table also
    has the ``Intercept`` row (unweighted grand mean = 0), as statsmodels reports it. With
    empty cells these hypotheses are not estimable and Type III is not reported. Herr
    [4]_ traces both choices back to Yates; Type II is the more powerful when there is no
    interaction, Type III does not depend on the cell counts' pattern.

    The additive model has rank ``I + J - g`` for a design with g connected components of
    the bipartite level graph [3]_; so ``df_AB = c - I - J + 1`` when connected.
    A disconnected design confounds A with B and is reported not applicable.

    Examples
    --------
    >>> cells = {("a", "x"): (3, 1.0, 2.0), ("a", "y"): (4, 2.0, 3.0),
    ...          ("b", "x"): (5, 3.0, 4.0), ("b", "y"): (3, 6.0, 2.0)}
    >>> res = two_way_interaction(cells)
    >>> round(res.statistic, 4), res.df, round(res.pvalue, 5)
    (3.5821, (1.0, 11.0), 0.085)
    """
    if not isinstance(cells, CellStatistics):
        cells = CellStatistics.from_mapping(cells)
    if len(factor_names) != 2:
        raise InvalidArgumentError(
            "`factor_names` must name the two factors",
            code="INVALID_ARGUMENT",
            got=list(factor_names),
        )
    name_a, name_b = factor_names
    n = np.asarray(cells.n, dtype=np.float64)
    ybar = np.where(n > 0, np.asarray(cells.mean, dtype=np.float64), 0.0)
    m2 = np.where(n > 0, np.asarray(cells.m2, dtype=np.float64), 0.0)
    # levels without any row carry no information: drop them and say so
    rows, cols = n.sum(axis=1) > 0, n.sum(axis=0) > 0
    dropped = [(name_a, a) for a, keep in zip(cells.a_levels, rows, strict=True) if not keep] + [
        (name_b, b) for b, keep in zip(cells.b_levels, cols, strict=True) if not keep
    ]
    a_levels = [a for a, keep in zip(cells.a_levels, rows, strict=True) if keep]
    b_levels = [b for b, keep in zip(cells.b_levels, cols, strict=True) if keep]
    n, ybar, m2 = n[np.ix_(rows, cols)], ybar[np.ix_(rows, cols)], m2[np.ix_(rows, cols)]
    filled = n > 0
    n_i, n_j = n.shape
    total, c = float(n.sum()), int(filled.sum())
    empty = [(a_levels[i], b_levels[j]) for i, j in zip(*np.nonzero(~filled), strict=True)]
    base: dict[str, Any] = {
        "empty_cells": empty,
        "n_cells": c,
        "dropped_levels": dropped,
        "levels": (n_i, n_j),
    }
    test = "two-way ANOVA interaction"

    def unusable(reason: str) -> TestResult:
        return TestResult(
            None,
            None,
            test,
            n=int(total),
            applicable=False,
            reason=reason,
            reference=_REF_TWO_WAY,
            details=base,
        )

    if n_i < 2 or n_j < 2:
        return unusable(
            f"{name_a} has {n_i} and {name_b} has {n_j} level(s) with data; each needs at least 2"
        )
    components = _components(filled)
    if components > 1:
        return unusable(
            f"the design is not connected ({components} groups of levels share "
            f"no cell), so {name_a} and {name_b} effects are confounded"
        )
    df_e, df_ab = total - c, float(c - n_i - n_j + 1)
    with np.errstate(over="ignore", invalid="ignore"):
        sse = float(m2.sum())
    if df_e <= 0:
        return unusable("every non-empty cell has one row: no residual degrees of freedom")
    if sse == 0:
        return unusable("the target is constant within every cell: no residual variation")
    with np.errstate(over="ignore", invalid="ignore"):
        # Type II: additive weighted fit on the cell means [3]
        fit = _additive_fit(n, ybar)
        mean_b = (n * ybar).sum(axis=0) / n.sum(axis=0)
        mean_a = (n * ybar).sum(axis=1) / n.sum(axis=1)
        ss_ab = float((n * (ybar - fit) ** 2)[filled].sum())
        ss_a = float((n * (fit - mean_b[None, :]) ** 2)[filled].sum())
        ss_b = float((n * (fit - mean_a[:, None]) ** 2)[filled].sum())
    if not all(math.isfinite(v) for v in (sse, ss_ab, ss_a, ss_b)):
        return unusable(_OVERFLOW)
    mse = sse / df_e
    type2 = {
        name_a: _row(ss_a, n_i - 1.0, mse, df_e),
        name_b: _row(ss_b, n_j - 1.0, mse, df_e),
        f"{name_a}:{name_b}": _row(ss_ab, df_ab, mse, df_e),
        "Residual": {"sum_sq": sse, "df": df_e, "F": None, "pvalue": None},
    }
    base["type2"] = type2
    if empty:
        base["type3"] = None
        base["type3_reason"] = (
            "Type III tests unweighted marginal means, which are not estimable with empty cells"
        )
    else:
        with np.errstate(over="ignore", invalid="ignore"):
            base["type3"] = _type3(n, ybar, ss_ab, df_ab, sse, df_e, name_a, name_b)
    if df_ab <= 0:
        return unusable(
            "no interaction degrees of freedom remain: the non-empty cells are "
            "fully explained by the additive model"
        )
    row = type2[f"{name_a}:{name_b}"]
    warns = (f"{len(empty)} empty cell(s); interaction df reduced to {df_ab:.0f}",) if empty else ()
    return TestResult(
        row["F"],
        row["pvalue"],
        test,
        n=int(total),
        df=(df_ab, df_e),
        effect_size=ss_ab / (ss_ab + sse),
        effect_size_name="partial eta squared (interaction)",
        method=EXACT,
        reference=_REF_TWO_WAY,
        warnings=warns,
        details=base,
    )


def _row(ss: float, df: float, mse: float, df_e: float) -> dict[str, float | None]:
    if df <= 0:
        return {"sum_sq": ss, "df": df, "F": None, "pvalue": None}
    f_stat = (ss / df) / mse
    return {"sum_sq": ss, "df": df, "F": f_stat, "pvalue": float(stats.f.sf(f_stat, df, df_e))}


def _components(filled: np.ndarray) -> int:
    """Connected components of the bipartite graph of levels joined by non-empty cells."""
    n_i, n_j = filled.shape
    parent = list(range(n_i + n_j))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i, j in zip(*np.nonzero(filled), strict=True):
        parent[find(int(i))] = find(n_i + int(j))
    return len({find(x) for x in range(n_i + n_j)})


def _additive_fit(n: np.ndarray, ybar: np.ndarray) -> np.ndarray:
    """Fitted cell means ``alpha_a + beta_b`` of the weighted additive model (connected).

    B is absorbed: ``C alpha = q`` (one level of A fixed at 0, which the intercept
    absorbs), then ``beta_b`` is the weighted mean of ``ybar_ab - alpha_a`` over b's cells.
    One step of refinement on the residuals re-orthogonalises them to working precision.
    """
    n_b = n.sum(axis=0)
    c_mat = np.diag(n.sum(axis=1)) - (n / n_b) @ n.T
    fit = np.zeros_like(ybar)
    target = ybar.copy()
    for _ in range(2):
        q = (n * (target - (n * target).sum(axis=0) / n_b)).sum(axis=1)
        alpha = np.zeros(n.shape[0])
        # q overflows to inf for means near the float64 limits: the caller reports that
        alpha[:-1] = scipy.linalg.solve(c_mat[:-1, :-1], q[:-1], assume_a="pos", check_finite=False)
        beta = (n * (target - alpha[:, None])).sum(axis=0) / n_b
        step = alpha[:, None] + beta[None, :]
        fit = fit + step
        target = np.where(n > 0, target - step, 0.0)
    return fit


def _type3(
    n: np.ndarray,
    ybar: np.ndarray,
    ss_ab: float,
    df_ab: float,
    sse: float,
    df_e: float,
    name_a: str,
    name_b: str,
) -> dict[str, dict[str, float | None]]:
    """Type III table for a design with every cell filled (cell-means contrasts) [2]_."""
    n_i, n_j = n.shape
    mse = sse / df_e
    d_inv = (1.0 / n).ravel()
    y = ybar.ravel()

    def ss(contrasts: np.ndarray) -> float:
        ly = contrasts @ y
        cov = (contrasts * d_inv) @ contrasts.T
        return float(ly @ scipy.linalg.solve(cov, ly, assume_a="pos", check_finite=False))

    # H_A: unweighted row means equal; rows of L: (row i average) - (last row average)
    l_a = np.kron(np.eye(n_i)[:-1] - np.eye(n_i)[-1], np.full(n_j, 1.0 / n_j))
    l_b = np.kron(np.full(n_i, 1.0 / n_i), np.eye(n_j)[:-1] - np.eye(n_j)[-1])
    l_mu = np.full((1, n_i * n_j), 1.0 / (n_i * n_j))
    return {
        "Intercept": _row(ss(l_mu), 1.0, mse, df_e),
        name_a: _row(ss(l_a), n_i - 1.0, mse, df_e),
        name_b: _row(ss(l_b), n_j - 1.0, mse, df_e),
        f"{name_a}:{name_b}": _row(ss_ab, df_ab, mse, df_e),
        "Residual": {"sum_sq": sse, "df": df_e, "F": None, "pvalue": None},
    }
