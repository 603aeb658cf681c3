"""HllState and FrequentItemsState: distinct count and heavy hitters of one column.

Both feed an Apache DataSketches sketch, whose update takes one value per call; to stay
vectorised they receive only each batch's distinct values (``pyarrow.compute.unique``), with
their counts as weights for the frequent items (``pyarrow.compute.value_counts``).
"""

from __future__ import annotations

from typing import Any

import datasketches
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from spark_explore.errors import InvalidArgumentError
from spark_explore.states._codec import Fields
from spark_explore.states.base import State
from spark_explore.states.batch import Batch

_HLL_TYPE = datasketches.HLL_8


class HllState(State):
    """Approximate number of distinct non-null values of one column, from an HLL sketch [1]_.

    What counts as a value depends on the column's Arrow type:

    * floating point: each finite value, and NaN, +inf and -inf as three more values
      (-0.0 equals 0.0 and every NaN payload is one NaN, as the library hashes them);
    * integers: the exact integer (unsigned 64-bit values are fed by their two's-complement
      bit pattern, which keeps them distinct), so int64 extremes are not rounded;
    * dates, times, timestamps and durations: their integer storage value (days, or ticks
      of the type's unit); booleans as 0 and 1; decimals by their text at the type's
      scale; strings as themselves. The library ignores empty strings, so this state
      records whether it saw ``""`` and adds it to the estimate and bounds exactly.

    Parameters
    ----------
    slot
        Name of the batch column this state reads.
    lg_k
        log2 of the number of HLL registers, 4 to 21; 12 gives a relative standard error
        of about 1.6 %.

    Raises
    ------
    InvalidArgumentError
        ``lg_k`` out of range; from :meth:`update`, a binary or nested column.

    Notes
    -----
    The sketch is the Apache DataSketches HLL [2]_ with 8-bit registers, serialized in its
    own format; merges go through the library's union, which takes the register-wise
    maximum. A sketch built in one stream would estimate with the HIP estimator [3]_,
    whose value depends on the order values arrived in; a merged sketch cannot. So that a
    table's estimate does not depend on how its rows were split into partitions, every
    estimate and bound here is the library's out-of-order (composite) estimate, computed
    from the registers alone: the sketch is unioned with itself, which leaves its
    registers unchanged and marks it out of order. :attr:`relative_error` is the error
    bound of that estimator. Up to ``3 * 2**lg_k / 32`` distinct values (384 at
    ``lg_k = 12``) the sketch keeps hashed coupons and the estimate is near exact.

    References
    ----------
    .. [1] P. Flajolet, E. Fusy, O. Gandouet and F. Meunier, "HyperLogLog: the analysis of
       a near-optimal cardinality estimation algorithm", Proc. AofA 2007, DMTCS
       proceedings, pp. 137-156.
    .. [2] Apache DataSketches, "HyperLogLog Sketch",
       https://datasketches.apache.org/docs/HLL/HLL.html
    .. [3] D. Ting, "Streamed approximate counting of distinct elements: beating optimal
       batch methods", Proc. ACM KDD 2014, pp. 442-451.

    Examples
    --------
    >>> import pyarrow as pa
    >>> state = HllState.empty("x")
    >>> state.update(Batch(pa.record_batch({"x": [1, 2, 2, None, 3]})))
    >>> round(state.estimate())
    3
    """

    kind = "hll"

    def __init__(self, slot: str, lg_k: int = 12) -> None:
        self.slot = slot
        self.lg_k = _checked_int("lg_k", lg_k, 4, 21)
        self.count = 0
        self.empty_string = False
        self.sketch = datasketches.hll_sketch(self.lg_k, _HLL_TYPE)

    @classmethod
    def empty(cls, slot: str, lg_k: int = 12) -> HllState:
        """The identity element for this column and sketch size."""
        return cls(slot, lg_k)

    @property
    def n(self) -> int:
        """Non-null values absorbed (with repeats)."""
        return self.count

    def update(self, batch: Batch) -> None:
        """Absorb the batch's non-null values of the slot, feeding each distinct one once."""
        array = _non_null(batch.column(self.slot))
        if len(array) == 0:
            return
        sketch = self.sketch
        for item in _hll_items(array, self.slot):
            if item == "":
                self.empty_string = True
            else:
                sketch.update(item)
        self.count += len(array)

    def estimate(self) -> float:
        """Estimated number of distinct non-null values (0 when empty)."""
        return float(self._registers_only().get_estimate()) + self.empty_string

    def lower_bound(self, num_std: int = 2) -> float:
        """Lower bound of the distinct count at ``num_std`` (1, 2 or 3) standard errors."""
        num_std = _checked_int("num_std", num_std, 1, 3)
        return float(self._registers_only().get_lower_bound(num_std)) + self.empty_string

    def upper_bound(self, num_std: int = 2) -> float:
        """Upper bound of the distinct count at ``num_std`` (1, 2 or 3) standard errors."""
        num_std = _checked_int("num_std", num_std, 1, 3)
        return float(self._registers_only().get_upper_bound(num_std)) + self.empty_string

    @property
    def relative_error(self) -> float:
        """One standard error of :meth:`estimate`, relative to the true count.

        The library's a priori bound ``get_rel_err`` for one standard deviation of the
        out-of-order (union) estimator at this ``lg_k``, the larger of its upper and lower
        sides; about ``1.04 / sqrt(2**lg_k)`` for ``lg_k >= 12`` (0.0162 at 12).
        """
        upper = datasketches.hll_sketch.get_rel_err(True, True, self.lg_k, 1)
        lower = datasketches.hll_sketch.get_rel_err(False, True, self.lg_k, 1)
        return float(max(abs(upper), abs(lower)))

    def _registers_only(self) -> datasketches.hll_sketch:
        union = datasketches.hll_union(self.lg_k)
        union.update(self.sketch)
        union.update(self.sketch)
        return union.get_result(_HLL_TYPE)

    def _merge_key(self) -> Any:
        return (self.slot, self.lg_k)

    def _merge_in_place(self, other: HllState) -> None:
        union = datasketches.hll_union(self.lg_k)
        union.update(self.sketch)
        union.update(other.sketch)
        self.sketch = union.get_result(_HLL_TYPE)
        self.count += other.count
        self.empty_string = self.empty_string or other.empty_string

    def _fields(self) -> Fields:
        return {
            "slot": self.slot,
            "lg_k": self.lg_k,
            "count": self.count,
            "empty_string": self.empty_string,
            "sketch": self.sketch.serialize_compact(),
        }

    @classmethod
    def _from_fields(cls, fields: Fields) -> HllState:
        state = cls(fields["slot"], int(fields["lg_k"]))
        state.count = int(fields["count"])
        state.empty_string = bool(fields["empty_string"])
        state.sketch = datasketches.hll_sketch.deserialize(fields["sketch"])
        return state


