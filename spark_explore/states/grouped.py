"""GroupedMomentsState: exact moments of numeric columns per level of one categorical column.

The module also holds the level machinery that :mod:`~spark_explore.states.contingency` and
:mod:`~spark_explore.states.missing` share: turning a categorical Arrow column into level
codes, the deterministic cap that decides which levels are kept exactly and which are folded
into an "other" bucket, and a bottom-k sketch that estimates how many levels were folded.

How the cap stays mergeable
---------------------------
Which levels are the most frequent depends on every row, so a partial state cannot know
whether one of its levels will make the cut; keeping "the top ``max_groups``" would make the
result depend on how rows were split. Instead each level has a *rank* that depends on the
level alone: the null level first, then the 64-bit BLAKE2b hash of the level's text, then the
text. A state keeps the ``max_groups`` levels of smallest rank among all levels it has seen
and folds the rows of every other level into the "other" bucket. The smallest ranks of a
union are the smallest ranks of the parts' smallest ranks, and a level folded in a part is
folded in every union containing that part, so the kept set and the other bucket are the
same for every split of the rows and every merge order. Which levels survive is
deterministic and reproducible, but they are a pseudo-random choice, not the most frequent.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Callable, Hashable, Sequence
from typing import Any, NamedTuple, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from spark_explore.errors import InvalidArgumentError
from spark_explore.states import _algebra
from spark_explore.states._codec import Fields
from spark_explore.states.base import State
from spark_explore.states.batch import Batch

K = TypeVar("K", bound=Hashable)

#: Hashes kept by the bottom-k sketch that counts distinct levels; beyond this many levels
#: the count of folded levels is an estimate with relative standard error ``1/sqrt(k - 2)``.
DISTINCT_SKETCH_SIZE = 1024


class Fold(enum.Enum):
    """Label of the bucket that folded levels (beyond a state's cap) are counted in."""

    OTHER = "other"

    def __repr__(self) -> str:
        return "OTHER"


#: The label of the folded-levels bucket in level lists.
OTHER = Fold.OTHER


class FoldSummary(NamedTuple):
    """What a level cap folded away.

    ``levels`` distinct levels were folded (exact when ``exact``, otherwise a bottom-k
    estimate with relative standard error ``relative_error``); ``rows`` rows belong to them.
    """

    levels: int
    exact: bool
    relative_error: float
    rows: int


def key_hash(data: bytes) -> int:
    """64-bit BLAKE2b hash of a level key; stable across platforms and releases."""
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


def level_bytes(level: str | None) -> bytes:
    """The bytes a level is hashed as (null is distinct from every text)."""
    return b"\x00" if level is None else b"\x01" + level.encode("utf-8")


def level_rank(level: str | None) -> tuple[int, int, str]:
    """Cap rank of a level: null first, then by hash, ties by text (see the module notes)."""
    if level is None:
        return (0, 0, "")
    return (1, key_hash(level_bytes(level)), level)


def level_order(level: str | None) -> tuple[bool, str]:
    """Display order of levels: by text, null last."""
    return (level is None, level or "")


def batch_level_codes(batch: Batch, slot: str, owner: str) -> tuple[list[str | None], np.ndarray]:
    """:func:`level_codes` of a batch's slot, computed once for all the states that group by
    it; treat the result as read-only."""
    return batch.memo(("levels", slot), lambda: level_codes(batch.column(slot), slot, owner))


def level_codes(array: pa.Array, slot: str, owner: str) -> tuple[list[str | None], np.ndarray]:
    """Distinct levels of a categorical column and each row's index into them.

    Parameters
    ----------
    array
        A string, boolean or integer column (plain, dictionary-encoded or all-null).
    slot, owner
        The slot and the state class name, for the error message.

    Returns
    -------
    levels, codes
        The batch's distinct levels as text (``"true"``, ``"-3"``; null is ``None``) and an
        ``intp`` array giving each row's level.

    Raises
    ------
    InvalidArgumentError
        The column is of another type.
    """
    kind = array.type
    if pa.types.is_dictionary(kind):
        array = array.dictionary_decode()
        kind = array.type
    if pa.types.is_string_view(kind):
        array = array.cast(pa.large_string())
    elif not (
        pa.types.is_null(kind)
        or pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_integer(kind)
    ):
        raise InvalidArgumentError(
            f"`{owner}` groups by string, boolean or integer columns; slot `{slot}` is "
            f"{kind}. Bin the column or cast it to string first.",
            column=slot,
            expected="string, boolean or integer",
            got=str(kind),
        )
    if len(array) == 0:
        return [], np.zeros(0, dtype=np.intp)
    encoded = pc.dictionary_encode(array, null_encoding="encode")
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.intp)
    levels = pc.cast(encoded.dictionary, pa.string()).to_pylist()
    return levels, codes


