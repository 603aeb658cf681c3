"""Pure formulas for batch moments and their pairwise merge.

Everything the exactness of the profile rests on is here, next to its source, so that it can
be read against the papers:

[1] T. F. Chan, G. H. Golub and R. J. LeVeque, "Algorithms for computing the sample
    variance: analysis and recommendations", The American Statistician 37(3), 1983,
    pp. 242-247. Pairwise update of the mean and M2 (their eq. 2.1), and the corrected
    two-pass algorithm (their eq. 1.7).
[2] P. Pébay, "Formulas for robust, one-pass parallel computation of covariances and
    arbitrary-order statistical moments", Sandia Report SAND2008-6212, 2008. Pairwise
    updates of M3 and M4 (eqs. 2.1-2.3 and 3.1) and of co-moments (eq. 3.1 with p = q = 1).
[3] T. J. Dekker, "A floating-point technique for extending the available precision",
    Numerische Mathematik 18, 1971, pp. 224-242; D. E. Knuth, TAOCP vol. 2, 4.2.2.
    Error-free sums (TwoSum) used to carry the mean in double-double precision.

Each batch is reduced with the corrected two-pass algorithm [1], so within a batch the
deviations are taken from an accurate mean. Between batches the pairwise formulas [1, 2]
combine states. The mean is carried as an unevaluated sum ``mean + mean_lo`` [3]: without it
the rounding of the running mean at every merge leaks into M2, which costs one to two
significant digits of the standard deviation on data such as NIST's Mavro and Michelso
whatever the split of the rows.

All functions are vectorised over columns: arrays of shape ``(k,)`` hold one value per
column, and batch matrices have shape ``(rows, k)``.

Overflow: the mean of finite values is always representable (it lies between their extremes),
so a sum that overflows float64 is taken again over the values scaled by a power of two, and
two means too far apart for their difference are averaged with weights instead. The central
sums M2..M4 of values near the float64 limits (say 1e308) are not representable: they become
``inf`` (M3 ``nan`` when its terms of both signs overflow), which the readers of the states
report as undefined; such overflows raise no floating-point warnings.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

Array = np.ndarray


class Moments(NamedTuple):
    """Count, mean (as ``mean + mean_lo``) and central sums M2..M4, one entry per column."""

    n: Array
    mean: Array
    mean_lo: Array
    m2: Array
    m3: Array
    m4: Array

    @classmethod
    def zeros(cls, k: int) -> Moments:
        z = np.zeros(k, dtype=np.float64)
        return cls(z.copy(), z.copy(), z.copy(), z.copy(), z.copy(), z.copy())


def two_sum(a: Array, b: Array) -> tuple[Array, Array]:
    """Return ``s, e`` with ``s = fl(a + b)`` and ``a + b = s + e`` exactly [3]."""
    s = a + b
    bb = s - a
    e = (a - (s - bb)) + (b - bb)
    return s, e


def batch_moments(
    values: Array,
    finite: Array | None,
    extremes: tuple[Array, Array] | None = None,
    skipped: tuple[Array, Array] | None = None,
) -> Moments:
    """Moments of each column of a batch over its finite entries.

    Parameters
    ----------
    values
        ``(rows, k)`` float64 matrix; Fortran order makes the column sums pairwise.
    finite
        Boolean matrix of the same shape, True where a value counts; None when
        ``skipped`` is given and the entries that count are the finite ones.
    extremes
        The columns' finite minima and maxima, if the caller has them
        (:func:`finite_extremes`).
    skipped
        Row and column indices of the entries that do not count, in any order, if the
        caller has them (:func:`skipped_entries` of ``finite``).

    Notes
    -----
    Corrected two-pass algorithm [1, eq. 1.7]: a first mean, then the residuals' mean as a
    correction, then the central sums of the corrected residuals. The residuals are formed
    once in a copy of the batch and updated in place, as the batch matrix dominates the
    cost. Instead of being masked on every pass, the skipped entries are overwritten with
    zero while the values are summed and then with the signed zero masking would leave,
    so every sum is bit for bit that of the masked residuals.
    """
    rows, k = values.shape
    row, col = skipped_entries(finite) if skipped is None else skipped
    n = (rows - np.bincount(col, minlength=k)).astype(np.float64)
    safe_n = np.where(n > 0, n, 1.0)
    d = np.array(values, dtype=np.float64, order="K")
    if extremes is None:
        extremes = finite_extremes(values, finite, _masked(d, row, col, k))
    d[row, col] = 0.0
    mean = _constant_or_mean(_means(d, safe_n), extremes)
    with np.errstate(over="ignore", invalid="ignore"):
        d -= mean
        gone = (0.0 - mean) * 0.0  # a skipped entry's masked residual
        d[row, col] = gone[col]
        mean_lo = _correction(_means(d, safe_n))
        d -= mean_lo
        d[row, col] = ((gone - mean_lo) * 0.0)[col]
        d2 = d * d
        m2 = d2.sum(axis=0)
        d *= d2
        m3 = d.sum(axis=0)
        d2 *= d2
        m4 = d2.sum(axis=0)
    mean, mean_lo = two_sum(mean, mean_lo)
    return Moments(n, mean, mean_lo, m2, m3, m4)


def skipped_entries(finite: Array) -> tuple[Array, Array]:
    """Row and column indices where a ``(rows, k)`` mask is False, column by column."""
    rows = finite.shape[0]
    found = [
        (np.flatnonzero(~column), j)
        for j, column in enumerate(finite.T)
        if np.count_nonzero(column) < rows
    ]
    if not found:
        return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp)
    return (
        np.concatenate([row for row, _ in found]),
        np.concatenate([np.full(len(row), j, dtype=np.intp) for row, j in found]),
    )


def _masked(values: Array, row: Array, col: Array, k: int) -> Array:
    """The columns where some skipped entry is not NaN (the ``masked`` of
    :func:`finite_extremes`)."""
    nan = np.isnan(values[row, col])
    return np.bincount(col, minlength=k) != np.bincount(col[nan], minlength=k)


def _means(d: Array, safe_n: Array, starts: Array | None = None) -> Array:
    """Column sums of ``d`` (per segment when ``starts`` is given) divided by ``safe_n``.

    A sum that overflows float64 is taken again over ``d`` scaled by a power of two small
    enough that no partial sum can overflow, and scaled back after the division: the
    scaling is exact for every value but those it makes subnormal, whose loss is far below
    the rounding of a sum of values near the float64 limit. Entries of ``d`` that are
    themselves infinite still give a non-finite result.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        sums = d.sum(axis=0) if starts is None else np.add.reduceat(d, starts, axis=0)
        means = sums / safe_n
        bad = ~np.isfinite(sums)
        if bad.any():
            cols = np.flatnonzero(bad if bad.ndim == 1 else bad.any(axis=0))
            shift = math.ceil(math.log2(max(d.shape[0], 1))) + 1
            part = np.ldexp(d[:, cols], -shift)
            scaled = part.sum(axis=0) if starts is None else np.add.reduceat(part, starts, axis=0)
            again = np.ldexp(scaled / safe_n[..., cols], shift)
            means[..., cols] = np.where(bad[..., cols], again, means[..., cols])
    return means


