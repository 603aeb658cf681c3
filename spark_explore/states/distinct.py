"""HllState and FrequentItemsState: distinct count and heavy hitters of one column.

Both keep an Apache DataSketches sketch, whose update takes one value per call. To stay
vectorised, the HLL's coupons and registers are worked out in numpy and handed to the
library when the sketch is asked for
(:class:`~spark_explore.states._coupons.CouponRegisters`), and the frequent items receive
each batch's distinct values with their counts as weights (``pyarrow.compute.value_counts``).
"""

from __future__ import annotations

import math
from typing import Any

import datasketches
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from spark_explore.errors import InvalidArgumentError
from spark_explore.states._codec import Fields
from spark_explore.states._coupons import CouponRegisters, canonical_double_bits
from spark_explore.states._encoding import valid_mask
from spark_explore.states.base import State
from spark_explore.states.batch import Batch
from spark_explore.states.strings import string_value_counts

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
      records whether it saw ``""`` and adds it to the estimate and bounds exactly;
    * with ``hash_slot``: the 64-bit hash in that slot of each row where ``slot`` is not
      null. The scan hashes strings and decimals in Spark (``xxhash64``), which is far
      cheaper than handing each one to the library; distinct values share a hash with
      probability about ``n**2 / 2**65``, negligible beside the sketch's error.

    Parameters
    ----------
    slot
        Name of the batch column this state reads.
    lg_k
        log2 of the number of HLL registers, 4 to 21; 12 gives a relative standard error
        of about 1.6 %.
    hash_slot
        Optional batch column of int64 hashes of ``slot``'s values, fed instead of them.

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

    def __init__(self, slot: str, lg_k: int = 12, hash_slot: str | None = None) -> None:
        self.slot = slot
        self.lg_k = _checked_int("lg_k", lg_k, 4, 21)
        self.hash_slot = hash_slot
        self.count = 0
        self.empty_string = False
        self._sketch = datasketches.hll_sketch(self.lg_k, _HLL_TYPE)
        self._coupons = CouponRegisters(self.lg_k)
        self._doubles = False

    @classmethod
    def empty(cls, slot: str, lg_k: int = 12, hash_slot: str | None = None) -> HllState:
        """The identity element for this column and sketch size."""
        return cls(slot, lg_k, hash_slot)

    @property
    def n(self) -> int:
        """Non-null values absorbed (with repeats)."""
        return self.count

    def update(self, batch: Batch) -> None:
        """Absorb the batch's non-null values of the slot (or their hashes)."""
        column = batch.column(self.slot)
        if self.hash_slot is not None:
            hashes = batch.column(self.hash_slot).to_numpy(zero_copy_only=False)
            if column.null_count:
                hashes = hashes[valid_mask(column)]
            self._feed(hashes.astype(np.int64, copy=False))
            self.count += len(hashes)
            return
        values = _primitive_values(column)
        if values is not None:
            if len(values):
                if values.dtype.kind == "f":
                    self._feed(canonical_double_bits(values), doubles=True)
                else:
                    self._feed(values)
                self.count += len(values)
            return
        array = _non_null(column)
        if len(array) == 0:
            return
        keys = _hll_keys(array, self.slot)
        doubles = pa.types.is_floating(array.type)
        if keys is None:  # strings and decimals without hashes: each distinct value once
            for item in _hll_items(array):
                if item == "":
                    self.empty_string = True
                else:
                    self._sketch.update(item)
        else:
            self._feed(keys, doubles)
        self.count += len(array)

    def _feed(self, keys: np.ndarray, doubles: bool = False) -> None:
        """Absorb 64-bit keys: int64 values, or with ``doubles`` the canonical bits of
        doubles (:func:`~spark_explore.states._coupons.canonical_double_bits`), which the
        library is fed as the doubles they encode."""
        self._doubles = doubles
        self._coupons.absorb(keys)

    @property
    def sketch(self) -> datasketches.hll_sketch:
        """The library's sketch of every value absorbed."""
        self._sketch = self._coupons.drain(self._sketch, self._doubles)
        return self._sketch

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
        return (self.slot, self.lg_k, self.hash_slot)

    def _merge_in_place(self, other: HllState) -> None:
        union = datasketches.hll_union(self.lg_k)
        union.update(self.sketch)
        union.update(other.sketch)
        self._sketch = union.get_result(_HLL_TYPE)
        self.count += other.count
        self.empty_string = self.empty_string or other.empty_string

    def _fields(self) -> Fields:
        return {
            "slot": self.slot,
            "lg_k": self.lg_k,
            "hash_slot": self.hash_slot,
            "count": self.count,
            "empty_string": self.empty_string,
            "sketch": self.sketch.serialize_compact(),
        }

    @classmethod
    def _from_fields(cls, fields: Fields) -> HllState:
        state = cls(fields["slot"], int(fields["lg_k"]), fields.get("hash_slot"))
        state.count = int(fields["count"])
        state.empty_string = bool(fields["empty_string"])
        state._sketch = datasketches.hll_sketch.deserialize(fields["sketch"])
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
    weighted by their counts, except that a batch holding at least ``1 / epsilon`` values
    seen once in it (``epsilon = 3.5 / 2**lg_max_size``, 293 at the default), and more
    distinct values than the map still has room for, does not feed those: on a column of
    ids that spares the library one call per row, while a column whose values all fit in
    the map stays exact. Such a batch hides at most one occurrence of any value, so every
    upper bound and :attr:`max_error` grow by one per such batch; since each hid at least
    ``1 / epsilon`` rows, the error stays within ``epsilon * n`` as the sketch alone
    guarantees, and lower bounds still hold.
    Merging follows Agarwal et al. [3]_: the merged sketch's
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
        #: batches whose values seen once were not fed, and the rows those values held
        self.hidden_batches = 0
        self.hidden_rows = 0
        epsilon = datasketches.frequent_strings_sketch.get_epsilon_for_lg_size(self.lg_max_size)
        self._singles_cap = math.ceil(1.0 / epsilon)
        self._capacity = 3 * 2**self.lg_max_size // 4  # items the map tracks before purging

    @classmethod
    def empty(cls, slot: str, lg_max_size: int = 10) -> FrequentItemsState:
        """The identity element for this column and sketch size."""
        return cls(slot, lg_max_size)

    @property
    def n(self) -> int:
        """Non-null values absorbed (the sketch's total weight and the hidden rows)."""
        return int(self.sketch.total_weight) + self.hidden_rows

    def update(self, batch: Batch) -> None:
        """Absorb the batch's non-null values of the slot, each distinct one with its count."""
        column = batch.column(self.slot)
        kind = column.type.value_type if pa.types.is_dictionary(column.type) else column.type
        if _is_string(kind):
            counts = string_value_counts(batch, self.slot)
            if len(counts) == 0:
                return
        else:
            array = _non_null(column)
            if len(array) == 0:
                return
            _check_supported(array.type, self.slot)
            if pa.types.is_floating(array.type):
                if pa.types.is_float16(array.type):
                    array = array.cast(pa.float32())
                array = pc.add(array, pa.scalar(0.0, array.type))  # -0.0 + 0.0 == +0.0
            counts = pc.value_counts(array)
        values, weights = counts.field("values"), counts.field("counts")
        singles = pc.equal(weights, 1)
        hidden = int(pc.sum(singles).as_py() or 0)
        room = self._capacity - self.sketch.num_active_items
        if hidden >= self._singles_cap and len(values) > room:
            keep = pc.invert(singles)
            values, weights = values.filter(keep), weights.filter(keep)
            self.hidden_batches += 1
            self.hidden_rows += hidden
        if not pa.types.is_string(values.type) and not pa.types.is_large_string(values.type):
            values = pc.cast(values, pa.string())
        update = self.sketch.update
        for item, weight in zip(values.to_pylist(), weights.to_pylist()):
            update(item, weight)

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
        error = self.max_error
        items = self.sketch.get_frequent_items(datasketches.NO_FALSE_POSITIVES)
        items = [item for item in items if item[2] > error]
        items.sort(key=lambda item: (-item[1], item[0]))
        hidden = self.hidden_batches
        return [(str(v), int(e), int(lo), int(hi) + hidden) for v, e, lo, hi in items[:k]]

    @property
    def max_error(self) -> float:
        """Largest possible error of any item's count in the current sketch.

        The sketch's running offset, read as ``get_upper_bound(x) - get_lower_bound(x)``
        (the same for every ``x``; the Python binding does not expose
        ``get_maximum_error``). It is 0 while every distinct value is tracked and never
        exceeds ``epsilon * n``. Batches that hid their values seen once add one each.
        """
        offset = self.sketch.get_upper_bound("") - self.sketch.get_lower_bound("")
        return float(offset + self.hidden_batches)

    def _merge_key(self) -> Any:
        return (self.slot, self.lg_max_size)

    def _merge_in_place(self, other: FrequentItemsState) -> None:
        self.sketch.merge(other.sketch)
        self.hidden_batches += other.hidden_batches
        self.hidden_rows += other.hidden_rows

    def _fields(self) -> Fields:
        return {
            "slot": self.slot,
            "lg_max_size": self.lg_max_size,
            "hidden_batches": self.hidden_batches,
            "hidden_rows": self.hidden_rows,
            "sketch": self.sketch.serialize(),
        }

    @classmethod
    def _from_fields(cls, fields: Fields) -> FrequentItemsState:
        state = cls(fields["slot"], int(fields["lg_max_size"]))
        state.hidden_batches = int(fields.get("hidden_batches", 0))
        state.hidden_rows = int(fields.get("hidden_rows", 0))
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


