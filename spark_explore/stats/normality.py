"""Normality: moment tests from exact moments, EDF tests on the sample, KS distance from KLL.

Three sources, three kinds of answer:

- exact central moments of every value (n, M2, M3, M4) give the skewness test, the
  kurtosis test, D'Agostino-Pearson's K² and Jarque-Bera, identical to scipy on the raw
  column (``method=EXACT``);
- the uniform sample gives Shapiro-Wilk and Anderson-Darling (``method=SAMPLE``);
- the quantile sketch gives the Kolmogorov-Smirnov *distance* to the fitted normal and QQ
  data, with the sketch's rank error (``method=SKETCH``).

References
----------
.. [1] R. B. D'Agostino, "Transformation to normality of the null distribution of g1",
   Biometrika 57(3), 1970, pp. 679-681.
.. [2] F. J. Anscombe and W. J. Glynn, "Distribution of the kurtosis statistic b2 for
   normal samples", Biometrika 70(1), 1983, pp. 227-234.
.. [3] R. B. D'Agostino and E. S. Pearson, "Tests for departure from normality. Empirical
   results for the distributions of b2 and sqrt(b1)", Biometrika 60(3), 1973,
   pp. 613-622.
.. [4] R. B. D'Agostino, A. Belanger and R. B. D'Agostino Jr., "A suggestion for using
   powerful and informative tests of normality", The American Statistician 44(4), 1990,
   pp. 316-321.
.. [5] C. M. Jarque and A. K. Bera, "A test for normality of observations and regression
   residuals", International Statistical Review 55(2), 1987, pp. 163-172.
.. [6] S. S. Shapiro and M. B. Wilk, "An analysis of variance test for normality
   (complete samples)", Biometrika 52(3/4), 1965, pp. 591-611.
.. [7] P. Royston, "Approximating the Shapiro-Wilk W-test for non-normality", Statistics
   and Computing 2(3), 1992, pp. 117-119.
.. [8] T. W. Anderson and D. A. Darling, "A test of goodness of fit", Journal of the
   American Statistical Association 49(268), 1954, pp. 765-769.
.. [9] M. A. Stephens, "EDF statistics for goodness of fit and some comparisons", Journal
   of the American Statistical Association 69(347), 1974, pp. 730-737.
.. [10] A. N. Kolmogorov, "Sulla determinazione empirica di una legge di distribuzione",
   Giornale dell'Istituto Italiano degli Attuari 4, 1933, pp. 83-91.

Reference numbers in the functions' docstrings and comments are those of this list.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from spark_explore.errors import (
    ConstantColumnWarning,
    DegenerateDataWarning,
    InvalidArgumentError,
    SmallSampleWarning,
)
from spark_explore.stats.results import EXACT, SAMPLE, SKETCH, TestResult, not_applicable

__all__ = [
    "QQPoints",
    "anderson_darling",
    "dagostino_pearson",
    "jarque_bera",
    "ks_distance_from_cdf",
    "kurtosis_test",
    "qq_points",
    "shapiro_wilk",
    "skewness_test",
]

SKEW_REF = "D'Agostino (1970), Biometrika 57(3):679-681"
KURT_REF = "Anscombe & Glynn (1983), Biometrika 70(1):227-234"
K2_REF = (
    "D'Agostino & Pearson (1973), Biometrika 60(3):613-622; "
    "D'Agostino, Belanger & D'Agostino (1990), Am. Stat. 44(4):316-321"
)
JB_REF = "Jarque & Bera (1987), Int. Stat. Rev. 55(2):163-172"
SW_REF = (
    "Shapiro & Wilk (1965), Biometrika 52(3/4):591-611; Royston (1992), Stat. Comput. 2(3):117-119"
)
AD_REF = "Anderson & Darling (1954), JASA 49(268):765-769; Stephens (1974), JASA 69(347):730-737"
KS_REF = "Kolmogorov (1933), G. Ist. Ital. Attuari 4:83-91"

#: Smallest n for the skewness test (and K²): D'Agostino's transformation, as scipy.
MIN_N_SKEW = 8
#: Smallest n for which the kurtosis test is computed at all, as scipy.
MIN_N_KURT = 5
#: Below this n the kurtosis approximation is not reliable ("valid only for n > 20").
RELIABLE_N_KURT = 20
#: Below this n Jarque-Bera's chi-square(2) approximation is poor [5].
RELIABLE_N_JB = 100
#: Largest sample for Shapiro-Wilk: Royston's p-value approximation is for n <= 5000.
MAX_N_SHAPIRO = 5000
#: Smallest sample for Anderson-Darling with estimated mean and variance [9].
MIN_N_ANDERSON = 8
#: Stephens' (1974) asymptotic critical values of the modified A² (case 3: mean and
#: variance estimated) at the significance levels below, as in scipy.stats.anderson.
AD_CRITICAL = np.array([0.561, 0.631, 0.752, 0.873, 1.035])
AD_LEVELS = np.array([15.0, 10.0, 5.0, 2.5, 1.0])


# ---------------------------------------------------------------------------------------
# From exact moments
# ---------------------------------------------------------------------------------------


def skewness_test(
    n: float,
    m2: float,
    m3: float,
    *,
    mean: float | None = None,
    alternative: str = "two-sided",
) -> TestResult:
    """D'Agostino's test that the skewness is that of a normal distribution.

    Parameters
    ----------
    n : int
        Number of finite values.
    m2, m3 : float
        Second and third central sums, ``sum((x - mean)**j)``.
    mean : float, optional
        The column's mean; when given, a column whose spread is below rounding level
        relative to its mean is treated as constant, as scipy does.
    alternative : {"two-sided", "less", "greater"}
        Alternative hypothesis for the p-value.

    Returns
    -------
    TestResult
        ``statistic`` is the normal score ``Z(sqrt(b1))`` [1]_, ``pvalue`` its normal tail;
        ``effect_size`` is the sample skewness ``g1 = sqrt(b1)``. Not applicable for
        ``n < 8`` or a constant column.

    Raises
    ------
    InvalidArgumentError
        Negative or non-finite moments, a non-integral ``n`` or an unknown
        ``alternative``.

    Warns
    -----
    SmallSampleWarning, ConstantColumnWarning
        With the not-applicable result.

    See Also
    --------
    kurtosis_test, dagostino_pearson, scipy.stats.skewtest

    Notes
    -----
    The null hypothesis is that the values are a random sample from a normal
    distribution, tested through their skewness. With
    ``sqrt(b1) = sqrt(n) M3 / M2**1.5``, D'Agostino's transformation [1]_ maps
    ``sqrt(b1)`` to an approximately standard normal ``Z``. It needs ``n >= 8`` (the
    threshold of :func:`scipy.stats.skewtest`). For exactly zero skewness ``Z`` is 0;
    scipy instead reports ``delta * asinh(1 / alpha)`` there (it replaces ``y = 0`` by 1
    to avoid ``log(0)``), the one case where the two differ.

    Single-pass design: the moments are exact aggregates of every value, so the result
    equals :func:`scipy.stats.skewtest` on the raw column up to rounding. With millions
    of rows ``Z`` detects negligible skewness; weigh ``effect_size``.

    References
    ----------
    .. [1] R. B. D'Agostino, "Transformation to normality of the null distribution of
       g1", Biometrika 57(3), 1970, pp. 679-681.
    """
    test = "skewness test"
    n, m2, m3, _ = _check_moments(n, m2, m3, 0.0)
    _check_alternative(alternative)
    bad = _degenerate(test, n, m2, mean, MIN_N_SKEW, SKEW_REF)
    if bad is not None:
        return bad
    g1 = _skew(n, m2, m3)
    z = _z_skew(n, g1)
    return TestResult(
        statistic=z,
        pvalue=_normal_pvalue(z, alternative),
        test=test,
        n=int(n),
        effect_size=g1,
        effect_size_name="sample skewness g1",
        method=EXACT,
        reference=SKEW_REF,
        details={"alternative": alternative},
    )


def kurtosis_test(
    n: float,
    m2: float,
    m4: float,
    *,
    mean: float | None = None,
    alternative: str = "two-sided",
) -> TestResult:
    """Anscombe and Glynn's test that the kurtosis is that of a normal distribution.

    Parameters
    ----------
    n : int
        Number of finite values.
    m2, m4 : float
        Second and fourth central sums.
    mean : float, optional
        The column's mean, for the near-constant check (see :func:`skewness_test`).
    alternative : {"two-sided", "less", "greater"}
        Alternative hypothesis for the p-value.

    Returns
    -------
    TestResult
        ``statistic`` is the normal score ``Z(b2)`` [2]_, ``pvalue`` its normal tail;
        ``effect_size`` is the excess kurtosis ``b2 - 3``. Not applicable for ``n < 5``,
        a constant column, or where the transformation is undefined.

    Raises
    ------
    InvalidArgumentError
        As for :func:`skewness_test`.

    Warns
    -----
    SmallSampleWarning
        ``n < 20``: the normal approximation is unreliable (recorded in ``warnings``), or
        ``n < 5`` (not applicable).
    ConstantColumnWarning
        With the not-applicable result for a constant column.

    See Also
    --------
    skewness_test, dagostino_pearson, scipy.stats.kurtosistest

    Notes
    -----
    The null hypothesis is that the values are a random sample from a normal
    distribution, tested through their kurtosis ``b2 = n M4 / M2**2``. Anscombe and
    Glynn's Wilson-Hilferty-type transformation [2]_ (their eqs. 1-5) makes ``b2``
    approximately standard normal for ``n >= 20``; :func:`scipy.stats.kurtosistest`
    computes it from ``n >= 5`` and documents it as valid only for larger ``n``, so
    results for ``5 <= n < 20`` carry a warning.

    Single-pass design: exact moments, so the result equals
    :func:`scipy.stats.kurtosistest` on the raw column up to rounding.

    References
    ----------
    .. [2] F. J. Anscombe and W. J. Glynn, "Distribution of the kurtosis statistic b2
       for normal samples", Biometrika 70(1), 1983, pp. 227-234.
    """
    test = "kurtosis test"
    n, m2, _, m4 = _check_moments(n, m2, 0.0, m4)
    _check_alternative(alternative)
    bad = _degenerate(test, n, m2, mean, MIN_N_KURT, KURT_REF)
    if bad is not None:
        return bad
    b2 = _kurt(n, m2, m4)
    z = _z_kurt(n, b2)
    if z is None:
        return _not_applicable(
            test,
            "the Anscombe-Glynn transformation is undefined for these moments (division by zero)",
            DegenerateDataWarning,
            n=int(n),
            reference=KURT_REF,
        )
    notes = _small_n_kurt(test, n)
    return TestResult(
        statistic=z,
        pvalue=_normal_pvalue(z, alternative),
        test=test,
        n=int(n),
        effect_size=b2 - 3.0,
        effect_size_name="excess kurtosis b2 - 3",
        method=EXACT,
        reference=KURT_REF,
        warnings=notes,
        details={"alternative": alternative},
    )


def dagostino_pearson(
    n: float, m2: float, m3: float, m4: float, *, mean: float | None = None
) -> TestResult:
    """D'Agostino-Pearson's omnibus K² test of normality from exact moments.

    Parameters
    ----------
    n : int
        Number of finite values.
    m2, m3, m4 : float
        Second to fourth central sums.
    mean : float, optional
        The column's mean, for the near-constant check (see :func:`skewness_test`).

    Returns
    -------
    TestResult
        ``statistic`` is ``K² = Z(sqrt(b1))² + Z(b2)²``, ``pvalue`` its upper chi-square(2)
        tail, ``df = 2``. No single effect size: ``details`` holds the skewness ``g1``,
        the excess kurtosis and both normal scores. Not applicable for ``n < 8`` or a
        constant column.

    Raises
    ------
    InvalidArgumentError
        As for :func:`skewness_test`.

    Warns
    -----
    SmallSampleWarning, ConstantColumnWarning, DegenerateDataWarning
        As for :func:`skewness_test` and :func:`kurtosis_test`.

    See Also
    --------
    skewness_test, kurtosis_test, jarque_bera, scipy.stats.normaltest

    Notes
    -----
    The null hypothesis is that the values are a random sample from a normal
    distribution. K² combines the normalised skewness [1]_ and kurtosis [2]_ scores and
    is referred to chi-square with 2 degrees of freedom [3]_, [4]_ (the two scores are
    treated as independent, which they are asymptotically). It needs ``n >= 8`` (the
    threshold of :func:`scipy.stats.normaltest`) and is unreliable below 20.

    Single-pass design: exact moments, so the result equals
    :func:`scipy.stats.normaltest` on the raw column up to rounding. On large tables
    tiny departures are significant: read the skewness and kurtosis in ``details``.

    References
    ----------
    .. [1] R. B. D'Agostino, "Transformation to normality of the null distribution of
       g1", Biometrika 57(3), 1970, pp. 679-681.
    .. [2] F. J. Anscombe and W. J. Glynn, "Distribution of the kurtosis statistic b2
       for normal samples", Biometrika 70(1), 1983, pp. 227-234.
    .. [3] R. B. D'Agostino and E. S. Pearson, "Tests for departure from normality",
       Biometrika 60(3), 1973, pp. 613-622.
    .. [4] R. B. D'Agostino, A. Belanger and R. B. D'Agostino Jr., "A suggestion for
       using powerful and informative tests of normality", The American Statistician
       44(4), 1990, pp. 316-321.

    Examples
    --------
    >>> res = dagostino_pearson(1000, 1000.0, 50.0, 3100.0)
    >>> round(res.statistic, 4), round(res.pvalue, 4)
    (0.964, 0.6175)
    """
    test = "D'Agostino-Pearson K2"
    n, m2, m3, m4 = _check_moments(n, m2, m3, m4)
    bad = _degenerate(test, n, m2, mean, MIN_N_SKEW, K2_REF)
    if bad is not None:
        return bad
    g1, b2 = _skew(n, m2, m3), _kurt(n, m2, m4)
    z_s, z_k = _z_skew(n, g1), _z_kurt(n, b2)
    if z_k is None:
        return _not_applicable(
            test,
            "the kurtosis transformation is undefined for these moments",
            DegenerateDataWarning,
            n=int(n),
            reference=K2_REF,
        )
    k2 = z_s * z_s + z_k * z_k
    return TestResult(
        statistic=k2,
        pvalue=float(stats.chi2.sf(k2, 2)),
        test=test,
        n=int(n),
        df=2,
        method=EXACT,
        reference=K2_REF,
        warnings=_small_n_kurt(test, n),
        details={"skewness": g1, "excess_kurtosis": b2 - 3.0, "z_skewness": z_s, "z_kurtosis": z_k},
    )


def jarque_bera(
    n: float, m2: float, m3: float, m4: float, *, mean: float | None = None
) -> TestResult:
    """Jarque-Bera's test of normality from exact moments.

    Parameters
    ----------
    n : int
        Number of finite values.
    m2, m3, m4 : float
        Second to fourth central sums.
    mean : float, optional
        The column's mean, for the near-constant check (see :func:`skewness_test`).

    Returns
    -------
    TestResult
        ``statistic`` is ``JB = n/6 (g1² + (b2 - 3)²/4)``, ``pvalue`` its upper
        chi-square(2) tail, ``df = 2``; ``details`` holds ``g1`` and the excess kurtosis.
        Not applicable for fewer than 2 values or a constant column.

    Raises
    ------
    InvalidArgumentError
        As for :func:`skewness_test`.

    Warns
    -----
    SmallSampleWarning
        ``n < 100``: the chi-square approximation is poor (recorded in ``warnings``).
    ConstantColumnWarning
        With the not-applicable result for a constant column.

    See Also
    --------
    dagostino_pearson, scipy.stats.jarque_bera

    Notes
    -----
    The null hypothesis is that the values are a random sample from a normal
    distribution. JB is the Lagrange-multiplier statistic of Jarque and Bera [5]_ with
    the biased moment estimators ``g1 = sqrt(n) M3 / M2**1.5`` and
    ``b2 = n M4 / M2**2``; it is chi-square(2) only asymptotically, and in small samples
    it rejects too rarely, so results for ``n < 100`` carry a warning.

    Single-pass design: exact moments, so the result equals
    :func:`scipy.stats.jarque_bera` on the raw column up to rounding.

    References
    ----------
    .. [5] C. M. Jarque and A. K. Bera, "A test for normality of observations and
       regression residuals", International Statistical Review 55(2), 1987,
       pp. 163-172.

    Examples
    --------
    >>> res = jarque_bera(1000, 1000.0, 50.0, 3100.0)
    >>> round(res.statistic, 4), round(res.pvalue, 4)
    (0.8333, 0.6592)
    """
    test = "Jarque-Bera"
    n, m2, m3, m4 = _check_moments(n, m2, m3, m4)
    bad = _degenerate(test, n, m2, mean, 2, JB_REF)
    if bad is not None:
        return bad
    g1, b2 = _skew(n, m2, m3), _kurt(n, m2, m4)
    jb = n / 6.0 * (g1 * g1 + (b2 - 3.0) ** 2 / 4.0)
    notes: tuple[str, ...] = ()
    if n < RELIABLE_N_JB:
        notes = (
            f"n = {int(n)} < {RELIABLE_N_JB}: the chi-square(2) approximation of "
            "Jarque-Bera is poor in small samples",
        )
        warnings.warn(f"{test}: {notes[0]}", SmallSampleWarning, stacklevel=2)
    return TestResult(
        statistic=jb,
        pvalue=float(stats.chi2.sf(jb, 2)),
        test=test,
        n=int(n),
        df=2,
        method=EXACT,
        reference=JB_REF,
        warnings=notes,
        details={"skewness": g1, "excess_kurtosis": b2 - 3.0},
    )


# ---------------------------------------------------------------------------------------
# On the sample
# ---------------------------------------------------------------------------------------


def shapiro_wilk(sample: Any) -> TestResult:
    """Shapiro-Wilk's W test of normality on the uniform sample.

    Parameters
    ----------
    sample : array_like
        1-D sampled values; non-finite values are left out.

    Returns
    -------
    TestResult
        ``statistic`` is W and ``pvalue`` Royston's approximation, both from
        :func:`scipy.stats.shapiro`; ``method=SAMPLE``. Not applicable for fewer than 3
        or more than 5000 values, or a constant sample.

    Raises
    ------
    InvalidArgumentError
        ``sample`` is not one-dimensional.

    Warns
    -----
    SmallSampleWarning, ConstantColumnWarning
        With the not-applicable result.

    See Also
    --------
    anderson_darling, dagostino_pearson, scipy.stats.shapiro

    Notes
    -----
    The null hypothesis is that the values are a random sample from a normal
    distribution [6]_. The p-value uses Royston's approximation [7]_, which holds for
    ``3 <= n <= 5000``; larger samples are refused rather than reported with an
    inaccurate p-value (subsample first, or use :func:`dagostino_pearson` on the exact
    moments). Ties (rounded data) make W conservative.

    Single-pass design: W needs the ordered values, so the test runs on the column's
    uniform reservoir sample: a valid test of the column's distribution with the power
    of the sample size (``method=SAMPLE``, ``approximate=True``).

    References
    ----------
    .. [6] S. S. Shapiro and M. B. Wilk, "An analysis of variance test for normality
       (complete samples)", Biometrika 52(3/4), 1965, pp. 591-611.
    .. [7] P. Royston, "Approximating the Shapiro-Wilk W-test for non-normality",
       Statistics and Computing 2(3), 1992, pp. 117-119.
    """
    test = "Shapiro-Wilk"
    x = _sample(sample)
    if x.size < 3:
        return _not_applicable(
            test,
            f"needs at least 3 values, found {x.size}",
            SmallSampleWarning,
            n=x.size,
            method=SAMPLE,
            reference=SW_REF,
        )
    if x.size > MAX_N_SHAPIRO:
        return _not_applicable(
            test,
            f"sample of {x.size} values exceeds {MAX_N_SHAPIRO}, beyond which the "
            "p-value approximation is inaccurate; subsample or use D'Agostino-Pearson",
            SmallSampleWarning,
            n=x.size,
            method=SAMPLE,
            reference=SW_REF,
        )
    if np.ptp(x) == 0:
        return _not_applicable(
            test,
            "the sample is constant",
            ConstantColumnWarning,
            n=x.size,
            method=SAMPLE,
            reference=SW_REF,
        )
    res = stats.shapiro(x)
    return TestResult(
        statistic=float(res.statistic),
        pvalue=float(res.pvalue),
        test=test,
        n=int(x.size),
        method=SAMPLE,
        approximate=True,
        reference=SW_REF,
    )


def anderson_darling(sample: Any) -> TestResult:
    """Anderson-Darling's test of normality (mean and variance estimated) on the sample.

    Parameters
    ----------
    sample : array_like
        1-D sampled values; non-finite values are left out.

    Returns
    -------
    TestResult
        ``statistic`` is A² and ``pvalue`` scipy's interpolation in Stephens' table
        (:func:`scipy.stats.anderson` with ``method="interpolate"``), which is confined to
        [0.01, 0.15]: beyond the table, ``details["pvalue_bound"]`` says whether the
        p-value is an ``"upper"`` or a ``"lower"`` bound. ``details`` also holds the
        critical values and their significance levels (in percent) and the fitted mean
        and standard deviation. Not applicable for fewer than 8 values or a constant
        sample.

    Raises
    ------
    InvalidArgumentError
        ``sample`` is not one-dimensional.

    Warns
    -----
    SmallSampleWarning, ConstantColumnWarning
        With the not-applicable result.

    See Also
    --------
    shapiro_wilk, scipy.stats.anderson

    Notes
    -----
    The null hypothesis is that the values are a random sample from some normal
    distribution; mean and standard deviation (``ddof=1``) are estimated from the sample
    [8]_. The critical values are Stephens' case-3 asymptotic points divided by
    ``1 + 0.75/n + 2.25/n²`` [9]_ (as scipy computes them); they are meant for ``n >= 8``.
    In scipy 1.17 ``anderson`` reports a p-value only when asked for a method; the
    interpolated one is used here, and it saturates outside the tabled levels, hence the
    bound flag.

    Single-pass design: A² needs the ordered values, so the test runs on the column's
    uniform reservoir sample (``method=SAMPLE``, ``approximate=True``).

    References
    ----------
    .. [8] T. W. Anderson and D. A. Darling, "A test of goodness of fit", Journal of the
       American Statistical Association 49(268), 1954, pp. 765-769.
    .. [9] M. A. Stephens, "EDF statistics for goodness of fit and some comparisons",
       Journal of the American Statistical Association 69(347), 1974, pp. 730-737.
    """
    test = "Anderson-Darling"
    x = _sample(sample)
    if x.size < MIN_N_ANDERSON:
        return _not_applicable(
            test,
            f"needs at least {MIN_N_ANDERSON} values, found {x.size}",
            SmallSampleWarning,
            n=x.size,
            method=SAMPLE,
            reference=AD_REF,
        )
    if np.ptp(x) == 0:
        return _not_applicable(
            test,
            "the sample is constant",
            ConstantColumnWarning,
            n=x.size,
            method=SAMPLE,
            reference=AD_REF,
        )
    res = stats.anderson(x, dist="norm", method="interpolate")
    a2, pvalue = float(res.statistic), float(res.pvalue)
    n = x.size
    critical = np.around(AD_CRITICAL / (1.0 + 0.75 / n + 2.25 / n / n), 3)
    bound = "upper" if a2 >= critical[-1] else "lower" if a2 <= critical[0] else None
    notes: tuple[str, ...] = ()
    if bound is not None:
        notes = (
            f"A² is beyond the tabled critical values: the p-value {pvalue} is an {bound} bound",
        )
    return TestResult(
        statistic=a2,
        pvalue=pvalue,
        test=test,
        n=int(n),
        method=SAMPLE,
        approximate=True,
        reference=AD_REF,
        warnings=notes,
        details={
            "critical_values": [float(c) for c in critical],
            "significance_levels": [float(s) for s in AD_LEVELS],
            "pvalue_bound": bound,
            "fit_mean": float(np.mean(x)),
            "fit_std": float(np.std(x, ddof=1)),
        },
    )


# ---------------------------------------------------------------------------------------
# From the quantile sketch
# ---------------------------------------------------------------------------------------


def ks_distance_from_cdf(
    cdf: Callable[[float], float | None] | tuple[Any, Any],
    mean: float,
    std: float,
    rank_error: float,
    *,
    points: Any = None,
    n: int | None = None,
) -> TestResult:
    """Kolmogorov-Smirnov distance between a sketched CDF and the fitted normal.

    Parameters
    ----------
    cdf : callable or (points, ranks)
        Either the sketch's inclusive rank function ``rank(x)`` (share of values
        ``<= x``, e.g. :meth:`KllState.rank`), evaluated at ``points``; or a pair of
        arrays ``(points, ranks)`` already evaluated.
    mean, std : float
        Parameters of the fitted normal, e.g. the exact mean and
        ``sqrt(M2 / (n - 1))``.
    rank_error : float
        The sketch's bound on the error of a single rank (:attr:`KllState.rank_error`);
        0 for an exact CDF.
    points : array_like, optional
        Where to evaluate a callable ``cdf``; the sketch's quantiles at 1 %, ..., 99 %
        are a good choice. Ignored when ``cdf`` is a pair.
    n : int, optional
        Number of values behind the sketch, reported as ``n``.

    Returns
    -------
    TestResult
        ``statistic`` is ``D = max_i |F_n(x_i) - Phi((x_i - mean) / std)|`` over the
        evaluation points, ``pvalue`` None, ``effect_size`` D, ``method=SKETCH``,
        ``approximate=True`` and ``error_bound=rank_error``. ``details`` holds
        ``grid_upper_bound``, a bound on the distance over all x given the grid, and the
        point where D is attained. Not applicable when the sketch is empty or ``std`` is
        zero.

    Raises
    ------
    InvalidArgumentError
        ``std`` negative or non-finite, ``rank_error`` outside [0, 1], ranks outside
        [0, 1], no or NaN points, or ``points`` missing for a callable ``cdf``.

    Warns
    -----
    ConstantColumnWarning, SmallSampleWarning
        With the not-applicable result (zero ``std``; empty sketch).

    See Also
    --------
    qq_points, dagostino_pearson

    Notes
    -----
    The statistic is Kolmogorov's distance [10]_ between the empirical CDF and the
    normal with the given parameters. No p-value is reported: the parameters are
    estimated from the same data (Lilliefors' setting, where Kolmogorov's distribution
    does not apply), the CDF is approximate, and on large tables any p-value would be
    zero. Read D as an effect size: the largest gap, in share of rows, between the
    column and its normal fit.

    Single-pass design: the empirical CDF comes from the KLL sketch, evaluated at a finite
    set of points. Two approximations follow. (i) Each sketched rank is within
    ``rank_error`` of the true rank (with the sketch's stated probability, simultaneously
    for all points), so D is within ``rank_error`` of the exact grid distance. (ii) The
    supremum over all x may exceed the grid maximum; since both CDFs are non-decreasing,
    between neighbouring points ``x_i < x_j`` the gap is at most
    ``max(F(x_j) - Phi(x_i), Phi(x_j) - F(x_i))``, and outside the grid at most
    ``max(F(x_1), Phi(x_1))`` and ``max(1 - F(x_m), 1 - Phi(x_m))``; the largest of these
    is ``details["grid_upper_bound"]``.

    References
    ----------
    .. [10] A. N. Kolmogorov, "Sulla determinazione empirica di una legge di
       distribuzione", Giornale dell'Istituto Italiano degli Attuari 4, 1933, pp. 83-91.
    """
    test = "Kolmogorov-Smirnov distance to normal"
    mean, std = float(mean), float(std)
    if not math.isfinite(mean):
        raise InvalidArgumentError(f"`mean` must be finite, got {mean!r}.", got=mean)
    if not math.isfinite(std) or std < 0:
        raise InvalidArgumentError(f"`std` must be finite and non-negative, got {std!r}.", got=std)
    rank_error = _rank_error(rank_error)
    if callable(cdf):
        if points is None:
            raise InvalidArgumentError(
                "`points` must be given when `cdf` is a function.", expected="array of x"
            )
        x = np.asarray(points, dtype=np.float64).reshape(-1)
        if np.isnan(x).any():
            raise InvalidArgumentError("`points` must not contain NaN.", got=x.tolist())
        ranks = [cdf(float(v)) for v in x]
        if any(r is None for r in ranks):
            return _not_applicable(
                test,
                "the sketch is empty",
                SmallSampleWarning,
                n=n,
                method=SKETCH,
                reference=KS_REF,
            )
        f = np.asarray(ranks, dtype=np.float64)
    else:
        x = np.asarray(cdf[0], dtype=np.float64).reshape(-1)
        f = np.asarray(cdf[1], dtype=np.float64).reshape(-1)
        if x.shape != f.shape:
            raise InvalidArgumentError(
                f"points and ranks differ in length: {x.size} and {f.size}.",
                expected=x.size,
                got=f.size,
            )
        if np.isnan(x).any():
            raise InvalidArgumentError("`points` must not contain NaN.", got=x.tolist())
    if x.size == 0:
        raise InvalidArgumentError("no points to evaluate the CDF at.", expected="points")
    if not np.all((f >= 0) & (f <= 1)):
        raise InvalidArgumentError("ranks must lie in [0, 1].", got=f.tolist())
    if std == 0:
        return _not_applicable(
            test,
            "the column is constant (std = 0)",
            ConstantColumnWarning,
            n=n,
            method=SKETCH,
            reference=KS_REF,
        )
    order = np.argsort(x, kind="stable")
    x, f = x[order], f[order]
    phi = stats.norm.cdf((x - mean) / std)
    gaps = np.abs(f - phi)
    at = int(np.argmax(gaps))
    d = float(gaps[at])
    # bound on sup |F - Phi| between and outside the grid points (monotone CDFs)
    inner = np.maximum(f[1:] - phi[:-1], phi[1:] - f[:-1]) if x.size > 1 else np.zeros(0)
    outer = [max(f[0], phi[0]), max(1.0 - f[-1], 1.0 - phi[-1])]
    upper = float(max(d, *outer, *inner.tolist()))
    return TestResult(
        statistic=d,
        pvalue=None,
        test=test,
        n=n,
        effect_size=d,
        effect_size_name="Kolmogorov-Smirnov distance",
        method=SKETCH,
        approximate=True,
        error_bound=rank_error,
        reference=KS_REF,
        details={
            "grid_upper_bound": upper,
            "n_points": int(x.size),
            "at": float(x[at]),
            "fit_mean": mean,
            "fit_std": std,
        },
    )


@dataclass(frozen=True)
class QQPoints:
    """Normal QQ data: sample quantiles against the fitted normal's quantiles.

    Attributes
    ----------
    p : tuple of float
        Probabilities, increasing, all in (0, 1).
    z : tuple of float
        Standard normal quantiles ``Phi^-1(p)``.
    theoretical : tuple of float
        Quantiles of the fitted normal, ``mean + std * z``.
    sample : tuple of float
        The column's quantiles at ``p`` (from the sketch or the sample).
    """

    p: tuple[float, ...]
    z: tuple[float, ...]
    theoretical: tuple[float, ...]
    sample: tuple[float, ...]

    def __iter__(self) -> Any:
        """``theoretical, sample = qq`` unpacks the pairs to plot."""
        return iter((self.theoretical, self.sample))

    def to_dict(self) -> dict[str, Any]:
        return {
            "p": list(self.p),
            "z": list(self.z),
            "theoretical": list(self.theoretical),
            "sample": list(self.sample),
        }


def qq_points(quantiles: Mapping[float, float | None], mean: float, std: float) -> QQPoints:
    """Normal QQ pairs from a column's quantiles.

    Parameters
    ----------
    quantiles : mapping of float to float
        Probability ``p`` to the column's ``p`` quantile, e.g. from
        :meth:`KllState.quantiles` at 1 %, ..., 99 %. Probabilities 0 and 1 (whose normal
        quantiles are infinite) and None values (empty sketch) are left out.
    mean, std : float
        Parameters of the fitted normal.

    Returns
    -------
    QQPoints
        Pairs ordered by ``p``; empty when no usable point remains.

    Raises
    ------
    InvalidArgumentError
        A probability outside [0, 1], a non-finite quantile, or a non-finite or negative
        ``mean``/``std``.

    Notes
    -----
    Points on the line ``sample = theoretical`` indicate normality; an S shape indicates
    tails lighter or heavier than normal, a curve skewness. With sketch quantiles each
    sample quantile's rank is within the sketch's rank error of ``p``, which matters
    only in the far tails.

    Examples
    --------
    >>> qq = qq_points({0.25: -0.7, 0.5: 0.1, 0.75: 0.6}, 0.0, 1.0)
    >>> [round(v, 4) for v in qq.theoretical]
    [-0.6745, 0.0, 0.6745]
    """
    mean, std = float(mean), float(std)
    if not (math.isfinite(mean) and math.isfinite(std)) or std < 0:
        raise InvalidArgumentError(
            f"`mean` and `std` must be finite and `std` non-negative, got {mean!r}, {std!r}.",
            got=(mean, std),
        )
    pairs = []
    for p, q in quantiles.items():
        p = float(p)
        if not 0.0 <= p <= 1.0:
            raise InvalidArgumentError(f"probabilities must lie in [0, 1], got {p!r}.", got=p)
        if q is None or p in (0.0, 1.0):
            continue
        if not math.isfinite(float(q)):
            raise InvalidArgumentError(f"quantile at {p} must be finite, got {q!r}.", got=q)
        pairs.append((p, float(q)))
    pairs.sort()
    p_arr = np.array([p for p, _ in pairs], dtype=np.float64)
    z = stats.norm.ppf(p_arr)
    return QQPoints(
        p=tuple(float(v) for v in p_arr),
        z=tuple(float(v) for v in z),
        theoretical=tuple(float(mean + std * v) for v in z),
        sample=tuple(q for _, q in pairs),
    )


# ---------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------


def _check_moments(n: Any, m2: Any, m3: Any, m4: Any) -> tuple[float, float, float, float]:
    values = [float(v) for v in (n, m2, m3, m4)]
    if not all(math.isfinite(v) for v in values):
        raise InvalidArgumentError("`n` and the central sums must be finite.", got=values)
    n_f, m2_f, m3_f, m4_f = values
    if n_f < 0 or n_f != round(n_f):
        raise InvalidArgumentError(f"`n` must be a non-negative count, got {n!r}.", got=n)
    if m2_f < 0 or m4_f < 0:
        raise InvalidArgumentError(
            f"`m2` and `m4` must be non-negative, got {m2_f!r} and {m4_f!r}.",
            got=(m2_f, m4_f),
        )
    return n_f, m2_f, m3_f, m4_f


def _check_alternative(alternative: str) -> None:
    if alternative not in ("two-sided", "less", "greater"):
        raise InvalidArgumentError(
            f"`alternative` must be 'two-sided', 'less' or 'greater', got {alternative!r}.",
            expected=["two-sided", "less", "greater"],
            got=alternative,
        )


def _degenerate(
    test: str, n: float, m2: float, mean: float | None, min_n: int, ref: str
) -> TestResult | None:
    """The not-applicable result for too few values or a constant column, else None."""
    if n == 0:
        return _not_applicable(
            test,
            "no finite values (empty or all-null column)",
            SmallSampleWarning,
            n=0,
            reference=ref,
            stacklevel=4,
        )
    if n < min_n:
        return _not_applicable(
            test,
            f"needs at least {min_n} values, found {int(n)}",
            SmallSampleWarning,
            n=int(n),
            reference=ref,
            stacklevel=4,
        )
    # scipy's rule: a variance below rounding level relative to the mean counts as zero
    tiny = mean is not None and m2 / n <= (np.finfo(np.float64).eps * float(mean)) ** 2
    if m2 == 0 or tiny:
        return _not_applicable(
            test,
            "the column is constant (zero variance)",
            ConstantColumnWarning,
            n=int(n),
            reference=ref,
            stacklevel=4,
        )
    return None


def _skew(n: float, m2: float, m3: float) -> float:
    # g1 = sqrt(b1) = (M3 / n) / (M2 / n)**1.5
    return float((m3 / n) / (m2 / n) ** 1.5)


def _kurt(n: float, m2: float, m4: float) -> float:
    # b2 = (M4 / n) / (M2 / n)**2
    return float((m4 / n) / (m2 / n) ** 2)


def _z_skew(n: float, g1: float) -> float:
    """D'Agostino's normalising transformation of sqrt(b1) [1]."""
    y = g1 * math.sqrt((n + 1) * (n + 3) / (6.0 * (n - 2)))
    beta2 = (
        3.0 * (n * n + 27 * n - 70) * (n + 1) * (n + 3) / ((n - 2.0) * (n + 5) * (n + 7) * (n + 9))
    )
    w2 = -1.0 + math.sqrt(2.0 * (beta2 - 1.0))
    delta = 1.0 / math.sqrt(0.5 * math.log(w2))
    alpha = math.sqrt(2.0 / (w2 - 1.0))
    # Z = delta * ln(y / alpha + sqrt((y / alpha)^2 + 1)) = delta * asinh(y / alpha); asinh
    # keeps full precision for negative y, and gives Z = 0 for zero skewness (scipy
    # substitutes y = 1 there to dodge log(0), a different number)
    return float(delta * math.asinh(y / alpha))


def _z_kurt(n: float, b2: float) -> float | None:
    """Anscombe and Glynn's transformation of b2 [2], eqs. 1-5; None where undefined."""
    e = 3.0 * (n - 1) / (n + 1)
    var_b2 = 24.0 * n * (n - 2) * (n - 3) / ((n + 1) * (n + 1.0) * (n + 3) * (n + 5))  # eq. 1
    x = (b2 - e) / math.sqrt(var_b2)  # eq. 4
    sqrt_beta1 = (
        6.0
        * (n * n - 5 * n + 2)
        / ((n + 7) * (n + 9))
        * math.sqrt(6.0 * (n + 3) * (n + 5) / (n * (n - 2) * (n - 3)))
    )  # eq. 2
    a = 6.0 + 8.0 / sqrt_beta1 * (2.0 / sqrt_beta1 + math.sqrt(1 + 4.0 / sqrt_beta1**2))  # eq. 3
    term1 = 1 - 2 / (9.0 * a)
    denom = 1 + x * math.sqrt(2 / (a - 4.0))
    if denom == 0:
        return None
    term2 = math.copysign(((1 - 2.0 / a) / abs(denom)) ** (1 / 3), denom)
    return float((term1 - term2) / math.sqrt(2 / (9.0 * a)))  # eq. 5


def _normal_pvalue(z: float, alternative: str) -> float:
    if alternative == "less":
        return float(stats.norm.cdf(z))
    if alternative == "greater":
        return float(stats.norm.sf(z))
    return float(2.0 * stats.norm.sf(abs(z)))


def _small_n_kurt(test: str, n: float) -> tuple[str, ...]:
    if n >= RELIABLE_N_KURT:
        return ()
    note = (
        f"n = {int(n)} < {RELIABLE_N_KURT}: the kurtosis test's normal approximation is unreliable"
    )
    warnings.warn(f"{test}: {note}", SmallSampleWarning, stacklevel=3)
    return (note,)


def _sample(sample: Any) -> np.ndarray:
    x = np.asarray(sample, dtype=np.float64)
    if x.ndim != 1:
        raise InvalidArgumentError(
            f"`sample` must be one-dimensional, got shape {x.shape}.",
            expected="1-D",
            got=x.shape,
        )
    return x[np.isfinite(x)]


def _rank_error(value: Any) -> float:
    eps = float(value)
    if not 0.0 <= eps <= 1.0:
        raise InvalidArgumentError(
            f"`rank_error` must lie in [0, 1], got {value!r}.", expected="[0, 1]", got=value
        )
    return eps


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