def _correction(mean_lo: Array) -> Array:
    """The second pass's correction of the mean, 0 where the residuals overflow float64
    (values at both ends of the float64 range, whose M2 overflows too): the first mean
    stands there."""
    return np.where(np.isfinite(mean_lo), mean_lo, 0.0)


def segment_moments(values: Array, finite: Array, starts: Array) -> Moments:
    """Moments of each column within each run of rows, all runs reduced together.

    Parameters
    ----------
    values, finite
        As in :func:`batch_moments`, with the rows of each segment contiguous.
    starts
        Increasing first row of each segment, ``starts[0] == 0``; a segment ends where the
        next begins. Every segment must hold at least one row.

    Returns
    -------
    Moments
        Arrays of shape ``(len(starts), k)``: row ``i`` is what :func:`batch_moments` gives
        for segment ``i`` alone, up to rounding.

    Notes
    -----
    The corrected two-pass algorithm of :func:`batch_moments` with every sum taken per
    segment by ``np.add.reduceat``, which sums each column's runs pairwise like
    ``sum(axis=0)`` does; a batch is then reduced in the same number of passes whatever
    its number of segments.
    """
    sizes, n, mean, d = _segment_residuals(values, finite, starts)
    safe_n = np.where(n > 0, n, 1.0)
    mean_lo = _correction(_means(d, safe_n, starts))
    with np.errstate(over="ignore", invalid="ignore"):
        d -= spread_rows(mean_lo, sizes)
        d *= finite
        m2, m3, m4 = _segment_power_sums(d, d * d, starts)
    mean, mean_lo = two_sum(mean, mean_lo)
    return Moments(n, mean, mean_lo, m2, m3, m4)