class FrequentItemsState(State):
    """Heavy hitters of one column with guaranteed count bounds, by Misra-Gries [1]_.

    Values are kept as text: strings as themselves, other types by Arrow's cast to string
    (``"1.5"``, ``"true"``, ``"2020-01-31"``, ``"2020-01-31 12:00:00.000000"``); -0.0 is
    counted as 0.0 and all NaN as ``"nan"``. Nulls are not counted.

    Parameters
    ----------
    slot
        Name of the batch column this state reads.
    lg_max_size
        log2 of the sketch's maximum hash-map size, 3 to 26; the map tracks at most
        ``0.75 * 2**lg_max_size`` items and bounds every count's error by
        ``3.5 / 2**lg_max_size`` of the total weight.

    Raises
    ------
    InvalidArgumentError
        ``lg_max_size`` out of range; from :meth:`update`, a binary or nested column.

    Notes
    -----
    The sketch is Apache DataSketches' frequent-items sketch [2]_, a weighted Misra-Gries
    summary, serialized in its own format. Each batch feeds its distinct values once,
    weighted by their counts. Merging follows Agarwal et al. [3]_: the merged sketch's
    bounds hold for the union of the inputs whatever the merge order, but which items are
    tracked, and the bounds' width, can differ slightly between merge orders.

    References
    ----------
    .. [1] J. Misra and D. Gries, "Finding repeated elements", Science of Computer
       Programming 2(2), 1982, pp. 143-152.
    .. [2] D. Anderson, P. Bevan, K. Lang, E. Liberty, L. Rhodes and J. Thaler, "A
       high-performance algorithm for identifying frequent items in data streams", Proc.
       ACM IMC 2017, pp. 268-282.
    .. [3] P. K. Agarwal, G. Cormode, Z. Huang, J. M. Phillips, Z. Wei and K. Yi,
       "Mergeable summaries", ACM TODS 38(4), 2013, article 26.

    Examples
    --------
    >>> import pyarrow as pa
    >>> state = FrequentItemsState.empty("c")
    >>> state.update(Batch(pa.record_batch({"c": ["a", "b", "a", None, "a"]})))
    >>> state.top(1)
    [('a', 3, 3, 3)]
    """

    kind = "frequent_items"

    def __init__(self, slot: str, lg_max_size: int = 10) -> None:
        self.slot = slot
        self.lg_max_size = _checked_int("lg_max_size", lg_max_size, 3, 26)
        self.sketch = datasketches.frequent_strings_sketch(self.lg_max_size)

    @classmethod
    def empty(cls, slot: str, lg_max_size: int = 10) -> FrequentItemsState:
        """The identity element for this column and sketch size."""
        return cls(slot, lg_max_size)

    @property
    def n(self) -> int:
        """Non-null values absorbed (the sketch's total weight)."""
        return int(self.sketch.total_weight)

    def update(self, batch: Batch) -> None:
        """Absorb the batch's non-null values of the slot, each distinct one with its count."""
        array = _non_null(batch.column(self.slot))
        if len(array) == 0:
            return
        _check_supported(array.type, self.slot)
        if pa.types.is_floating(array.type):
            if pa.types.is_float16(array.type):
                array = array.cast(pa.float32())
            array = pc.add(array, pa.scalar(0.0, array.type))  # -0.0 + 0.0 == +0.0
        counts = pc.value_counts(array)
        values = counts.field("values")
        if not pa.types.is_string(values.type) and not pa.types.is_large_string(values.type):
            values = pc.cast(values, pa.string())
        for item, weight in zip(values.to_pylist(), counts.field("counts").to_pylist()):
            self.sketch.update(item, weight)

    def top(self, k: int = 10) -> list[tuple[str, int, int, int]]:
        """The most frequent values, without false positives.

        Parameters
        ----------
        k
            At most this many items.

        Returns
        -------
        list of (value, estimate, lower_bound, upper_bound)
            By decreasing estimate, then by value. Only items whose lower bound exceeds
            :attr:`max_error` are listed, so each is truly more frequent than that; the
            true count of each lies in ``[lower_bound, upper_bound]``.
        """
        k = _checked_int("k", k, 0, None)
        items = self.sketch.get_frequent_items(datasketches.NO_FALSE_POSITIVES)
        items.sort(key=lambda item: (-item[1], item[0]))
        return [(str(v), int(e), int(lo), int(hi)) for v, e, lo, hi in items[:k]]

    @property
    def max_error(self) -> float:
        """Largest possible error of any item's count in the current sketch.

        The sketch's running offset, read as ``get_upper_bound(x) - get_lower_bound(x)``
        (the same for every ``x``; the Python binding does not expose
        ``get_maximum_error``). It is 0 while every distinct value is tracked and never
        exceeds ``epsilon * total_weight``.
        """
        return float(self.sketch.get_upper_bound("") - self.sketch.get_lower_bound(""))

    def _merge_key(self) -> Any:
        return (self.slot, self.lg_max_size)

    def _merge_in_place(self, other: FrequentItemsState) -> None:
        self.sketch.merge(other.sketch)

    def _fields(self) -> Fields:
        return {
            "slot": self.slot,
            "lg_max_size": self.lg_max_size,
            "sketch": self.sketch.serialize(),
        }

    @classmethod
    def _from_fields(cls, fields: Fields) -> FrequentItemsState:
        state = cls(fields["slot"], int(fields["lg_max_size"]))
        state.sketch = datasketches.frequent_strings_sketch.deserialize(fields["sketch"])
        return state