def _primitive_values(array: pa.Array) -> np.ndarray | None:
    """The non-null values of an integer, float32/64 or date/time array, read from its
    buffers: floats as they are, integers as int64 (uint64 by their bit pattern, as
    :func:`_hll_keys`); ``None`` for other types."""
    kind = array.type
    if pa.types.is_integer(kind) or pa.types.is_float32(kind) or pa.types.is_float64(kind):
        dtype = np.dtype(kind.to_pandas_dtype())
    elif _is_fixed_temporal(kind):
        dtype = np.dtype(np.int32 if kind.bit_width == 32 else np.int64)
    else:
        return None
    if len(array) == array.null_count:
        return np.empty(0, dtype=np.int64 if dtype.kind != "f" else dtype)
    data = array.buffers()[1]
    values = np.frombuffer(
        data, dtype=dtype, count=len(array), offset=array.offset * dtype.itemsize
    )
    if array.null_count:
        values = values[valid_mask(array)]
    if dtype.kind == "f":
        return values
    return values.view(np.int64) if dtype == np.uint64 else values.astype(np.int64, copy=False)


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


def _hll_keys(array: pa.Array, slot: str) -> np.ndarray | None:
    """The 64-bit keys the library hashes for a non-null array's values (integers, or the
    canonical bits of doubles), or ``None`` for strings and decimals, which it hashes as
    text."""
    kind = array.type
    _check_supported(kind, slot)
    if pa.types.is_null(kind):
        return np.empty(0, np.int64)
    if pa.types.is_floating(kind):
        return canonical_double_bits(array.cast(pa.float64()).to_numpy(zero_copy_only=False))
    if pa.types.is_decimal(kind) or _is_string(kind):
        return None
    if pa.types.is_boolean(kind):
        array = array.cast(pa.int8())
    elif _is_fixed_temporal(kind):
        array = array.view(pa.int32() if kind.bit_width == 32 else pa.int64())
    ints = array.to_numpy(zero_copy_only=False)
    return ints.view(np.int64) if ints.dtype == np.uint64 else ints.astype(np.int64)


def _hll_items(array: pa.Array) -> list[Any]:
    """The distinct values of a non-null string or decimal array, as the library takes them."""
    unique = pc.unique(array)
    if not _is_string(array.type):
        unique = pc.cast(unique, pa.string())
    return unique.to_pylist()