#: Up to this many segments, per-segment values are subtracted segment by segment from
#: slices of the batch instead of being repeated into a batch-sized array first.
_SLICED_SEGMENTS = 16


def segment_moments_in_place(
    values: Array, skipped: tuple[Array, Array], starts: Array, sizes: Array
) -> Moments:
    """:func:`segment_moments` of a batch whose entries that do not count are listed.

    Parameters
    ----------
    values
        ``(rows, k)`` Fortran-ordered float64 matrix with the rows of each segment
        contiguous; it is overwritten.
    skipped
        Row and column indices of the entries that do not count (null, NaN, infinities),
        in any order.
    starts, sizes
        First row and number of rows of each segment, in order; each holds a row.

    Returns
    -------
    Moments
        Arrays of shape ``(len(starts), k)``, bit for bit what :func:`segment_moments`
        gives for ``finite`` False exactly at ``skipped``.

    Notes
    -----
    The corrected two-pass algorithm of :func:`segment_moments` [1, eq. 1.7], with the
    same sums in the same order, without that function's batch-sized temporaries: instead
    of being masked on every pass, the skipped entries are overwritten with NaN while the
    extremes are taken, with zero while the values are summed, and then with their
    segment's mean, which makes their residuals exactly zero.
    """
    if not values.flags.f_contiguous:
        raise ValueError("`values` must be a Fortran-ordered matrix")
    rows, k = values.shape
    row, col = skipped
    flat = values.reshape(-1, order="F")  # a view, written through
    at = col * rows + row
    n = np.repeat(sizes.astype(np.float64)[:, None], k, axis=1)
    cell = (np.searchsorted(starts, row, side="right") - 1) * k + col
    if len(cell):
        n -= np.bincount(cell, minlength=n.size).reshape(n.shape)
    safe_n = np.where(n > 0, n, 1.0)
    flat[at] = np.nan
    low = np.fmin.reduceat(values, starts, axis=0)
    high = np.fmax.reduceat(values, starts, axis=0)
    flat[at] = 0.0
    mean = _constant_or_mean(_means(values, safe_n, starts), (low, high))
    flat[at] = mean.ravel()[cell]
    d = np.empty_like(values, order="F")
    with np.errstate(over="ignore", invalid="ignore"):
        _subtract_segments(values, mean, starts, sizes, d)
        mean_lo = _correction(_means(d, safe_n, starts))
        _subtract_segments(d, mean_lo, starts, sizes, d)
        d.reshape(-1, order="F")[at] = 0.0
        m2, m3, m4 = _segment_power_sums(d, np.multiply(d, d, out=values), starts)
    mean, mean_lo = two_sum(mean, mean_lo)
    return Moments(n, mean, mean_lo, m2, m3, m4)