def _checked_int(name: str, value: Any, low: int, high: int | None) -> int:
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if not ok or value < low or (high is not None and value > high):
        bounds = f"{low} to {high}" if high is not None else f"at least {low}"
        raise InvalidArgumentError(
            f"`{name}` must be an integer from {bounds}, got {value!r}.",
            expected=bounds,
            got=value,
        )
    return int(value)


def _non_null(array: pa.Array) -> pa.Array:
    """The array's non-null values, dictionary-decoded."""
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    return array.drop_null() if array.null_count else array


def _check_supported(kind: pa.DataType, slot: str) -> None:
    supported = (
        pa.types.is_null(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_decimal(kind)
        or _is_string(kind)
        or _is_fixed_temporal(kind)
    )
    if not supported:
        raise InvalidArgumentError(
            f"slot `{slot}` has type {kind}, which distinct counts and frequent items do not "
            "support (they read numbers, booleans, strings, dates and times).",
            column=slot,
            expected="numeric, boolean, string or temporal",
            got=str(kind),
        )


def _is_string(kind: pa.DataType) -> bool:
    return (
        pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)
    )


def _is_fixed_temporal(kind: pa.DataType) -> bool:
    return (
        pa.types.is_date(kind)
        or pa.types.is_time(kind)
        or pa.types.is_timestamp(kind)
        or pa.types.is_duration(kind)
    )


def _hll_items(array: pa.Array, slot: str) -> list[Any]:
    """The distinct values of a non-null array, as the Python values the HLL hashes."""
    kind = array.type
    _check_supported(kind, slot)
    if pa.types.is_null(kind):
        return []
    if pa.types.is_floating(kind):
        unique = pc.unique(array.cast(pa.float64()))
        return unique.to_numpy(zero_copy_only=False).tolist()
    if pa.types.is_decimal(kind) or _is_string(kind):
        unique = pc.unique(array)
        return unique.to_pylist() if _is_string(kind) else pc.cast(unique, pa.string()).to_pylist()
    if pa.types.is_boolean(kind):
        array = array.cast(pa.int8())
    elif _is_fixed_temporal(kind):
        array = array.view(pa.int32() if kind.bit_width == 32 else pa.int64())
    ints = pc.unique(array).to_numpy(zero_copy_only=False)
    if ints.dtype == np.uint64:
        ints = ints.view(np.int64)
    return ints.astype(np.int64).tolist()
