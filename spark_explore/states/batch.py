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
        self._matrices: dict[tuple[str, ...], tuple[np.ndarray, np.ndarray]] = {}
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
        """A Fortran-ordered ``(rows, k)`` float64 matrix of the slots and its finite mask.

        When a matrix already built for this batch starts with ``slots``, its leading
        columns are returned as views instead of a copy (the scan plan orders the moment
        slots so that the co-moment and per-group slots are such a prefix).
        """
        cached = self._matrices.get(slots)
        if cached is None:
            cached = self._leading_columns(slots)
        if cached is None:
            matrix = np.empty((self.num_rows, len(slots)), dtype=np.float64, order="F")
            for j, slot in enumerate(slots):
                matrix[:, j] = self.floats(slot)
            cached = (matrix, np.isfinite(matrix))
            self._matrices[slots] = cached
        return cached

    def _leading_columns(self, slots: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray] | None:
        k = len(slots)
        for built, (matrix, finite) in self._matrices.items():
            if built[:k] == slots:
                return matrix[:, :k], finite[:, :k]
        return None


def _combined(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(column, pa.ChunkedArray):
        return column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    return column


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