def _segment_power_sums(d: Array, d2: Array, starts: Array) -> tuple[Array, Array, Array]:
    """Per-segment sums of the residuals ``d`` squared, cubed and to the fourth, given
    ``d2 = d * d``; both are overwritten."""
    m2 = np.add.reduceat(d2, starts, axis=0)
    d *= d2
    m3 = np.add.reduceat(d, starts, axis=0)
    d2 *= d2
    m4 = np.add.reduceat(d2, starts, axis=0)
    return m2, m3, m4


def _subtract_segments(
    a: Array, per_segment: Array, starts: Array, sizes: Array, out: Array
) -> None:
    """``out = a - per_segment`` with each row of ``per_segment`` repeated over its segment."""
    if len(starts) <= _SLICED_SEGMENTS:
        for i, (lo, hi) in enumerate(zip(starts.tolist(), (starts + sizes).tolist())):
            np.subtract(a[lo:hi], per_segment[i], out=out[lo:hi])
    else:
        np.subtract(a, spread_rows(per_segment, sizes), out=out)


def _segment_residuals(
    values: Array, finite: Array, starts: Array
) -> tuple[Array, Array, Array, Array]:
    """First pass over the segments of a batch: each segment's size, each column's finite
    count and finite mean (the exact value where it is constant) per segment, and the
    residuals from those means, zero where ``finite`` does not hold."""
    sizes = np.diff(np.append(starts, values.shape[0]))
    n = np.add.reduceat(finite, starts, axis=0, dtype=np.float64)
    d = np.where(finite, values, 0.0)
    extremes = segment_extremes(values, finite, starts)
    mean = _constant_or_mean(_means(d, np.where(n > 0, n, 1.0), starts), extremes)
    with np.errstate(over="ignore", invalid="ignore"):
        d -= spread_rows(mean, sizes)
        d *= finite
    return sizes, n, mean, d


def segment_extremes(values: Array, finite: Array, starts: Array) -> tuple[Array, Array]:
    """Each segment's smallest and largest value per column where ``finite`` holds (+inf
    and -inf where it holds nowhere), shape ``(segments, k)``.

    ``fmin`` and ``fmax`` skip NaN by themselves; only the columns where ``finite`` also
    leaves out other entries (infinities, masked numbers) are reduced again, over the
    entries it keeps.
    """
    low = np.fmin.reduceat(values, starts, axis=0)
    high = np.fmax.reduceat(values, starts, axis=0)
    empty = np.isnan(low)  # all NaN
    low[empty], high[empty] = np.inf, -np.inf
    cols = np.flatnonzero(np.any(~finite & ~np.isnan(values), axis=0))
    if len(cols):
        kept = finite[:, cols]
        low[:, cols] = np.minimum.reduceat(np.where(kept, values[:, cols], np.inf), starts)
        high[:, cols] = np.maximum.reduceat(np.where(kept, values[:, cols], -np.inf), starts)
    return low, high


def gather_rows(matrix: Array, order: Array, out: Array | None = None) -> Array:
    """The rows ``order`` of a ``(rows, k)`` matrix, Fortran-ordered (into ``out`` if given).

    Column by column with ``np.take(mode="wrap")``: the default mode buffers its output,
    and fancy indexing of the whole matrix gathers row-major; both cost about a third more.
    ``order`` must lie in range (the mode only spares the bounds check).
    """
    if out is None:
        out = np.empty((len(order), matrix.shape[1]), dtype=matrix.dtype, order="F")
    for j in range(matrix.shape[1]):
        np.take(matrix[:, j], order, out=out[:, j], mode="wrap")
    return out


def spread_rows(per_segment: Array, sizes: Array) -> Array:
    """A ``(segments, k)`` array repeated row-wise ``sizes`` times, Fortran-ordered."""
    return np.repeat(per_segment.T, sizes, axis=1).T


