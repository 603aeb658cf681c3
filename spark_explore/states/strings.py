"""StringState: exact counts, lengths and (while few) value counts of one string column."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from spark_explore.errors import InvalidArgumentError
from spark_explore.states import _algebra
from spark_explore.states._codec import Fields
from spark_explore.states._encoding import valid_mask
from spark_explore.states.base import State
from spark_explore.states.batch import Batch


class StringState(State):
    """Counts, length moments and exact value counts of one string column.

    Kept exactly: the non-null values (``count``), the empty strings (``empty_count``),
    the blank strings (``blank_count``: non-empty and made only of whitespace), the
    minimum and maximum length, and the count, mean and central sums M2..M4 of the
    lengths (``length``, a one-column :class:`~spark_explore.states._algebra.Moments`).
    While the column has at most ``exact_cap`` distinct values the count of each value is
    kept too; beyond that it is dropped and ``exact_overflow`` is set. Distinct estimates
    and frequent items of long-tailed columns come from
    :class:`~spark_explore.states.distinct.HllState` and
    :class:`~spark_explore.states.distinct.FrequentItemsState` on the same slot.

    Parameters
    ----------
    slot
        Name of the batch column (Arrow ``string``, ``large_string`` or ``string_view``).
    exact_cap
        Largest number of distinct values whose counts are kept exactly.

    Raises
    ------
    InvalidArgumentError
        ``exact_cap`` negative; from :meth:`update`, a column that is not a string column.

    Notes
    -----
    A length is the number of Unicode code points (``pyarrow.compute.utf8_length``), so
    ``"é"`` written as one precomposed character has length 1 and as ``e`` plus a
    combining accent has length 2. Whitespace is Arrow's ``utf8_is_space``, which agrees
    with Python's ``str.isspace`` on every code point (Unicode general category Zs and
    bidirectional classes WS, B and S [3]_); the zero-width space U+200B is not
    whitespace.

    Length moments are reduced per batch by the corrected two-pass algorithm and merged
    with the pairwise formulas of Chan, Golub and LeVeque [1]_ and Pébay [2]_
    (:mod:`spark_explore.states._algebra`). Counts merge by addition. Exact value counts
    merge by adding the dictionaries; the result overflows when either input did or the
    union holds more than ``exact_cap`` values, which happens exactly when the whole
    column has more than ``exact_cap`` distinct values, whatever the split. The merge is
    therefore associative and commutative (the moments up to rounding).

    References
    ----------
    .. [1] T. F. Chan, G. H. Golub and R. J. LeVeque, "Algorithms for computing the sample
       variance: analysis and recommendations", The American Statistician 37(3), 1983,
       pp. 242-247.
    .. [2] P. Pébay, "Formulas for robust, one-pass parallel computation of covariances and
       arbitrary-order statistical moments", Sandia Report SAND2008-6212, 2008.
    .. [3] The Unicode Consortium, "Unicode Standard Annex #44: Unicode Character
       Database", https://www.unicode.org/reports/tr44/

    Examples
    --------
    >>> import pyarrow as pa
    >>> state = StringState.empty("s")
    >>> state.update(Batch(pa.record_batch({"s": ["ab", "", "  ", None, "ab"]})))
    >>> state.count, state.empty_count, state.blank_count, state.max_length
    (4, 1, 1, 2)
    >>> state.top_exact(1)
    [('ab', 2)]
    """

    kind = "string"

    def __init__(self, slot: str, exact_cap: int = 1000) -> None:
        ok = isinstance(exact_cap, (int, np.integer)) and not isinstance(exact_cap, bool)
        if not ok or exact_cap < 0:
            raise InvalidArgumentError(
                f"`exact_cap` must be a non-negative integer, got {exact_cap!r}.",
                expected=">= 0",
                got=exact_cap,
            )
        self.slot = slot
        self.exact_cap = int(exact_cap)
        self.count = 0
        self.empty_count = 0
        self.blank_count = 0
        self.min_length: int | None = None
        self.max_length: int | None = None
        self.length = _algebra.Moments.zeros(1)
        self.exact_overflow = False
        self._exact: dict[str, int] = {}

    @classmethod
    def empty(cls, slot: str, exact_cap: int = 1000) -> StringState:
        """The identity element for this column and cap."""
        return cls(slot, exact_cap)

    @property
    def n(self) -> int:
        """Non-null values absorbed."""
        return self.count

    @property
    def mean_length(self) -> float | None:
        """Mean length in code points of the non-null values, or None when empty."""
        if self.count == 0:
            return None
        return float(self.length.mean[0] + self.length.mean_lo[0])

    def update(self, batch: Batch) -> None:
        """Absorb the batch's non-null values of the slot (Arrow kernels, no row loop)."""
        array = _strings(batch.column(self.slot), self.slot)
        count = len(array) - array.null_count
        if count == 0:
            return
        all_lengths, blank = string_measures(batch, self.slot)
        lengths = all_lengths[all_lengths >= 0] if array.null_count else all_lengths
        self.count += count
        self.empty_count += int(np.count_nonzero(lengths == 0))
        self.blank_count += blank
        low, high = int(lengths.min()), int(lengths.max())
        self._absorb_extremes(low, high)
        values = lengths.astype(np.float64).reshape(-1, 1)
        extremes = (np.array([float(low)]), np.array([float(high)]))
        batch_moments = _algebra.batch_moments(values, np.ones(values.shape, bool), extremes)
        self.length = _algebra.merge_moments(self.length, batch_moments)
        if not self.exact_overflow:
            counts = string_value_counts(batch, self.slot)
            self._absorb_exact(
                counts.field("values").to_pylist(), counts.field("counts").to_pylist()
            )

    def exact_counts(self) -> dict[str, int] | None:
        """Count of every distinct value, or None once there were more than ``exact_cap``."""
        return None if self.exact_overflow else dict(self._exact)

    def top_exact(self, k: int = 10) -> list[tuple[str, int]] | None:
        """The ``k`` most frequent values and their exact counts, or None after overflow.

        Ties are broken by value, so the result does not depend on the merge order.
        """
        if self.exact_overflow:
            return None
        ranked = sorted(self._exact.items(), key=lambda item: (-item[1], item[0]))
        return ranked[: max(int(k), 0)]

    def _absorb_extremes(self, low: int | None, high: int | None) -> None:
        if low is None or high is None:
            return
        self.min_length = low if self.min_length is None else min(self.min_length, low)
        self.max_length = high if self.max_length is None else max(self.max_length, high)

    def _absorb_exact(self, values: list[str], counts: list[int]) -> None:
        if len(values) > self.exact_cap:
            self._overflow()
            return
        exact = self._exact
        for value, count in zip(values, counts):
            exact[value] = exact.get(value, 0) + count
        if len(exact) > self.exact_cap:
            self._overflow()

    def _overflow(self) -> None:
        self.exact_overflow = True
        self._exact = {}

    def _merge_key(self) -> Any:
        return (self.slot, self.exact_cap)

    def _merge_in_place(self, other: StringState) -> None:
        self.count += other.count
        self.empty_count += other.empty_count
        self.blank_count += other.blank_count
        self._absorb_extremes(other.min_length, other.max_length)
        self.length = _algebra.merge_moments(self.length, other.length)
        if other.exact_overflow:
            self._overflow()
        elif not self.exact_overflow:
            self._absorb_exact(list(other._exact), list(other._exact.values()))

    def _fields(self) -> Fields:
        values = sorted(self._exact)
        fields: Fields = {
            "slot": self.slot,
            "exact_cap": self.exact_cap,
            "count": self.count,
            "empty_count": self.empty_count,
            "blank_count": self.blank_count,
            "min_length": self.min_length,
            "max_length": self.max_length,
        }
        fields.update({f"m_{name}": value for name, value in self.length._asdict().items()})
        fields["exact_overflow"] = self.exact_overflow
        fields["exact_values"] = values
        fields["exact_counts"] = np.array([self._exact[v] for v in values], dtype=np.int64)
        return fields

    @classmethod
    def _from_fields(cls, fields: Fields) -> StringState:
        state = cls(fields["slot"], int(fields["exact_cap"]))
        state.count = int(fields["count"])
        state.empty_count = int(fields["empty_count"])
        state.blank_count = int(fields["blank_count"])
        state.min_length, state.max_length = fields["min_length"], fields["max_length"]
        moments = (fields[f"m_{name}"] for name in _algebra.Moments._fields)
        state.length = _algebra.Moments(*(np.asarray(m, dtype=np.float64) for m in moments))
        state.exact_overflow = bool(fields["exact_overflow"])
        counts = np.asarray(fields["exact_counts"], dtype=np.int64).tolist()
        state._exact = dict(zip(fields["exact_values"], counts))
        return state


