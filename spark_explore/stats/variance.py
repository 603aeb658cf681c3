"""Homogeneity of variance across groups: Bartlett from moments, Levene and Fligner on samples.

Bartlett's test needs only each group's count and second central sum, which the scan keeps
exactly for every group, so it is completed here from aggregates of the whole table. The
robust tests (Levene, Brown-Forsythe, Fligner-Killeen) need absolute deviations from a
group centre, or ranks of them, which no mergeable state holds; they run on the per-group
uniform samples and say so (:data:`~spark_explore.stats.results.SAMPLE`).

References
----------
.. [1] M. S. Bartlett, "Properties of sufficiency and statistical tests", Proceedings of
   the Royal Society of London A 160(901), 1937, pp. 268-282.
.. [2] H. Levene, "Robust tests for equality of variances", in I. Olkin (ed.),
   Contributions to Probability and Statistics, Stanford University Press, 1960,
   pp. 278-292.
.. [3] M. B. Brown and A. B. Forsythe, "Robust tests for the equality of variances",
   Journal of the American Statistical Association 69(346), 1974, pp. 364-367.
.. [4] M. A. Fligner and T. J. Killeen, "Distribution-free two-sample tests for scale",
   Journal of the American Statistical Association 71(353), 1976, pp. 210-213.
.. [5] W. J. Conover, M. E. Johnson and M. M. Johnson, "A comparative study of tests for
   homogeneity of variances, with applications to the outer continental shelf bidding
   data", Technometrics 23(4), 1981, pp. 351-361.

Reference numbers in the functions' docstrings and comments are those of this list.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats

from spark_explore.errors import (
    ConstantColumnWarning,
    DegenerateDataWarning,
    InvalidArgumentError,
    SmallSampleWarning,
)
from spark_explore.stats.results import EXACT, SAMPLE, TestResult, not_applicable

__all__ = ["bartlett_from_moments", "fligner_from_samples", "levene_from_samples"]

BARTLETT_REF = "Bartlett (1937), Proc. R. Soc. Lond. A 160:268-282"
LEVENE_REF = "Levene (1960), Contributions to Probability and Statistics, pp. 278-292"
BROWN_FORSYTHE_REF = "Brown & Forsythe (1974), JASA 69(346):364-367"
FLIGNER_REF = (
    "Fligner & Killeen (1976), JASA 71(353):210-213; "
    "Conover, Johnson & Johnson (1981), Technometrics 23(4):351-361"
)
RATIO_NAME = "largest/smallest group variance ratio"


def bartlett_from_moments(n: Any, m2: Any, *, labels: Sequence[Any] | None = None) -> TestResult:
    """Bartlett's test of equal variances from per-group counts and second central sums.

    Parameters
    ----------
    n : array_like of int, shape (k,)
        Number of finite values in each group.
    m2 : array_like of float, shape (k,)
        Each group's second central sum ``M2 = sum((x - mean)**2)``, as kept exactly by the
        scan (:class:`~spark_explore.states._algebra.Moments`).
    labels : sequence, optional
        Group names, used in warnings and ``details``; defaults to the group positions.

    Returns
    -------
    TestResult
        ``statistic`` is Bartlett's corrected statistic ``T`` [1]_, ``pvalue`` its upper
        chi-square(k - 1) tail, ``df = k - 1``; ``effect_size`` is the ratio of the largest
        to the smallest group variance. ``details`` holds the group labels, sizes and
        variances, the pooled variance and the correction factor ``C``. Not applicable
        (``applicable=False`` with a ``reason``) with fewer than two groups of two or more
        values, or when a group has zero variance.

    Raises
    ------
    InvalidArgumentError
        ``n`` and ``m2`` differ in shape, are not one-dimensional, or hold negative,
        non-finite or (for ``n``) non-integral values.

    Warns
    -----
    SmallSampleWarning
        Groups with fewer than two values are left out (and listed in ``warnings``), or
        too few groups remain.
    ConstantColumnWarning, DegenerateDataWarning
        Every group, or some group, has zero variance.

    See Also
    --------
    levene_from_samples, fligner_from_samples : robust alternatives on the group samples.
    scipy.stats.bartlett : the same statistic from the raw values.

    Notes
    -----
    The null hypothesis is that the k groups have equal variances. The test assumes the
    values are independent and normal within each group; it is very sensitive to
    non-normality (heavy tails inflate ``T``), which is why the robust tests are run
    alongside it [5]_.

    With ``s_i^2 = M2_i / (n_i - 1)``, ``N = sum(n_i)`` and the pooled variance
    ``s_p^2 = sum(M2_i) / (N - k)``, the statistic is [1]_ ::

        T = sum((n_i - 1) * log(s_p^2 / s_i^2)) / C,
        C = 1 + (sum(1 / (n_i - 1)) - 1 / (N - k)) / (3 * (k - 1)),

    the numerator being ``(N - k) log s_p^2 - sum((n_i - 1) log s_i^2)`` [1]_, computed
    as a sum of log ratios so that nearly equal variances do not cancel two large terms.

    Single-pass design: counts and central sums are exact aggregates of every row (merged
    with the Chan-Golub-LeVeque formulas), so the statistic equals
    :func:`scipy.stats.bartlett` on the raw groups up to rounding; nothing is
    approximated.

    References
    ----------
    .. [1] M. S. Bartlett, "Properties of sufficiency and statistical tests", Proceedings
       of the Royal Society of London A 160(901), 1937, pp. 268-282.
    .. [5] W. J. Conover, M. E. Johnson and M. M. Johnson, "A comparative study of tests
       for homogeneity of variances", Technometrics 23(4), 1981, pp. 351-361.

    Examples
    --------
    >>> res = bartlett_from_moments([10, 12, 15], [9.0, 33.0, 14.0])
    >>> round(res.statistic, 4), res.df
    (4.6902, 2)
    """
    test = "Bartlett"
    n_arr = _counts("n", n)
    m2_arr = np.asarray(m2, dtype=np.float64)
    if m2_arr.shape != n_arr.shape:
        raise InvalidArgumentError(
            f"`m2` must have the shape of `n` {n_arr.shape}, got {m2_arr.shape}.",
            expected=n_arr.shape,
            got=m2_arr.shape,
        )
    if not np.all(np.isfinite(m2_arr)) or np.any(m2_arr < 0):
        raise InvalidArgumentError(
            "`m2` must hold finite, non-negative central sums.", got=m2_arr.tolist()
        )
    names = _labels(labels, n_arr.size)

    keep = n_arr >= 2
    notes = _dropped_note(names, keep)
    n_total = int(n_arr[keep].sum())
    if keep.sum() < 2:
        return _not_applicable(
            test,
            f"needs at least two groups with two or more values each, found {int(keep.sum())}",
            SmallSampleWarning,
            n=n_total,
            reference=BARTLETT_REF,
        )
    n_i, m2_i = n_arr[keep], m2_arr[keep]
    kept = [name for name, k in zip(names, keep, strict=True) if k]
    if np.all(m2_i == 0):
        return _not_applicable(
            test,
            "every group is constant (zero variance)",
            ConstantColumnWarning,
            n=n_total,
            reference=BARTLETT_REF,
        )
    if np.any(m2_i == 0):
        zero = [name for name, m in zip(kept, m2_i, strict=True) if m == 0]
        return _not_applicable(
            test,
            f"group(s) {zero} have zero variance, so the log-variance statistic is "
            "infinite; compare spreads with Levene/Brown-Forsythe on the group samples",
            DegenerateDataWarning,
            n=n_total,
            reference=BARTLETT_REF,
        )
    if notes:
        warnings.warn(f"{test}: {notes[0]}", SmallSampleWarning, stacklevel=2)

    k = n_i.size
    big_n = n_i.sum()
    s2_i = m2_i / (n_i - 1.0)  # group variances
    sp2 = m2_i.sum() / (big_n - k)  # pooled variance [1]
    # numerator (N - k) ln s_p^2 - sum (n_i - 1) ln s_i^2, as a sum of log ratios [1]
    numer = float(np.sum((n_i - 1.0) * np.log(sp2 / s2_i)))
    c = 1.0 + (np.sum(1.0 / (n_i - 1.0)) - 1.0 / (big_n - k)) / (3.0 * (k - 1))
    t = max(float(numer / c), 0.0)
    return TestResult(
        statistic=t,
        pvalue=float(stats.chi2.sf(t, k - 1)),
        test=test,
        n=n_total,
        df=k - 1,
        effect_size=float(s2_i.max() / s2_i.min()),
        effect_size_name=RATIO_NAME,
        method=EXACT,
        reference=BARTLETT_REF,
        warnings=tuple(notes),
        details={
            "groups": kept,
            "group_sizes": [int(x) for x in n_i],
            "variances": [float(x) for x in s2_i],
            "pooled_variance": float(sp2),
            "correction": float(c),
        },
    )


def levene_from_samples(
    groups: Sequence[Any], center: str = "mean", *, labels: Sequence[Any] | None = None
) -> TestResult:
    """Levene's test (``center="mean"``) or Brown-Forsythe's (``"median"``) on group samples.

    Parameters
    ----------
    groups : sequence of array_like
        One 1-D array of sampled values per group (e.g. the per-group reservoir samples).
        Non-finite values (null, NaN, infinity) are left out.
    center : {"mean", "median"}
        Centre the absolute deviations are taken from: the group mean gives Levene's
        original test [2]_, the group median the Brown-Forsythe variant [3]_.
    labels : sequence, optional
        Group names for warnings and ``details``.

    Returns
    -------
    TestResult
        ``statistic`` is the F-like ``W`` computed by :func:`scipy.stats.levene` on the
        samples, ``pvalue`` its upper F(k - 1, N - k) tail, ``df = (k - 1, N - k)``;
        ``effect_size`` is the largest/smallest ratio of the groups' sample variances (None
        when a group's sample is constant). ``method`` is ``SAMPLE`` and ``approximate``
        True. Not applicable with fewer than two groups of two or more values, when every
        group is constant, or when ``W`` is undefined.

    Raises
    ------
    InvalidArgumentError
        ``center`` is not ``"mean"`` or ``"median"``, or a group is not one-dimensional.

    Warns
    -----
    SmallSampleWarning, ConstantColumnWarning, DegenerateDataWarning
        As for :func:`bartlett_from_moments`.

    See Also
    --------
    bartlett_from_moments, fligner_from_samples, scipy.stats.levene

    Notes
    -----
    The null hypothesis is that the groups have equal variances (strictly: equal mean
    absolute deviation from the centre). The test assumes independent observations; it is
    one-way ANOVA on ``Z_ij = |x_ij - centre_i|`` [2]_ and is far less sensitive to
    non-normality than Bartlett's, the median centre more so for skewed data [3]_.

    Single-pass design: absolute deviations from a group centre cannot be accumulated
    before the centre is known, so the test runs on each group's uniform reservoir sample.
    It is a valid test of the table's groups (the sample is a random sample of them), with
    the power of the sample size, not of the table; the result says so with
    ``method=SAMPLE``.

    References
    ----------
    .. [2] H. Levene, "Robust tests for equality of variances", in I. Olkin (ed.),
       Contributions to Probability and Statistics, Stanford University Press, 1960,
       pp. 278-292.
    .. [3] M. B. Brown and A. B. Forsythe, "Robust tests for the equality of variances",
       Journal of the American Statistical Association 69(346), 1974, pp. 364-367.
    """
    if center not in ("mean", "median"):
        raise InvalidArgumentError(
            f"`center` must be 'mean' or 'median', got {center!r}.",
            expected=["mean", "median"],
            got=center,
        )
    test = "Levene" if center == "mean" else "Brown-Forsythe"
    ref = LEVENE_REF if center == "mean" else BROWN_FORSYTHE_REF
    return _sample_test(
        test, ref, groups, labels, lambda *s: stats.levene(*s, center=center), center, "F"
    )


def fligner_from_samples(
    groups: Sequence[Any], center: str = "median", *, labels: Sequence[Any] | None = None
) -> TestResult:
    """Fligner-Killeen's median-centred rank test of equal variances on group samples.

    Parameters
    ----------
    groups : sequence of array_like
        One 1-D array of sampled values per group; non-finite values are left out.
    center : {"median", "mean"}
        Centre of the absolute deviations; the median is the Fligner-Killeen test as
        recommended by Conover et al. [5]_.
    labels : sequence, optional
        Group names for warnings and ``details``.

    Returns
    -------
    TestResult
        ``statistic`` is the Fligner-Killeen chi-square statistic from
        :func:`scipy.stats.fligner`, ``pvalue`` its upper chi-square(k - 1) tail,
        ``df = k - 1``; ``effect_size`` and applicability as for
        :func:`levene_from_samples`.

    Raises
    ------
    InvalidArgumentError
        ``center`` is not ``"median"`` or ``"mean"``, or a group is not one-dimensional.

    Warns
    -----
    SmallSampleWarning, ConstantColumnWarning, DegenerateDataWarning
        As for :func:`bartlett_from_moments`.

    See Also
    --------
    levene_from_samples, bartlett_from_moments, scipy.stats.fligner

    Notes
    -----
    The null hypothesis is that the groups have equal variances. The test ranks the
    absolute deviations from the group medians over all groups and scores the ranks with
    normal quantiles [4]_, [5]_; it assumes independent observations and continuous data
    (ties get averaged scores), and it is the most robust of these tests to non-normality
    [5]_.

    Single-pass design: ranks need the values, so the test runs on each group's uniform
    reservoir sample (``method=SAMPLE``), as for :func:`levene_from_samples`.

    References
    ----------
    .. [4] M. A. Fligner and T. J. Killeen, "Distribution-free two-sample tests for
       scale", Journal of the American Statistical Association 71(353), 1976,
       pp. 210-213.
    .. [5] W. J. Conover, M. E. Johnson and M. M. Johnson, "A comparative study of tests
       for homogeneity of variances, with applications to the outer continental shelf
       bidding data", Technometrics 23(4), 1981, pp. 351-361.
    """
    if center not in ("mean", "median"):
        raise InvalidArgumentError(
            f"`center` must be 'median' or 'mean', got {center!r}.",
            expected=["median", "mean"],
            got=center,
        )
    return _sample_test(
        "Fligner-Killeen",
        FLIGNER_REF,
        groups,
        labels,
        lambda *s: stats.fligner(*s, center=center),
        center,
        "chi2",
    )


def _sample_test(
    test: str,
    ref: str,
    groups: Sequence[Any],
    labels: Sequence[Any] | None,
    run: Any,
    center: str,
    dist: str,
) -> TestResult:
    """Shared checks and bookkeeping of the sample-based tests."""
    if isinstance(groups, np.ndarray) and groups.ndim == 2:
        groups = list(groups)
    samples = []
    for i, g in enumerate(groups):
        x = np.asarray(g, dtype=np.float64)
        if x.ndim != 1:
            raise InvalidArgumentError(
                f"each group must be a 1-D array, group {i} has shape {x.shape}.",
                expected="1-D",
                got=x.shape,
            )
        samples.append(x[np.isfinite(x)])
    names = _labels(labels, len(samples))
    keep = np.array([s.size >= 2 for s in samples], dtype=bool)
    notes = _dropped_note(names, keep)
    kept_samples = [s for s, k in zip(samples, keep, strict=True) if k]
    kept = [name for name, k in zip(names, keep, strict=True) if k]
    n_total = int(sum(s.size for s in kept_samples))
    if len(kept_samples) < 2:
        return _not_applicable(
            test,
            f"needs at least two groups with two or more values each, found {len(kept_samples)}",
            SmallSampleWarning,
            n=n_total,
            method=SAMPLE,
            reference=ref,
            stacklevel=4,
        )
    variances = np.array([np.var(s, ddof=1) for s in kept_samples])
    if np.all([np.ptp(s) == 0 for s in kept_samples]):
        return _not_applicable(
            test,
            "every group is constant (zero variance)",
            ConstantColumnWarning,
            n=n_total,
            method=SAMPLE,
            reference=ref,
            stacklevel=4,
        )
    if notes:
        warnings.warn(f"{test}: {notes[0]}", SmallSampleWarning, stacklevel=3)
    with np.errstate(divide="ignore", invalid="ignore"):  # 0/0 is handled below
        res = run(*kept_samples)
    statistic, pvalue = float(res.statistic), float(res.pvalue)
    if not np.isfinite(statistic):
        return _not_applicable(
            test,
            "the statistic is undefined: the absolute deviations are constant within every group",
            DegenerateDataWarning,
            n=n_total,
            method=SAMPLE,
            reference=ref,
            stacklevel=4,
        )
    k = len(kept_samples)
    df: int | tuple[int, int] = (k - 1, n_total - k) if dist == "F" else k - 1
    ratio = float(variances.max() / variances.min()) if variances.min() > 0 else None
    return TestResult(
        statistic=statistic,
        pvalue=pvalue,
        test=test,
        n=n_total,
        df=df,
        effect_size=ratio,
        effect_size_name=RATIO_NAME,
        method=SAMPLE,
        approximate=True,
        reference=ref,
        warnings=tuple(notes),
        details={
            "groups": kept,
            "group_sizes": [int(s.size) for s in kept_samples],
            "variances": [float(v) for v in variances],
            "center": center,
        },
    )


def _counts(name: str, value: Any) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim != 1:
        raise InvalidArgumentError(
            f"`{name}` must be one-dimensional (one entry per group), got shape {arr.shape}.",
            expected="1-D",
            got=arr.shape,
        )
    if not np.all(np.isfinite(arr)) or np.any(arr < 0) or np.any(arr != np.round(arr)):
        raise InvalidArgumentError(
            f"`{name}` must hold non-negative whole counts.", got=arr.tolist()
        )
    return arr


def _labels(labels: Sequence[Any] | None, k: int) -> list[Any]:
    if labels is None:
        return list(range(k))
    names = list(labels)
    if len(names) != k:
        raise InvalidArgumentError(
            f"`labels` must name each of the {k} groups, got {len(names)} labels.",
            expected=k,
            got=len(names),
        )
    return names


def _dropped_note(names: list[Any], keep: np.ndarray) -> list[str]:
    dropped = [name for name, k in zip(names, keep, strict=True) if not k]
    if not dropped:
        return []
    return [f"left out {len(dropped)} group(s) with fewer than two values: {dropped}"]


def _not_applicable(
    test: str,
    reason: str,
    category: type[Warning],
    *,
    n: int | None = None,
    method: str = EXACT,
    reference: str = "",
    stacklevel: int = 3,
) -> TestResult:
    """Warn (pointing at the public function's caller) and return the n/a result."""
    warnings.warn(f"{test} not applicable: {reason}", category, stacklevel=stacklevel)
    return not_applicable(test, reason, n=n, method=method, reference=reference)