def finite_extremes(
    values: Array, finite: Array | None, masked: Array | None = None
) -> tuple[Array, Array]:
    """Each column's smallest and largest value where ``finite`` holds (+inf and -inf where
    it holds nowhere); ``finite`` None stands for ``np.isfinite(values)``.

    ``masked`` marks the columns whose non-finite entries are not all NaN (infinities, or
    numbers the mask leaves out), if the caller knows them; they are reduced over the
    masked entries, the others by ``fmin`` and ``fmax``, which skip NaN by themselves.
    Without a mask, a column holding an infinity has an infinite ``fmin`` or ``fmax``,
    so no count is needed to find it.
    """
    low = np.fmin.reduce(values, axis=0, initial=np.inf)
    high = np.fmax.reduce(values, axis=0, initial=-np.inf)
    if masked is None:
        if finite is None:
            masked = np.zeros(values.shape[1], dtype=bool)
        else:
            rows = values.shape[0]
            masked = np.count_nonzero(finite, axis=0) != rows - np.count_nonzero(
                np.isnan(values), axis=0
            )
    masked = masked | np.isinf(low) | np.isinf(high)
    if masked.any():
        cols = np.flatnonzero(masked)
        part = values[:, cols]
        kept = np.isfinite(part) if finite is None else finite[:, cols]
        low[cols] = np.where(kept, part, np.inf).min(axis=0)
        high[cols] = np.where(kept, part, -np.inf).max(axis=0)
    return low, high


def _constant_or_mean(mean: Array, extremes: tuple[Array, Array]) -> Array:
    """The mean, or exactly the common value where a column is constant in the batch.

    Rounding makes the computed mean of identical values differ from them in the last bit;
    using the value itself keeps M2 of a constant column exactly zero, so spread-based
    statistics of constant columns are recognised as undefined instead of tiny.
    """
    low, high = extremes
    return np.where(low == high, low, mean)


def merge_moments(a: Moments, b: Moments) -> Moments:
    """Pairwise merge of two moment sets [1, eq. 2.1], [2, eqs. 2.1-2.3].

    Associative and commutative up to rounding; entries where one side is empty return
    the other side unchanged. Where the two means are too far apart for their difference
    to be a float64, the mean is their weighted average and M2, M4 are ``inf`` (their true
    values exceed delta**2 / 2, which overflows), M3 ``nan``.
    """
    na, nb = a.n, b.n
    n = na + nb
    safe_n = np.where(n > 0, n, 1.0)
    with np.errstate(over="ignore", invalid="ignore"):
        # delta = mean_b - mean_a, formed from both double-double means [3]
        hi, lo = two_sum(b.mean, -a.mean)
        delta = hi + (lo + (b.mean_lo - a.mean_lo))
        delta_n = delta / safe_n
        # mean = mean_a + delta * nb / n, accumulated in double-double
        mean, err = two_sum(a.mean, delta_n * nb)
        mean, mean_lo = two_sum(mean, err + a.mean_lo)
        term = delta * delta_n * na * nb
        m2 = a.m2 + b.m2 + term
        m3 = a.m3 + b.m3 + term * delta_n * (na - nb) + 3.0 * delta_n * (na * b.m2 - nb * a.m2)
        m4 = (
            a.m4
            + b.m4
            + term * delta_n * delta_n * (na * na - na * nb + nb * nb)
            + 6.0 * delta_n * delta_n * (na * na * b.m2 + nb * nb * a.m2)
            + 4.0 * delta_n * (na * b.m3 - nb * a.m3)
        )
        far = ~np.isfinite(delta) & np.isfinite(a.mean) & np.isfinite(b.mean)
        if far.any():
            mean = np.where(far, a.mean * (na / safe_n) + b.mean * (nb / safe_n), mean)
            mean_lo = np.where(far, 0.0, mean_lo)
            m2, m3, m4 = (
                np.where(far, v, m) for v, m in ((np.inf, m2), (np.nan, m3), (np.inf, m4))
            )
    merged = Moments(n, mean, mean_lo, m2, m3, m4)
    only_a, only_b = nb == 0, na == 0
    return Moments(*(np.where(only_b, y, np.where(only_a, x, z)) for x, y, z in zip(a, b, merged)))


