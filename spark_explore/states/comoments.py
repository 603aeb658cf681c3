"""CoMomentState: pairwise-complete co-moments of numeric columns (correlation, VIF)."""

from __future__ import annotations

from typing import Any

import numpy as np

from spark_explore.states import _algebra
from spark_explore.states._codec import Fields
from spark_explore.states.base import State
from spark_explore.states.batch import Batch


class CoMomentState(State):
    """Counts, means, M2 and co-moments of every pair of k columns over rows where both
    values are finite.

    Pairwise-complete statistics give each pair all the rows it can use; a correlation
    matrix built from them need not be positive semi-definite when missingness differs
    between columns, which the collinearity protocol checks. Memory is ``4 k**2`` doubles,
    bounded by ``ScanConfig.max_comoment_columns``.

    Parameters
    ----------
    slots
        The batch columns, in matrix order.
    """

    kind = "comoments"

    def __init__(self, slots: tuple[str, ...]) -> None:
        self.slots = tuple(slots)
        self.comoments = _algebra.CoMoments.zeros(len(self.slots))

    @classmethod
    def empty(cls, slots: tuple[str, ...]) -> CoMomentState:
        """The identity element for these columns."""
        return cls(slots)

    @property
    def n(self) -> int:
        """Rows where the most complete column pair is finite."""
        return int(self.comoments.n.max()) if self.slots else 0

    def update(self, batch: Batch) -> None:
        """Absorb a batch: one ``(rows, k)`` matrix product per batch."""
        if not self.slots or batch.num_rows == 0:
            return
        values = batch.float_values(self.slots)
        skipped = batch.skipped(self.slots)
        extremes = batch.finite_extremes(self.slots)
        self.comoments = _algebra.merge_comoments(
            self.comoments, _algebra.batch_comoments(values, None, skipped, extremes)
        )

    def _merge_key(self) -> Any:
        return self.slots

    def _merge_in_place(self, other: CoMomentState) -> None:
        self.comoments = _algebra.merge_comoments(self.comoments, other.comoments)

    def correlation(self) -> np.ndarray:
        """Pearson correlation matrix; NaN where a pair has fewer than 2 rows, a column is
        constant over the pair's rows, or its M2 there overflows float64 (the coefficient is
        undefined there, or not computable)."""
        c = self.comoments
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            # sqrt(m2_i) * sqrt(m2_j), not sqrt(m2_i * m2_j): the product overflows for
            # columns near 1e160, which would make r silently 0
            denominator = np.sqrt(c.m2) * np.sqrt(c.m2.T)
            usable = (c.n >= 2) & (denominator > 0) & np.isfinite(denominator)
            r = np.where(usable & np.isfinite(c.c), c.c / denominator, np.nan)
        diagonal = np.diag_indices_from(r)
        r[diagonal] = np.where(np.isnan(r[diagonal]), np.nan, 1.0)  # not 1 +- rounding
        return np.clip(r, -1.0, 1.0)

    def covariance(self, ddof: int = 1) -> np.ndarray:
        """Pairwise-complete covariance matrix; NaN where a pair has at most ``ddof`` rows."""
        c = self.comoments
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(c.n > ddof, c.c / (c.n - ddof), np.nan)

    def _fields(self) -> Fields:
        fields: Fields = {"slots": list(self.slots)}
        fields.update(self.comoments._asdict())
        return fields

    @classmethod
    def _from_fields(cls, fields: Fields) -> CoMomentState:
        state = cls(tuple(fields["slots"]))
        k = len(state.slots)
        state.comoments = _algebra.CoMoments(
            *(np.asarray(fields[name]).reshape(k, k) for name in _algebra.CoMoments._fields)
        )
        return state
