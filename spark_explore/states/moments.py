"""MomentsState: exact counts, extremes and central moments of a block of numeric columns."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from spark_explore.states import _algebra
from spark_explore.states._codec import Fields
from spark_explore.states.base import State
from spark_explore.states.batch import Batch

#: How the exact minimum and maximum of a column are kept: not at all (floats, whose float64
#: extremes are already exact), as Python ints (integers, dates, timestamps) or as decimals.
EXACT_KINDS = ("", "int", "decimal")

_COUNTS = ("nan", "posinf", "neginf", "zeros", "negatives")


class MomentsState(State):
    """Counts, finite extremes and central moments M2..M4 of k numeric columns.

    Null and NaN are counted apart, as are +inf and -inf; the moments, zeros, negatives and
    float extremes are over finite values only. Columns whose exact kind is ``"int"`` or
    ``"decimal"`` also keep their extremes exactly (a bigint near 2**63 or a decimal(38, 0)
    does not survive a float64 round trip).

    Parameters
    ----------
    slots
        Names of the batch columns this state reads.
    exact
        One entry of :data:`EXACT_KINDS` per slot.
    """

    kind = "moments"

    def __init__(self, slots: tuple[str, ...], exact: tuple[str, ...] | None = None) -> None:
        self.slots = tuple(slots)
        self.exact = tuple(exact) if exact is not None else ("",) * len(self.slots)
        if len(self.exact) != len(self.slots) or set(self.exact) - set(EXACT_KINDS):
            raise ValueError(f"`exact` must give one of {EXACT_KINDS} per slot")
        k = len(self.slots)
        self.moments = _algebra.Moments.zeros(k)
        self.counts = {name: np.zeros(k, dtype=np.int64) for name in _COUNTS}
        self.fmin = np.full(k, np.inf)
        self.fmax = np.full(k, -np.inf)
        self.exact_min: list[Any] = [None] * k
        self.exact_max: list[Any] = [None] * k

    @classmethod
    def empty(cls, slots: tuple[str, ...], exact: tuple[str, ...] | None = None) -> MomentsState:
        """The identity element for these columns."""
        return cls(slots, exact)

    @property
    def n(self) -> int:
        """Non-null values absorbed (finite, NaN and infinite), over all columns."""
        non_finite = self.counts["nan"] + self.counts["posinf"] + self.counts["neginf"]
        return int(self.moments.n.sum() + non_finite.sum())

    def update(self, batch: Batch) -> None:
        """Absorb the batch's values of this state's slots (vectorised over columns)."""
        if not self.slots or batch.num_rows == 0:
            return
        values = batch.float_values(self.slots)
        row, col = batch.skipped(self.slots)
        k = len(self.slots)
        null_counts = np.array([batch.column(s).null_count for s in self.slots])
        # NaN and infinities are told apart among the few entries that are not finite
        odd = values[row, col]
        nan = np.bincount(col[np.isnan(odd)], minlength=k)
        posinf = np.bincount(col[odd == np.inf], minlength=k)
        neginf = np.bincount(col[odd == -np.inf], minlength=k)
        zeros = np.empty(k, dtype=np.int64)
        negatives = np.empty(k, dtype=np.int64)
        for j in range(k):
            column = values[:, j]
            zeros[j] = np.count_nonzero(column == 0)
            negatives[j] = np.count_nonzero(column < 0)
        counts = {
            "nan": nan - null_counts,
            "posinf": posinf,
            "neginf": neginf,
            "zeros": zeros,
            "negatives": negatives - neginf,
        }
        for name, value in counts.items():
            self.counts[name] += value
        low, high = batch.finite_extremes(self.slots)
        self.fmin = np.minimum(self.fmin, low)
        self.fmax = np.maximum(self.fmax, high)
        batch_moments = _algebra.batch_moments(values, None, (low, high), (row, col))
        self.moments = _algebra.merge_moments(self.moments, batch_moments)
        for j, slot in enumerate(self.slots):
            if self.exact[j]:
                column = batch.column(slot)
                low_j, high_j = _exact_extremes(column, values[:, j], low[j], high[j])
                self._absorb_exact(j, low_j, high_j)

    def _absorb_exact(self, j: int, low: Any, high: Any) -> None:
        if low is None:
            return
        if self.exact_min[j] is None or low < self.exact_min[j]:
            self.exact_min[j] = low
        if self.exact_max[j] is None or high > self.exact_max[j]:
            self.exact_max[j] = high

    def _merge_key(self) -> Any:
        return (self.slots, self.exact)

    def _merge_in_place(self, other: MomentsState) -> None:
        self.moments = _algebra.merge_moments(self.moments, other.moments)
        for name in _COUNTS:
            self.counts[name] = self.counts[name] + other.counts[name]
        self.fmin = np.minimum(self.fmin, other.fmin)
        self.fmax = np.maximum(self.fmax, other.fmax)
        for j in range(len(self.slots)):
            self._absorb_exact(j, other.exact_min[j], other.exact_max[j])

    def _fields(self) -> Fields:
        fields: Fields = {"slots": list(self.slots), "exact": list(self.exact)}
        fields.update({f"m_{name}": value for name, value in self.moments._asdict().items()})
        fields.update({f"count_{name}": value for name, value in self.counts.items()})
        fields["fmin"], fields["fmax"] = self.fmin, self.fmax
        fields["exact_min"] = [_text(v) for v in self.exact_min]
        fields["exact_max"] = [_text(v) for v in self.exact_max]
        return fields

    @classmethod
    def _from_fields(cls, fields: Fields) -> MomentsState:
        state = cls(tuple(fields["slots"]), tuple(fields["exact"]))
        state.moments = _algebra.Moments(
            *(fields[f"m_{name}"] for name in _algebra.Moments._fields)
        )
        state.counts = {name: fields[f"count_{name}"] for name in _COUNTS}
        state.fmin, state.fmax = fields["fmin"], fields["fmax"]
        state.exact_min = [_parse(t, k) for t, k in zip(fields["exact_min"], state.exact)]
        state.exact_max = [_parse(t, k) for t, k in zip(fields["exact_max"], state.exact)]
        return state

    def column_index(self, slot: str) -> int:
        """Position of a slot in this state's arrays."""
        return self.slots.index(slot)


def _exact_extremes(
    array: pa.Array, values: np.ndarray, low: float, high: float
) -> tuple[Any, Any]:
    """Exact minimum and maximum of an integer, decimal, date or timestamp array, given
    its conversion to float64 ``values`` and their finite extremes ``low`` and ``high``.

    Integers strictly between -2**53 and 2**53 convert to float64 exactly and larger ones
    do not convert into that range, so integer extremes in it are the float64 ones. Else,
    as the conversion never reverses the order of two values, the exact extremes are
    among the entries whose float64 value is an extreme, and only those are compared.
    """
    if not low <= high:
        return None, None  # all null
    kind = array.type
    temporal = pa.types.is_timestamp(kind) or pa.types.is_date(kind) or pa.types.is_duration(kind)
    if (temporal or pa.types.is_integer(kind)) and -_EXACT < low <= high < _EXACT:
        return int(low), int(high)
    if temporal:
        array = array.cast(pa.int64() if not pa.types.is_date32(kind) else pa.int32())
    smallest = pc.min(array.take(np.flatnonzero(values == low)))
    largest = pc.max(array.take(np.flatnonzero(values == high)))
    return smallest.as_py(), largest.as_py()


#: Integers of smaller magnitude are exact in float64.
_EXACT = 2.0**53


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _parse(text: str, exact_kind: str) -> Any:
    if not text:
        return None
    return int(text) if exact_kind == "int" else Decimal(text)