class CoMoments(NamedTuple):
    """Pairwise-complete co-moments of k columns, each entry over rows where both are finite.

    ``n[i, j]`` rows; ``mean[i, j] + mean_lo[i, j]`` and ``m2[i, j]`` are the mean and M2 of
    column i over those rows (so ``mean[j, i]`` is column j's); ``c[i, j]`` is the co-moment
    sum((x_i - mean_i)(x_j - mean_j)). The mean is double-double, as in :class:`Moments`.
    """

    n: Array
    mean: Array
    m2: Array
    c: Array
    mean_lo: Array

    @classmethod
    def zeros(cls, k: int) -> CoMoments:
        z = np.zeros((k, k), dtype=np.float64)
        return cls(z.copy(), z.copy(), z.copy(), z.copy(), z.copy())


def batch_comoments(
    values: Array,
    finite: Array | None,
    skipped: tuple[Array, Array] | None = None,
    extremes: tuple[Array, Array] | None = None,
) -> CoMoments:
    """Pairwise-complete co-moments of a batch.

    Columns are first shifted by their own finite mean, so the one-pass expressions below
    only cancel the small differences between a column's mean and its pairwise mean
    (shifted-data algorithm, [1] section 3).

    ``finite``, ``skipped`` and ``extremes`` are as in :func:`batch_moments`. As there, the skipped
    entries of the shifted copy are overwritten instead of masked, with the signed zero
    masking would leave, so the matrix products see bit for bit the masked residuals. The
    pair counts are integers, exact in any order of summation: they are taken over the
    rows that skip some entry only.
    """
    rows, k = values.shape
    if k == 0:
        return CoMoments.zeros(0)
    row, col = skipped_entries(finite) if skipped is None else skipped
    n_col = (rows - np.bincount(col, minlength=k)).astype(np.float64)
    d = np.array(values, dtype=np.float64, order="K")
    if extremes is None:
        extremes = finite_extremes(values, finite, _masked(d, row, col, k))
    d[row, col] = 0.0
    shift = _constant_or_mean(_means(d, np.where(n_col > 0, n_col, 1.0)), extremes)
    with np.errstate(over="ignore", invalid="ignore"):
        d -= shift
        d[row, col] = ((0.0 - shift) * 0.0)[col]
        p = d.T @ d
        if not len(row):
            s = d.sum(axis=0)
            q = (d * d).sum(axis=0)
            n = np.full((k, k), float(rows))
            s_ij = np.broadcast_to(s[:, None], (k, k))
            q_ij = np.broadcast_to(q[:, None], (k, k))
        else:
            if finite is None:
                f = np.ones_like(d)
                f[row, col] = 0.0
            else:
                f = finite.astype(np.float64)
            some = np.zeros(rows, dtype=bool)
            some[row] = True
            g = f[some]
            n = g.T @ g + float(rows - len(g))
            s_ij = d.T @ f
            q_ij = (d * d).T @ f
        return pairwise_comoments(shift, n, s_ij, q_ij, p)


def segment_comoments(values: Array, finite: Array, starts: Array) -> CoMoments:
    """Pairwise-complete co-moments of each run of rows, stacked: shape ``(segments, k, k)``.

    Parameters
    ----------
    values, finite
        As in :func:`batch_comoments`, with the rows of each segment contiguous.
    starts
        Increasing first row of each segment, ``starts[0] == 0``; every segment must hold
        at least one row.

    Notes
    -----
    Entry ``i`` is what :func:`batch_comoments` gives for segment ``i`` alone, up to
    rounding: the columns are shifted by their finite mean within each segment, the sums
    are taken for all segments at once by ``np.add.reduceat``, and each segment costs one
    matrix product. Where a column of a segment is finite on only some of its rows (an
    infinity among its values) that segment also takes the three masked products of
    :func:`batch_comoments`.
    """
    k = values.shape[1]
    sizes, n_col, shift, d = _segment_residuals(values, finite, starts)
    with np.errstate(over="ignore", invalid="ignore"):
        s = np.add.reduceat(d, starts, axis=0)
        q = np.add.reduceat(d * d, starts, axis=0)
        seen = (n_col > 0).astype(np.float64)
        n = seen[:, :, None] * seen[:, None, :] * sizes[:, None, None].astype(np.float64)
        s_ij = s[:, :, None] * seen[:, None, :]
        q_ij = q[:, :, None] * seen[:, None, :]
        p = np.empty((len(starts), k, k))
        partial = ((n_col > 0) & (n_col < sizes[:, None])).any(axis=1)
        for i, (lo, hi) in enumerate(zip(starts.tolist(), (starts + sizes).tolist())):
            part = d[lo:hi]
            p[i] = part.T @ part
            if partial[i]:
                f = finite[lo:hi].astype(np.float64)
                n[i], s_ij[i], q_ij[i] = f.T @ f, part.T @ f, (part * part).T @ f
        return pairwise_comoments(shift, n, s_ij, q_ij, p)


