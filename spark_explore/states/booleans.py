"""BooleanState: exact true and false counts of a block of boolean columns."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from spark_explore.errors import InvalidArgumentError
from spark_explore.states._codec import Fields
from spark_explore.states.base import State
from spark_explore.states.batch import Batch


class BooleanState(State):
    """True and false counts of k boolean columns; nulls are in neither count.

    Parameters
    ----------
    slots
        Names of the boolean batch columns this state reads.

    Raises
    ------
    InvalidArgumentError
        From :meth:`update`, when a slot's Arrow type is not ``bool``.

    Notes
    -----
    Each batch contributes the set and unset bits of every array under its validity bitmap
    [1]_ (Arrow's ``true_count`` / ``false_count``), so no row-level Python runs. Merging
    adds counts, which is associative and commutative exactly.

    References
    ----------
    .. [1] Apache Arrow, "Arrow Columnar Format", sections "Validity bitmaps" and
       "Fixed-size primitive layout" (booleans are bit-packed),
       https://arrow.apache.org/docs/format/Columnar.html

    Examples
    --------
    >>> import pyarrow as pa
    >>> state = BooleanState.empty(("flag",))
    >>> state.update(Batch(pa.record_batch({"flag": [True, None, False, True]})))
    >>> state.counts("flag")
    (2, 1)
    """

    kind = "boolean"

    def __init__(self, slots: tuple[str, ...]) -> None:
        self.slots = tuple(slots)
        self.true_counts = np.zeros(len(self.slots), dtype=np.int64)
        self.false_counts = np.zeros(len(self.slots), dtype=np.int64)

    @classmethod
    def empty(cls, slots: tuple[str, ...]) -> BooleanState:
        """The identity element for these columns."""
        return cls(slots)

    @property
    def n(self) -> int:
        """Non-null values absorbed, over all columns."""
        return int(self.true_counts.sum() + self.false_counts.sum())

    def update(self, batch: Batch) -> None:
        """Absorb the batch's values of this state's slots."""
        if not self.slots or batch.num_rows == 0:
            return
        trues = np.empty(len(self.slots), dtype=np.int64)
        falses = np.empty(len(self.slots), dtype=np.int64)
        for j, slot in enumerate(self.slots):
            array = batch.column(slot)
            if pa.types.is_null(array.type):
                trues[j] = falses[j] = 0
                continue
            if not pa.types.is_boolean(array.type):
                raise InvalidArgumentError(
                    f"`BooleanState` reads boolean columns; slot `{slot}` is {array.type}.",
                    column=slot,
                    expected="bool",
                    got=str(array.type),
                )
            trues[j] = array.true_count
            falses[j] = array.false_count
        self.true_counts += trues
        self.false_counts += falses

    def counts(self, slot: str) -> tuple[int, int]:
        """``(true, false)`` counts of one slot."""
        j = self.slots.index(slot)
        return int(self.true_counts[j]), int(self.false_counts[j])

    def _merge_key(self) -> Any:
        return self.slots

    def _merge_in_place(self, other: BooleanState) -> None:
        self.true_counts = self.true_counts + other.true_counts
        self.false_counts = self.false_counts + other.false_counts

    def _fields(self) -> Fields:
        return {
            "slots": list(self.slots),
            "true_counts": self.true_counts,
            "false_counts": self.false_counts,
        }

    @classmethod
    def _from_fields(cls, fields: Fields) -> BooleanState:
        state = cls(tuple(fields["slots"]))
        state.true_counts = np.asarray(fields["true_counts"], dtype=np.int64)
        state.false_counts = np.asarray(fields["false_counts"], dtype=np.int64)
        return state
