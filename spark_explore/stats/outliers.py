"""Outlier rules: fences from quantiles and moments, shares from the sketch, Mahalanobis.

The univariate rules turn a few aggregates into a pair of fences: Tukey's from the
quartiles, the z rule from the exact mean and standard deviation, Iglewicz and Hoaglin's
robust rule from the median and MAD. :func:`share_beyond` then reads the share of rows
outside any pair of fences from the quantile sketch, and :func:`mad_from_rank` finds the
MAD from the same sketch. The multivariate rule scores the uniform sample's rows by their
Mahalanobis distance under the whole table's exact mean and covariance.

Each function returns a small frozen result (:class:`FencesResult`,
:class:`OutlierShareResult`, :class:`MahalanobisResult`) with ``to_dict()`` for the JSON
report; fences and shares also unpack like tuples, e.g. ``low, high = tukey_fences(...)``.

References
----------
.. [1] J. W. Tukey, Exploratory Data Analysis, Addison-Wesley, 1977, ch. 2.
.. [2] B. Iglewicz and D. C. Hoaglin, How to Detect and Handle Outliers, ASQC Basic
   References in Quality Control vol. 16, ASQC Quality Press, 1993.
.. [3] F. R. Hampel, "The influence curve and its role in robust estimation", Journal of
   the American Statistical Association 69(346), 1974, pp. 383-393.
.. [4] P. C. Mahalanobis, "On the generalised distance in statistics", Proceedings of the
   National Institute of Sciences of India 2(1), 1936, pp. 49-55.
.. [5] P. J. Rousseeuw and B. C. van Zomeren, "Unmasking multivariate outliers and
   leverage points", Journal of the American Statistical Association 85(411), 1990,
   pp. 633-639.
.. [6] R. E. Shiffler, "Maximum z scores and outliers", The American Statistician 42(1),
   1988, pp. 79-80.
.. [7] Z. Karnin, K. Lang and E. Liberty, "Optimal quantile approximation in streams",
   Proc. IEEE FOCS 2016, pp. 71-78.

Reference numbers in the functions' docstrings and comments are those of this list.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from spark_explore.errors import DegenerateDataWarning, InvalidArgumentError
from spark_explore.stats.results import EXACT, SAMPLE, SKETCH, _finite

__all__ = [
    "FencesResult",
    "MahalanobisResult",
    "OutlierShareResult",
    "mad_from_rank",
    "mahalanobis_outliers",
    "robust_z_bounds",
    "share_beyond",
    "tukey_fences",
    "z_bounds",
]

TUKEY_REF = "Tukey (1977), Exploratory Data Analysis, ch. 2"
ROBUST_Z_REF = "Iglewicz & Hoaglin (1993), How to Detect and Handle Outliers"
Z_REF = "Shiffler (1988), Am. Stat. 42(1):79-80"
MAHALANOBIS_REF = (
    "Mahalanobis (1936), Proc. Natl. Inst. Sci. India 2(1):49-55; "
    "Rousseeuw & van Zomeren (1990), JASA 85(411):633-639"
)
#: 1 / Phi^-1(3/4) to four decimals: makes the MAD a consistent estimate of a normal sd.
MAD_SCALE = 1.4826

RankFunction = Callable[[float], "float | None"]


@dataclass(frozen=True)
class FencesResult:
    """A pair of fences outside which values are flagged as outliers.

    Attributes
    ----------
    rule : str
        ``"tukey"``, ``"robust-z"`` or ``"z"``.
    low, high : float or None
        The fences; a value ``x < low`` or ``x > high`` is flagged. None when not
        applicable.
    parameters : dict
        The inputs (quartiles, ``k``, median, MAD, mean, sd, ``z`` ...).
    method : str
        Where the inputs came from: ``EXACT`` moments, ``SKETCH`` quantiles or ``SAMPLE``.
    approximate, error_bound
        True, with the inputs' rank error, when the inputs are sketch quantiles.
    reference : str
        The rule's original reference.
    applicable, reason
        False, with the reason, when the rule is undefined for these data.
    warnings : tuple of str
        Caveats.
    """

    rule: str
    low: float | None
    high: float | None
    parameters: dict[str, Any]
    method: str = EXACT
    approximate: bool = False
    error_bound: float | None = None
    reference: str = ""
    applicable: bool = True
    reason: str | None = None
    warnings: tuple[str, ...] = ()

    def __iter__(self) -> Iterator[float | None]:
        return iter((self.low, self.high))

    def to_dict(self) -> dict[str, Any]:
        return _to_dict(self)


@dataclass(frozen=True)
class OutlierShareResult:
    """Share of rows below and above a pair of fences, read from a quantile sketch.

    Attributes
    ----------
    share_low, share_high : float or None
        Estimated shares of values ``< low`` and ``> high``.
    error_bound : float or None
        Bound on the error of each share (the sketch's rank error; 0 for a side fixed
        exactly by the column's minimum or maximum).
    n : int
        Values behind the sketch.
    count_low, count_high : int or None
        ``round(share * n)``.
    low, high : float or None
        The fences.
    method, approximate, reference, applicable, reason, warnings
        As in :class:`FencesResult`.
    """

    share_low: float | None
    share_high: float | None
    error_bound: float | None
    n: int
    count_low: int | None
    count_high: int | None
    low: float | None
    high: float | None
    method: str = SKETCH
    approximate: bool = True
    reference: str = ""
    applicable: bool = True
    reason: str | None = None
    warnings: tuple[str, ...] = ()

    def __iter__(self) -> Iterator[float | None]:
        return iter((self.share_low, self.share_high, self.error_bound))

    def to_dict(self) -> dict[str, Any]:
        return _to_dict(self)


@dataclass(frozen=True, eq=False)
class MahalanobisResult:
    """Rows of the sample far from the table's centre in Mahalanobis distance.

    Attributes
    ----------
    indices : tuple of int
        Row positions (in the input sample) whose squared distance exceeds ``cutoff``,
        by decreasing distance.
    distances : numpy.ndarray
        Squared distance of every input row; NaN for rows left out (non-finite values).
    cutoff : float or None
        ``chi2.ppf(1 - alpha, df)``.
    df : int or None
        Degrees of freedom: the covariance's rank.
    alpha : float
        Tail probability of the cut-off.
    n : int
        Complete rows scored.
    n_dropped : int
        Rows left out for a non-finite value.
    share : float or None
        ``len(indices) / n``; about ``alpha`` for multivariate normal data.
    method, approximate, reference, applicable, reason, warnings
        As in :class:`FencesResult`; ``method`` is ``SAMPLE``.
    """

    indices: tuple[int, ...]
    distances: np.ndarray
    cutoff: float | None
    df: int | None
    alpha: float
    n: int
    n_dropped: int
    share: float | None
    method: str = SAMPLE
    approximate: bool = True
    reference: str = MAHALANOBIS_REF
    applicable: bool = True
    reason: str | None = None
    warnings: tuple[str, ...] = ()

    def __iter__(self) -> Iterator[Any]:
        return iter((self.indices, self.distances, self.cutoff))

    def to_dict(self, *, include_distances: bool = False) -> dict[str, Any]:
        """JSON-ready fields; the outliers' distances, and all of them on request."""
        data = {
            "indices": list(self.indices),
            "outlier_distances": [float(self.distances[i]) for i in self.indices],
            "cutoff": self.cutoff,
            "df": self.df,
            "alpha": self.alpha,
            "n": self.n,
            "n_dropped": self.n_dropped,
            "share": self.share,
            "method": self.method,
            "approximate": self.approximate,
            "reference": self.reference,
            "applicable": self.applicable,
            "reason": self.reason,
            "warnings": list(self.warnings),
        }
        if include_distances:
            data["distances"] = [float(d) for d in self.distances]
        out: dict[str, Any] = _finite(data)
        return out


def tukey_fences(
    q1: float | None, q3: float | None, k: float = 1.5, *, rank_error: float | None = None
) -> FencesResult:
    """Tukey's fences ``q1 - k IQR`` and ``q3 + k IQR``.

    Parameters
    ----------
    q1, q3 : float or None
        First and third quartiles (None from an empty sketch).
    k : float
        Fence multiplier: 1.5 gives Tukey's inner fences, 3 the outer ones [1]_.
    rank_error : float, optional
        The quartiles' rank error when they come from a quantile sketch; marks the result
        approximate (``method=SKETCH``).

    Returns
    -------
    FencesResult
        ``rule="tukey"``. Not applicable for missing quartiles or a zero IQR.

    Raises
    ------
    InvalidArgumentError
        ``q3 < q1``, non-finite quartiles, ``k`` not positive, or ``rank_error`` outside
        [0, 1].

    Warns
    -----
    DegenerateDataWarning
        With the not-applicable result.

    Notes
    -----
    The rule assumes nothing about the distribution beyond its quartiles; for a normal
    distribution the inner fences lie at about ±2.7 sd and flag 0.7 % of values. When
    half or more of the values are equal the IQR is zero and the rule would flag every
    other value, so it is reported as not applicable.

    Single-pass design: the quartiles come from the KLL sketch (inclusive definition, not
    Tukey's hinges); each quartile's true rank is within ``rank_error`` of 1/4 or 3/4.

    References
    ----------
    .. [1] J. W. Tukey, Exploratory Data Analysis, Addison-Wesley, 1977, ch. 2.

    Examples
    --------
    >>> low, high = tukey_fences(10.0, 14.0)
    >>> low, high
    (4.0, 20.0)
    """
    method = SKETCH if rank_error is not None else EXACT
    eps = _optional_rank_error(rank_error)
    k = _positive("k", k)
    if q1 is None or q3 is None:
        return _fences_na(
            "tukey",
            "no quartiles (the column has no finite values)",
            {"q1": q1, "q3": q3, "k": k},
            method,
            TUKEY_REF,
        )
    q1, q3 = _finite_arg("q1", q1), _finite_arg("q3", q3)
    if q3 < q1:
        raise InvalidArgumentError(
            f"`q3` must not be below `q1`, got q1={q1!r}, q3={q3!r}.", got=(q1, q3)
        )
    iqr = q3 - q1
    params = {"q1": q1, "q3": q3, "iqr": iqr, "k": k}
    if iqr == 0:
        return _fences_na(
            "tukey",
            "the interquartile range is zero (half or more of the "
            "values are equal), so every other value would be flagged",
            params,
            method,
            TUKEY_REF,
        )
    return FencesResult(
        "tukey",
        q1 - k * iqr,
        q3 + k * iqr,
        params,
        method=method,
        approximate=eps is not None,
        error_bound=eps,
        reference=TUKEY_REF,
    )


def robust_z_bounds(
    median: float | None,
    mad: float | None,
    z: float = 3.5,
    *,
    scale: float = MAD_SCALE,
    rank_error: float | None = None,
) -> FencesResult:
    """Fences of Iglewicz and Hoaglin's modified z-score, ``median ± z · scale · MAD``.

    Parameters
    ----------
    median, mad : float or None
        The median and the (unscaled) median absolute deviation from it.
    z : float
        Cut-off of the modified z-score; 3.5 as recommended by Iglewicz and Hoaglin [2]_.
    scale : float
        Consistency factor of the MAD, ``1 / Phi^-1(3/4) ≈ 1.4826`` (their ``1 / 0.6745``).
    rank_error : float, optional
        Rank error of the inputs when they come from a sketch (see :func:`mad_from_rank`).

    Returns
    -------
    FencesResult
        ``rule="robust-z"``. Not applicable for a missing median or MAD, or a zero MAD.

    Raises
    ------
    InvalidArgumentError
        Non-finite inputs, a negative MAD, non-positive ``z`` or ``scale``, or
        ``rank_error`` outside [0, 1].

    Warns
    -----
    DegenerateDataWarning
        With the not-applicable result.

    Notes
    -----
    The modified z-score is ``M_i = (x_i - median) / (scale · MAD)`` and values with
    ``|M_i| > z`` are flagged [2]_. Median and MAD have a 50 % breakdown point [3]_, so
    unlike the mean and sd they are not dragged by the outliers themselves. A zero MAD
    (half or more of the values equal) makes the score infinite: not applicable.

    Single-pass design: the median comes from the KLL sketch and the MAD either from the
    same sketch (:func:`mad_from_rank`, with a rank error of twice the sketch's) or from
    the uniform sample.

    References
    ----------
    .. [2] B. Iglewicz and D. C. Hoaglin, How to Detect and Handle Outliers, ASQC Basic
       References in Quality Control vol. 16, ASQC Quality Press, 1993.
    .. [3] F. R. Hampel, "The influence curve and its role in robust estimation",
       Journal of the American Statistical Association 69(346), 1974, pp. 383-393.

    Examples
    --------
    >>> [round(v, 4) for v in robust_z_bounds(10.0, 2.0)]
    [-0.3782, 20.3782]
    """
    method = SKETCH if rank_error is not None else EXACT
    eps = _optional_rank_error(rank_error)
    z, scale = _positive("z", z), _positive("scale", scale)
    if median is None or mad is None:
        return _fences_na(
            "robust-z",
            "no median or MAD (the column has no finite values)",
            {"median": median, "mad": mad, "z": z},
            method,
            ROBUST_Z_REF,
        )
    median, mad = _finite_arg("median", median), _finite_arg("mad", mad)
    if mad < 0:
        raise InvalidArgumentError(f"`mad` must be non-negative, got {mad!r}.", got=mad)
    params = {"median": median, "mad": mad, "z": z, "scale": scale}
    if mad == 0:
        return _fences_na(
            "robust-z",
            "the MAD is zero (half or more of the values are "
            "equal), so the modified z-score is infinite",
            params,
            method,
            ROBUST_Z_REF,
        )
    half = z * scale * mad
    return FencesResult(
        "robust-z",
        median - half,
        median + half,
        params,
        method=method,
        approximate=eps is not None,
        error_bound=eps,
        reference=ROBUST_Z_REF,
    )


def z_bounds(
    mean: float | None, std: float | None, z: float = 3.0, *, n: int | None = None
) -> FencesResult:
    """Fences of the classical z-score rule, ``mean ± z · std``.

    Parameters
    ----------
    mean, std : float or None
        Exact mean and standard deviation of the column; ``std`` may be ``inf``, the
        standard deviation of values near the float64 limits, whose square sums overflow.
    z : float
        Cut-off, 3 by default.
    n : int, optional
        Number of values; enables the check that the cut-off is reachable at all.

    Returns
    -------
    FencesResult
        ``rule="z"``, ``method=EXACT``. Not applicable for a missing, zero or infinite
        ``std``.

    Raises
    ------
    InvalidArgumentError
        A non-finite ``mean``, a NaN or negative ``std``, or a non-positive ``z``.

    Warns
    -----
    DegenerateDataWarning
        With the not-applicable result, or when ``n`` is so small that no value can
        exceed the cut-off (also recorded in ``warnings``).

    Notes
    -----
    The rule presumes roughly normal data, and it masks: outliers inflate the sd they are
    measured with. With the sample sd, no z-score can exceed ``(n - 1) / sqrt(n)`` [6]_,
    so with ``n <= 10`` a cut-off of 3 can never flag anything. Prefer
    :func:`robust_z_bounds` or :func:`tukey_fences` for skewed or contaminated data.

    Single-pass design: mean and sd are exact aggregates, so the fences are exact.

    References
    ----------
    .. [6] R. E. Shiffler, "Maximum z scores and outliers", The American Statistician
       42(1), 1988, pp. 79-80.

    Examples
    --------
    >>> tuple(z_bounds(50.0, 4.0))
    (38.0, 62.0)
    """
    z = _positive("z", z)
    if mean is None or std is None:
        return _fences_na(
            "z",
            "no mean or sd (the column has no finite values)",
            {"mean": mean, "std": std, "z": z},
            EXACT,
            Z_REF,
        )
    if float(std) == math.inf:
        return _fences_na(
            "z",
            "the standard deviation overflows float64 (values near the float64 limits)",
            {"mean": float(mean), "std": None, "z": z},
            EXACT,
            Z_REF,
        )
    mean, std = _finite_arg("mean", mean), _finite_arg("std", std)
    if std < 0:
        raise InvalidArgumentError(f"`std` must be non-negative, got {std!r}.", got=std)
    params: dict[str, Any] = {"mean": mean, "std": std, "z": z}
    if std == 0:
        return _fences_na(
            "z", "the standard deviation is zero (constant column)", params, EXACT, Z_REF
        )
    notes: tuple[str, ...] = ()
    if n is not None:
        params["n"] = int(n)
        if n >= 1 and (n - 1) / math.sqrt(n) <= z:
            notes = (
                f"with n = {int(n)} no z-score can exceed {(n - 1) / math.sqrt(n):.3g}, "
                f"so the cut-off {z} flags nothing",
            )
            warnings.warn(f"z rule: {notes[0]}", DegenerateDataWarning, stacklevel=2)
    return FencesResult(
        "z", mean - z * std, mean + z * std, params, method=EXACT, reference=Z_REF, warnings=notes
    )


def share_beyond(
    rank: RankFunction,
    low: float | None,
    high: float | None,
    n: int,
    rank_error: float,
    *,
    min_value: float | None = None,
    max_value: float | None = None,
) -> OutlierShareResult:
    """Shares of values strictly below ``low`` and strictly above ``high``, from a sketch.

    Parameters
    ----------
    rank : callable
        The sketch's inclusive rank function: ``rank(x)`` is the share of values ``<= x``
        (e.g. :meth:`KllState.rank`), None when the sketch is empty.
    low, high : float or None
        Fences (e.g. unpacked from :func:`tukey_fences`); None for an inapplicable rule.
    n : int
        Number of values behind the sketch.
    rank_error : float
        The sketch's rank error, in [0, 1].
    min_value, max_value : float, optional
        The column's exact extremes; a fence beyond one makes that side's share exactly 0.

    Returns
    -------
    OutlierShareResult
        Unpacks as ``(share_low, share_high, error_bound)``; not applicable when a fence
        is None or the sketch is empty.

    Raises
    ------
    InvalidArgumentError
        ``low > high``, NaN fences, negative ``n``, or ``rank_error`` outside [0, 1].

    Notes
    -----
    Flagged values are those strictly beyond the fences. Since the rank function is
    inclusive, the share below ``low`` is the rank of the largest float64 below ``low``
    (``numpy.nextafter(low, -inf)``): every float64 ``x < low`` is ``<= `` that number.
    The share above ``high`` is ``1 - rank(high)``.

    Single-pass design: each share is within the sketch's rank error of the true share
    (with the sketch's stated probability [7]_), so a share below ``error_bound`` is
    indistinguishable from zero; a side fixed by the exact ``min_value``/``max_value`` is
    exact.

    References
    ----------
    .. [7] Z. Karnin, K. Lang and E. Liberty, "Optimal quantile approximation in
       streams", Proc. IEEE FOCS 2016, pp. 71-78.

    Examples
    --------
    >>> import numpy as np
    >>> xs = np.array([1.0, 2, 2, 3, 4, 5, 5, 6, 9, 30])
    >>> def rank(v):
    ...     return float(np.searchsorted(xs, v, side="right") / xs.size)
    >>> res = share_beyond(rank, 0.0, 8.0, n=10, rank_error=0.0)
    >>> res.share_low, round(res.share_high, 6), res.count_high
    (0.0, 0.2, 2)
    """
    eps = _rank_error(rank_error)
    n = int(n)
    if n < 0:
        raise InvalidArgumentError(f"`n` must be non-negative, got {n!r}.", got=n)
    for name, v in (("low", low), ("high", high)):
        if v is not None and math.isnan(float(v)):
            raise InvalidArgumentError(f"`{name}` must not be NaN.", got=v)
    if low is not None and high is not None and float(low) > float(high):
        raise InvalidArgumentError(
            f"`low` must not exceed `high`, got {low!r} > {high!r}.", got=(low, high)
        )

    def na(reason: str) -> OutlierShareResult:
        warnings.warn(
            f"outlier share not applicable: {reason}", DegenerateDataWarning, stacklevel=3
        )
        return OutlierShareResult(
            None, None, None, n, None, None, low, high, applicable=False, reason=reason
        )

    if low is None or high is None:
        return na("no fences (the outlier rule is not applicable)")
    lo_f, hi_f = float(low), float(high)
    if min_value is not None and lo_f <= float(min_value):
        share_low, err_low = 0.0, 0.0
    else:
        r = rank(float(np.nextafter(lo_f, -np.inf)))
        if r is None:
            return na("the sketch is empty")
        share_low, err_low = float(r), eps
    if max_value is not None and hi_f >= float(max_value):
        share_high, err_high = 0.0, 0.0
    else:
        r = rank(hi_f)
        if r is None:
            return na("the sketch is empty")
        share_high, err_high = 1.0 - float(r), eps
    share_low = min(max(share_low, 0.0), 1.0)
    share_high = min(max(share_high, 0.0), 1.0)
    return OutlierShareResult(
        share_low,
        share_high,
        max(err_low, err_high),
        n,
        round(share_low * n),
        round(share_high * n),
        lo_f,
        hi_f,
        approximate=max(err_low, err_high) > 0,
    )


def mad_from_rank(
    rank: RankFunction,
    median: float,
    min_value: float,
    max_value: float,
    rank_error: float,
) -> tuple[float, float]:
    """The median absolute deviation from a quantile sketch's rank function.

    Parameters
    ----------
    rank : callable
        Inclusive rank function ``rank(x)`` (share of values ``<= x``) of the sketch.
    median : float
        The median the deviations are taken from (e.g. the sketch's 0.5 quantile).
    min_value, max_value : float
        The column's exact extremes, which bracket the search.
    rank_error : float
        The sketch's rank error ``eps``.

    Returns
    -------
    mad : float
        The smallest ``d >= 0`` (to float precision) with
        ``share(|x - median| <= d) >= 1/2`` by the sketch.
    bound : float
        ``2 * eps``: the true share of ``|x - median| <= mad`` lies within ``bound`` of
        1/2 (up to the discreteness of the data).

    Raises
    ------
    InvalidArgumentError
        Non-finite inputs, ``min_value > max_value``, a median outside
        ``[min_value, max_value]``, or ``rank_error`` outside [0, 1]; the rank function
        returning None (empty sketch).

    Notes
    -----
    Why a sketch of x suffices: ``|x - m| <= d`` exactly when ``m - d <= x <= m + d``, so
    ``G(d) = share(|x - m| <= d) = rank(m + d) - rank(nextafter(m - d, -inf))``, a
    non-decreasing function of ``d`` built from two rank queries. The MAD [3]_ is the
    inclusive median of ``|x - m|``, the smallest ``d`` with ``G(d) >= 1/2``, found by
    bisection on ``[0, max(m - min, max - m)]``, where ``G`` reaches 1.

    Error: each rank query is within ``eps`` of the truth (simultaneously for all queries,
    with the sketch's stated probability [7]_), so the sketched ``G`` is within ``2 eps`` of
    the true one and the returned value is a ``1/2 ± 2 eps`` quantile of ``|x - m|``. If
    ``m`` is itself a sketch median with error ``delta = |m - true median|``, the
    deviations from ``m`` and from the true median differ by at most ``delta`` each (the
    triangle inequality), so the MAD moves by at most ``delta`` in value. For exact ranks
    the result is the lower median of the deviations (``numpy.median`` averages the two
    middle ones for an even count).

    References
    ----------
    .. [3] F. R. Hampel, "The influence curve and its role in robust estimation",
       Journal of the American Statistical Association 69(346), 1974, pp. 383-393.
    .. [7] Z. Karnin, K. Lang and E. Liberty, "Optimal quantile approximation in
       streams", Proc. IEEE FOCS 2016, pp. 71-78.
    """
    eps = _rank_error(rank_error)
    m = _finite_arg("median", median)
    lo_x, hi_x = _finite_arg("min_value", min_value), _finite_arg("max_value", max_value)
    if not lo_x <= m <= hi_x:
        raise InvalidArgumentError(
            f"`median` must lie in [min_value, max_value], got {m!r} outside [{lo_x!r}, {hi_x!r}].",
            got=m,
        )

    def share_within(d: float) -> float:
        upper = rank(m + d)
        lower = rank(float(np.nextafter(m - d, -np.inf)))
        if upper is None or lower is None:
            raise InvalidArgumentError("the rank function returned None (empty sketch).")
        return float(upper) - float(lower)

    if share_within(0.0) >= 0.5:
        return 0.0, 2.0 * eps
    lo, hi = 0.0, max(m - lo_x, hi_x - m)
    for _ in range(200):
        mid = lo + (hi - lo) / 2.0
        if mid <= lo or mid >= hi:
            break
        if share_within(mid) >= 0.5:
            hi = mid
        else:
            lo = mid
    return hi, 2.0 * eps


def mahalanobis_outliers(
    sample: Any, mean: Any, cov: Any, alpha: float = 0.001
) -> MahalanobisResult:
    """Sample rows whose squared Mahalanobis distance exceeds the chi-square cut-off.

    Parameters
    ----------
    sample : array_like, shape (m, p)
        Sampled rows of the p numeric columns; rows with a non-finite value are left out.
    mean : array_like, shape (p,)
        The table's exact mean vector.
    cov : array_like, shape (p, p)
        The table's exact covariance matrix (e.g. co-moments / (n - 1)).
    alpha : float
        Tail probability of the cut-off ``chi2.ppf(1 - alpha, df)``.

    Returns
    -------
    MahalanobisResult
        Unpacks as ``(indices, distances, cutoff)``. Not applicable when no complete row
        remains, when every column is constant, or when ``cov`` is not positive
        semi-definite.

    Raises
    ------
    InvalidArgumentError
        Mismatched shapes, non-finite ``mean``/``cov``, an asymmetric ``cov``, or
        ``alpha`` outside (0, 1).

    Warns
    -----
    DegenerateDataWarning
        A singular covariance (collinear or constant columns): distances then use the
        pseudo-inverse, i.e. are measured in the ``r``-dimensional subspace the data span,
        and the cut-off has ``df = r`` (recorded in ``warnings``). Also with a
        not-applicable result.

    Notes
    -----
    ``D²_i = (x_i - mean)ᵀ cov⁻¹ (x_i - mean)`` [4]_. If the rows are multivariate normal
    with this mean and covariance, ``D²`` is chi-square with ``p`` degrees of freedom, so
    about ``alpha`` of the rows are flagged by chance. Outliers inflate the classical
    mean and covariance and can mask one another; robust estimates (e.g. the minimum
    covariance determinant [5]_) avoid that but need the data, not aggregates.

    Single-pass design: mean and covariance are exact aggregates of the whole table (so
    ``D²`` is not deflated by estimating them from the sample), and the rows scored are
    the uniform sample's, so ``share`` estimates the table's share of flagged rows. A
    covariance of pairwise-complete co-moments (columns with nulls) need not be positive
    semi-definite; it is then refused.

    References
    ----------
    .. [4] P. C. Mahalanobis, "On the generalised distance in statistics", Proceedings
       of the National Institute of Sciences of India 2(1), 1936, pp. 49-55.
    .. [5] P. J. Rousseeuw and B. C. van Zomeren, "Unmasking multivariate outliers and
       leverage points", Journal of the American Statistical Association 85(411),
       1990, pp. 633-639.
    """
    x = np.asarray(sample, dtype=np.float64)
    mu = np.asarray(mean, dtype=np.float64)
    sigma = np.asarray(cov, dtype=np.float64)
    if x.ndim != 2 or mu.ndim != 1 or sigma.shape != (mu.size, mu.size) or x.shape[1] != mu.size:
        raise InvalidArgumentError(
            "`sample` must be (m, p), `mean` (p,) and `cov` (p, p); got "
            f"{x.shape}, {mu.shape} and {sigma.shape}.",
            got=(x.shape, mu.shape, sigma.shape),
        )
    if not (0.0 < alpha < 1.0):
        raise InvalidArgumentError(f"`alpha` must lie in (0, 1), got {alpha!r}.", got=alpha)
    if not (np.all(np.isfinite(mu)) and np.all(np.isfinite(sigma))):
        raise InvalidArgumentError("`mean` and `cov` must be finite.")
    if not np.allclose(sigma, sigma.T, rtol=1e-10, atol=0.0):
        raise InvalidArgumentError("`cov` must be symmetric.")
    complete = np.all(np.isfinite(x), axis=1)
    rows = np.flatnonzero(complete)
    distances = np.full(x.shape[0], np.nan)
    m, dropped = int(rows.size), int(x.shape[0] - rows.size)

    def na(reason: str) -> MahalanobisResult:
        warnings.warn(
            f"Mahalanobis outliers not applicable: {reason}", DegenerateDataWarning, stacklevel=3
        )
        return MahalanobisResult(
            (),
            distances,
            None,
            None,
            float(alpha),
            m,
            dropped,
            None,
            applicable=False,
            reason=reason,
        )

    if m == 0:
        return na("no complete rows in the sample")
    if mu.size == 0:
        return na("no columns")
    # eigen-decomposition: rank, definiteness and the (pseudo-)inverse in one step
    w, v = np.linalg.eigh((sigma + sigma.T) / 2.0)
    tol = (
        max(float(np.abs(w).max()), np.finfo(np.float64).tiny)
        * mu.size
        * np.finfo(np.float64).eps
        * 10
    )
    if w.min() < -tol:
        return na(
            f"the covariance matrix is not positive semi-definite (smallest eigenvalue "
            f"{w.min():.3g}), as pairwise-complete covariances can be"
        )
    support = w > tol
    r = int(support.sum())
    if r == 0:
        return na("every column is constant (zero covariance)")
    notes: tuple[str, ...] = ()
    if r < mu.size:
        notes = (
            f"the covariance matrix is singular (rank {r} of {mu.size}): collinear or "
            f"constant columns; distances use the pseudo-inverse and df = {r}",
        )
        warnings.warn(f"Mahalanobis outliers: {notes[0]}", DegenerateDataWarning, stacklevel=2)
    # D^2 = sum over the support of ((x - mu) . v_j)^2 / w_j
    proj = (x[rows] - mu) @ v[:, support] / np.sqrt(w[support])
    d2 = np.einsum("ij,ij->i", proj, proj)
    distances[rows] = d2
    cutoff = float(stats.chi2.ppf(1.0 - alpha, r))
    flagged = rows[d2 > cutoff]
    flagged = flagged[np.argsort(-distances[flagged], kind="stable")]
    return MahalanobisResult(
        tuple(int(i) for i in flagged),
        distances,
        cutoff,
        r,
        float(alpha),
        m,
        dropped,
        float(flagged.size / m),
        warnings=notes,
    )


def _fences_na(
    rule: str, reason: str, params: dict[str, Any], method: str, ref: str
) -> FencesResult:
    warnings.warn(f"{rule} fences not applicable: {reason}", DegenerateDataWarning, stacklevel=3)
    return FencesResult(
        rule, None, None, params, method=method, reference=ref, applicable=False, reason=reason
    )


def _optional_rank_error(value: float | None) -> float | None:
    return None if value is None else _rank_error(value)


def _rank_error(value: float) -> float:
    eps = float(value)
    if not 0.0 <= eps <= 1.0:
        raise InvalidArgumentError(
            f"`rank_error` must lie in [0, 1], got {value!r}.", expected="[0, 1]", got=value
        )
    return eps


def _positive(name: str, value: float) -> float:
    v = float(value)
    if not (math.isfinite(v) and v > 0):
        raise InvalidArgumentError(f"`{name}` must be a positive number, got {value!r}.", got=value)
    return v


def _finite_arg(name: str, value: Any) -> float:
    v = float(value)
    if not math.isfinite(v):
        raise InvalidArgumentError(f"`{name}` must be finite, got {value!r}.", got=value)
    return v


def _to_dict(result: Any) -> dict[str, Any]:
    data = {f: getattr(result, f) for f in result.__dataclass_fields__}
    data["warnings"] = list(data["warnings"])
    if "parameters" in data:
        data["parameters"] = dict(data["parameters"])
    out: dict[str, Any] = _finite(data)
    return out