def fold_union(
    kept: Sequence[K],
    incoming: Sequence[K],
    cap: int,
    rank: Callable[[K], Any],
    order: Callable[[K], Any],
) -> tuple[list[K], np.ndarray, np.ndarray]:
    """Keep the ``cap`` smallest-ranked keys of two key lists.

    Returns
    -------
    merged, kept_target, incoming_target
        The kept keys in display ``order``, and for each key of ``kept`` and ``incoming``
        its index in ``merged``, or ``len(merged)`` (the other bucket) when it is folded.
    """
    candidates = set(kept) | set(incoming)
    if len(candidates) > cap:
        candidates = set(sorted(candidates, key=rank)[:cap])
    merged = sorted(candidates, key=order)
    position = {key: i for i, key in enumerate(merged)}
    other = len(merged)
    kept_target = np.array([position.get(key, other) for key in kept], dtype=np.intp)
    incoming_target = np.array([position.get(key, other) for key in incoming], dtype=np.intp)
    return merged, kept_target, incoming_target


def kmv_union(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The ``DISTINCT_SKETCH_SIZE`` smallest distinct hashes of two sorted hash arrays."""
    return np.union1d(a, b).astype(np.uint64)[:DISTINCT_SKETCH_SIZE]


def kmv_hashes(keys: Sequence[bytes]) -> np.ndarray:
    """The sorted bottom-k hashes of a batch's distinct keys."""
    hashes = np.array([key_hash(key) for key in keys], dtype=np.uint64)
    return np.unique(hashes)[:DISTINCT_SKETCH_SIZE]


def fold_summary(hashes: np.ndarray, kept: int, rows: int) -> FoldSummary:
    """Folded levels from a bottom-k hash sketch of all levels and the number kept.

    Below ``DISTINCT_SKETCH_SIZE`` hashes the sketch holds every level and the count is
    exact; above, the k-minimum-values estimator ``(k - 1) / u_(k)`` of Bar-Yossef et al.
    [1]_ estimates the distinct levels, ``u_(k)`` being the k-th smallest hash scaled to
    (0, 1].

    References
    ----------
    .. [1] Z. Bar-Yossef, T. S. Jayram, R. Kumar, D. Sivakumar and L. Trevisan, "Counting
       distinct elements in a data stream", RANDOM 2002, LNCS 2483, pp. 1-10.
    """
    k = DISTINCT_SKETCH_SIZE
    if len(hashes) < k:
        return FoldSummary(len(hashes) - kept, True, 0.0, rows)
    estimate = (k - 1) * 2.0**64 / (float(hashes[k - 1]) + 1.0)
    return FoldSummary(max(int(round(estimate)) - kept, 0), False, 1.0 / np.sqrt(k - 2), rows)


def split_levels(levels: Sequence[str | None]) -> tuple[list[str], bool]:
    """Codec form of a level list in display order: the texts, and whether null is last."""
    has_null = bool(levels) and levels[-1] is None
    return [level for level in levels if level is not None], has_null


def join_levels(texts: Sequence[str], has_null: bool) -> list[str | None]:
    """Inverse of :func:`split_levels`."""
    return [*texts, None] if has_null else list(texts)


def reindex_counts(counts: np.ndarray, targets: Sequence[np.ndarray]) -> np.ndarray:
    """Move an n-d count array (last index of each axis: other) to new level positions.

    ``targets[axis]`` gives, for each old index including the old other bucket, the new
    index; the new array's last index on each axis is the new other bucket.
    """
    shape = tuple(int(t.max(initial=0)) + 1 for t in targets)
    out = np.zeros(shape, dtype=np.int64)
    np.add.at(out, np.ix_(*targets), counts)
    return out


def with_other(target: np.ndarray, size: int) -> np.ndarray:
    """A key target array extended by the old other bucket, which maps to the new one."""
    return np.append(target, size).astype(np.intp)


def _reindex_moments(moments: _algebra.Moments, target: np.ndarray) -> _algebra.Moments:
    """Move per-level moment rows (last: other) to new positions, folding dropped rows."""
    size = int(target[-1])
    shape = (size + 1, *moments.n.shape[1:])
    out = [np.zeros(shape, dtype=np.float64) for _ in moments]
    placed = target < size
    for old, new in zip(moments, out):
        new[target[placed]] = old[placed]
    result = _algebra.Moments(*out)
    for i in np.flatnonzero(~placed):
        row = _algebra.Moments(*(field[i : i + 1] for field in moments))
        other = _algebra.Moments(*(field[size : size + 1] for field in result))
        for field, value in zip(result, _algebra.merge_moments(other, row)):
            field[size] = value[0]
    return result


def bucket_moments(
    values: np.ndarray,
    finite: np.ndarray | None,
    buckets: np.ndarray,
    size: int,
    sizes: np.ndarray | None = None,
    skipped: tuple[np.ndarray, np.ndarray] | None = None,
) -> _algebra.Moments:
    """Moments of each column within each bucket of rows, shape ``(size, columns)``.

    The rows are gathered in bucket order (copied as they are when the batch holds one
    bucket) and the contiguous buckets are reduced together by
    :func:`~spark_explore.states._algebra.segment_moments_in_place`, so a bucket's moments
    are exactly those of its rows taken alone; empty buckets are the identity. ``sizes``
    (``np.bincount(buckets, minlength=size)``) and ``skipped`` (the entries where ``finite``
    is False, as :meth:`Batch.skipped` lists them) are taken from the caller if it has
    them; ``finite`` may then be None.
    """
    rows, columns = values.shape
    if sizes is None:
        sizes = np.bincount(buckets, minlength=size)
    row, col = _algebra.skipped_entries(finite) if skipped is None else skipped
    present = np.flatnonzero(sizes)
    out = [np.zeros((size, columns), dtype=np.float64) for _ in _algebra.Moments._fields]
    if not len(present):
        return _algebra.Moments(*out)
    runs = sizes[present]
    starts = np.cumsum(runs) - runs
    ordered = np.empty((rows, columns), order="F")
    if len(present) > 1:
        narrow = buckets.astype(np.int16) if size <= np.iinfo(np.int16).max else buckets
        order = np.argsort(narrow, kind="stable")  # a radix sort for 16-bit keys
        _algebra.gather_rows(values, order, out=ordered)
        if len(row):
            rank = np.empty(rows, dtype=np.intp)
            rank[order] = np.arange(rows)
            row = rank[row]
    else:
        np.copyto(ordered, values)
    part = _algebra.segment_moments_in_place(ordered, (row, col), starts, runs)
    for field, value in zip(out, part):
        field[present] = value
    return _algebra.Moments(*out)


class GroupedMomentsState(State):
    """Row counts, and count, mean and central sums M2..M4 of numeric columns, per level of
    one categorical column.

    Each level of the group column (a string, boolean or integer column; null is a level of
    its own, labelled ``None``) keeps its row count and, for every value column, a
    :class:`~spark_explore.states._algebra.Moments` entry over the finite values of its
    rows (null, NaN and infinities are left out). Levels are labelled by their text
    (``"true"``, ``"42"``) and listed in text order, null last.

    At most ``max_groups`` levels are kept exactly; the rows of the others are folded into
    one "other" bucket with its own counts and moments. The kept levels are those of
    smallest rank (null first, then a 64-bit hash of the text), which makes the fold
    independent of the split of the rows and of the merge order; they are therefore a
    deterministic pseudo-random choice, not the most frequent levels. :attr:`fold` reports
    how many distinct levels were folded (exactly up to ``DISTINCT_SKETCH_SIZE`` levels,
    estimated beyond) and how many rows they hold.

    Parameters
    ----------
    value_slots
        The numeric batch columns whose moments are kept.
    group_slot
        The categorical batch column that defines the groups.
    max_groups
        Largest number of levels kept exactly (the null level counts as one).
    give_up
        Instead of folding levels beyond ``max_groups`` into "other", stop keeping moments
        once the column shows more than ``max_groups`` distinct levels (it is then no
        grouping column: an id or free text). Only rows are counted from then on, and
        :attr:`abandoned` is True; whether that happens depends only on the column's
        distinct levels, so it does not depend on the split of the rows either.

    Raises
    ------
    InvalidArgumentError
        ``max_groups`` is not a positive integer; from :meth:`update`, the group column is
        not a string, boolean or integer column.

    Notes
    -----
    Each batch is sorted by group and each group's slice is reduced with the corrected
    two-pass algorithm; groups are merged with the pairwise formulas of Chan, Golub and
    LeVeque [1]_ and Pébay [2]_ (:mod:`spark_explore.states._algebra`). Counts merge by
    addition. The merge is associative and commutative, the moments up to rounding. Memory
    is ``6 (max_groups + 1) len(value_slots)`` doubles plus the level texts and a sketch of
    ``DISTINCT_SKETCH_SIZE`` hashes.

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
    >>> state = GroupedMomentsState.empty(("x",), "g")
    >>> data = {"x": [1.0, 3.0, 5.0, None], "g": ["a", "a", "b", None]}
    >>> state.update(Batch(pa.record_batch(data)))
    >>> state.levels(), state.counts.tolist()
    (['a', 'b', None], [2, 1, 1])
    >>> state.moments("x").mean.tolist()
    [2.0, 5.0, 0.0]
    """

    kind = "grouped_moments"

    def __init__(
        self,
        value_slots: tuple[str, ...],
        group_slot: str,
        max_groups: int = 50,
        give_up: bool = False,
    ) -> None:
        self.value_slots = tuple(value_slots)
        self.group_slot = group_slot
        self.max_groups = checked_cap("max_groups", max_groups)
        self.give_up = bool(give_up)
        self.abandoned = False
        self._levels: list[str | None] = []
        self._moments = _algebra.Moments(
            *(np.zeros((1, len(self.value_slots))) for _ in _algebra.Moments._fields)
        )
        self._counts = np.zeros(1, dtype=np.int64)
        self._hashes = np.zeros(0, dtype=np.uint64)

    @classmethod
    def empty(
        cls,
        value_slots: tuple[str, ...],
        group_slot: str,
        max_groups: int = 50,
        give_up: bool = False,
    ) -> GroupedMomentsState:
        """The identity element for these columns and cap."""
        return cls(value_slots, group_slot, max_groups, give_up)

    @property
    def n(self) -> int:
        """Rows absorbed (every row counts, whatever its values)."""
        return int(self._counts.sum())

    @property
    def counts(self) -> np.ndarray:
        """Rows of each kept level, in :meth:`levels` order (``int64``)."""
        return self._counts[:-1].copy()

    @property
    def other_count(self) -> int:
        """Rows of the folded levels."""
        return int(self._counts[-1])

    @property
    def fold(self) -> FoldSummary:
        """Distinct levels folded into the other bucket, and their rows."""
        return fold_summary(self._hashes, len(self._levels), self.other_count)

    def levels(self) -> list[str | None]:
        """The kept levels as text, in text order with null (``None``) last."""
        return list(self._levels)

    def moments(self, value_slot: str) -> _algebra.Moments:
        """Moments of one value column, one entry per kept level (arrays of shape ``(L,)``)."""
        j = self.value_slots.index(value_slot)
        return _algebra.Moments(*(field[:-1, j].copy() for field in self._moments))

    def other_moments(self, value_slot: str) -> _algebra.Moments:
        """Moments of one value column over the folded levels' rows (arrays of shape (1,))."""
        j = self.value_slots.index(value_slot)
        return _algebra.Moments(*(field[-1:, j].copy() for field in self._moments))

    def update(self, batch: Batch) -> None:
        """Absorb a batch: one sort by group and one moment reduction per kept group."""
        if batch.num_rows == 0:
            return
        if self.abandoned:
            self._counts[-1] += batch.num_rows
            return
        batch_levels, codes = batch_level_codes(batch, self.group_slot, type(self).__name__)
        if self.give_up and too_many(self._levels, batch_levels, self.max_groups):
            self._abandon(extra_rows=batch.num_rows)
            return
        levels, own, incoming = fold_union(
            self._levels, batch_levels, self.max_groups, level_rank, level_order
        )
        size = len(levels)
        self._relevel(levels, with_other(own, size))
        buckets = with_other(incoming, size)[codes]
        sizes = np.bincount(buckets, minlength=size + 1)
        self._counts += sizes
        if self.value_slots:
            values = batch.float_values(self.value_slots)
            skipped = batch.skipped(self.value_slots)
            part = bucket_moments(values, None, buckets, size + 1, sizes, skipped)
            self._moments = _algebra.merge_moments(self._moments, part)
        self._hashes = kmv_union(self._hashes, kmv_hashes([level_bytes(v) for v in batch_levels]))

    def _relevel(self, levels: list[str | None], target: np.ndarray) -> None:
        if levels == self._levels:
            return
        self._levels = levels
        self._counts = reindex_counts(self._counts, [target])
        self._moments = _reindex_moments(self._moments, target)

    def _abandon(self, extra_rows: int = 0) -> None:
        """Drop the levels and moments, keeping only the row count."""
        rows = self.n + extra_rows
        self.abandoned = True
        self._levels = []
        self._moments = _algebra.Moments(
            *(np.zeros((1, len(self.value_slots))) for _ in _algebra.Moments._fields)
        )
        self._counts = np.array([rows], dtype=np.int64)
        self._hashes = np.zeros(0, dtype=np.uint64)

    def _merge_key(self) -> Any:
        return (self.value_slots, self.group_slot, self.max_groups, self.give_up)

    def _merge_in_place(self, other: GroupedMomentsState) -> None:
        if self.give_up and (
            self.abandoned
            or other.abandoned
            or too_many(self._levels, other._levels, self.max_groups)
        ):
            self._abandon(extra_rows=other.n)
            return
        levels, own, theirs = fold_union(
            self._levels, other._levels, self.max_groups, level_rank, level_order
        )
        size = len(levels)
        self._relevel(levels, with_other(own, size))
        target = with_other(theirs, size)
        self._counts = self._counts + reindex_counts(other._counts, [target])
        self._moments = _algebra.merge_moments(
            self._moments, _reindex_moments(other._moments, target)
        )
        self._hashes = kmv_union(self._hashes, other._hashes)

    def _fields(self) -> Fields:
        texts, has_null = split_levels(self._levels)
        fields: Fields = {
            "value_slots": list(self.value_slots),
            "group_slot": self.group_slot,
            "max_groups": self.max_groups,
            "give_up": self.give_up,
            "abandoned": self.abandoned,
            "levels": texts,
            "has_null": has_null,
            "counts": self._counts,
            "level_hashes": self._hashes,
        }
        fields.update({f"m_{name}": value for name, value in self._moments._asdict().items()})
        return fields

    @classmethod
    def _from_fields(cls, fields: Fields) -> GroupedMomentsState:
        state = cls(
            tuple(fields["value_slots"]),
            fields["group_slot"],
            int(fields["max_groups"]),
            bool(fields["give_up"]),
        )
        state.abandoned = bool(fields["abandoned"])
        state._levels = join_levels(fields["levels"], bool(fields["has_null"]))
        state._counts = np.asarray(fields["counts"], dtype=np.int64)
        state._hashes = np.asarray(fields["level_hashes"], dtype=np.uint64)
        shape = (len(state._levels) + 1, len(state.value_slots))
        state._moments = _algebra.Moments(
            *(
                np.asarray(fields[f"m_{name}"], dtype=np.float64).reshape(shape)
                for name in _algebra.Moments._fields
            )
        )
        return state


def too_many(kept: Sequence[Any], incoming: Sequence[Any], cap: int) -> bool:
    """Whether two level lists together hold more than ``cap`` distinct levels."""
    if len(incoming) > cap or len(kept) > cap:
        return True
    return len(set(kept).union(incoming)) > cap


def checked_cap(name: str, value: Any) -> int:
    """A positive integer parameter, or :class:`InvalidArgumentError` naming it."""
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if not ok or value < 1:
        raise InvalidArgumentError(
            f"`{name}` must be a positive integer, got {value!r}.", expected=">= 1", got=value
        )
    return int(value)
