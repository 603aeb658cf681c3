"""CellMomentsState: moments of a numeric target in every cell of two categorical columns.

The two-way analysis of variance of a target over factors A x B needs, for each cell
(a, b), the count, mean and central sum of squares of the target (see
:mod:`spark_explore.stats.anova`). This state keeps exactly that, plus M3 and M4, next to the
row counts of :class:`~spark_explore.states.contingency.ContingencyState`, whose level
machinery it extends: levels are labelled by their text, null is a level of its own, and
each axis keeps at most ``max_levels`` levels and folds the others into an "other" level by
the split-independent rule of :mod:`spark_explore.states.grouped`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from spark_explore.states import _algebra
from spark_explore.states._codec import Fields
from spark_explore.states.batch import Batch
from spark_explore.states.contingency import ContingencyState, _axis, _labels
from spark_explore.states.grouped import (
    Fold,
    _reindex_moments,
    bucket_moments,
    with_other,
)


class CellMomentsState(ContingencyState):
    """Row counts, and count, mean and central sums M2..M4 of a numeric target, for every
    (row level, column level) cell of two categorical columns.

    Everything :class:`~spark_explore.states.contingency.ContingencyState` offers (the
    count table, the level cap and its fold summaries) holds here too; in addition each
    cell, the "other" row and column included, keeps a
    :class:`~spark_explore.states._algebra.Moments` entry of the target over its rows'
    finite target values (null, NaN and infinities are left out of the moments but the row
    is still counted in the table).

    Parameters
    ----------
    target_slot
        The numeric batch column whose moments are kept.
    row_slot, col_slot
        The categorical batch columns (string, boolean or integer) of the two factors.
    max_levels
        Largest number of levels kept exactly per factor (the null level counts as one).
    give_up
        Instead of folding, stop keeping cells once either factor shows more than
        ``max_levels`` distinct levels, as
        :class:`~spark_explore.states.contingency.ContingencyState` does; :attr:`abandoned`
        then says so and only rows are counted.

    Raises
    ------
    InvalidArgumentError
        ``max_levels`` is not a positive integer; from :meth:`update`, a factor column that
        is not a string, boolean or integer column.

    See Also
    --------
    GroupedMomentsState : moments per level of one factor.
    spark_explore.stats.anova.two_way_interaction : the test these statistics feed.

    Notes
    -----
    Each batch is dictionary-encoded per factor; its rows are sorted by cell once and
    every non-empty cell is reduced with the corrected two-pass algorithm of Chan, Golub
    and LeVeque [1]_; cells are merged with the pairwise formulas of [1]_ and Pébay [2]_
    (:mod:`spark_explore.states._algebra`). When the cap folds a level, the moments of its
    cells are merged into the "other" cell of the same row or column. The merge is
    associative and commutative, the counts exactly and the moments up to rounding.
    Memory is ``6 (max_levels + 1)**2`` doubles on top of the contingency table.

    References
    ----------
    .. [1] T. F. Chan, G. H. Golub and R. J. LeVeque, "Algorithms for computing the sample
       variance: analysis and recommendations", The American Statistician 37(3), 1983,
       pp. 242-247.
    .. [2] P. Pébay, "Formulas for robust, one-pass parallel computation of covariances and
       arbitrary-order statistical moments", Sandia Report SAND2008-6212, 2008.

    Examples
    --------
    >>> import pyarrow as pa
    >>> state = CellMomentsState.empty("y", "a", "b")
    >>> data = {"y": [1.0, 3.0, 5.0, None], "a": ["x", "x", "y", "y"],
    ...         "b": ["u", "u", "u", "v"]}
    >>> state.update(Batch(pa.record_batch(data)))
    >>> rows, cols, counts, moments = state.cells()
    >>> rows, cols, counts.tolist()
    (['x', 'y'], ['u', 'v'], [[2, 0], [1, 1]])
    >>> moments.n.tolist(), moments.mean.tolist()
    ([[2.0, 0.0], [1.0, 0.0]], [[2.0, 0.0], [5.0, 0.0]])
    """

    kind = "cell_moments"

    def __init__(
        self,
        target_slot: str,
        row_slot: str,
        col_slot: str,
        max_levels: int = 50,
        give_up: bool = False,
    ) -> None:
        super().__init__(row_slot, col_slot, max_levels, give_up)
        self.target_slot = target_slot
        self._moments = _no_cells()

    @classmethod
    def empty(  # type: ignore[override]
        cls,
        target_slot: str,
        row_slot: str,
        col_slot: str,
        max_levels: int = 50,
        give_up: bool = False,
    ) -> CellMomentsState:
        """The identity element for these columns and cap."""
        return cls(target_slot, row_slot, col_slot, max_levels, give_up)

    def cells(
        self, drop_null: bool = False, include_other: bool = True
    ) -> tuple[list[str | None | Fold], list[str | None | Fold], np.ndarray, _algebra.Moments]:
        """The count table and the target's moments per cell.

        Parameters
        ----------
        drop_null, include_other
            As in :meth:`~spark_explore.states.contingency.ContingencyState.table`.

        Returns
        -------
        row_levels, col_levels, counts, moments
            The levels of each axis, the ``int64`` row counts and the target's moments,
            each field an array of shape ``(len(row_levels), len(col_levels))``. A cell
            with no finite target value has ``moments.n == 0``.
        """
        rows = _axis(self._row_levels, self._counts.sum(axis=1), drop_null, include_other)
        cols = _axis(self._col_levels, self._counts.sum(axis=0), drop_null, include_other)
        pick = np.ix_(rows, cols)
        moments = _algebra.Moments(*(field[pick].copy() for field in self._moments))
        return (
            _labels(self._row_levels, rows),
            _labels(self._col_levels, cols),
            self._counts[pick].copy(),
            moments,
        )

    def update(self, batch: Batch) -> None:
        """Absorb a batch: one dictionary encoding per factor, one ``bincount`` for the
        table and one moment reduction per non-empty cell."""
        cells = self._batch_cells(batch)
        if cells is None:
            return
        shape = self._counts.shape
        sizes = np.bincount(cells, minlength=self._counts.size)
        self._counts += sizes.reshape(shape)
        values = batch.float_values((self.target_slot,))
        skipped = batch.skipped((self.target_slot,))
        part = bucket_moments(values, None, cells, self._counts.size, sizes, skipped)
        self._moments = _algebra.merge_moments(
            self._moments, _algebra.Moments(*(field.reshape(shape) for field in part))
        )

    def _relevel_rows(self, incoming: list[str | None]) -> np.ndarray:
        before = self._row_levels
        target = super()._relevel_rows(incoming)
        if self._row_levels != before:
            self._moments = _reindex_moments(self._moments, _moves(before, self._row_levels))
        return target

    def _relevel_cols(self, incoming: list[str | None]) -> np.ndarray:
        before = self._col_levels
        target = super()._relevel_cols(incoming)
        if self._col_levels != before:
            moved = _reindex_moments(_transposed(self._moments), _moves(before, self._col_levels))
            self._moments = _transposed(moved)
        return target

    def _abandon(self, extra_rows: int = 0) -> None:
        super()._abandon(extra_rows)
        self._moments = _no_cells()

    def _merge_key(self) -> Any:
        return (self.target_slot, super()._merge_key())

    def _merge_in_place(self, other: CellMomentsState) -> None:  # type: ignore[override]
        super()._merge_in_place(other)  # relevels self (moving its moments), adds the counts
        if self.abandoned:
            return
        theirs = _reindex_moments(other._moments, _moves(other._row_levels, self._row_levels))
        theirs = _transposed(
            _reindex_moments(_transposed(theirs), _moves(other._col_levels, self._col_levels))
        )
        self._moments = _algebra.merge_moments(self._moments, theirs)

    def _fields(self) -> Fields:
        fields = super()._fields()
        fields["target_slot"] = self.target_slot
        fields.update({f"m_{name}": value for name, value in self._moments._asdict().items()})
        return fields

    @classmethod
    def _from_fields(cls, fields: Fields) -> CellMomentsState:
        table = ContingencyState._from_fields(fields)
        state = cls(
            fields["target_slot"], table.row_slot, table.col_slot, table.max_levels, table.give_up
        )
        state.__dict__.update(vars(table))  # levels, counts, level sketches, abandoned
        shape = state._counts.shape
        state._moments = _algebra.Moments(
            *(
                np.asarray(fields[f"m_{name}"], dtype=np.float64).reshape(shape)
                for name in _algebra.Moments._fields
            )
        )
        return state


def _moves(before: list[str | None], after: list[str | None]) -> np.ndarray:
    """For each index of an old level list (and its other bucket), the index in ``after``.

    Levels missing from ``after`` were folded and go to its other bucket; this is the
    target array :func:`~spark_explore.states.grouped.fold_union` returns for them.
    """
    position = {level: i for i, level in enumerate(after)}
    target = np.array([position.get(level, len(after)) for level in before], dtype=np.intp)
    return with_other(target, len(after))


def _no_cells() -> _algebra.Moments:
    """Moments of the empty table: the other cell only."""
    return _algebra.Moments(*(np.zeros((1, 1)) for _ in _algebra.Moments._fields))


def _transposed(moments: _algebra.Moments) -> _algebra.Moments:
    return _algebra.Moments(*(field.T for field in moments))
