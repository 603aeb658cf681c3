"""MissingnessState: what is missing, where, together with what, and in which patterns."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from spark_explore.errors import InvalidArgumentError
from spark_explore.states import _algebra
from spark_explore.states._codec import Fields
from spark_explore.states._encoding import first_occurrences
from spark_explore.states.base import State
from spark_explore.states.batch import Batch
from spark_explore.states.grouped import (
    FoldSummary,
    checked_cap,
    fold_summary,
    fold_union,
    key_hash,
    kmv_hashes,
    kmv_union,
    reindex_counts,
    sort_into_segments,
    with_other,
)
from spark_explore.states.strings import string_measures, string_value_counts

#: The per-slot counts kept apart, in the order of the ``kind_counts`` matrix.
KINDS = ("null", "nan", "posinf", "neginf", "empty", "blank")

#: The key of :class:`MissingnessState`'s ``sentinels`` argument that applies to every slot.
ALL_SLOTS = "*"

Sentinel = float | str


class PatternMoments(NamedTuple):
    """Sufficient statistics of the numeric slots over the rows of one missingness pattern.

    ``mask`` marks the missing slots (over all the state's slots), ``n`` counts the rows,
    ``mean`` (over ``moment_slots``) is each slot's mean over those rows, and ``comoment``
    is the matrix of sums of products of deviations from those means. Entries of slots
    missing in the pattern are NaN.
    """

    mask: tuple[bool, ...]
    n: int
    mean: np.ndarray
    comoment: np.ndarray


class MissingnessState(State):
    """Missing-value counts, co-missingness and missingness patterns of k columns.

    Kept exactly, per slot: nulls; for numeric (integer, floating and decimal) columns NaN,
    +inf and -inf; for string columns empty strings and blank strings (non-empty, only
    whitespace, as in :class:`~spark_explore.states.strings.StringState`); and the count of
    each configured sentinel value. A value is *missing* when it is null, NaN or equal to a
    sentinel; infinities, empty and blank strings are counted but are not missing (add
    ``""`` as a string sentinel to treat empty strings as missing). On top of the counts:

    * the co-missingness matrix: rows where both slot i and slot j are missing (its
      diagonal is each slot's missing count);
    * missingness patterns: the row count of each bit pattern over the slots;
    * for each kept pattern, the co-moments (:class:`~spark_explore.states._algebra.CoMoments`)
      of the first ``max_numeric`` numeric slots over the pattern's rows, the sufficient
      statistics of Little's MCAR test [1]_.

    Parameters
    ----------
    slots
        The batch columns whose missingness is tracked, in pattern-bit order.
    numeric_slots
        The numeric columns (a subset of ``slots``) whose per-pattern co-moments are kept;
        only the first ``max_numeric`` are used (``moment_slots``).
    sentinels
        Values that stand for "missing", as ``{slot: [values]}``; the key ``"*"`` applies
        to every slot. Numbers are compared with numeric columns and strings with string
        columns, exactly (as float64, and case- and whitespace-sensitive).
    max_patterns
        Largest number of patterns kept exactly.
    max_numeric
        Largest number of numeric slots in the per-pattern co-moments.

    Raises
    ------
    InvalidArgumentError
        Bad caps, a numeric or sentinel slot that is not in ``slots``, a sentinel that is
        not a finite number or a string; from :meth:`update`, a numeric slot whose column
        is not numeric.

    Notes
    -----
    Patterns are capped with the rule of :mod:`~spark_explore.states.grouped`, with the
    rank of a pattern being its number of missing slots, then a 64-bit hash: the complete
    pattern and those with few missing slots, usually the most frequent, are kept first, and
    the choice does not depend on the split of the rows or the merge order. The rows of the
    folded patterns are counted in :attr:`pattern_fold`; their co-moments are not kept.

    The per-pattern co-moments are pairwise complete: a numeric slot observed in a pattern
    can still be infinite in some rows, which leave that slot's entries only. Batches are
    reduced with the shifted two-pass co-moments and merged with the pairwise formula of
    Pébay [2]_ (:mod:`~spark_explore.states._algebra`). Counts merge by addition, which
    is associative and commutative exactly; co-moments up to rounding. Memory is
    ``4 max_patterns max_numeric**2`` doubles (7.4 MB at the defaults) plus ``k**2``
    integers.

    References
    ----------
    .. [1] R. J. A. Little, "A test of missing completely at random for multivariate data
       with missing values", Journal of the American Statistical Association 83(404), 1988,
       pp. 1198-1202.
    .. [2] P. Pébay, "Formulas for robust, one-pass parallel computation of covariances and
       arbitrary-order statistical moments", Sandia Report SAND2008-6212, 2008.

    Examples
    --------
    >>> import pyarrow as pa
    >>> state = MissingnessState.empty(("x", "s"), ("x",), sentinels={"*": [-999, "NA"]})
    >>> data = {"x": [1.0, None, -999.0, float("nan")], "s": ["a", "NA", None, " "]}
    >>> state.update(Batch(pa.record_batch(data)))
    >>> state.counts("x")["sentinels"], state.counts("s")["blank"]
    ({-999.0: 1, 'NA': 0}, 1)
    >>> state.co_missing().tolist()
    [[3, 2], [2, 2]]
    >>> state.patterns()
    [((True, True), 2), ((False, False), 1), ((True, False), 1)]
    """

    kind = "missingness"

    def __init__(
        self,
        slots: tuple[str, ...],
        numeric_slots: tuple[str, ...] = (),
        sentinels: Mapping[str, Sequence[Any]] | None = None,
        max_patterns: int = 256,
        max_numeric: int = 30,
    ) -> None:
        self.slots = tuple(slots)
        self.numeric_slots = tuple(numeric_slots)
        unknown = sorted(set(self.numeric_slots) - set(self.slots))
        if unknown:
            raise InvalidArgumentError(
                f"`numeric_slots` must be among `slots`; not found: {unknown}.",
                expected=list(self.slots),
                got=unknown,
            )
        self.max_patterns = checked_cap("max_patterns", max_patterns)
        self.max_numeric = checked_cap("max_numeric", max_numeric)
        self.sentinels = _normalised_sentinels(sentinels, self.slots)
        self.moment_slots = self.numeric_slots[: self.max_numeric]
        self._moment_index = np.array([self.slots.index(s) for s in self.moment_slots], int)
        self._resolved = [
            _unique([*self.sentinels.get(ALL_SLOTS, []), *self.sentinels.get(slot, [])])
            for slot in self.slots
        ]
        self._offsets = np.cumsum([0] + [len(values) for values in self._resolved])
        k, m = len(self.slots), len(self.moment_slots)
        self.rows = 0
        self._kinds = np.zeros((k, len(KINDS)), dtype=np.int64)
        self._sentinel_counts = np.zeros(int(self._offsets[-1]), dtype=np.int64)
        self._co_missing = np.zeros((k, k), dtype=np.int64)
        self._patterns: list[bytes] = []
        self._pattern_counts = np.zeros(1, dtype=np.int64)
        self._pattern_hashes = np.zeros(0, dtype=np.uint64)
        self._comoments = _algebra.CoMoments(
            *(np.zeros((0, m, m)) for _ in _algebra.CoMoments._fields)
        )

    @classmethod
    def empty(
        cls,
        slots: tuple[str, ...],
        numeric_slots: tuple[str, ...] = (),
        sentinels: Mapping[str, Sequence[Any]] | None = None,
        max_patterns: int = 256,
        max_numeric: int = 30,
    ) -> MissingnessState:
        """The identity element for these columns, sentinels and caps."""
        return cls(slots, numeric_slots, sentinels, max_patterns, max_numeric)

    @property
    def n(self) -> int:
        """Rows absorbed."""
        return self.rows

    @property
    def pattern_fold(self) -> FoldSummary:
        """Distinct patterns folded beyond ``max_patterns``, and the rows they hold."""
        other = int(self._pattern_counts[-1])
        return fold_summary(self._pattern_hashes, len(self._patterns), other)

    def counts(self, slot: str) -> dict[str, Any]:
        """Counts of one slot: one entry per :data:`KINDS`, ``"missing"`` (null, NaN or a
        sentinel) and ``"sentinels"``, a dict from each sentinel value to its count."""
        j = self.slots.index(slot)
        result: dict[str, Any] = dict(zip(KINDS, self._kinds[j].tolist()))
        result["missing"] = int(self._co_missing[j, j])
        hits = self._sentinel_counts[self._offsets[j] : self._offsets[j + 1]].tolist()
        result["sentinels"] = dict(zip(self._resolved[j], hits))
        return result

    def co_missing(self) -> np.ndarray:
        """``(k, k)`` ``int64`` matrix: rows where slots i and j are both missing."""
        return self._co_missing.copy()

    def patterns(self, top: int | None = 20) -> list[tuple[tuple[bool, ...], int]]:
        """The ``top`` most frequent kept patterns (all when ``None``) as ``(mask, rows)``.

        ``mask[j]`` is True where slot j is missing. Ties are broken by the number of
        missing slots, then by the mask, so the order does not depend on the merge order.
        """
        order = self._ranked()
        if top is not None:
            order = order[: max(int(top), 0)]
        return [(self._mask(i), int(self._pattern_counts[i])) for i in order]

    def pattern_moments(self) -> list[PatternMoments]:
        """Per kept pattern, in :meth:`patterns` order, the rows and the mean vector and
        co-moment matrix of ``moment_slots`` (NaN where a slot has no finite value)."""
        result = []
        for i in self._ranked():
            cm = _algebra.CoMoments(*(field[i] for field in self._comoments))
            seen = np.diag(cm.n) > 0
            mean = np.where(seen, np.diag(cm.mean), np.nan)
            comoment = np.where(seen[:, None] & seen[None, :], cm.c, np.nan)
            rows = int(self._pattern_counts[i])
            result.append(PatternMoments(self._mask(i), rows, mean, comoment))
        return result

    def pattern_comoments(self) -> list[tuple[tuple[bool, ...], _algebra.CoMoments]]:
        """Per kept pattern, in :meth:`patterns` order, the raw pairwise co-moments."""
        return [
            (self._mask(i), _algebra.CoMoments(*(field[i].copy() for field in self._comoments)))
            for i in self._ranked()
        ]

    def _ranked(self) -> list[int]:
        counts = self._pattern_counts
        return sorted(range(len(self._patterns)), key=lambda i: (-counts[i], i))

    def _mask(self, i: int) -> tuple[bool, ...]:
        bits = np.unpackbits(np.frombuffer(self._patterns[i], dtype=np.uint8))
        return tuple(bits[: len(self.slots)].astype(bool).tolist())

    def update(self, batch: Batch) -> None:
        """Absorb a batch: column-wise Arrow/numpy kernels, one matrix product for the
        co-missingness, one ``unique`` for the patterns and one co-moment reduction per
        pattern present."""
        rows = batch.num_rows
        if rows == 0 or not self.slots:
            self.rows += rows
            return
        kinds = np.zeros_like(self._kinds)
        sentinel_hits = np.zeros_like(self._sentinel_counts)
        missing = np.empty((rows, len(self.slots)), dtype=bool, order="F")
        for j in range(len(self.slots)):
            hits = sentinel_hits[self._offsets[j] : self._offsets[j + 1]]
            self._count_slot(batch, j, kinds[j], hits, missing[:, j])
        self.rows += rows
        self._kinds += kinds
        self._sentinel_counts += sentinel_hits
        first, inverse = _distinct_rows(missing)
        batch_counts = np.bincount(inverse, minlength=len(first))
        masks = missing[first].astype(np.int64)
        self._co_missing += masks.T @ (masks * batch_counts[:, None])
        packed = np.packbits(missing[first], axis=1)
        keys = [row.tobytes() for row in packed]
        target = self._relevel(keys)
        buckets = with_other(target, len(self._patterns))[inverse]
        self._pattern_counts += np.bincount(buckets, minlength=len(self._patterns) + 1)
        hashes = kmv_hashes([_tag(key) for key in keys])
        self._pattern_hashes = kmv_union(self._pattern_hashes, hashes)
        if self.moment_slots:
            self._absorb_moments(batch, missing, buckets)

    def _count_slot(
        self, batch: Batch, j: int, counts: np.ndarray, hits: np.ndarray, missing: np.ndarray
    ) -> None:
        """Add slot ``j``'s kinds to ``counts`` and its sentinels to ``hits``, and write its
        missing mask into ``missing`` (all in place)."""
        slot = self.slots[j]
        array = batch.column(slot)
        if pa.types.is_dictionary(array.type):
            array = array.dictionary_decode()
        kind = array.type
        missing[:] = batch.nulls(slot)
        counts[0] += array.null_count
        sentinels = self._resolved[j]
        if _is_numeric(kind):
            values = batch.floats(slot)
            nan = np.isnan(values) & ~missing
            counts[1] += np.count_nonzero(nan)
            counts[2] += np.count_nonzero(values == np.inf)
            counts[3] += np.count_nonzero(values == -np.inf)
            missing |= nan
            for s, value in enumerate(sentinels):
                if isinstance(value, float):
                    hit = values == value
                    hits[s] += np.count_nonzero(hit)
                    missing |= hit
        elif slot in self.moment_slots:
            raise InvalidArgumentError(
                f"`MissingnessState` needs numeric columns in `numeric_slots`; slot `{slot}` "
                f"is {kind}.",
                column=slot,
                expected="integer, floating or decimal",
                got=str(kind),
            )
        elif _is_string(kind):
            if pa.types.is_string_view(kind):
                array = array.cast(pa.large_string())
            lengths, blank = string_measures(batch, slot)
            counts[4] += np.count_nonzero(lengths == 0)
            counts[5] += blank
            texts = [(s, value) for s, value in enumerate(sentinels) if isinstance(value, str)]
            if texts:
                missing |= _string_sentinel_hits(batch, slot, array, texts, hits)

    def _relevel(self, incoming: list[bytes]) -> np.ndarray:
        """Union the kept patterns with ``incoming``; return where the incoming ones go."""
        patterns, own, theirs = fold_union(
            self._patterns, incoming, self.max_patterns, _pattern_rank, _pattern_order
        )
        if patterns != self._patterns:
            size = len(patterns)
            self._pattern_counts = reindex_counts(self._pattern_counts, [with_other(own, size)])
            m = len(self.moment_slots)
            moved = [np.zeros((size, m, m)) for _ in self._comoments]
            placed = own < size
            for old, new in zip(self._comoments, moved):
                new[own[placed]] = old[placed]
            self._comoments = _algebra.CoMoments(*moved)
            self._patterns = patterns
        return theirs

    def _absorb_moments(self, batch: Batch, missing: np.ndarray, buckets: np.ndarray) -> None:
        values, finite = batch.float_matrix(self.moment_slots)
        usable = finite & ~missing[:, self._moment_index]  # sentinel hits are not values
        size = len(self._patterns) + 1
        values, usable, present, starts = sort_into_segments(values, usable, buckets, size)
        parts = _algebra.segment_comoments(values, usable, starts)
        kept = present < len(self._patterns)  # the folded patterns' rows keep no moments
        targets = present[kept]
        mine = _algebra.CoMoments(*(field[targets] for field in self._comoments))
        merged = _algebra.merge_comoments(mine, _algebra.CoMoments(*(p[kept] for p in parts)))
        for field, value in zip(self._comoments, merged):
            field[targets] = value

    def _absorb_comoments(self, i: int, part: _algebra.CoMoments) -> None:
        mine = _algebra.CoMoments(*(field[i] for field in self._comoments))
        for field, value in zip(self._comoments, _algebra.merge_comoments(mine, part)):
            field[i] = value

    def _merge_key(self) -> Any:
        sentinels = json.dumps(self.sentinels, sort_keys=True)
        return (self.slots, self.numeric_slots, sentinels, self.max_patterns, self.max_numeric)

    def _merge_in_place(self, other: MissingnessState) -> None:
        self.rows += other.rows
        self._kinds = self._kinds + other._kinds
        self._sentinel_counts = self._sentinel_counts + other._sentinel_counts
        self._co_missing = self._co_missing + other._co_missing
        before = set(self._patterns)
        target = self._relevel(other._patterns)
        size = len(self._patterns)
        moved = reindex_counts(other._pattern_counts, [with_other(target, size)])
        self._pattern_counts = self._pattern_counts + moved
        self._pattern_hashes = kmv_union(self._pattern_hashes, other._pattern_hashes)
        for i, t in enumerate(target.tolist()):
            if t == size:
                continue
            part = _algebra.CoMoments(*(field[i] for field in other._comoments))
            if self._patterns[t] in before:
                self._absorb_comoments(t, part)
            else:
                for field, value in zip(self._comoments, part):
                    field[t] = value

    def _fields(self) -> Fields:
        fields: Fields = {
            "slots": list(self.slots),
            "numeric_slots": list(self.numeric_slots),
            "sentinels": json.dumps(self.sentinels, sort_keys=True),
            "max_patterns": self.max_patterns,
            "max_numeric": self.max_numeric,
            "rows": self.rows,
            "kind_counts": self._kinds,
            "sentinel_counts": self._sentinel_counts,
            "co_missing": self._co_missing,
            "patterns": list(self._patterns),
            "pattern_counts": self._pattern_counts,
            "pattern_hashes": self._pattern_hashes,
        }
        fields.update({f"cm_{name}": value for name, value in self._comoments._asdict().items()})
        return fields

    @classmethod
    def _from_fields(cls, fields: Fields) -> MissingnessState:
        state = cls(
            tuple(fields["slots"]),
            tuple(fields["numeric_slots"]),
            json.loads(fields["sentinels"]),
            int(fields["max_patterns"]),
            int(fields["max_numeric"]),
        )
        k, m = len(state.slots), len(state.moment_slots)
        state.rows = int(fields["rows"])
        state._kinds = np.asarray(fields["kind_counts"], dtype=np.int64).reshape(k, len(KINDS))
        state._sentinel_counts = np.asarray(fields["sentinel_counts"], dtype=np.int64)
        state._co_missing = np.asarray(fields["co_missing"], dtype=np.int64).reshape(k, k)
        state._patterns = [bytes(p) for p in fields["patterns"]]
        state._pattern_counts = np.asarray(fields["pattern_counts"], dtype=np.int64)
        state._pattern_hashes = np.asarray(fields["pattern_hashes"], dtype=np.uint64)
        shape = (len(state._patterns), m, m)
        state._comoments = _algebra.CoMoments(
            *(
                np.asarray(fields[f"cm_{name}"], dtype=np.float64).reshape(shape)
                for name in _algebra.CoMoments._fields
            )
        )
        return state


def _normalised_sentinels(
    sentinels: Mapping[str, Sequence[Any]] | None, slots: tuple[str, ...]
) -> dict[str, list[Sentinel]]:
    """Validate the sentinel mapping; numbers become floats, duplicates are dropped."""
    result: dict[str, list[Sentinel]] = {}
    for slot, values in (sentinels or {}).items():
        if slot != ALL_SLOTS and slot not in slots:
            raise InvalidArgumentError(
                f"`sentinels` names slot `{slot}`, which is not among `slots`; use "
                f'"{ALL_SLOTS}" for every slot.',
                column=slot,
                expected=[ALL_SLOTS, *slots],
                got=slot,
            )
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
            values = [values]
        result[slot] = _unique([_sentinel(slot, v) for v in values])
    return {slot: result[slot] for slot in sorted(result)}


def _sentinel(slot: str, value: Any) -> Sentinel:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        if math.isfinite(float(value)):
            return float(value)
    raise InvalidArgumentError(
        f"`sentinels` for `{slot}` must be finite numbers or strings, got {value!r}; NaN and "
        "infinities are counted without configuration.",
        column=slot,
        expected="finite number or string",
        got=repr(value),
    )


def _unique(values: list[Sentinel]) -> list[Sentinel]:
    seen: set[tuple[type, Sentinel]] = set()
    result = []
    for value in values:
        if (type(value), value) not in seen:
            seen.add((type(value), value))
            result.append(value)
    return result


def _is_numeric(kind: pa.DataType) -> bool:
    return pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)


def _is_string(kind: pa.DataType) -> bool:
    return (
        pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)
    )


def _string_sentinel_hits(
    batch: Batch, slot: str, array: pa.Array, texts: list[tuple[int, str]], hits: np.ndarray
) -> np.ndarray:
    """Mask of the values equal to one of the string sentinels ``(index, text)``; adds each
    sentinel's count to ``hits[index]`` (in place).

    The sentinels are counted in the batch's value counts, which the frequent-items state
    computes anyway; only a batch that holds one of them is scanned row by row for the mask.
    """
    counts = string_value_counts(batch, slot)
    values = counts.field("values")
    value_set = pa.array([text for _, text in texts], type=values.type)
    present = pc.is_in(values, value_set=value_set)
    if not pc.any(present).as_py():
        return np.zeros(len(array), dtype=bool)
    found = counts.field("counts").filter(present).to_pylist()
    for value, count in zip(values.filter(present).to_pylist(), found):
        for s, text in texts:
            if value == text:
                hits[s] += count
    value_set = value_set.cast(array.type)
    return pc.is_in(array, value_set=value_set).fill_null(False).to_numpy(zero_copy_only=False)


def _distinct_rows(missing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First row of each distinct row of a boolean matrix, and each row's index into them.

    Up to 64 columns a row is one integer and Arrow's hash table finds the distinct ones
    in one pass; wider rows are compared as packed bytes by a sort.
    """
    if missing.shape[1] <= 64:
        weights = np.left_shift(np.uint64(1), np.arange(missing.shape[1], dtype=np.uint64))
        codes = np.zeros(missing.shape[0], dtype=np.uint64)
        for j in np.flatnonzero(missing.any(axis=0)):
            codes |= missing[:, j].astype(np.uint64) * weights[j]
        _, first, inverse = first_occurrences(codes)
        return first, inverse
    packed = np.ascontiguousarray(np.packbits(missing, axis=1))
    _, first, inverse = np.unique(
        packed.view(f"V{packed.shape[1]}").ravel(), return_index=True, return_inverse=True
    )
    return first, inverse.reshape(-1)


def _tag(pattern: bytes) -> bytes:
    return b"\x02" + pattern


def _popcount(pattern: bytes) -> int:
    return int.from_bytes(pattern, "big").bit_count()


def _pattern_rank(pattern: bytes) -> tuple[int, int, bytes]:
    """Cap rank of a pattern: fewer missing slots first, then by hash, ties by bytes."""
    return (_popcount(pattern), key_hash(_tag(pattern)), pattern)


def _pattern_order(pattern: bytes) -> tuple[int, bytes]:
    """Storage order of the kept patterns: by missing slots, then bytes."""
    return (_popcount(pattern), pattern)
