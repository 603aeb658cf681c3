"""Collinearity of numeric covariates, completed from their co-moment matrix.

The scan keeps, for k numeric columns, the counts, means, M2 and co-moments of every pair
(:class:`~spark_explore.states._algebra.CoMoments`). Everything here is computed from those
aggregates on the driver, never from the rows: Pearson correlations and their t-tests,
variance inflation factors, the Belsley-Kuh-Welsch condition indices and
variance-decomposition proportions of the design ``[1, X]``, and an ordinary least-squares
fit (used to check the arithmetic against the NIST Longley certified values).

The design's cross-product matrix is never formed and factorised as such: with an
intercept, ``X'X`` has the square root ``[[sqrt(n), sqrt(n) m'], [0, R]]`` where
``R'R = C`` is the Cholesky factor of the centred co-moment matrix ``C``. That is the
triangular factor a QR decomposition of the rows would give, so the ill-conditioning
introduced by large means (Longley's YEAR) never squares.

References
----------
.. [1] D. A. Belsley, E. Kuh and R. E. Welsch, *Regression Diagnostics: Identifying
       Influential Data and Sources of Collinearity*, Wiley, 1980, chapter 3.
.. [2] K. Pearson, "Mathematical contributions to the theory of evolution. III.
       Regression, heredity, and panmixia", Phil. Trans. R. Soc. A 187, 1896, pp. 253-318;
       R. A. Fisher, "Frequency distribution of the values of the correlation coefficient
       in samples from an indefinitely large population", Biometrika 10(4), 1915,
       pp. 507-521 (the t distribution of r under independence).
.. [3] D. W. Marquardt, "Generalized inverses, ridge regression, biased linear estimation,
       and nonlinear estimation", Technometrics 12(3), 1970, pp. 591-612 (the VIF).
.. [4] J. W. Longley, "An appraisal of least squares programs for the electronic computer
       from the point of view of the user", JASA 62(319), 1967, pp. 819-841.
.. [5] G. H. Golub and C. F. Van Loan, *Matrix Computations*, 4th ed., 2013, 5.3
       (least squares from the triangular factor).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.linalg
from scipy import special, stats

from spark_explore.errors import DegenerateDataWarning, InvalidArgumentError
from spark_explore.states._algebra import CoMoments, two_sum
from spark_explore.stats.results import EXACT, TestResult, not_applicable

__all__ = [
    "collinear_groups",
    "condition_diagnostics",
    "correlation_matrix",
    "correlation_tests",
    "ols_from_moments",
    "variance_inflation_factors",
]

_EPS = np.finfo(np.float64).eps
_REF_PEARSON = "Pearson (1896); Fisher (1915): t = r sqrt((n-2)/(1-r^2)) with n-2 df"
_REF_BKW = "Belsley, Kuh & Welsch (1980), Regression Diagnostics, ch. 3"
_REF_OLS = "Ordinary least squares from the Cholesky factor of the centred co-moments"
INTERCEPT = "(intercept)"


def correlation_matrix(comoments: CoMoments) -> np.ndarray:
    """Pearson correlations of pairwise-complete co-moments, rounded as well as float64 allows.

    Parameters
    ----------
    comoments
        Merged pairwise-complete co-moments of k columns.

    Returns
    -------
    numpy.ndarray
        ``(k, k)`` matrix; NaN where a pair has fewer than two rows or a column is constant
        over the pair's rows (the coefficient is undefined there), or where a co-moment
        overflows float64 (values near the float64 limits: it cannot be computed).

    Notes
    -----
    ``r = c / sqrt(m2_i m2_j)`` [2]_ with the product and the square root carried in
    double-double arithmetic after an exact power-of-two rescaling, so the only rounding
    left is that of the co-moments themselves and of the final division. Columns such as
    ``i * 1e12`` and ``i * 1e-12`` then correlate exactly 1 with ``i``.
    """
    c = comoments
    m2_i, m2_j = c.m2, c.m2.T
    with np.errstate(invalid="ignore"):
        defined = (c.n >= 2) & (m2_i > 0) & (m2_j > 0)
    defined &= np.isfinite(m2_i) & np.isfinite(m2_j) & np.isfinite(c.c)
    r = np.full(c.c.shape, np.nan)
    r[defined] = _ratio_to_geometric_mean(c.c[defined], m2_i[defined], m2_j[defined])
    diagonal = np.diag_indices_from(r)
    r[diagonal] = np.where(np.isnan(r[diagonal]), np.nan, 1.0)
    return np.clip(r, -1.0, 1.0)


def correlation_tests(
    r: np.ndarray | CoMoments,
    n: np.ndarray | int | None = None,
    *,
    names: Sequence[str] | None = None,
    alternative: str = "two-sided",
) -> dict[tuple[str, str], TestResult]:
    """t-test of zero correlation for every pair of columns.

    Parameters
    ----------
    r
        ``(k, k)`` Pearson correlation matrix, or the co-moments it comes from (then ``n``
        is taken from them and undefined coefficients get a precise reason).
    n
        Number of pairwise-complete rows: a scalar or a ``(k, k)`` matrix.
    names
        Column names; ``c0, c1, ...`` by default.
    alternative
        ``"two-sided"``, ``"greater"`` (positive correlation) or ``"less"``.

    Returns
    -------
    dict
        ``{(name_i, name_j): TestResult}`` for ``i < j``; the statistic is t, the effect
        size is r. Not applicable when r is undefined or n < 3.

    Notes
    -----
    Under H0 the pairs are independent draws from a bivariate normal distribution with
    correlation 0; then ``t = r sqrt((n - 2) / (1 - r^2))`` has Student's t distribution
    with ``n - 2`` degrees of freedom [2]_. The p-value is the regularized incomplete beta
    ``I_{1-r^2}((n-2)/2, 1/2)``, the same quantity ``scipy.stats.pearsonr`` computes.
    Pairwise-complete counts differ between pairs when missingness differs; each test
    uses its own pair's rows.
    """
    if alternative not in ("two-sided", "greater", "less"):
        raise InvalidArgumentError(
            f"`alternative` must be 'two-sided', 'greater' or 'less', got {alternative!r}",
            code="INVALID_ALTERNATIVE",
            expected="two-sided|greater|less",
            got=alternative,
        )
    m2: np.ndarray | None = None
    if isinstance(r, CoMoments):
        comoments = r
        r, counts, m2 = correlation_matrix(comoments), comoments.n, comoments.m2
    else:
        r = np.asarray(r, dtype=np.float64)
        if n is None:
            raise InvalidArgumentError(
                "`n` is required with a correlation matrix", code="MISSING_ARGUMENT"
            )
        counts = np.broadcast_to(np.asarray(n, dtype=np.float64), r.shape)
    k = r.shape[0]
    labels = list(names) if names is not None else [f"c{j}" for j in range(k)]
    out: dict[tuple[str, str], TestResult] = {}
    for i in range(k):
        for j in range(i + 1, k):
            key = (labels[i], labels[j])
            nij = float(counts[i, j])
            if nij < 3:
                out[key] = not_applicable(
                    "Pearson correlation t-test",
                    f"{key} has {nij:.0f} complete rows; the test needs 3",
                    n=int(nij),
                    reference=_REF_PEARSON,
                )
            elif not np.isfinite(r[i, j]):
                out[key] = not_applicable(
                    "Pearson correlation t-test",
                    _undefined_reason(key, m2, i, j),
                    n=int(nij),
                    reference=_REF_PEARSON,
                )
            else:
                out[key] = _pearson_t(float(r[i, j]), nij, alternative)
    return out


def variance_inflation_factors(corr: np.ndarray) -> np.ndarray:
    """Variance inflation factors, the diagonal of the inverse correlation matrix [3]_.

    Parameters
    ----------
    corr
        ``(k, k)`` correlation matrix of the covariates (intercept excluded).

    Returns
    -------
    numpy.ndarray
        ``VIF_j = 1 / (1 - R_j^2)``, where ``R_j^2`` is the centred R-squared of covariate j
        regressed on the others and an intercept. NaN for a column whose correlations are
        undefined (constant), ``inf`` for a column in an exact linear dependency.

    Warns
    -----
    DegenerateDataWarning
        When a column is undefined, or the matrix is not positive semi-definite (possible
        for pairwise-complete correlations when missingness differs between columns).

    Notes
    -----
    ``diag(R^-1)_j = 1 / (1 - R_j^2)`` is the partitioned-inverse identity; it equals
    ``statsmodels.stats.outliers_influence.variance_inflation_factor`` on a design that
    contains a constant column (or, from statsmodels 0.15, with its default
    ``standardize=True``, which centres the columns). Computed from the Cholesky factor
    ``R = L L'`` as the column sums of squares of ``L^-1``. If the factorisation fails or
    a pivot ``1 - R^2`` is within rounding of zero (``16 k eps``), the dependency is exact
    as far as the co-moments can tell, and the VIF is ``inf`` for the columns loading on
    the null space of R (from its eigenvectors), finite for the others.
    """
    corr = np.asarray(corr, dtype=np.float64)
    k = corr.shape[0]
    vif = np.full(k, np.nan)
    ok = np.isfinite(corr).all(axis=0) & np.isfinite(corr).all(axis=1)
    if not ok.all():
        warnings.warn(
            f"VIF undefined for columns {np.flatnonzero(~ok).tolist()}: their "
            "correlations are undefined (constant column)",
            DegenerateDataWarning,
            stacklevel=2,
        )
    sub = corr[np.ix_(ok, ok)]
    if sub.size == 0:
        return vif
    tol = _null_tolerance(sub.shape[0])
    try:
        lower = np.linalg.cholesky(sub)
        if (np.diag(lower) ** 2).min() > tol:  # pivots are 1 - R^2 of nested regressions
            inv = scipy.linalg.solve_triangular(lower, np.eye(sub.shape[0]), lower=True)
            vif[ok] = (inv * inv).sum(axis=0)
            return vif
    except np.linalg.LinAlgError:
        pass
    lam, vec = np.linalg.eigh(sub)
    if lam.min() < -math.sqrt(_EPS):
        warnings.warn(
            "correlation matrix is not positive semi-definite (pairwise-complete "
            "correlations over different rows); VIFs are undefined",
            DegenerateDataWarning,
            stacklevel=2,
        )
        return vif
    null = lam <= tol * lam.max()
    in_null = (vec[:, null] ** 2).sum(axis=1) > math.sqrt(_EPS)
    finite = ((vec[:, ~null] ** 2) / lam[~null]).sum(axis=1)
    vif[ok] = np.where(in_null, np.inf, finite)
    return vif


def condition_diagnostics(
    cross_products: CoMoments | np.ndarray,
    means: np.ndarray | None = None,
    n: float | None = None,
    *,
    include_intercept: bool = True,
    scale: bool = True,
    names: Sequence[str] | None = None,
) -> TestResult:
    """Condition number, condition indices and variance-decomposition proportions [1]_.

    Parameters
    ----------
    cross_products
        Complete-case co-moments of the k covariates (a :class:`CoMoments` whose counts are
        all equal), or the ``(k, k)`` centred cross-product matrix
        ``C = sum (x - m)(x - m)'``. A covariance matrix ``S`` (ddof 1) enters as
        ``S * (n - 1)``: with an intercept the scale of C relative to the means matters.
    means, n
        Column means and row count; required with a matrix, ignored with co-moments.
    include_intercept
        Diagnose ``[1, X]`` (BKW's recommendation, so that dependencies involving the
        constant, such as a covariate with a small coefficient of variation, are seen).
    scale
        Scale the columns to unit length first, as BKW require [1]_. ``scale=False`` gives
        the condition number of the raw design, which depends on the units of measurement;
        it is what ``statsmodels`` reports as ``OLSResults.condition_number``.
    names
        Covariate names.

    Returns
    -------
    TestResult
        ``statistic`` is the scaled condition number ``mu_max / mu_min`` and ``pvalue`` is
        None (a diagnostic, not a test). ``details`` holds ``names`` (the intercept first
        when included), ``singular_values`` (descending), ``condition_indices``
        (ascending) and ``proportions``, a list of rows: ``proportions[k][j]`` is the share
        of variable j's coefficient variance associated with singular value k.

    Notes
    -----
    BKW [1]_ scale each column of the design to unit Euclidean length, take the
    singular value decomposition ``X D^-1 = U diag(mu) V'``, and define the condition
    indices ``eta_k = mu_max / mu_k`` and the proportions
    ``pi_kj = (v_jk^2 / mu_k^2) / sum_k (v_jk^2 / mu_k^2)``. Here the SVD is taken of the
    triangular factor of ``X'X`` built from the co-moments (module docstring), which has the
    same singular values and right singular vectors as the scaled design. The intercept
    part of that factor is exact; the covariate part comes from the Cholesky factor of
    the co-moments, so a near-dependency among the centred covariates is resolved only
    down to a smallest eigenvalue of their correlation matrix of about ``16 k eps``
    (condition indices up to about 1e7). Beyond that it is treated as exact: the index is
    ``inf`` and the proportions are their limits (shared among the null dimensions only).
    The diagnostic concerns the data, not a model; it has no null hypothesis.

    Examples
    --------
    >>> import numpy as np
    >>> from spark_explore.states._algebra import batch_comoments
    >>> x = np.array([[1.0, 2.0], [2.0, 4.1], [3.0, 5.9], [4.0, 8.2]])
    >>> c = batch_comoments(x, np.isfinite(x))
    >>> round(condition_diagnostics(c, names=["u", "v"]).statistic, 1)
    130.4
    >>> variance_inflation_factors(correlation_matrix(c)).round(2).tolist()
    [496.43, 496.43]
    """
    design = _complete_case(cross_products, means, n)
    if isinstance(design, str):
        return not_applicable("BKW condition diagnostics", design, reference=_REF_BKW)
    rows, mean, c = design
    k = mean.shape[0]
    labels = list(names) if names is not None else [f"c{j}" for j in range(k)]
    root = _root_of_centred(c)
    if include_intercept:
        top = np.concatenate([[math.sqrt(rows)], math.sqrt(rows) * mean])
        factor = np.vstack([top, np.hstack([np.zeros((k, 1)), root])])
        labels = [INTERCEPT, *labels]
    else:
        factor = np.vstack([root, math.sqrt(rows) * mean[None, :]])
    norms = np.linalg.norm(factor, axis=0)
    zero = [labels[j] for j in np.flatnonzero(norms == 0)]
    if zero:
        return not_applicable(
            "BKW condition diagnostics",
            f"columns {zero} are identically zero",
            n=int(rows),
            reference=_REF_BKW,
        )
    # the numerical rank is judged on the scaled design, whatever is reported
    _, mu, vt = np.linalg.svd(factor / norms, full_matrices=False)
    null_count = int((mu <= max(factor.shape) * _EPS * mu[0]).sum())
    if not scale:
        _, mu, vt = np.linalg.svd(factor, full_matrices=False)
    null = np.arange(mu.size) >= mu.size - null_count
    with np.errstate(divide="ignore"):
        eta = np.where(null, np.inf, mu[0] / np.where(null, 1.0, mu))
    phi = (vt.T**2) / np.where(null, 1.0, mu**2)  # phi[j, k] = v_jk^2 / mu_k^2 [1]
    if null.any():  # limits as mu_k -> 0: only the null dimensions keep weight
        loads = (vt.T[:, null] ** 2).sum(axis=1) > math.sqrt(_EPS)
        phi = np.where(loads[:, None], phi * null[None, :], phi * ~null[None, :])
    proportions = (phi / phi.sum(axis=1, keepdims=True)).T  # pi[k, j], shares of var(b_j) [1]
    return TestResult(
        float(eta[-1]),
        None,
        "BKW condition diagnostics",
        n=int(rows),
        effect_size=float(eta[-1]),
        effect_size_name="scaled condition number" if scale else "condition number (unscaled)",
        method=EXACT,
        reference=_REF_BKW,
        details={
            "names": labels,
            "singular_values": mu.tolist(),
            "condition_indices": eta.tolist(),
            "proportions": proportions.tolist(),
            "include_intercept": include_intercept,
            "scaled": scale,
        },
    )


def collinear_groups(
    diagnostics: TestResult,
    *,
    index_threshold: float = 30.0,
    proportion_threshold: float = 0.5,
) -> list[dict[str, Any]]:
    """Near-dependencies flagged by BKW's rule of thumb [1]_.

    Parameters
    ----------
    diagnostics
        A result of :func:`condition_diagnostics`.
    index_threshold
        A condition index above this signals a near-dependency (BKW: 30 is "moderate to
        strong", 100 "strong").
    proportion_threshold
        Variables whose variance-decomposition proportion on that dimension exceeds this
        are named as involved.

    Returns
    -------
    list of dict
        One ``{"condition_index", "names", "proportions"}`` per dimension with an index
        above the threshold and at least two variables above the proportion threshold,
        most severe first.

    Notes
    -----
    BKW [1]_ ask for two or more variates with high proportions on one high index.
    When several high indices compete, one variable's variance can be split between
    them, so that no single proportion passes the threshold; BKW then sum proportions over
    the competing dimensions. This function reports each dimension on its own.
    """
    if not diagnostics.applicable:
        return []
    details = diagnostics.details
    labels = details["names"]
    groups = []
    for eta, row in zip(details["condition_indices"], details["proportions"], strict=True):
        if eta > index_threshold:
            involved = [
                (name, p) for name, p in zip(labels, row, strict=True) if p > proportion_threshold
            ]
            if len(involved) >= 2:
                groups.append(
                    {
                        "condition_index": eta,
                        "names": [a for a, _ in involved],
                        "proportions": [p for _, p in involved],
                    }
                )
    return sorted(groups, key=lambda g: -g["condition_index"])


def ols_from_moments(
    xtx_stats: CoMoments | tuple[float, np.ndarray, np.ndarray],
    y_index: int,
    *,
    names: Sequence[str] | None = None,
) -> TestResult:
    """Least-squares fit of one column on all the others plus an intercept, from co-moments.

    Parameters
    ----------
    xtx_stats
        Complete-case co-moments of the columns (including y), or ``(n, means, C)``.
    y_index
        Position of the response among the columns.
    names
        Column names (response included).

    Returns
    -------
    TestResult
        ``statistic`` is the overall F = (SSR / p) / (SSE / (n - p - 1)) with its p-value,
        ``effect_size`` is R^2. ``details`` holds ``names`` (intercept first),
        ``coefficients``, ``std_errors``, ``residual_std``, ``r_squared``, ``ss_regression``
        and ``ss_residual``.

    Notes
    -----
    Gaussian linear model with independent homoscedastic errors. With ``C`` the centred
    co-moments of ``[X, y]`` and ``C = R'R`` its Cholesky factorisation, partitioned as
    ``R = [[R_xx, r_xy], [0, rho]]``: slopes ``b = R_xx^-1 r_xy``, SSE ``rho^2``,
    intercept ``m_y - m_x' b``, ``cov(b) = s^2 (R_xx' R_xx)^-1`` and
    ``var(b_0) = s^2 (1/n + m_x' C_xx^-1 m_x)`` [5]_. This is the QR solution of the
    centred problem, so it is as accurate as a QR of the rows (the NIST Longley
    certified values [4]_ are reproduced to 11-13 digits).
    """
    design = (
        _complete_case(xtx_stats, None, None)
        if isinstance(xtx_stats, CoMoments)
        else _complete_case(xtx_stats[2], xtx_stats[1], xtx_stats[0])
    )
    if isinstance(design, str):
        return not_applicable("OLS overall F-test", design, reference=_REF_OLS)
    rows, mean, c = design
    k = mean.shape[0]
    if not 0 <= y_index < k:
        raise InvalidArgumentError(
            f"`y_index` must be in [0, {k}), got {y_index}",
            code="INVALID_ARGUMENT",
            expected=f"0..{k - 1}",
            got=y_index,
        )
    labels = list(names) if names is not None else [f"c{j}" for j in range(k)]
    order = [j for j in range(k) if j != y_index] + [y_index]
    p = k - 1
    if p == 0:
        return not_applicable(
            "OLS overall F-test",
            "no covariates besides the response",
            n=int(rows),
            reference=_REF_OLS,
        )
    df_resid = rows - p - 1
    if df_resid <= 0:
        return not_applicable(
            "OLS overall F-test",
            f"{rows:.0f} rows for {p + 1} coefficients leave no residual degrees of freedom",
            n=int(rows),
            reference=_REF_OLS,
        )
    c = c[np.ix_(order, order)]
    scale = np.sqrt(np.diag(c))
    if scale[-1] == 0:
        return not_applicable(
            "OLS overall F-test",
            f"response {labels[y_index]!r} is constant",
            n=int(rows),
            reference=_REF_OLS,
        )
    if (scale[:-1] == 0).any():
        return not_applicable(
            "OLS overall F-test",
            "a covariate is constant, so it is collinear with the intercept",
            n=int(rows),
            reference=_REF_OLS,
        )
    try:  # Cholesky of the correlation-scaled matrix, then undo the scaling
        lower = np.linalg.cholesky(c / np.outer(scale, scale))
    except np.linalg.LinAlgError:
        lower = None
    if lower is None or (np.diag(lower)[:p] ** 2).min() <= _null_tolerance(k):
        return not_applicable(
            "OLS overall F-test",
            "covariates are exactly collinear (to the precision of the co-moments)",
            n=int(rows),
            reference=_REF_OLS,
        )
    upper = lower.T * scale
    r_xx, r_xy, rho = upper[:p, :p], upper[:p, p], upper[p, p]
    slopes = scipy.linalg.solve_triangular(r_xx, r_xy)
    intercept = mean[order[-1]] - float(mean[order[:-1]] @ slopes)
    sse, sst = rho * rho, c[p, p]
    s2 = sse / df_resid
    r_inv = scipy.linalg.solve_triangular(r_xx, np.eye(p))  # C_xx^-1 = r_inv r_inv'
    w = r_inv.T @ mean[order[:-1]]
    se = np.sqrt(s2 * np.concatenate([[1.0 / rows + w @ w], (r_inv * r_inv).sum(axis=1)]))
    ssr = sst - sse
    f_stat = (ssr / p) / s2 if s2 > 0 else math.inf
    return TestResult(
        f_stat,
        float(stats.f.sf(f_stat, p, df_resid)),
        "OLS overall F-test",
        n=int(rows),
        df=(float(p), float(df_resid)),
        effect_size=ssr / sst,
        effect_size_name="R^2",
        method=EXACT,
        reference=_REF_OLS,
        details={
            "names": [INTERCEPT, *(labels[j] for j in order[:-1])],
            "response": labels[y_index],
            "coefficients": [intercept, *slopes.tolist()],
            "std_errors": se.tolist(),
            "residual_std": math.sqrt(s2),
            "r_squared": ssr / sst,
            "ss_regression": ssr,
            "ss_residual": sse,
        },
    )


def _pearson_t(r: float, n: float, alternative: str) -> TestResult:
    """t statistic and p-value of one correlation [2]_."""
    df = n - 2
    one_minus_r2 = (1.0 - r) * (1.0 + r)
    with np.errstate(divide="ignore"):
        t = (
            r * math.sqrt(df) / math.sqrt(one_minus_r2)
            if one_minus_r2 > 0
            else math.copysign(math.inf, r)
        )
    # P(|T| >= |t|) = I_{df/(df+t^2)}(df/2, 1/2) = I_{1-r^2}(df/2, 1/2)
    two_sided = float(special.betainc(df / 2.0, 0.5, one_minus_r2))
    if alternative == "two-sided":
        p = two_sided
    else:
        toward = (r > 0) == (alternative == "greater")
        p = two_sided / 2.0 if toward else 1.0 - two_sided / 2.0
    return TestResult(
        t,
        p,
        "Pearson correlation t-test",
        n=int(n),
        df=df,
        effect_size=r,
        effect_size_name="Pearson r",
        method=EXACT,
        reference=_REF_PEARSON,
        details={"alternative": alternative},
    )


def _undefined_reason(key: tuple[str, str], m2: np.ndarray | None, i: int, j: int) -> str:
    if m2 is None:
        return f"correlation of {key} is undefined: a column is constant over the pair's rows"
    spread = ((0, m2[i, j]), (1, m2[j, i]))
    overflow = [key[a] for a, v in spread if not np.isfinite(v)]
    if overflow:
        return (
            f"correlation of {key} cannot be computed: the sum of squared deviations of "
            f"{overflow} overflows float64 (values near the float64 limits)"
        )
    constant = [key[a] for a, v in spread if not v > 0]
    if not constant:
        return f"correlation of {key} cannot be computed: their co-moment overflows float64"
    return f"correlation of {key} is undefined: {constant} constant over the pair's rows"


def _complete_case(
    stats_or_c: CoMoments | np.ndarray, means: np.ndarray | None, n: float | None
) -> tuple[float, np.ndarray, np.ndarray] | str:
    """``(n, means, C)`` of a design matrix, or the reason there is none."""
    if isinstance(stats_or_c, CoMoments):
        counts = stats_or_c.n
        if counts.size == 0:
            return "no covariates"
        if not (counts == counts.flat[0]).all():
            return (
                "co-moments are pairwise-complete over different rows, so they are not "
                "the cross-products of one design matrix; use complete cases"
            )
        rows, mean, c = float(counts.flat[0]), np.diag(stats_or_c.mean).copy(), stats_or_c.c
    else:
        if means is None or n is None:
            raise InvalidArgumentError(
                "`means` and `n` are required with a cross-product matrix", code="MISSING_ARGUMENT"
            )
        rows, mean = float(n), np.asarray(means, dtype=np.float64)
        c = np.asarray(stats_or_c, dtype=np.float64)
        if c.shape != (mean.shape[0], mean.shape[0]):
            raise InvalidArgumentError(
                f"`cross_products` must be ({mean.shape[0]}, {mean.shape[0]}), got {c.shape}",
                code="SHAPE_MISMATCH",
            )
    if rows < 2:
        return f"{rows:.0f} rows; at least 2 are needed"
    if not (np.isfinite(c).all() and np.isfinite(mean).all()):
        return "co-moments contain non-finite values"
    return rows, mean, 0.5 * (c + c.T)


def _root_of_centred(c: np.ndarray) -> np.ndarray:
    """A square root ``B`` with ``B'B = C``: Cholesky, or the eigen-root when C is singular.

    Eigenvalues of the correlation-scaled matrix within rounding of zero are set to zero,
    so that a dependency the co-moments cannot resolve is reported as exact.
    """
    scale = np.sqrt(np.clip(np.diag(c), 0.0, None))
    safe = np.where(scale > 0, scale, 1.0)
    corr = c / np.outer(safe, safe)
    tol = _null_tolerance(c.shape[0])
    try:
        lower = np.linalg.cholesky(corr)
        if (np.diag(lower)[scale > 0] ** 2).min(initial=1.0) > tol:
            return lower.T * scale
    except np.linalg.LinAlgError:
        pass
    lam, vec = np.linalg.eigh(corr)
    if lam.min() < -math.sqrt(_EPS) * max(lam.max(), 1.0):
        warnings.warn(
            "co-moment matrix is not positive semi-definite; negative eigenvalues set to zero",
            DegenerateDataWarning,
            stacklevel=3,
        )
    lam = np.where(lam <= tol * max(lam.max(), 1.0), 0.0, lam)
    return (np.sqrt(lam)[:, None] * vec.T) * scale


def _null_tolerance(k: int) -> float:
    """Eigenvalue of a k x k correlation matrix indistinguishable from 0 after rounding."""
    return 16.0 * max(k, 1) * _EPS


def _two_prod(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``p, e`` with ``p = fl(a b)`` and ``a b = p + e`` exactly (Dekker's split)."""
    p = a * b
    a_hi, a_lo = _split(a)
    b_hi, b_lo = _split(b)
    e = ((a_hi * b_hi - p) + a_hi * b_lo + a_lo * b_hi) + a_lo * b_lo
    return p, e


def _split(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    t = 134217729.0 * a  # 2^27 + 1
    hi = t - (t - a)
    return hi, a - hi


def _ratio_to_geometric_mean(c: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``c / sqrt(a b)`` for positive a, b, correct to about half an ulp."""
    # exact rescaling by even powers of two: a = fa 2^ea with fa in [0.5, 2), ea even
    fa, ea = np.frexp(a)
    fb, eb = np.frexp(b)
    odd_a, odd_b = ea % 2 == 1, eb % 2 == 1
    fa, ea = np.where(odd_a, 2 * fa, fa), np.where(odd_a, ea - 1, ea)
    fb, eb = np.where(odd_b, 2 * fb, fb), np.where(odd_b, eb - 1, eb)
    c = np.ldexp(c, -((ea + eb) // 2))
    # p = fa fb in double-double, then its square root s + s_lo
    p, p_lo = _two_prod(fa, fb)
    s = np.sqrt(p)
    sq, sq_lo = _two_prod(s, s)
    s_lo = (((p - sq) - sq_lo) + p_lo) / (2.0 * s)
    # q = c / (s + s_lo) with one correction step from the exact residual c - q s
    q = c / s
    qs, qs_lo = _two_prod(q, s)
    hi, lo = two_sum(c, -qs)
    return q + (((hi + lo) - qs_lo) - q * s_lo) / s
