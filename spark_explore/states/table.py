"""TableState: the number of rows and the null count of every projected column."""

from __future__ import annotations

from typing import Any

import numpy as np

from spark_explore.states._codec import Fields
from spark_explore.states.base import State
from spark_explore.states.batch import Batch


class TableState(State):
    """Rows absorbed and per-slot null counts, exact.

    Nulls are Arrow nulls (unset validity bits); a float NaN is a value, counted by
    :class:`~spark_explore.states.moments.MomentsState`, not here.

    Parameters
    ----------
    slots
        Names of the batch columns this state counts nulls of; may be empty, in which case
        only rows are counted.

    Notes
    -----
    Each batch contributes the ``null_count`` Arrow keeps with every array, so an update
    costs O(columns), not O(rows). Merging adds counts, which is associative and
    commutative exactly.

    References
    ----------
    .. [1] Apache Arrow, "Arrow Columnar Format", section "Validity bitmaps",
       https://arrow.apache.org/docs/format/Columnar.html

    Examples
    --------
    >>> import pyarrow as pa
    >>> state = TableState.empty(("x",))
    >>> state.update(Batch(pa.record_batch({"x": [1, None, 3]})))
    >>> state.rows, state.null_count("x")
    (3, 1)
    """

    kind = "table"

    def __init__(self, slots: tuple[str, ...]) -> None:
        self.slots = tuple(slots)
        self.rows = 0
        self.nulls = np.zeros(len(self.slots), dtype=np.int64)

    @classmethod
    def empty(cls, slots: tuple[str, ...]) -> TableState:
        """The identity element for these columns."""
        return cls(slots)

    @property
    def n(self) -> int:
        """Rows absorbed."""
        return self.rows

    def update(self, batch: Batch) -> None:
        """Absorb one batch: add its row count and each slot's Arrow null count."""
        self.rows += batch.num_rows
        if self.slots and batch.num_rows:
            self.nulls += np.array(
                [batch.column(slot).null_count for slot in self.slots], dtype=np.int64
            )

    def null_count(self, slot: str) -> int:
        """Null values of one slot."""
        return int(self.nulls[self.slots.index(slot)])

    def _merge_key(self) -> Any:
        return self.slots

    def _merge_in_place(self, other: TableState) -> None:
        self.rows += other.rows
        self.nulls = self.nulls + other.nulls

    def _fields(self) -> Fields:
        return {"slots": list(self.slots), "rows": self.rows, "nulls": self.nulls}

    @classmethod
    def _from_fields(cls, fields: Fields) -> TableState:
        state = cls(tuple(fields["slots"]))
        state.rows = int(fields["rows"])
        state.nulls = np.asarray(fields["nulls"], dtype=np.int64)
        return state
