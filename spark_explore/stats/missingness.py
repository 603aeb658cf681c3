"""Missing values: Little's MCAR test from per-pattern aggregates, and indicator associations.

Little's test compares, for each missingness pattern, the means of the variables observed
in it with the maximum-likelihood estimates of the overall means. Everything it needs is a
mergeable aggregate: per pattern, the row count and the mean and co-moment matrix of the
observed variables (:class:`PatternStats`). The ML estimates come from the EM algorithm run
on those same aggregates (:func:`em_mean_cov`), so the whole test completes from one scan.

The indicator associations ask whether a column's missingness goes with other values:
:func:`missingness_association` compares a numeric column's mean between rows where another
column is missing and present (Welch), :func:`proportion_difference` compares two rates
(e.g. a label rate, or another column's missing rate) with a two-proportion z test.

References
----------
.. [1] R. J. A. Little, "A test of missing completely at random for multivariate data with
   missing values", Journal of the American Statistical Association 83(404), 1988,
   pp. 1198-1202.
.. [2] A. P. Dempster, N. M. Laird and D. B. Rubin, "Maximum likelihood from incomplete
   data via the EM algorithm", Journal of the Royal Statistical Society B 39(1), 1977,
   pp. 1-38.
.. [3] R. J. A. Little and D. B. Rubin, Statistical Analysis with Missing Data, 3rd ed.,
   Wiley, 2019, section 11.2 (EM for the multivariate normal).
.. [4] B. L. Welch, "The generalization of 'Student's' problem when several different
   population variances are involved", Biometrika 34(1/2), 1947, pp. 28-35.
.. [5] J. L. Fleiss, B. Levin and M. C. Paik, Statistical Methods for Rates and
   Proportions, 3rd ed., Wiley, 2003, section 2.2 (pooled two-proportion z test).

Reference numbers in the functions' docstrings and comments are those of this list.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from scipy import stats

from spark_explore.errors import (
    ConstantColumnWarning,
    DegenerateDataWarning,
    InvalidArgumentError,
    SmallSampleWarning,
)
from spark_explore.stats.results import EXACT, TestResult, _finite, not_applicable

__all__ = [
    "EMResult",
    "PatternStats",
    "em_mean_cov",
    "little_mcar",
    "missingness_association",
    "pattern_stats",
    "proportion_difference",
]

LITTLE_REF = "Little (1988), JASA 83(404):1198-1202"
WELCH_REF = "Welch (1947), Biometrika 34(1/2):28-35"
PROP_REF = "Fleiss, Levin & Paik (2003), Statistical Methods for Rates and Proportions, 2.2"


@dataclass(frozen=True, eq=False)
class PatternStats:
    """Sufficient statistics of the rows sharing one missingness pattern.

    Attributes
    ----------
    observed : numpy.ndarray of bool, shape (p,)
        True for the variables observed (non-missing) in this pattern.
    n : int
        Number of rows with this pattern.
    mean : numpy.ndarray, shape (p_j,)
        Means of the observed variables over these rows, in variable order
        (``p_j = observed.sum()``).
    m2 : numpy.ndarray, shape (p_j, p_j), optional
        Co-moment matrix of the observed variables,
        ``sum((y - mean)(y - mean)ᵀ)`` over these rows. Needed by :func:`em_mean_cov`,
        not by :func:`little_mcar` when the mean and covariance are given.

    Notes
    -----
    Counts, means and co-moments merge exactly across partitions (Chan-Golub-LeVeque and
    Pébay's formulas, ``states/_algebra.py``), so a scan can keep one set per pattern.
    Centred co-moments are preferred to raw cross-product sums, which lose precision for
    variables with a large mean; :meth:`from_sums` converts the latter.
    """

    observed: np.ndarray
    n: int
    mean: np.ndarray
    m2: np.ndarray | None = None

    def __post_init__(self) -> None:
        observed = np.asarray(self.observed, dtype=bool).reshape(-1)
        mean = np.asarray(self.mean, dtype=np.float64).reshape(-1)
        n = float(self.n)
        if not (math.isfinite(n) and n >= 0 and n == round(n)):
            raise InvalidArgumentError(
                f"pattern count must be a non-negative whole number, got {self.n!r}.", got=self.n
            )
        if not np.all(np.isfinite(mean)):
            raise InvalidArgumentError("pattern means must be finite.", got=mean.tolist())
        if mean.size != observed.sum():
            raise InvalidArgumentError(
                f"pattern mean must have one entry per observed variable "
                f"({int(observed.sum())}), got {mean.size}.",
                expected=int(observed.sum()),
                got=mean.size,
            )
        object.__setattr__(self, "observed", observed)
        object.__setattr__(self, "n", int(n))
        object.__setattr__(self, "mean", mean)
        if self.m2 is not None:
            m2 = np.asarray(self.m2, dtype=np.float64)
            if m2.shape != (mean.size, mean.size):
                raise InvalidArgumentError(
                    f"pattern m2 must be ({mean.size}, {mean.size}), got {m2.shape}.",
                    expected=(mean.size, mean.size),
                    got=m2.shape,
                )
            object.__setattr__(self, "m2", m2)

    @classmethod
    def from_sums(cls, observed: Any, n: int, sums: Any, cross_products: Any) -> PatternStats:
        """Build from the sums and raw cross-product sums of the observed variables.

        ``mean = sums / n`` and ``m2 = cross_products - n mean meanᵀ``; the subtraction
        cancels digits when the means are large compared with the spread.
        """
        s = np.asarray(sums, dtype=np.float64).reshape(-1)
        cp = np.asarray(cross_products, dtype=np.float64)
        if n == 0:
            return cls(observed, 0, np.zeros_like(s), np.zeros_like(cp))
        mean = s / n
        return cls(observed, n, mean, cp - n * np.outer(mean, mean))


@dataclass(frozen=True, eq=False)
class EMResult:
    """Maximum-likelihood mean and covariance of a multivariate normal from EM.

    Attributes
    ----------
    mean : numpy.ndarray, shape (p,)
        ML mean; NaN for variables never observed.
    cov : numpy.ndarray, shape (p, p)
        ML covariance (divisor n); NaN in the rows and columns of variables never
        observed.
    n : int
        Rows used (those with at least one observed variable).
    n_iter : int
        EM iterations run.
    converged : bool
        Whether the largest change of a standardised parameter fell below ``tol``.
    loglik : float or None
        Observed-data log-likelihood at the estimates.
    applicable, reason
        False, with the reason, when the estimates cannot be computed.
    """

    mean: np.ndarray
    cov: np.ndarray
    n: int
    n_iter: int
    converged: bool
    loglik: float | None
    applicable: bool = True
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = _finite(
            {
                "mean": self.mean.tolist(),
                "cov": self.cov.tolist(),
                "n": self.n,
                "n_iter": self.n_iter,
                "converged": self.converged,
                "loglik": self.loglik,
                "applicable": self.applicable,
                "reason": self.reason,
            }
        )
        return data


def pattern_stats(data: Any) -> list[PatternStats]:
    """Per-pattern sufficient statistics of a data matrix whose missing entries are NaN.

    Parameters
    ----------
    data : array_like, shape (rows, p)
        Non-finite entries (NaN, infinities) count as missing.

    Returns
    -------
    list of PatternStats
        One per distinct pattern, ordered by mask (``numpy.unique`` order, missing
        before observed), with ``m2`` filled in.

    Notes
    -----
    This is the in-memory counterpart of the scan's per-pattern state, for the sample or
    for tests; means and co-moments use the two-pass algorithm.

    Examples
    --------
    >>> import numpy as np
    >>> y = np.array([[1.0, 2.0], [2.0, np.nan], [3.0, 5.0], [np.nan, 4.0]])
    >>> [(p.observed.tolist(), p.n) for p in pattern_stats(y)]
    [([False, True], 1), ([True, False], 1), ([True, True], 2)]
    """
    y = np.asarray(data, dtype=np.float64)
    if y.ndim != 2:
        raise InvalidArgumentError(f"`data` must be 2-D, got shape {y.shape}.", got=y.shape)
    observed = np.isfinite(y)
    if y.shape[0] == 0:
        return []
    masks, inverse = np.unique(observed, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    out = []
    for j, mask in enumerate(masks):
        rows = y[inverse == j][:, mask]
        mean = rows.mean(axis=0)
        d = rows - mean
        out.append(PatternStats(mask, rows.shape[0], mean, d.T @ d))
    return out


def em_mean_cov(patterns: Sequence[Any], *, tol: float = 1e-10, max_iter: int = 10_000) -> EMResult:
    """ML estimates of a multivariate normal's mean and covariance from pattern aggregates.

    Parameters
    ----------
    patterns : sequence of PatternStats or tuple
        Every missingness pattern's statistics, with ``m2``; tuples are passed to
        :class:`PatternStats`.
    tol : float
        Convergence threshold on the largest change of any mean or covariance entry, in
        units of the variables' available-case standard deviations.
    max_iter : int
        Iteration limit.

    Returns
    -------
    EMResult
        Not applicable (``applicable=False``, NaN estimates) when no row has an observed
        value, a variable is constant, or the covariance is singular (collinear
        variables).

    Raises
    ------
    InvalidArgumentError
        Patterns of different lengths, a pattern without ``m2``, or bad ``tol`` or
        ``max_iter``.

    Warns
    -----
    DegenerateDataWarning
        EM did not converge within ``max_iter`` (``converged=False``), or variables are
        never observed (their estimates are NaN).
    ConstantColumnWarning
        With the not-applicable result for a constant variable.

    Notes
    -----
    The model is that the rows are independent draws from a p-variate normal and that
    the data are missing at random (ignorable). EM [2]_ alternates, from a diagonal
    start: the E step replaces each pattern's sufficient statistics by their conditional
    expectations given the observed variables, using the regression of the missing
    variables on the observed ones, ``B = Σ_MO Σ_OO⁻¹`` and residual covariance
    ``Σ_MM - B Σ_OM`` [3]_; the M step sets ``μ = E[Σ y] / n`` and
    ``Σ = E[Σ y yᵀ] / n - μ μᵀ``. Because the conditional expectations are linear in the
    observed values, the E step needs only each pattern's count, sum and cross-product
    sum, never the rows. Computations run on variables standardised by their
    available-case mean and sd (EM is affine-equivariant), then are mapped back.

    Single-pass design: the per-pattern aggregates are exact, so the estimates are those
    EM would reach on the raw rows; the number of distinct patterns a scan can keep is
    bounded by its configuration, and every pattern present must be supplied.

    References
    ----------
    .. [2] A. P. Dempster, N. M. Laird and D. B. Rubin, "Maximum likelihood from
       incomplete data via the EM algorithm", Journal of the Royal Statistical Society B
       39(1), 1977, pp. 1-38.
    .. [3] R. J. A. Little and D. B. Rubin, Statistical Analysis with Missing Data, 3rd
       ed., Wiley, 2019, section 11.2.
    """
    if not (tol > 0 and math.isfinite(tol)):
        raise InvalidArgumentError(f"`tol` must be positive, got {tol!r}.", got=tol)
    if int(max_iter) < 1:
        raise InvalidArgumentError(
            f"`max_iter` must be at least 1, got {max_iter!r}.", got=max_iter
        )
    pats, p = _patterns(patterns)
    if any(pat.m2 is None for pat in pats):
        raise InvalidArgumentError(
            "every pattern needs its co-moment matrix `m2` for EM.", expected="m2"
        )
    used = [pat for pat in pats if pat.n > 0 and pat.observed.any()]
    n_used = sum(pat.n for pat in used)
    nan_mean, nan_cov = np.full(p, np.nan), np.full((p, p), np.nan)

    def na(reason: str, category: type[Warning] = DegenerateDataWarning) -> EMResult:
        warnings.warn(f"EM not applicable: {reason}", category, stacklevel=3)
        return EMResult(nan_mean, nan_cov, n_used, 0, False, None, applicable=False, reason=reason)

    if not used:
        return na("no row has an observed value")
    seen = np.any([pat.observed for pat in used], axis=0)
    if not seen.all():
        warnings.warn(
            f"EM: variables {np.flatnonzero(~seen).tolist()} are never observed; "
            "their estimates are NaN",
            DegenerateDataWarning,
            stacklevel=2,
        )
    idx = np.flatnonzero(seen)
    q = idx.size
    # available-case location and scale of each variable, for standardising
    c, s = _available_case(used, idx)
    if np.any(s == 0):
        const = idx[s == 0].tolist()
        return na(
            f"variable(s) {const} are constant among their observed values", ConstantColumnWarning
        )
    # per-pattern T1 = sum of standardised y_O, T2 = sum of y_O y_Oᵀ, over variables idx
    blocks = []
    for pat in used:
        # positions of the pattern's observed variables within idx (all of them are in it)
        o = np.flatnonzero(pat.observed[idx])
        ybar = (pat.mean - c[o]) / s[o]
        m2 = _m2(pat) / np.outer(s[o], s[o])
        m = np.setdiff1d(np.arange(q), o)
        blocks.append(
            _Block(
                o,
                m,
                np.ix_(o, o),
                np.ix_(o, m),
                np.ix_(m, m),
                pat.n,
                pat.n * ybar,
                m2 + pat.n * np.outer(ybar, ybar),
            )
        )

    mu, sigma = np.zeros(q), np.eye(q)
    converged, it = False, 0
    while it < int(max_iter):
        it += 1
        try:
            new_mu, new_sigma = _em_step(blocks, mu, sigma, n_used)
        except np.linalg.LinAlgError:
            return na("the covariance matrix is singular (collinear variables)")
        change = max(np.abs(new_mu - mu).max(), np.abs(new_sigma - sigma).max())
        mu, sigma = new_mu, new_sigma
        if not _well_conditioned(sigma):
            return na("the covariance matrix is singular (collinear variables)")
        if change < tol:
            converged = True
            break
    if not converged:
        warnings.warn(
            f"EM did not converge in {it} iterations", DegenerateDataWarning, stacklevel=2
        )
    # the likelihood of the original variables: the Jacobian of the standardisation
    loglik = _loglik(blocks, mu, sigma) - sum(
        blk.n * float(np.log(s[blk.o]).sum()) for blk in blocks
    )
    mean, cov = nan_mean.copy(), nan_cov.copy()
    mean[idx] = c + s * mu
    cov[np.ix_(idx, idx)] = sigma * np.outer(s, s)
    return EMResult(mean, cov, n_used, it, converged, float(loglik))


def little_mcar(
    patterns: Sequence[Any],
    mu: Any = None,
    sigma: Any = None,
    *,
    method: str = EXACT,
    tol: float = 1e-10,
    max_iter: int = 10_000,
) -> TestResult:
    """Little's chi-square test that the data are missing completely at random.

    Parameters
    ----------
    patterns : sequence of PatternStats or tuple
        Every missingness pattern's count and observed-variable means (and ``m2`` when
        ``mu`` and ``sigma`` are to be estimated here).
    mu, sigma : array_like, optional
        ML estimates of the mean ``(p,)`` and covariance ``(p, p)`` under the
        multivariate normal model; by default computed with :func:`em_mean_cov`.
    method : str
        ``EXACT`` when the patterns are aggregates of the whole table, ``SAMPLE`` when
        they come from the sample (marks the result approximate).
    tol, max_iter
        Passed to :func:`em_mean_cov`.

    Returns
    -------
    TestResult
        ``statistic`` is ``d²``, ``pvalue`` its upper chi-square tail with
        ``df = sum_j p_j - p``. ``details`` holds the number of patterns, each pattern's
        observed mask, count and contribution to ``d²``, the rows with no observed value
        (left out) and the EM diagnostics. Not applicable when fewer than two patterns
        have observed values (nothing to compare), or the estimates are unavailable.

    Raises
    ------
    InvalidArgumentError
        Patterns of different lengths, wrongly shaped ``mu``/``sigma``, or only one of
        them given.

    Warns
    -----
    DegenerateDataWarning, ConstantColumnWarning, SmallSampleWarning
        With the not-applicable result, or from :func:`em_mean_cov`.

    See Also
    --------
    em_mean_cov, missingness_association

    Notes
    -----
    The null hypothesis is MCAR: the probability of a missingness pattern does not depend
    on the data, so the observed variables have the same mean in every pattern. With
    ``ȳ_j`` the observed means of pattern j (``n_j`` rows, ``p_j`` observed variables)
    and ``μ̂, Σ̂`` the ML estimates, Little's statistic is [1]_ ::

        d² = sum_j n_j (ȳ_j - μ̂_Oj)ᵀ Σ̂_OjOj⁻¹ (ȳ_j - μ̂_Oj),

    asymptotically chi-square with ``sum_j p_j - p`` degrees of freedom under MCAR and
    multivariate normality. ``Σ̂`` is the ML (divisor n) estimate, as in the common R
    implementations (``BaylorEdPsych::LittleMCAR``, ``naniar::mcar_test``). The test is
    sensitive to non-normality, it has little power when patterns are rare, and it
    detects only missingness related to means; a non-significant result does not
    establish MCAR. Rows with no observed variable carry no information and are left
    out (reported in ``details``); variables never observed are left out too.

    Single-pass design: ``ȳ_j`` and the aggregates EM needs are exact per-pattern
    states, so ``d²`` equals the statistic computed from the raw rows.

    References
    ----------
    .. [1] R. J. A. Little, "A test of missing completely at random for multivariate
       data with missing values", Journal of the American Statistical Association
       83(404), 1988, pp. 1198-1202.
    """
    test = "Little's MCAR"
    approximate = method != EXACT
    pats, p = _patterns(patterns)
    if (mu is None) != (sigma is None):
        raise InvalidArgumentError("give both `mu` and `sigma`, or neither.")
    all_missing = sum(pat.n for pat in pats if pat.n > 0 and not pat.observed.any())
    used = [pat for pat in pats if pat.n > 0 and pat.observed.any()]
    n_used = sum(pat.n for pat in used)
    em_details: dict[str, Any] = {}
    notes: list[str] = []
    if mu is None:
        if len(used) < 2:
            return _not_applicable(test, _one_pattern_reason(used), n=n_used, method=method)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            em = em_mean_cov(used, tol=tol, max_iter=max_iter)
        if not em.applicable:
            category = caught[0].category if caught else DegenerateDataWarning
            return _not_applicable(
                test, f"no ML estimates: {em.reason}", n=n_used, method=method, category=category
            )
        for record in caught:  # e.g. no convergence: pass on, pointing at our caller
            warnings.warn(str(record.message), record.category, stacklevel=2)
            notes.append(str(record.message))
        mu_arr, sigma_arr = em.mean, em.cov
        em_details = {"em_iterations": em.n_iter, "em_converged": em.converged, "loglik": em.loglik}
    else:
        mu_arr = np.asarray(mu, dtype=np.float64).reshape(-1)
        sigma_arr = np.asarray(sigma, dtype=np.float64)
        if mu_arr.shape != (p,) or sigma_arr.shape != (p, p):
            raise InvalidArgumentError(
                f"`mu` must be ({p},) and `sigma` ({p}, {p}), got {mu_arr.shape} and "
                f"{sigma_arr.shape}.",
                got=(mu_arr.shape, sigma_arr.shape),
            )
    seen = np.any([pat.observed for pat in used], axis=0) if used else np.zeros(p, bool)
    df = sum(int(pat.observed.sum()) for pat in used) - int(seen.sum())
    if len(used) < 2 or df <= 0:
        return _not_applicable(test, _one_pattern_reason(used), n=n_used, method=method)
    d2, contributions = 0.0, []
    for pat in used:
        o = np.flatnonzero(pat.observed)
        diff = pat.mean - mu_arr[o]
        s_oo = sigma_arr[np.ix_(o, o)]
        if not (np.all(np.isfinite(diff)) and np.all(np.isfinite(s_oo))):
            return _not_applicable(
                test,
                "the mean or covariance is not finite for the observed variables",
                n=n_used,
                method=method,
            )
        try:
            # quadratic form through the Cholesky factor: |L⁻¹ diff|²
            chol = np.linalg.cholesky(s_oo)
        except np.linalg.LinAlgError:
            return _not_applicable(
                test,
                "the covariance of the observed variables is not positive definite",
                n=n_used,
                method=method,
            )
        w = np.linalg.solve(chol, diff)
        term = float(pat.n * (w @ w))
        d2 += term
        contributions.append({"observed": pat.observed.tolist(), "n": pat.n, "contribution": term})
    return TestResult(
        statistic=d2,
        pvalue=float(stats.chi2.sf(d2, df)),
        test=test,
        n=n_used,
        df=df,
        method=method,
        approximate=approximate,
        reference=LITTLE_REF,
        warnings=tuple(notes),
        details={
            "n_patterns": len(used),
            "rows_all_missing": all_missing,
            "patterns": contributions,
            **em_details,
        },
    )


def missingness_association(
    n_missing: int,
    n_present: int,
    mean_missing: float,
    mean_present: float,
    var_missing: float,
    var_present: float,
) -> TestResult:
    """Welch's t test of a column's mean between rows where another column is missing or not.

    Parameters
    ----------
    n_missing, n_present : int
        Rows where the other column is missing (resp. present) and this column has a
        finite value.
    mean_missing, mean_present : float
        This column's mean over those rows.
    var_missing, var_present : float
        This column's sample variance (``M2 / (n - 1)``) over those rows.

    Returns
    -------
    TestResult
        ``statistic`` is Welch's t (positive when the mean is higher where the other
        column is missing), ``pvalue`` two-sided, ``df`` the Welch-Satterthwaite degrees
        of freedom; ``effect_size`` the standardised mean difference (Cohen's d with the
        pooled sd). Not applicable when a side has fewer than two rows or both sides are
        constant.

    Raises
    ------
    InvalidArgumentError
        Negative or non-integral counts, negative or non-finite variances or means.

    Warns
    -----
    SmallSampleWarning, ConstantColumnWarning
        With the not-applicable result.

    See Also
    --------
    little_mcar, proportion_difference, scipy.stats.ttest_ind

    Notes
    -----
    The null hypothesis is that the column has the same mean whether or not the other
    column is missing, as under MCAR; a difference is evidence that the missingness is
    at least MAR (related to observed values). Welch's test [4]_ does not assume equal
    variances and relies on the means being approximately normal, which the large
    counts of a table make safe.

    Single-pass design: counts, means and central sums split by the other column's
    missingness are exact aggregates, so the result equals
    :func:`scipy.stats.ttest_ind` with ``equal_var=False`` on the raw values. With
    millions of rows tiny differences are significant: weigh ``effect_size``.

    References
    ----------
    .. [4] B. L. Welch, "The generalization of 'Student's' problem when several
       different population variances are involved", Biometrika 34(1/2), 1947,
       pp. 28-35.

    Examples
    --------
    >>> res = missingness_association(40, 960, 12.1, 11.4, 4.0, 3.6)
    >>> round(res.statistic, 4), round(res.pvalue, 4), round(res.effect_size, 4)
    (2.1732, 0.0355, 0.3681)
    """
    test = "Welch t (missing vs present)"
    n1, n2 = _count("n_missing", n_missing), _count("n_present", n_present)
    m1, m2 = _finite_arg("mean_missing", mean_missing), _finite_arg("mean_present", mean_present)
    v1, v2 = _variance("var_missing", var_missing), _variance("var_present", var_present)
    if n1 < 2 or n2 < 2:
        return _not_applicable(
            test,
            f"needs two or more values on each side, found {n1} (missing) and {n2} (present)",
            n=n1 + n2,
            category=SmallSampleWarning,
            reference=WELCH_REF,
        )
    if v1 == 0 and v2 == 0:
        return _not_applicable(
            test,
            "the column is constant on both sides",
            n=n1 + n2,
            category=ConstantColumnWarning,
            reference=WELCH_REF,
        )
    vn1, vn2 = v1 / n1, v2 / n2
    # Welch-Satterthwaite df = (vn1 + vn2)^2 / (vn1^2 / (n1 - 1) + vn2^2 / (n2 - 1)), and the
    # pooled variance, in forms whose squares and products cannot overflow for large values
    a, b = vn1 / (vn1 + vn2), vn2 / (vn1 + vn2)
    df = 1.0 / (a * a / (n1 - 1) + b * b / (n2 - 1))
    t = (m1 - m2) / math.sqrt(vn1 + vn2)
    sp = math.sqrt((n1 - 1) / (n1 + n2 - 2) * v1 + (n2 - 1) / (n1 + n2 - 2) * v2)  # pooled sd
    return TestResult(
        statistic=float(t),
        pvalue=float(2.0 * stats.t.sf(abs(t), df)),
        test=test,
        n=n1 + n2,
        df=float(df),
        effect_size=float((m1 - m2) / sp),
        effect_size_name="standardized mean difference (Cohen's d, pooled sd)",
        method=EXACT,
        reference=WELCH_REF,
        details={
            "n_missing": n1,
            "n_present": n2,
            "mean_missing": m1,
            "mean_present": m2,
            "var_missing": v1,
            "var_present": v2,
        },
    )


def proportion_difference(k1: int, n1: int, k2: int, n2: int) -> TestResult:
    """Two-proportion z test of ``k1/n1`` against ``k2/n2`` with the pooled proportion.

    Parameters
    ----------
    k1, n1 : int
        Successes (e.g. missing values, positive labels) and trials in group 1.
    k2, n2 : int
        The same in group 2.

    Returns
    -------
    TestResult
        ``statistic`` is z (positive when group 1's rate is higher), ``pvalue`` two-sided;
        ``effect_size`` the difference of the proportions ``p1 - p2``; ``details`` holds
        both rates, their ratio and Cohen's h. Not applicable when a group is empty or the
        pooled proportion is 0 or 1.

    Raises
    ------
    InvalidArgumentError
        Counts that are negative, non-integral, or with ``k > n``.

    Warns
    -----
    SmallSampleWarning
        An expected count below 5 (recorded in ``warnings``: use an exact test).
    DegenerateDataWarning
        With the not-applicable result.

    See Also
    --------
    missingness_association

    Notes
    -----
    The null hypothesis is that both groups share one proportion; under it
    ``z = (p1 - p2) / sqrt(p (1 - p) (1/n1 + 1/n2))`` with the pooled ``p`` is
    approximately standard normal [5]_ (the same as
    ``statsmodels.stats.proportion.proportions_ztest`` with its defaults, and as the
    chi-square test of the 2x2 table without continuity correction). It assumes
    independent trials and expected counts of at least about 5 in every cell.

    Single-pass design: the counts are exact aggregates, so nothing is approximated.

    References
    ----------
    .. [5] J. L. Fleiss, B. Levin and M. C. Paik, Statistical Methods for Rates and
       Proportions, 3rd ed., Wiley, 2003, section 2.2.

    Examples
    --------
    >>> res = proportion_difference(30, 200, 45, 210)
    >>> round(res.statistic, 4), round(res.pvalue, 4)
    (-1.683, 0.0924)
    """
    test = "two-proportion z"
    k1, n1, k2, n2 = (
        _count(name, v) for name, v in (("k1", k1), ("n1", n1), ("k2", k2), ("n2", n2))
    )
    if k1 > n1 or k2 > n2:
        raise InvalidArgumentError(
            f"successes cannot exceed trials, got k1={k1}, n1={n1}, k2={k2}, n2={n2}.",
            got=(k1, n1, k2, n2),
        )
    if n1 == 0 or n2 == 0:
        return _not_applicable(
            test,
            "a group has no trials",
            n=n1 + n2,
            category=SmallSampleWarning,
            reference=PROP_REF,
        )
    pooled = (k1 + k2) / (n1 + n2)
    if pooled in (0.0, 1.0):
        return _not_applicable(
            test,
            "the pooled proportion is 0 or 1 (no variation), so z is undefined",
            n=n1 + n2,
            reference=PROP_REF,
        )
    p1, p2 = k1 / n1, k2 / n2
    z = (p1 - p2) / math.sqrt(pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2))
    notes: tuple[str, ...] = ()
    expected = min(n1, n2) * min(pooled, 1.0 - pooled)
    if expected < 5:
        notes = (
            f"smallest expected count {expected:.3g} < 5: the normal approximation is "
            "poor; prefer Fisher's exact test",
        )
        warnings.warn(f"{test}: {notes[0]}", SmallSampleWarning, stacklevel=2)
    return TestResult(
        statistic=float(z),
        pvalue=float(2.0 * stats.norm.sf(abs(z))),
        test=test,
        n=n1 + n2,
        effect_size=p1 - p2,
        effect_size_name="difference in proportions p1 - p2",
        method=EXACT,
        reference=PROP_REF,
        warnings=notes,
        details={
            "p1": p1,
            "p2": p2,
            "pooled": pooled,
            "ratio": p1 / p2 if p2 > 0 else None,
            "cohens_h": 2.0 * math.asin(math.sqrt(p1)) - 2.0 * math.asin(math.sqrt(p2)),
        },
    )


# ---------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------


def _patterns(patterns: Sequence[Any]) -> tuple[list[PatternStats], int]:
    pats = [pat if isinstance(pat, PatternStats) else PatternStats(*pat) for pat in patterns]
    if not pats:
        raise InvalidArgumentError("`patterns` is empty.", expected="at least one pattern")
    p = pats[0].observed.size
    if any(pat.observed.size != p for pat in pats):
        raise InvalidArgumentError(
            "every pattern's `observed` mask must cover the same variables.",
            got=[pat.observed.size for pat in pats],
        )
    return pats, p


def _m2(pat: PatternStats) -> np.ndarray:
    if pat.m2 is None:
        raise InvalidArgumentError(
            "every pattern needs its co-moment matrix `m2` for EM.", expected="m2"
        )
    return pat.m2


def _available_case(pats: list[PatternStats], idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each variable's mean and ML sd over all rows where it is observed (pooled merge)."""
    n = np.zeros(idx.size)
    mean = np.zeros(idx.size)
    m2 = np.zeros(idx.size)
    for pat in pats:
        obs = np.flatnonzero(pat.observed)
        for a, v in enumerate(obs):
            j = int(np.searchsorted(idx, v))
            nb, mb, m2b = pat.n, pat.mean[a], _m2(pat)[a, a]
            tot = n[j] + nb
            delta = mb - mean[j]
            mean[j] += delta * nb / tot
            m2[j] += m2b + delta * delta * n[j] * nb / tot
            n[j] = tot
    return mean, np.sqrt(np.maximum(m2, 0.0) / n)


class _Block(NamedTuple):
    """One pattern's standardised aggregates and index sets, for the EM iterations."""

    o: np.ndarray  # observed variables
    m: np.ndarray  # missing variables
    oo: tuple[np.ndarray, ...]  # np.ix_(o, o)
    om: tuple[np.ndarray, ...]  # np.ix_(o, m)
    mm: tuple[np.ndarray, ...]  # np.ix_(m, m)
    n: int
    t1: np.ndarray  # sum of y_O
    t2: np.ndarray  # sum of y_O y_Oᵀ


def _em_step(
    blocks: list[_Block], mu: np.ndarray, sigma: np.ndarray, n_total: int
) -> tuple[np.ndarray, np.ndarray]:
    """One EM iteration on standardised pattern aggregates [2], [3]."""
    q = mu.size
    s1, s2 = np.zeros(q), np.zeros((q, q))
    for blk in blocks:
        if blk.m.size == 0:
            s1[blk.o] += blk.t1
            s2[blk.oo] += blk.t2
            continue
        # E step: E[y | y_O] = a + A y_O, with A_O = I, A_M = B = Σ_MO Σ_OO⁻¹ and
        # a_M = μ_M - B μ_O; Cov(y_M | y_O) = Σ_MM - B Σ_OM
        b = np.linalg.solve(sigma[blk.oo], sigma[blk.om]).T
        a = np.zeros(q)
        a[blk.m] = mu[blk.m] - b @ mu[blk.o]
        big_a = np.zeros((q, blk.o.size))
        big_a[blk.o] = np.eye(blk.o.size)
        big_a[blk.m] = b
        at1 = big_a @ blk.t1  # sum over rows of A y_O
        s1 += blk.n * a + at1
        s2 += (
            blk.n * np.outer(a, a) + np.outer(a, at1) + np.outer(at1, a) + big_a @ blk.t2 @ big_a.T
        )
        s2[blk.mm] += blk.n * (sigma[blk.mm] - b @ sigma[blk.om])
    # M step
    new_mu = s1 / n_total
    new_sigma = s2 / n_total - np.outer(new_mu, new_mu)
    return new_mu, (new_sigma + new_sigma.T) / 2.0


def _well_conditioned(sigma: np.ndarray) -> bool:
    """False when some variable is (numerically) a linear function of the others.

    ``sigma`` is in standardised units (diagonal near 1). EM approaches a singular ML
    estimate only geometrically, stopping when the steps fall below its tolerance, so the
    smallest eigenvalue of a truly singular estimate ends near that tolerance rather than
    at rounding level; 1e-9 of the largest eigenvalue separates the two.
    """
    w = np.linalg.eigvalsh(sigma)
    return bool(w[0] > 1e-9 * w[-1])


def _loglik(blocks: list[_Block], mu: np.ndarray, sigma: np.ndarray) -> float:
    """Observed-data normal log-likelihood of the standardised aggregates."""
    total = 0.0
    for blk in blocks:
        o, n, t1, t2 = blk.o, blk.n, blk.t1, blk.t2
        s_oo = sigma[blk.oo]
        # sum over rows of (y - mu)(y - mu)ᵀ from T1, T2
        r = t2 - np.outer(t1, mu[o]) - np.outer(mu[o], t1) + n * np.outer(mu[o], mu[o])
        _, logdet = np.linalg.slogdet(s_oo)
        total -= 0.5 * (
            n * o.size * math.log(2 * math.pi)
            + n * logdet
            + float(np.trace(np.linalg.solve(s_oo, r)))
        )
    return total


def _one_pattern_reason(used: list[PatternStats]) -> str:
    return (
        f"only {len(used)} missingness pattern(s) among rows with observed values: "
        "there is nothing to compare (no missing values, or they fall on whole "
        "variables or whole rows)"
    )


def _count(name: str, value: Any) -> int:
    v = float(value)
    if not (math.isfinite(v) and v >= 0 and v == round(v)):
        raise InvalidArgumentError(
            f"`{name}` must be a non-negative whole number, got {value!r}.", got=value
        )
    return int(v)


def _finite_arg(name: str, value: Any) -> float:
    v = float(value)
    if not math.isfinite(v):
        raise InvalidArgumentError(f"`{name}` must be finite, got {value!r}.", got=value)
    return v


def _variance(name: str, value: Any) -> float:
    v = _finite_arg(name, value)
    if v < 0:
        raise InvalidArgumentError(f"`{name}` must be non-negative, got {value!r}.", got=value)
    return v


def _not_applicable(
    test: str,
    reason: str,
    *,
    n: int | None = None,
    method: str = EXACT,
    category: type[Warning] = DegenerateDataWarning,
    reference: str = LITTLE_REF,
) -> TestResult:
    """Warn (pointing at the public function's caller) and return the n/a result."""
    warnings.warn(f"{test} not applicable: {reason}", category, stacklevel=3)
    return not_applicable(test, reason, n=n, method=method, reference=reference)
