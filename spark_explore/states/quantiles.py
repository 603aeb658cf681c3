"""KllState: a KLL quantile sketch of one numeric column's finite values, exact value counts
while the column holds few distinct integers."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import datasketches
import numpy as np

from spark_explore.errors import InvalidArgumentError
from spark_explore.states._codec import Fields
from spark_explore.states.base import State
from spark_explore.states.batch import Batch


class KllState(State):
    """Approximate quantiles, ranks and CDF of one column, from a KLL sketch [1]_.

    The sketch holds the column's finite values as float64 (integers, decimals, dates in
    days and timestamps in microseconds, as :meth:`Batch.floats` converts them); nulls,
    NaN and infinities are left out (:class:`~spark_explore.states.moments.MomentsState`
    counts them).

    Parameters
    ----------
    slot
        Name of the batch column this state reads.
    k
        Accuracy parameter of the sketch, 8 to 65535; 200 bounds the rank error of any
        single query by about 1.3 % (99th percentile, see :attr:`rank_error`).

    Raises
    ------
    InvalidArgumentError
        ``k`` out of range.

    Notes
    -----
    Ranks and quantiles use the *inclusive* definition: the rank of ``x`` is the share
    of values ``<= x``, and the ``p`` quantile is the smallest retained value whose
    inclusive rank is at least ``p`` (the inverse of the empirical CDF).

    While at most :attr:`exact_cap` (``2 * k``) distinct values were seen, and each batch's
    values differ from its smallest by whole numbers below ``EXACT_SPAN``, the state keeps
    each value's exact count instead of a sketch (ages, scores, counts, lengths): its
    quantiles, ranks and CDF are then exact. Counting a batch costs a fraction of sketching
    it. Past the cap, or at the first batch with a fractional difference or a wider span,
    the sketch takes over; the counts enter it through :func:`counted_sketch`, in time
    independent of how large they are.

    The sketch is the Apache DataSketches implementation [2]_, serialized in its own
    format. Its compactions draw random bits from a generator the library seeds itself, so
    two runs over the same data may keep different items; any result stays within
    :attr:`rank_error` of the exact rank with the stated probability. Merging is
    associative and commutative in that sense (same ``n``, extremes and error bound), not
    bit-for-bit; merging with the empty state is an exact identity, and while at most
    ``k`` values have been absorbed the sketch is exact whatever the split.

    References
    ----------
    .. [1] Z. Karnin, K. Lang and E. Liberty, "Optimal quantile approximation in
       streams", Proc. IEEE FOCS 2016, pp. 71-78.
    .. [2] Apache DataSketches, "KLL Sketch",
       https://datasketches.apache.org/docs/KLL/KLLSketch.html

    Examples
    --------
    >>> import pyarrow as pa
    >>> state = KllState.empty("x")
    >>> state.update(Batch(pa.record_batch({"x": [1.0, 2.0, 3.0, 4.0, None]})))
    >>> state.quantiles([0.0, 0.5, 1.0])
    [1.0, 2.0, 4.0]
    >>> state.rank(3.0)
    0.75
    """

    kind = "kll"
    version = 2  # version 1 had no exact counts

    def __init__(self, slot: str, k: int = 200) -> None:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 8 <= k <= 65535:
            raise InvalidArgumentError(
                f"`k` must be an integer from 8 to 65535, got {k!r}.", expected="8..65535", got=k
            )
        self.slot = slot
        self.k = int(k)
        self.sketch = datasketches.kll_doubles_sketch(k)
        # exact mode, while the sketch is empty: distinct finite values, sorted, and counts
        self._values = np.empty(0, dtype=np.float64)
        self._counts = np.empty(0, dtype=np.int64)

    @classmethod
    def empty(cls, slot: str, k: int = 200) -> KllState:
        """The identity element for this column and accuracy."""
        return cls(slot, k)

    @property
    def exact_cap(self) -> int:
        """Most distinct values counted exactly before the sketch takes over."""
        return 2 * self.k

    @property
    def exact(self) -> bool:
        """Whether the state still holds exact counts (its answers are then exact)."""
        return bool(self.sketch.is_empty())

    @property
    def n(self) -> int:
        """Finite values absorbed."""
        return int(self._counts.sum()) if self.exact else int(self.sketch.n)

    def update(self, batch: Batch) -> None:
        """Absorb the batch's finite values of the slot: counted when they are few distinct
        integers (see the class notes), else one vectorised sketch call."""
        if batch.num_rows == 0:
            return
        values = batch.floats(self.slot)
        finite = values[np.isfinite(values)]
        if not finite.size:
            return
        if self.exact:
            counted = integer_counts(finite, self.exact_cap)
            if counted is not None:
                self._absorb_counts(*counted)
                return
            self._to_sketch()
        self.sketch.update(np.ascontiguousarray(finite, dtype=np.float64))

    def _absorb_counts(self, values: np.ndarray, counts: np.ndarray) -> None:
        """Add exact counts (distinct sorted ``values``); hand all to the sketch past the cap."""
        if len(self._values):
            values, where = np.unique(np.concatenate([self._values, values]), return_inverse=True)
            counts = np.bincount(
                where.reshape(-1), np.concatenate([self._counts, counts]), len(values)
            ).astype(np.int64)
        self._values, self._counts = values, counts
        if len(values) > self.exact_cap:
            self._to_sketch()

    def _to_sketch(self) -> None:
        """Leave exact mode: the counted values go into the (empty) sketch."""
        if len(self._values):
            self.sketch = counted_sketch(self._values, self._counts, self.k)
        self._values = np.empty(0, dtype=np.float64)
        self._counts = np.empty(0, dtype=np.int64)

    def _exact_ranks(self, points: np.ndarray) -> np.ndarray:
        """Exact inclusive ranks (share of values ``<= point``) in exact mode."""
        below = np.concatenate([[0], np.cumsum(self._counts)])
        return below[np.searchsorted(self._values, points, side="right")] / self.n

    @property
    def rank_error(self) -> float:
        """Bound on the normalized rank error of a single rank or quantile query.

        The library's ``normalized_rank_error(False)``: the 99th percentile of the maximum
        error over all ranks, measured empirically for this ``k`` [2]_.
        """
        return float(self.sketch.normalized_rank_error(False))

    @property
    def min(self) -> float | None:
        """Smallest finite value absorbed (exact), or None when empty."""
        if self.exact:
            return float(self._values[0]) if len(self._values) else None
        return float(self.sketch.get_min_value())

    @property
    def max(self) -> float | None:
        """Largest finite value absorbed (exact), or None when empty."""
        if self.exact:
            return float(self._values[-1]) if len(self._values) else None
        return float(self.sketch.get_max_value())

    def quantiles(self, probs: Sequence[float]) -> list[float | None]:
        """Approximate quantiles at the probabilities ``probs``.

        Parameters
        ----------
        probs
            Probabilities in [0, 1], in any order.

        Returns
        -------
        list of float or None
            One quantile per probability (0 gives the exact minimum and 1 the exact
            maximum), all None when the state is empty. Each is a value whose true rank is within
            :attr:`rank_error` of its probability.

        Raises
        ------
        InvalidArgumentError
            A probability outside [0, 1] or NaN.
        """
        p = [float(x) for x in probs]
        if any(not 0.0 <= x <= 1.0 for x in p):
            raise InvalidArgumentError(
                f"`probs` must lie in [0, 1], got {p!r}.", expected="[0, 1]", got=p
            )
        if self.n == 0:
            return [None] * len(p)
        if self.exact:  # the smallest value whose inclusive rank reaches p
            ranks = np.cumsum(self._counts) / self.n
            at = np.minimum(np.searchsorted(ranks, p, side="left"), len(ranks) - 1)
            return [float(v) for v in self._values[at]]
        quantiles = [float(q) for q in self.sketch.get_quantiles(p, True)]
        # the extremes are tracked exactly, while the sketch may have compacted them away
        ends = {0.0: self.min, 1.0: self.max}
        return [ends.get(x, q) for x, q in zip(p, quantiles)]

    def rank(self, value: float) -> float | None:
        """Approximate share of values ``<= value``, or None when empty.

        Raises
        ------
        InvalidArgumentError
            ``value`` is NaN.
        """
        if math.isnan(value):
            raise InvalidArgumentError("`value` must not be NaN.", got=value)
        if self.n == 0:
            return None
        if self.exact:
            return float(self._exact_ranks(np.array([float(value)]))[0])
        return float(self.sketch.get_rank(float(value), True))

    def cdf(self, points: Sequence[float]) -> list[float | None]:
        """Approximate empirical CDF (share of values ``<= point``) at each point.

        Parameters
        ----------
        points
            Values in any order, duplicates allowed; infinities give 0 or 1.

        Returns
        -------
        list of float or None
            One share per point, all None when the state is empty.

        Raises
        ------
        InvalidArgumentError
            A point is NaN.
        """
        x = np.asarray(points, dtype=np.float64).reshape(-1)
        if np.isnan(x).any():
            raise InvalidArgumentError("`points` must not contain NaN.", got=list(points))
        if self.n == 0:
            return [None] * x.size
        if x.size == 0:
            return []
        if self.exact:
            return [float(s) for s in self._exact_ranks(x)]
        unique, inverse = np.unique(x, return_inverse=True)
        shares = np.asarray(self.sketch.get_cdf(unique.tolist(), True)[:-1])
        return [float(s) for s in shares[inverse.reshape(-1)]]

    def _merge_key(self) -> Any:
        return (self.slot, self.k)

    def _merge_in_place(self, other: KllState) -> None:
        if other.exact:
            if len(other._values) == 0:
                return
            if self.exact:
                self._absorb_counts(other._values, other._counts)
            else:
                self.sketch.merge(counted_sketch(other._values, other._counts, self.k))
            return
        if self.exact and len(self._values) == 0:
            # the library's merge would re-compact: copy instead
            self.sketch = datasketches.kll_doubles_sketch.deserialize(other.sketch.serialize())
            return
        self._to_sketch()
        self.sketch.merge(other.sketch)

    def _fields(self) -> Fields:
        return {
            "slot": self.slot,
            "k": self.k,
            "sketch": self.sketch.serialize(),
            "values": self._values,
            "counts": self._counts,
        }

    @classmethod
    def _from_fields(cls, fields: Fields) -> KllState:
        state = cls(fields["slot"], int(fields["k"]))
        state.sketch = datasketches.kll_doubles_sketch.deserialize(fields["sketch"])
        if "values" in fields:
            state._values = np.asarray(fields["values"], dtype=np.float64)
            state._counts = np.asarray(fields["counts"], dtype=np.int64)
        return state


EXACT_SPAN = 1 << 16


def integer_counts(values: np.ndarray, most: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The distinct values of ``values`` (finite float64) and their counts, when each differs
    from the smallest by a whole number below ``EXACT_SPAN`` and at most ``most`` are
    distinct; else None.

    One ``bincount`` over the offsets from the minimum: a few passes over the batch, far
    cheaper than sketching each value. Offsets and minimum add back to the values exactly:
    values that close together are either small integers or within a factor of two of one
    another, so their differences are exact in float64.
    """
    low, high = values.min(), values.max()
    if not high < low + EXACT_SPAN:  # (high - low may overflow)
        return None
    offsets = values - low
    codes = offsets.astype(np.int64)
    if not np.array_equal(codes, offsets):
        return None
    counts = np.bincount(codes)
    present = np.flatnonzero(counts)
    if len(present) > most:
        return None
    return low + present, counts[present]


def counted_sketch(
    values: np.ndarray, counts: np.ndarray, k: int
) -> datasketches.kll_doubles_sketch:
    """A KLL sketch of each of ``values`` repeated ``counts`` times, built without repeating
    them.

    Horner's scheme on the counts' binary digits, from the highest: the sketch so far is
    merged with a copy of itself, which doubles every weight, and then updated with the
    values whose count has the current digit set. That is about ``2 * log2(max count)``
    merges and at most ``len(values)`` updates per digit, where repeating each value
    costs time and memory in the sum of the counts. Merges keep the sketch's error bound
    relative to its total weight [1]_ (each copy's error doubles with its weight).
    """
    sketch = datasketches.kll_doubles_sketch(k)
    for digit in reversed(range(int(counts.max()).bit_length())):
        if not sketch.is_empty():
            sketch.merge(datasketches.kll_doubles_sketch.deserialize(sketch.serialize()))
        chosen = values[(counts >> digit) & 1 == 1]
        if chosen.size:
            sketch.update(np.ascontiguousarray(chosen, dtype=np.float64))
    return sketch