def pairwise_comoments(shift: Array, n: Array, s_ij: Array, q_ij: Array, p: Array) -> CoMoments:
    """Co-moments from sums over each pair's rows of data shifted by ``shift`` (per column):
    counts ``n``, sums ``s_ij`` and squares ``q_ij`` of column i, and cross products ``p``.
    Arrays are ``(..., k, k)``, ``shift`` is ``(..., k)``."""
    safe_n = np.where(n > 0, n, 1.0)
    # pairwise mean = shift + s_ij / n, kept as a double-double pair [3]; the shift alone
    # where the residuals' sum overflows (then so does M2, and the pair is not usable)
    mean, mean_lo = two_sum(
        np.broadcast_to(shift[..., :, None], n.shape),
        _correction(np.where(n > 0, s_ij / safe_n, 0.0)),
    )
    m2 = np.where(n > 0, q_ij - s_ij * s_ij / safe_n, 0.0)
    c = np.where(n > 0, p - s_ij * np.swapaxes(s_ij, -1, -2) / safe_n, 0.0)
    empty = n == 0
    return CoMoments(n, np.where(empty, 0.0, mean), m2, c, np.where(empty, 0.0, mean_lo))


def merge_comoments(a: CoMoments, b: CoMoments) -> CoMoments:
    """Pairwise merge of co-moment matrices [2, eq. 3.1]; empty entries pass through.

    The arrays may be stacks of matrices, shape ``(..., k, k)``, merged entry by entry.

    The means are double-double, as in :func:`merge_moments`: the deltas then carry the
    full precision of the data even for columns such as 0.9999999 + i * 1e-8.
    """
    n = a.n + b.n
    safe_n = np.where(n > 0, n, 1.0)
    with np.errstate(over="ignore", invalid="ignore"):
        hi, lo = two_sum(b.mean, -a.mean)
        delta = hi + (lo + (b.mean_lo - a.mean_lo))
        weight = a.n * b.n / safe_n
        mean, err = two_sum(a.mean, delta * b.n / safe_n)
        mean, mean_lo = two_sum(mean, err + a.mean_lo)
        m2 = a.m2 + b.m2 + delta * delta * weight
        c = a.c + b.c + delta * np.swapaxes(delta, -1, -2) * weight
        far = ~np.isfinite(delta) & np.isfinite(a.mean) & np.isfinite(b.mean)
        if far.any():  # as in merge_moments: a weighted mean, and M2 overflows
            mean = np.where(far, a.mean * (a.n / safe_n) + b.mean * (b.n / safe_n), mean)
            mean_lo = np.where(far, 0.0, mean_lo)
            m2 = np.where(far, np.inf, m2)
            c = np.where(far | np.swapaxes(far, -1, -2), np.nan, c)
    merged = CoMoments(n, mean, m2, c, mean_lo)
    only_a, only_b = b.n == 0, a.n == 0
    return CoMoments(
        *(np.where(only_b, y, np.where(only_a, x, z)) for x, y, z in zip(a, b, merged))
    )
