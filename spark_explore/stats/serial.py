"""Serial dependence of an ordered column, from a mergeable ordered accumulator.

When the table has a meaningful row order (a timestamp or sequence column), each partition
of the ordered scan summarises its chunk of consecutive values in a :class:`LagMoments`:
count, first and last value, mean and central sums M2..M4, the lag-1 cross-product about
the chunk's own mean, and the sum of squared successive differences. Adjacent chunks merge
exactly: the cross-product is moved to the merged mean and the one pair that straddles the
boundary is added. Merging is associative but, unlike the other states, not commutative:
the left argument must be the earlier chunk.

From the merged accumulator: the lag-1 autocorrelation with NIST's definition, the
Durbin-Watson statistic of the demeaned series, and (from counts of runs above and below a
cutoff) the Wald-Wolfowitz runs test.

References
----------
.. [1] NIST/SEMATECH e-Handbook of Statistical Methods, 1.3.5.12 "Autocorrelation";
       NIST StRD univariate summary statistics (certified r(1)).
.. [2] T. F. Chan, G. H. Golub and R. J. LeVeque, "Algorithms for computing the sample
       variance: analysis and recommendations", The American Statistician 37(3), 1983,
       pp. 242-247 (pairwise merge of the mean and M2).
.. [3] J.-M. Dufour and R. Roy, "Some robust exact results on sample autocorrelations and
       tests of randomness", Journal of Econometrics 29(3), 1985, pp. 257-273 (moments of
       r1 under the permutation null).
.. [4] J. Durbin and G. S. Watson, "Testing for serial correlation in least squares
       regression. I", Biometrika 37(3/4), 1950, pp. 409-428.
.. [5] A. Wald and J. Wolfowitz, "On a test whether two samples are from the same
       population", Ann. Math. Statist. 11(2), 1940, pp. 147-162 (the distribution of the
       number of runs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from scipy import stats

from spark_explore.errors import InvalidArgumentError
from spark_explore.states import _algebra
from spark_explore.stats.results import EXACT, TestResult, not_applicable

__all__ = [
    "LagMoments",
    "durbin_watson",
    "lag1_autocorrelation",
    "merge_lag_moments",
    "runs_test",
]

_REF_R1 = "NIST e-Handbook 1.3.5.12; Dufour & Roy (1985), J. Econometrics 29:257-273"
_REF_DW = "Durbin & Watson (1950), Biometrika 37:409-428"
_REF_RUNS = "Wald & Wolfowitz (1940), Ann. Math. Statist. 11:147-162"


@dataclass(frozen=True)
class LagMoments:
    """Mergeable summary of a run of consecutive values of one ordered column.

    Attributes
    ----------
    n
        Number of finite values.
    first, last
        The first and last finite value (NaN when empty).
    mean, mean_lo
        The mean as an unevaluated double-double sum ``mean + mean_lo``.
    m2, m3, m4
        Central sums of powers 2-4 about the mean.
    c1
        ``sum_{i>=2} (y_i - mean)(y_{i-1} - mean)``, over adjacent finite values.
    sdiff
        ``sum_{i>=2} (y_i - y_{i-1})^2``.
    n_missing
        Non-finite values skipped; their neighbours are treated as adjacent.
    """

    n: float = 0.0
    first: float = math.nan
    last: float = math.nan
    mean: float = 0.0
    mean_lo: float = 0.0
    m2: float = 0.0
    m3: float = 0.0
    m4: float = 0.0
    c1: float = 0.0
    sdiff: float = 0.0
    n_missing: float = 0.0

    @classmethod
    def empty(cls) -> LagMoments:
        """The identity of :func:`merge_lag_moments`."""
        return cls()

    @classmethod
    def from_values(cls, values: np.ndarray) -> LagMoments:
        """Summarise consecutive values (one chunk, in order).

        Within the chunk the mean comes from the corrected two-pass algorithm [2]_, and the
        cross-product is summed over deviations from it.
        """
        y = np.asarray(values, dtype=np.float64).ravel()
        finite = np.isfinite(y)
        missing = float((~finite).sum())
        y = y[finite]
        if y.size == 0:
            return cls(n_missing=missing)
        mom = _algebra.batch_moments(y[:, None], np.ones((y.size, 1), dtype=bool))
        mean, mean_lo = float(mom.mean[0]), float(mom.mean_lo[0])
        d = (y - mean) - mean_lo
        diff = np.diff(y)
        return cls(
            float(y.size),
            float(y[0]),
            float(y[-1]),
            mean,
            mean_lo,
            float(mom.m2[0]),
            float(mom.m3[0]),
            float(mom.m4[0]),
            float(d[1:] @ d[:-1]),
            float(diff @ diff),
            missing,
        )


def merge_lag_moments(a: LagMoments, b: LagMoments) -> LagMoments:
    """Summary of chunk ``a`` followed immediately by chunk ``b``.

    Pure and associative; not commutative (``a`` must precede ``b``). The empty summary
    is a two-sided identity.

    Notes
    -----
    Mean and M2..M4 merge pairwise [2]_ (the project's ``merge_moments``). With
    ``delta_a = mean_a - mean`` the cross-product about the merged mean is
    ``c1_a - delta_a (d_first + d_last) + (n_a - 1) delta_a^2``, where ``d_first`` and
    ``d_last`` are the chunk's first and last deviations from its own mean (because the
    deviations sum to zero); the boundary pair adds ``(first_b - mean)(last_a - mean)``,
    and ``sdiff`` gains ``(first_b - last_a)^2``.

    Examples
    --------
    >>> import numpy as np
    >>> left = LagMoments.from_values(np.array([1.0, 3.0, 2.0]))
    >>> right = LagMoments.from_values(np.array([5.0, 4.0, 6.0]))
    >>> whole = merge_lag_moments(left, right)
    >>> round(lag1_autocorrelation(whole).effect_size, 12)
    0.1
    >>> round(durbin_watson(whole).statistic, 6)
    1.085714
    """
    if b.n == 0:
        return replace(a, n_missing=a.n_missing + b.n_missing)
    if a.n == 0:
        return replace(b, n_missing=a.n_missing + b.n_missing)
    ma, mb = (
        _algebra.Moments(*(np.array([v]) for v in (s.n, s.mean, s.mean_lo, s.m2, s.m3, s.m4)))
        for s in (a, b)
    )
    merged = _algebra.merge_moments(ma, mb)
    hi, lo = float(merged.mean[0]), float(merged.mean_lo[0])

    def about_merged(s: LagMoments) -> float:
        # delta = mean_s - mean, from the two double-double means
        d_hi, d_lo = _two_sum(s.mean, -hi)
        delta = d_hi + (d_lo + (s.mean_lo - lo))
        d_first = (s.first - s.mean) - s.mean_lo
        d_last = (s.last - s.mean) - s.mean_lo
        return s.c1 - delta * (d_first + d_last) + (s.n - 1.0) * delta * delta

    boundary = ((b.first - hi) - lo) * ((a.last - hi) - lo)
    jump = b.first - a.last
    return LagMoments(
        a.n + b.n,
        a.first,
        b.last,
        hi,
        lo,
        float(merged.m2[0]),
        float(merged.m3[0]),
        float(merged.m4[0]),
        about_merged(a) + about_merged(b) + boundary,
        a.sdiff + b.sdiff + jump * jump,
        a.n_missing + b.n_missing,
    )


def _two_sum(a: float, b: float) -> tuple[float, float]:
    """``s, e`` with ``s = fl(a + b)`` and ``a + b = s + e`` exactly (Knuth's TwoSum)."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def lag1_autocorrelation(lag: LagMoments) -> TestResult:
    """Lag-1 autocorrelation (NIST definition) and a test of randomness.

    Parameters
    ----------
    lag
        The merged summary of the whole ordered column.

    Returns
    -------
    TestResult
        ``statistic`` is z, the standardised r1; ``effect_size`` is
        ``r1 = sum_{i>=2} (y_i - ybar)(y_{i-1} - ybar) / sum (y_i - ybar)^2`` [1]_.
        ``details`` holds ``r1``, its permutation ``expected`` value and ``variance``.

    Notes
    -----
    H0: the order of the values is random (the series is exchangeable, e.g. i.i.d.).
    Under H0, conditionally on the values, ``E(r1) = -1/n`` and
    ``var(r1) = (1 - b)/n + (1 - 2b)/(n (n - 1)) - 1/n^2`` with ``b = M4 / M2^2``
    (the exact permutation moments, in the spirit of Dufour & Roy [3]_); the p-value is
    the two-sided normal approximation to the permutation distribution, which is
    accurate for moderate n. The ordering must be the table's true order: the ordered
    scan merges chunks in partition order.
    """
    test = "lag-1 autocorrelation"
    if lag.n < 3:
        return not_applicable(
            test,
            f"{lag.n:.0f} ordered values; at least 3 are needed",
            n=int(lag.n),
            reference=_REF_R1,
        )
    if lag.m2 <= 0:
        return not_applicable(
            test, "the column is constant: r1 is undefined", n=int(lag.n), reference=_REF_R1
        )
    n = lag.n
    r1 = lag.c1 / lag.m2
    b = lag.m4 / (lag.m2 * lag.m2)
    expected = -1.0 / n
    variance = (1.0 - b) / n + (1.0 - 2.0 * b) / (n * (n - 1.0)) - 1.0 / (n * n)
    z = p = None
    if variance > 0:
        z = (r1 - expected) / math.sqrt(variance)
        p = float(2.0 * stats.norm.sf(abs(z)))
    warns = (
        (
            f"{lag.n_missing:.0f} non-finite values skipped; their neighbours were "
            "treated as adjacent",
        )
        if lag.n_missing
        else ()
    )
    return TestResult(
        z,
        p,
        test,
        n=int(n),
        effect_size=r1,
        effect_size_name="lag-1 autocorrelation r1",
        method=EXACT,
        reference=_REF_R1,
        warnings=warns,
        details={"r1": r1, "expected": expected, "variance": variance},
    )


def durbin_watson(lag: LagMoments) -> TestResult:
    """Durbin-Watson statistic of the demeaned series.

    Parameters
    ----------
    lag
        The merged summary of the whole ordered column.

    Returns
    -------
    TestResult
        ``d = sum_{i>=2} (e_i - e_{i-1})^2 / sum e_i^2`` with ``e_i = y_i - ybar``, the
        residuals of the least-squares regression of y on a constant only [4]_;
        ``pvalue`` is None. ``effect_size`` is ``1 - d/2``, approximately r1.

    Notes
    -----
    Equal to ``statsmodels.stats.stattools.durbin_watson(y - y.mean())``. Because the
    differences of residuals are the differences of the values, the numerator is the
    merged ``sdiff`` and needs no mean. Durbin and Watson's bounds depend on the
    regressors; for a constant-only regression use :func:`lag1_autocorrelation`'s test,
    which is the same comparison of neighbours. ``d`` near 2 means no lag-1 correlation,
    towards 0 positive and towards 4 negative correlation.
    """
    test = "Durbin-Watson"
    if lag.n < 2:
        return not_applicable(
            test,
            f"{lag.n:.0f} ordered values; at least 2 are needed",
            n=int(lag.n),
            reference=_REF_DW,
        )
    if lag.m2 <= 0:
        return not_applicable(
            test, "the column is constant: d is undefined", n=int(lag.n), reference=_REF_DW
        )
    d = lag.sdiff / lag.m2
    return TestResult(
        d,
        None,
        test,
        n=int(lag.n),
        effect_size=1.0 - d / 2.0,
        effect_size_name="1 - d/2 (approximate r1)",
        method=EXACT,
        reference=_REF_DW,
        details={"residuals": "y - mean(y)"},
    )


def runs_test(n_above: int, n_below: int, runs: int, *, correction: bool = True) -> TestResult:
    """Wald-Wolfowitz runs test for randomness about a cutoff (normal approximation).

    Parameters
    ----------
    n_above, n_below
        Values at or above the cutoff, and below it.
    runs
        Number of maximal runs of consecutive values on the same side.
    correction
        Apply a 0.5 continuity correction towards zero when ``N < 50``.

    Returns
    -------
    TestResult
        ``statistic`` z, two-sided normal ``pvalue``; ``details`` holds the expected
        number of runs and its variance.

    Raises
    ------
    InvalidArgumentError
        For counts that no sequence can have.

    Notes
    -----
    H0: the sequence of above/below labels is in random order. Given ``n1`` and ``n2``,
    ``E(R) = 2 n1 n2 / N + 1`` and ``var(R) = 2 n1 n2 (2 n1 n2 - N) / (N^2 (N - 1))``
    [5]_; z is asymptotically standard normal. Matches
    ``statsmodels.sandbox.stats.runs.runstest_1samp(x, cutoff)`` (which counts
    ``x >= cutoff`` as above) except when ``|R - E(R)| < 0.5`` with the correction on,
    where this function returns 0 and statsmodels shifts by +0.5. The cutoff must be
    fixed before the ordered scan counts runs (e.g. a median from a previous profile);
    a median from the same pass is not known while it runs.

    Examples
    --------
    >>> res = runs_test(12, 8, 5)
    >>> round(res.statistic, 4), round(res.pvalue, 4), res.details["expected"]
    (-2.4466, 0.0144, 10.6)
    """
    if (
        min(n_above, n_below, runs) < 0
        or runs > n_above + n_below
        or runs > 2 * min(n_above, n_below) + 1
        or (runs == 0) != (n_above + n_below == 0)
    ):
        raise InvalidArgumentError(
            f"no sequence of {n_above} above and {n_below} below has {runs} runs",
            code="INVALID_ARGUMENT",
            got=(n_above, n_below, runs),
        )
    test = "Wald-Wolfowitz runs test"
    n1, n2 = float(n_above), float(n_below)
    total = n1 + n2
    if n1 == 0 or n2 == 0:
        return not_applicable(
            test, "all values lie on one side of the cutoff", n=int(total), reference=_REF_RUNS
        )
    mean = 2.0 * n1 * n2 / total + 1.0
    variance = 2.0 * n1 * n2 * (2.0 * n1 * n2 - total) / (total * total * (total - 1.0))
    if variance <= 0:
        return not_applicable(
            test,
            "the number of runs cannot vary with these counts",
            n=int(total),
            reference=_REF_RUNS,
        )
    dev = runs - mean
    if correction and total < 50:
        dev = math.copysign(max(abs(dev) - 0.5, 0.0), dev)
    z = dev / math.sqrt(variance)
    return TestResult(
        z,
        float(2.0 * stats.norm.sf(abs(z))),
        test,
        n=int(total),
        method=EXACT,
        reference=_REF_RUNS,
        details={
            "runs": runs,
            "expected": mean,
            "variance": variance,
            "n_above": n_above,
            "n_below": n_below,
            "correction": bool(correction and total < 50),
        },
    )
