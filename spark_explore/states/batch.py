"""One Arrow record batch as the states see it, with conversions done once per batch.

Several states read the same column (moments, quantiles and distinct counts all read a
numeric column); :class:`Batch` converts each column to numpy once and caches the result.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from spark_explore.states import _algebra

T = TypeVar("T")


class Batch:
    """A record batch whose columns are addressed by slot name.

    Parameters
    ----------
    record_batch
        Arrow data; each column is one projected leaf ("slot") of the table.
    """

    def __init__(self, record_batch: pa.RecordBatch | pa.Table) -> None:
        self._columns = {
            name: _combined(record_batch.column(i))
            for i, name in enumerate(record_batch.schema.names)
        }
        self.num_rows = record_batch.num_rows
        self.record_batch = record_batch
        self._floats: dict[str, np.ndarray] = {}
        self._matrices: dict[tuple[str, ...], np.ndarray] = {}
        self._finite: dict[tuple[str, ...], np.ndarray] = {}
        self._memo: dict[Any, Any] = {}

    def memo(self, key: Any, compute: Callable[[], T]) -> T:
        """``compute()``, evaluated once per batch and ``key`` (for work several states
        share, such as the level codes of a group column)."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]  # type: ignore[no-any-return]

    def column(self, slot: str) -> pa.Array:
        """The Arrow array of one slot."""
        return self._columns[slot]

    def floats(self, slot: str) -> np.ndarray:
        """A slot as float64, with null as NaN (see :meth:`nulls` to tell them apart).

        Decimals, integers, dates (days) and timestamps (microseconds) are converted;
        integers beyond 2**53 and wide decimals are rounded to the nearest double, which
        is why exact minima and maxima are taken from the Arrow array instead.
        """
        cached = self._floats.get(slot)
        if cached is None:
            cached = to_float64(self._columns[slot])
            self._floats[slot] = cached
        return cached

    def nulls(self, slot: str) -> np.ndarray:
        """Boolean mask of the slot's nulls."""
        array = self._columns[slot]
        if array.null_count == 0:
            return np.zeros(len(array), dtype=bool)
        return np.asarray(array.is_null())

    def float_matrix(self, slots: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
        """A Fortran-ordered ``(rows, k)`` float64 matrix of the slots and its finite mask."""
        finite = self._finite.get(slots)
        if finite is None:
            finite = self._leading(self._finite, slots)
        if finite is None:
            finite = np.isfinite(self.float_values(slots))
            self._finite[slots] = finite
        return self.float_values(slots), finite

    def float_values(self, slots: tuple[str, ...]) -> np.ndarray:
        """The matrix of :meth:`float_matrix` alone.

        When a matrix already built for this batch starts with ``slots``, its leading
        columns are returned as a view instead of a copy (the scan plan orders the moment
        slots so that the co-moment and per-group slots are such a prefix). The matrix's
        columns also serve :meth:`floats`.
        """
        matrix = self._matrices.get(slots)
        if matrix is None:
            matrix = self._leading(self._matrices, slots)
        if matrix is None:
            matrix = np.empty((self.num_rows, len(slots)), dtype=np.float64, order="F")
            for j, slot in enumerate(slots):
                cached = self._floats.get(slot)
                if cached is None:
                    write_float64(self._columns[slot], matrix[:, j])
                    cached = matrix[:, j]
                    cached.flags.writeable = False
                    self._floats[slot] = cached
                else:
                    matrix[:, j] = cached
            self._matrices[slots] = matrix
        return matrix

    def skipped(self, slots: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Row and column indices of the non-finite entries (null, NaN, infinities) of the
        slots' :meth:`float_values`, column by column and in row order within a column;
        found once per batch for all the states that read those slots (read-only)."""
        return self.memo(("skipped", slots), lambda: self._skipped(slots))

    def finite_extremes(self, slots: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Each slot's smallest and largest finite value in the batch (+inf and -inf where
        it has none), found once per batch for all the states that read those slots
        (read-only); see :func:`~spark_explore.states._algebra.finite_extremes`."""
        return self.memo(("finite_extremes", slots), lambda: self._finite_extremes(slots))

    def _finite_extremes(self, slots: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
        found = self._longer("finite_extremes", slots)
        if found is not None:
            low, high = found
            return low[: len(slots)], high[: len(slots)]
        values = self.float_values(slots)
        row, col = self.skipped(slots)
        odd = values[row, col]
        infinite = np.bincount(col[~np.isnan(odd)], minlength=len(slots)) > 0
        low, high = _algebra.finite_extremes(values, None, infinite)
        low.flags.writeable = high.flags.writeable = False
        return low, high

    def _longer(self, name: str, slots: tuple[str, ...]) -> Any:
        """What was memoised under ``(name, longer)`` for slots that ``slots`` begin."""
        k = len(slots)
        for key, value in self._memo.items():
            if isinstance(key, tuple) and key[:1] == (name,) and key[1][:k] == slots:
                return value
        return None

    def _skipped(self, slots: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
        found = self._longer("skipped", slots)
        if found is not None:
            row, col = found
            cut = np.searchsorted(col, len(slots))
            return row[:cut], col[:cut]
        matrix = self.float_values(slots)
        parts = []
        for j, slot in enumerate(slots):
            array = self._columns[slot]
            if array.null_count == 0 and not _may_be_non_finite(array.type):
                continue
            bad = ~np.isfinite(matrix[:, j])
            if bad.any():
                row = np.flatnonzero(bad)
                parts.append((row, np.full(len(row), j, dtype=np.intp)))
        if not parts:
            return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp)
        return np.concatenate([r for r, _ in parts]), np.concatenate([c for _, c in parts])

    @staticmethod
    def _leading(cache: dict[tuple[str, ...], np.ndarray], slots: tuple[str, ...]) -> Any:
        k = len(slots)
        for built, matrix in cache.items():
            if built[:k] == slots:
                return matrix[:, :k]
        return None


def _may_be_non_finite(kind: pa.DataType) -> bool:
    """Whether a non-null value of this type can convert to NaN or an infinity."""
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return not (
        pa.types.is_integer(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_temporal(kind)
        or pa.types.is_decimal(kind)
    )


def _combined(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(column, pa.ChunkedArray):
        return column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    return column


def write_float64(array: pa.Array, out: np.ndarray) -> None:
    """Write :func:`to_float64` of ``array`` into ``out``, a float64 vector of its length.

    Integers, dates, timestamps, floats and whole-number decimals below 2**53 (which Arrow
    converts exactly) are cast from their Arrow data buffer straight into ``out``, and
    nulls set to NaN from the validity bitmap, without intermediate arrays.
    """
    raw = _raw_numbers(array)
    if raw is None:
        out[:] = to_float64(array)
        return
    np.copyto(out, raw)
    if array.null_count:
        offset = array.offset
        bits = np.unpackbits(
            np.frombuffer(array.buffers()[0], dtype=np.uint8),
            count=offset + len(array),
            bitorder="little",
        )[offset:]
        out[bits == 0] = np.nan


def _raw_numbers(array: pa.Array) -> np.ndarray | None:
    """The values of a numeric array as numpy reads its data buffer (anything at nulls),
    if they convert to float64 as :func:`to_float64` converts them."""
    kind, length, offset = array.type, len(array), array.offset
    if not length:
        return np.zeros(0)
    if _integer_backed(kind):  # as a cast to their integer type would read them
        dtype = np.dtype(f"int{kind.bit_width}")
    elif pa.types.is_integer(kind) or pa.types.is_float32(kind) or pa.types.is_float64(kind):
        dtype = np.dtype(kind.to_pandas_dtype())
    elif pa.types.is_decimal128(kind) and kind.scale == 0:
        words = np.frombuffer(
            array.buffers()[1], dtype=np.int64, count=2 * length, offset=offset * 16
        )
        low, high = words[0::2], words[1::2]
        fits = (high == (low >> 63)) & (low > -_EXACT) & (low < _EXACT)
        return low if fits.all() else None
    else:
        return None
    data = array.buffers()[1]
    return np.frombuffer(data, dtype=dtype, count=length, offset=offset * dtype.itemsize)


#: Integers of smaller magnitude convert to float64 exactly.
_EXACT = 2**53


def _integer_backed(kind: pa.DataType) -> bool:
    """Dates, timestamps and durations: integers (days or time units) in Arrow."""
    return pa.types.is_timestamp(kind) or pa.types.is_date(kind) or pa.types.is_duration(kind)


def to_float64(array: pa.Array) -> np.ndarray:
    """Convert a numeric, date or timestamp Arrow array to float64 with NaN for null."""
    kind = array.type
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind) or pa.types.is_duration(kind):
        array = array.cast(pa.int64() if not pa.types.is_date32(kind) else pa.int32())
    elif pa.types.is_decimal(kind) or pa.types.is_boolean(kind):
        array = pc.cast(array, pa.float64(), safe=False)
    values = array.to_numpy(zero_copy_only=False)
    if values.dtype != np.float64:
        values = values.astype(np.float64)
    if array.null_count:
        values = np.where(np.asarray(array.is_null()), np.nan, values)
    return values
