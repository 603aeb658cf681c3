"""KllState: a KLL quantile sketch of one numeric column's finite values."""

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

    def __init__(self, slot: str, k: int = 200) -> None:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 8 <= k <= 65535:
            raise InvalidArgumentError(
                f"`k` must be an integer from 8 to 65535, got {k!r}.", expected="8..65535", got=k
            )
        self.slot = slot
        self.k = int(k)
        self.sketch = datasketches.kll_doubles_sketch(k)

    @classmethod
    def empty(cls, slot: str, k: int = 200) -> KllState:
        """The identity element for this column and accuracy."""
        return cls(slot, k)

    @property
    def n(self) -> int:
        """Finite values absorbed."""
        return int(self.sketch.n)

    def update(self, batch: Batch) -> None:
        """Absorb the batch's finite values of the slot (one vectorised sketch call)."""
        if batch.num_rows == 0:
            return
        values = batch.floats(self.slot)
        finite = values[np.isfinite(values)]
        if finite.size:
            self.sketch.update(np.ascontiguousarray(finite, dtype=np.float64))

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
        return None if self.sketch.is_empty() else float(self.sketch.get_min_value())

    @property
    def max(self) -> float | None:
        """Largest finite value absorbed (exact), or None when empty."""
        return None if self.sketch.is_empty() else float(self.sketch.get_max_value())

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
        if self.sketch.is_empty():
            return [None] * len(p)
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
        if self.sketch.is_empty():
            return None
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
        if self.sketch.is_empty():
            return [None] * x.size
        if x.size == 0:
            return []
        unique, inverse = np.unique(x, return_inverse=True)
        shares = np.asarray(self.sketch.get_cdf(unique.tolist(), True)[:-1])
        return [float(s) for s in shares[inverse.reshape(-1)]]

    def _merge_key(self) -> Any:
        return (self.slot, self.k)

    def _merge_in_place(self, other: KllState) -> None:
        if other.sketch.is_empty():
            return
        if self.sketch.is_empty():  # the library's merge would re-compact: copy instead
            self.sketch = datasketches.kll_doubles_sketch.deserialize(other.sketch.serialize())
            return
        self.sketch.merge(other.sketch)

    def _fields(self) -> Fields:
        return {"slot": self.slot, "k": self.k, "sketch": self.sketch.serialize()}

    @classmethod
    def _from_fields(cls, fields: Fields) -> KllState:
        state = cls(fields["slot"], int(fields["k"]))
        state.sketch = datasketches.kll_doubles_sketch.deserialize(fields["sketch"])
        return state