def string_measures(batch: Batch, slot: str) -> tuple[np.ndarray, int]:
    """Each value's length in characters (-1 for null) and the number of blank values of a
    string slot, computed once per batch for all the states that need them."""

    def measure() -> tuple[np.ndarray, int]:
        array = _decoded(batch.column(slot))
        offsets, data = _offsets_and_bytes(array)
        return _utf8_lengths(array, offsets, data), _blank_count(array, offsets, data)

    return batch.memo(("string_measures", slot), measure)


def string_value_counts(batch: Batch, slot: str) -> pa.StructArray:
    """``pyarrow.compute.value_counts`` of a string slot's non-null values, once per batch.

    The values come in order of first appearance. Counting the column with its nulls and
    dropping the null entry gives the same values in the same order as counting the
    non-null values, without copying them first.
    """

    def count() -> pa.StructArray:
        array = _strings(batch.column(slot), slot)
        counts = pc.value_counts(array)
        return counts.filter(counts.field("values").is_valid()) if array.null_count else counts

    return batch.memo(("string_value_counts", slot), count)


def _offsets_and_bytes(array: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """The value offsets of a ``string`` or ``large_string`` array and the bytes they span,
    the first offset at byte 0."""
    width = np.dtype(np.int32 if pa.types.is_string(array.type) else np.int64)
    if len(array) == 0:
        return np.zeros(1, dtype=width), np.empty(0, dtype=np.uint8)
    buffers = array.buffers()
    offsets = np.frombuffer(
        buffers[1], dtype=width, count=len(array) + 1, offset=array.offset * width.itemsize
    )
    start, end = int(offsets[0]), int(offsets[-1])
    if end == start:
        return offsets - start, np.empty(0, dtype=np.uint8)
    data = np.frombuffer(buffers[2], dtype=np.uint8, count=end - start, offset=start)
    return offsets - start, data


def _utf8_lengths(array: pa.Array, offsets: np.ndarray, data: np.ndarray) -> np.ndarray:
    """``pyarrow.compute.utf8_length`` with -1 for null. In ASCII text every byte is a code
    point, so the lengths are the offsets' differences."""
    if len(data) and data.max() >= 0x80:
        return pc.utf8_length(array).fill_null(-1).to_numpy(zero_copy_only=False)
    lengths = np.diff(offsets)
    if array.null_count:
        lengths[~valid_mask(array)] = -1
    return lengths


def _blank_count(array: pa.Array, offsets: np.ndarray, data: np.ndarray) -> int:
    """Number of values for which ``pyarrow.compute.utf8_is_space`` holds.

    That kernel is false on empty values and on those starting with a printable ASCII
    character other than space (bytes 0x21 to 0x7E), so only the others are handed to
    Arrow: on most columns none.
    """
    if len(data) == 0:
        return 0
    starts = offsets[:-1]
    first = data[np.minimum(starts, len(data) - 1)]
    candidates = (offsets[1:] > starts) & ((first < 0x21) | (first > 0x7E))
    if array.null_count:
        candidates &= valid_mask(array)
    rows = np.flatnonzero(candidates)
    if len(rows) == 0:
        return 0
    if len(rows) < len(array):
        array = array.take(pa.array(rows))
    return int(pc.sum(pc.utf8_is_space(array)).as_py() or 0)


def _decoded(array: pa.Array) -> pa.Array:
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if pa.types.is_string_view(array.type):
        array = array.cast(pa.large_string())
    return array


def _strings(array: pa.Array, slot: str) -> pa.Array:
    """A string column as ``string`` or ``large_string``, dictionary-decoded, with its
    nulls."""
    kind = array.type
    if pa.types.is_dictionary(kind):
        array = array.dictionary_decode()
        kind = array.type
    if pa.types.is_null(kind):
        return pa.array([], type=pa.string())
    if pa.types.is_string_view(kind):
        return array.cast(pa.large_string())
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        raise InvalidArgumentError(
            f"`StringState` reads string columns; slot `{slot}` is {kind}.",
            column=slot,
            expected="string",
            got=str(kind),
        )
    return array
