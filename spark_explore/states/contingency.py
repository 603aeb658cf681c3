"""ContingencyState: exact counts of the level pairs of two categorical columns."""

from __future__ import annotations

from typing import Any

import numpy as np

from spark_explore.states._codec import Fields
from spark_explore.states.base import State
from spark_explore.states.batch import Batch
from spark_explore.states.grouped import (
    OTHER,
    Fold,
    FoldSummary,
    batch_level_codes,
    checked_cap,
    fold_summary,
    fold_union,
    join_levels,
    kmv_hashes,
    kmv_union,
    level_bytes,
    level_order,
    level_rank,
    reindex_counts,
    split_levels,
    too_many,
    with_other,
)


class ContingencyState(State):
    """Counts of every (row level, column level) pair of two categorical columns.

    Both columns are string, boolean or integer columns; null is a level of its own
    (``None``), and levels are labelled by their text and listed in text order, null last.
    Each axis keeps at most ``max_levels`` levels exactly and folds the others into an
    "other" level (:data:`~spark_explore.states.grouped.OTHER`), by the rule of
    :mod:`~spark_explore.states.grouped`: the kept levels are those of smallest rank (null
    first, then a 64-bit hash of the text), so the fold does not depend on the split of the
    rows or the merge order, and the kept levels are a deterministic pseudo-random choice,
    not the most frequent.

    Parameters
    ----------
    row_slot, col_slot
        The categorical batch columns of the table's rows and columns.
    max_levels
        Largest number of levels kept exactly per axis (the null level counts as one).
    give_up
        Instead of folding, stop counting pairs once either column shows more than
        ``max_levels`` distinct levels (see
        :class:`~spark_explore.states.grouped.GroupedMomentsState`); :attr:`abandoned`
        then says so and only rows are counted.

    Raises
    ------
    InvalidArgumentError
        ``max_levels`` is not a positive integer; from :meth:`update`, a column that is not
        a string, boolean or integer column.

    Notes
    -----
    Each batch is dictionary-encoded per column and counted with one ``bincount`` over the
    pair codes. Merging re-indexes both tables to the union's kept levels and adds them,
    which is associative and commutative exactly. Memory is ``(max_levels + 1)**2``
    integers plus the level texts and two sketches of
    :data:`~spark_explore.states.grouped.DISTINCT_SKETCH_SIZE` hashes.

    Examples
    --------
    >>> import pyarrow as pa
    >>> state = ContingencyState.empty("a", "b")
    >>> data = {"a": ["x", "x", "y", None], "b": [True, False, True, True]}
    >>> state.update(Batch(pa.record_batch(data)))
    >>> rows, cols, table = state.table()
    >>> rows, cols, table.tolist()
    (['x', 'y', None], ['false', 'true'], [[1, 1], [0, 1], [0, 1]])
    """

    kind = "contingency"

    def __init__(
        self, row_slot: str, col_slot: str, max_levels: int = 50, give_up: bool = False
    ) -> None:
        self.row_slot = row_slot
        self.col_slot = col_slot
        self.max_levels = checked_cap("max_levels", max_levels)
        self.give_up = bool(give_up)
        self.abandoned = False
        self._row_levels: list[str | None] = []
        self._col_levels: list[str | None] = []
        self._counts = np.zeros((1, 1), dtype=np.int64)
        self._row_hashes = np.zeros(0, dtype=np.uint64)
        self._col_hashes = np.zeros(0, dtype=np.uint64)

    @classmethod
    def empty(
        cls, row_slot: str, col_slot: str, max_levels: int = 50, give_up: bool = False
    ) -> ContingencyState:
        """The identity element for these columns and cap."""
        return cls(row_slot, col_slot, max_levels, give_up)

    @property
    def n(self) -> int:
        """Rows absorbed."""
        return int(self._counts.sum())

    @property
    def row_fold(self) -> FoldSummary:
        """Distinct row levels folded into the other row, and the rows they hold."""
        rows = int(self._counts[-1, :].sum())
        return fold_summary(self._row_hashes, len(self._row_levels), rows)

    @property
    def col_fold(self) -> FoldSummary:
        """Distinct column levels folded into the other column, and the rows they hold."""
        rows = int(self._counts[:, -1].sum())
        return fold_summary(self._col_hashes, len(self._col_levels), rows)

    def table(
        self, drop_null: bool = False, include_other: bool = True
    ) -> tuple[list[str | None | Fold], list[str | None | Fold], np.ndarray]:
        """The contingency table.

        Parameters
        ----------
        drop_null
            Leave out the null level of both axes (and the rows that have a null in
            either column).
        include_other
            Add the other level of an axis (labelled ``OTHER``) when it holds any row.

        Returns
        -------
        row_levels, col_levels, counts
            The levels of each axis and the ``int64`` count matrix, rows by columns.
        """
        rows = _axis(self._row_levels, self._counts.sum(axis=1), drop_null, include_other)
        cols = _axis(self._col_levels, self._counts.sum(axis=0), drop_null, include_other)
        counts = self._counts[np.ix_(rows, cols)].copy()
        return _labels(self._row_levels, rows), _labels(self._col_levels, cols), counts

    def update(self, batch: Batch) -> None:
        """Absorb a batch: one dictionary encoding per column and one ``bincount``."""
        cells = self._batch_cells(batch)
        if cells is not None:
            self._counts += np.bincount(cells, minlength=self._counts.size).reshape(
                self._counts.shape
            )

    def _batch_cells(self, batch: Batch) -> np.ndarray | None:
        """The flat cell index of each row of the batch, after re-levelling both axes to
        the batch's levels; None when there is nothing more to count per cell (an empty
        batch, or a state that has given up, whose rows are counted here)."""
        if batch.num_rows == 0:
            return None
        if self.abandoned:
            self._counts[-1, -1] += batch.num_rows
            return None
        owner = type(self).__name__
        batch_rows, row_codes = batch_level_codes(batch, self.row_slot, owner)
        batch_cols, col_codes = batch_level_codes(batch, self.col_slot, owner)
        if self.give_up and (
            too_many(self._row_levels, batch_rows, self.max_levels)
            or too_many(self._col_levels, batch_cols, self.max_levels)
        ):
            self._abandon(extra_rows=batch.num_rows)
            return None
        r = self._relevel_rows(batch_rows)[row_codes]
        c = self._relevel_cols(batch_cols)[col_codes]
        self._row_hashes = kmv_union(self._row_hashes, kmv_hashes(_keys(batch_rows)))
        self._col_hashes = kmv_union(self._col_hashes, kmv_hashes(_keys(batch_cols)))
        return r * self._counts.shape[1] + c

    def _relevel_rows(self, incoming: list[str | None]) -> np.ndarray:
        levels, own, theirs = fold_union(
            self._row_levels, incoming, self.max_levels, level_rank, level_order
        )
        size = len(levels)
        if levels != self._row_levels:
            identity = np.arange(self._counts.shape[1], dtype=np.intp)
            self._counts = reindex_counts(self._counts, [with_other(own, size), identity])
            self._row_levels = levels
        return with_other(theirs, size)

    def _relevel_cols(self, incoming: list[str | None]) -> np.ndarray:
        levels, own, theirs = fold_union(
            self._col_levels, incoming, self.max_levels, level_rank, level_order
        )
        size = len(levels)
        if levels != self._col_levels:
            identity = np.arange(self._counts.shape[0], dtype=np.intp)
            self._counts = reindex_counts(self._counts, [identity, with_other(own, size)])
            self._col_levels = levels
        return with_other(theirs, size)

    def _abandon(self, extra_rows: int = 0) -> None:
        """Drop the table, keeping only the row count."""
        rows = self.n + extra_rows
        self.abandoned = True
        self._row_levels, self._col_levels = [], []
        self._counts = np.array([[rows]], dtype=np.int64)
        self._row_hashes = np.zeros(0, dtype=np.uint64)
        self._col_hashes = np.zeros(0, dtype=np.uint64)

    def _merge_key(self) -> Any:
        return (self.row_slot, self.col_slot, self.max_levels, self.give_up)

    def _merge_in_place(self, other: ContingencyState) -> None:
        if self.give_up and (
            self.abandoned
            or other.abandoned
            or too_many(self._row_levels, other._row_levels, self.max_levels)
            or too_many(self._col_levels, other._col_levels, self.max_levels)
        ):
            self._abandon(extra_rows=other.n)
            return
        row_target = self._relevel_rows(other._row_levels)
        col_target = self._relevel_cols(other._col_levels)
        moved = reindex_counts(other._counts, [row_target, col_target])
        self._counts = self._counts + moved
        self._row_hashes = kmv_union(self._row_hashes, other._row_hashes)
        self._col_hashes = kmv_union(self._col_hashes, other._col_hashes)

    def _fields(self) -> Fields:
        row_texts, row_null = split_levels(self._row_levels)
        col_texts, col_null = split_levels(self._col_levels)
        return {
            "row_slot": self.row_slot,
            "col_slot": self.col_slot,
            "max_levels": self.max_levels,
            "give_up": self.give_up,
            "abandoned": self.abandoned,
            "row_levels": row_texts,
            "row_has_null": row_null,
            "col_levels": col_texts,
            "col_has_null": col_null,
            "counts": self._counts,
            "row_hashes": self._row_hashes,
            "col_hashes": self._col_hashes,
        }

    @classmethod
    def _from_fields(cls, fields: Fields) -> ContingencyState:
        state = cls(
            fields["row_slot"],
            fields["col_slot"],
            int(fields["max_levels"]),
            bool(fields["give_up"]),
        )
        state.abandoned = bool(fields["abandoned"])
        state._row_levels = join_levels(fields["row_levels"], bool(fields["row_has_null"]))
        state._col_levels = join_levels(fields["col_levels"], bool(fields["col_has_null"]))
        shape = (len(state._row_levels) + 1, len(state._col_levels) + 1)
        state._counts = np.asarray(fields["counts"], dtype=np.int64).reshape(shape)
        state._row_hashes = np.asarray(fields["row_hashes"], dtype=np.uint64)
        state._col_hashes = np.asarray(fields["col_hashes"], dtype=np.uint64)
        return state


def _keys(levels: list[str | None]) -> list[bytes]:
    return [level_bytes(level) for level in levels]


def _axis(
    levels: list[str | None], totals: np.ndarray, drop_null: bool, include_other: bool
) -> np.ndarray:
    """Indices of one axis to show: the kept levels (less null) and other when non-empty."""
    keep = [i for i, level in enumerate(levels) if not (drop_null and level is None)]
    if include_other and totals[-1] > 0:
        keep.append(len(levels))
    return np.array(keep, dtype=np.intp)


def _labels(levels: list[str | None], indices: np.ndarray) -> list[str | None | Fold]:
    return [OTHER if i == len(levels) else levels[i] for i in indices.tolist()]
