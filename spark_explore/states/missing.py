"""MissingnessState: what is missing, where, together with what, and in which patterns."""

from __future__ import annotations

import functools
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
from spark_explore.states.base import State
from spark_explore.states.batch import Batch
from spark_explore.states.grouped import (
    DISTINCT_SKETCH_SIZE,
    FoldSummary,
    checked_cap,
    fold_summary,
    fold_union,
    key_hash,
    kmv_union,
    reindex_counts,
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
        # string sentinels can only be among the values of their lengths (in code points)
        texts = [[len(v) for v in values if isinstance(v, str)] for values in self._resolved]
        self._text_lengths = [(min(n, default=0), max(n, default=-1)) for n in texts]
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
        """Absorb a batch: column-wise Arrow/numpy kernels, one pass over the rows' pattern
        codes for the distinct patterns, one small matrix product over those for the
        co-missingness, and the co-moments of the kept patterns' rows.

        A slot without missing values leaves its mask column untouched, and a batch in
        which every slot is missing in all rows or in none has a single pattern, found
        from the counts alone.
        """
        rows = batch.num_rows
        if rows == 0 or not self.slots:
            self.rows += rows
            return
        k = len(self.slots)
        kinds = np.zeros_like(self._kinds)
        sentinel_hits = np.zeros_like(self._sentinel_counts)
        missing = np.zeros((rows, k), dtype=bool, order="F")
        missed = np.zeros(k, dtype=np.int64)
        for j in range(k):
            hits = sentinel_hits[self._offsets[j] : self._offsets[j + 1]]
            missed[j] = self._count_slot(batch, j, kinds[j], hits, missing[:, j])
        self.rows += rows
        self._kinds += kinds
        self._sentinel_counts += sentinel_hits
        inverse: np.ndarray | None = None
        if np.all((missed == 0) | (missed == rows)):
            masks = (missed == rows)[None, :]
            batch_counts = np.array([rows], dtype=np.int64)
        else:
            masks, inverse = _distinct_rows(missing, np.flatnonzero(missed))
            batch_counts = np.bincount(inverse, minlength=len(masks))
        ints = masks.astype(np.int64)
        self._co_missing += ints.T @ (ints * batch_counts[:, None])
        keys = [row.tobytes() for row in np.packbits(masks, axis=1)]
        target = self._relevel(keys)
        np.add.at(self._pattern_counts, target, batch_counts)
        hashes = np.unique(np.array([_pattern_hash(key) for key in keys], dtype=np.uint64))
        self._pattern_hashes = kmv_union(self._pattern_hashes, hashes[:DISTINCT_SKETCH_SIZE])
        if self.moment_slots:
            inf = kinds[self._moment_index, 2] + kinds[self._moment_index, 3] > 0
            self._absorb_moments(batch, masks, target, inverse, inf)

    def _count_slot(
        self, batch: Batch, j: int, counts: np.ndarray, hits: np.ndarray, missing: np.ndarray
    ) -> int:
        """Add slot ``j``'s kinds to ``counts`` and its sentinels to ``hits``, write its
        missing mask into ``missing`` (all in place, ``missing`` starting all False), and
        return the number of missing values.

        A numeric sentinel is compared with the values only when it lies between the
        batch's smallest and largest value, and NaN and infinities are looked for only
        when those extremes show some.
        """
        slot = self.slots[j]
        raw = batch.column(slot)
        array = raw.dictionary_decode() if pa.types.is_dictionary(raw.type) else raw
        kind = array.type
        nulls = raw.null_count
        if nulls:
            _null_mask(raw, missing)
        counts[0] += array.null_count
        sentinels = self._resolved[j]
        if _is_numeric(kind):
            values = batch.floats(slot)
            numbers = [(s, value) for s, value in enumerate(sentinels) if isinstance(value, float)]
            # integer and decimal values are NaN exactly where they are null
            floating = pa.types.is_floating(kind) or pa.types.is_dictionary(raw.type)
            low = high = np.nan
            if nulls == 0 and (floating or numbers):
                low, high = values.min(), values.max()  # NaN if some value is
            if floating and (nulls or np.isnan(low)):
                np.logical_or(missing, np.isnan(values), out=missing)
                counts[1] += np.count_nonzero(missing) - nulls
            if np.isnan(low) and (floating or numbers):
                low, high = np.fmin.reduce(values), np.fmax.reduce(values)
            if high == np.inf:
                counts[2] += np.count_nonzero(values == np.inf)
            if low == -np.inf:
                counts[3] += np.count_nonzero(values == -np.inf)
            for s, value in numbers:
                if low <= value <= high:
                    hit = values == value
                    found = np.count_nonzero(hit)
                    if found:
                        hits[s] += found
                        missing |= hit
            return int(nulls + counts[1] + hits.sum())
        if slot in self.moment_slots:
            raise InvalidArgumentError(
                f"`MissingnessState` needs numeric columns in `numeric_slots`; slot `{slot}` "
                f"is {kind}.",
                column=slot,
                expected="integer, floating or decimal",
                got=str(kind),
            )
        if _is_string(kind):
            if pa.types.is_string_view(kind):
                array = array.cast(pa.large_string())
            lengths, blank = string_measures(batch, slot)
            counts[4] += np.count_nonzero(lengths == 0)
            counts[5] += blank
            texts = [(s, value) for s, value in enumerate(sentinels) if isinstance(value, str)]
            low, high = self._text_lengths[j]
            if texts and np.any((lengths >= low) & (lengths <= high)):
                if _string_sentinel_hits(batch, slot, array, texts, hits, missing):
                    return int(nulls + hits.sum())
        return nulls

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

    def _absorb_moments(
        self,
        batch: Batch,
        masks: np.ndarray,
        target: np.ndarray,
        inverse: np.ndarray | None,
        inf: np.ndarray,
    ) -> None:
        """Merge into each kept pattern the co-moments of its rows in the batch.

        ``masks`` are the batch's distinct patterns, ``target`` where each is kept (or the
        other bucket), ``inverse`` each row's pattern (None when there is one), and ``inf``
        marks the moment slots with infinities in the batch.

        The rows of the kept patterns are sorted by pattern (those of folded patterns are
        left out), and within a pattern by which moment slots hold an infinity, so that in
        each run of rows every slot is a value in all rows or in none; the runs are reduced
        by :func:`_pattern_comoments`.
        """
        size = len(self._patterns)
        if not (target < size).any():
            return
        matrix = batch.float_values(self.moment_slots)
        rows, m = matrix.shape
        observed = np.zeros((size + 1, m), dtype=bool)
        observed[target] = ~masks[:, self._moment_index]
        buckets = np.full(rows, target[0]) if inverse is None else target[inverse]
        signature, infinite = _infinity_signatures(matrix, np.flatnonzero(inf))
        order = None
        if inverse is not None or signature is not None:
            key = buckets if signature is None else buckets * len(infinite) + signature
            order = np.argsort(_narrow(key), kind="stable")
            order = order[: np.count_nonzero(buckets < size)]  # the other bucket sorts last
            buckets = buckets[order]
            signature = None if signature is None else signature[order]
        change = np.diff(buckets) != 0
        if signature is not None:
            change |= np.diff(signature) != 0
        starts = np.concatenate([[0], np.flatnonzero(change) + 1])
        sizes = np.diff(np.append(starts, len(buckets)))
        run_patterns = buckets[starts]
        usable = observed[run_patterns]
        if signature is not None:
            usable &= ~infinite[signature[starts]]
        groups = np.concatenate([[0], np.flatnonzero(np.diff(run_patterns)) + 1])
        values = matrix if order is None else _algebra.gather_rows(matrix, order)
        parts = _pattern_comoments(values, usable, sizes, groups, own=order is not None)
        if parts is None:  # a sum overflows: the reduction that rescales it
            values = matrix if order is None else _algebra.gather_rows(matrix, order)
            usable_rows = _algebra.spread_rows(usable, sizes) & np.isfinite(values)
            parts = _algebra.segment_comoments(values, usable_rows, starts[groups])
        patterns = run_patterns[groups]
        mine = _algebra.CoMoments(*(field[patterns] for field in self._comoments))
        merged = _algebra.merge_comoments(mine, parts)
        for field, value in zip(self._comoments, merged):
            field[patterns] = value

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


def _null_mask(array: pa.Array, out: np.ndarray) -> None:
    """Write where ``array`` is null into ``out``, from its validity bitmap when it has one
    (unpacking the bits is several times faster than converting ``is_null``); null, union
    and run-end encoded arrays have none."""
    validity = array.buffers()[0]
    if validity is None:
        out[:] = np.asarray(array.is_null())
        return
    bits = np.frombuffer(validity, dtype=np.uint8)
    valid = np.unpackbits(bits, count=array.offset + len(array), bitorder="little")
    np.equal(valid[array.offset :], 0, out=out)


def _string_sentinel_hits(
    batch: Batch,
    slot: str,
    array: pa.Array,
    texts: list[tuple[int, str]],
    hits: np.ndarray,
    missing: np.ndarray,
) -> bool:
    """Count the string sentinels ``(index, text)`` into ``hits[index]`` and mark the values
    equal to one of them in ``missing`` (both in place); return whether the batch holds any.

    The sentinels are counted in the batch's value counts, which the frequent-items state
    computes anyway; only a batch that holds one of them is scanned row by row for the mask.
    """
    counts = string_value_counts(batch, slot)
    values = counts.field("values")
    value_set = pa.array([text for _, text in texts], type=values.type)
    present = pc.is_in(values, value_set=value_set)
    if not pc.any(present).as_py():
        return False
    found = counts.field("counts").filter(present).to_pylist()
    for value, count in zip(values.filter(present).to_pylist(), found):
        for s, text in texts:
            if value == text:
                hits[s] += count
    value_set = value_set.cast(array.type)
    mask = pc.is_in(array, value_set=value_set).fill_null(False)
    np.logical_or(missing, mask.to_numpy(zero_copy_only=False), out=missing)
    return True


#: Up to this many columns with missing values, the distinct patterns of a batch are found by
#: counting their codes in a table of ``2**_COUNTED_BITS`` entries instead of hashing them.
_COUNTED_BITS = 16


def _distinct_rows(missing: np.ndarray, columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of a boolean matrix, and each row's index into them.

    ``columns`` lists the columns that hold a True (the others are all False and play no
    part). Up to 64 of them a row is one integer, whose bits give the row back; the distinct
    integers are counted in a table when there are few possible ones, else found by Arrow's
    hash table in one pass. Wider rows are compared as packed bytes by a sort.
    """
    if len(columns) <= 64:
        dtype = np.uint32 if len(columns) <= 32 else np.uint64
        codes = np.zeros(missing.shape[0], dtype=dtype)
        for bit, j in enumerate(columns.tolist()):
            codes |= missing[:, j].view(np.uint8) << dtype(bit)
        if len(columns) <= _COUNTED_BITS:  # few codes: counted in a table, no hashing
            seen = np.bincount(codes, minlength=1 << len(columns)) > 0
            distinct = np.flatnonzero(seen).astype(dtype)
            inverse = (np.cumsum(seen) - 1)[codes]
        else:
            encoded = pc.dictionary_encode(pa.array(codes))
            distinct, inverse = encoded.dictionary.to_numpy(), encoded.indices.to_numpy()
        masks = np.zeros((len(distinct), missing.shape[1]), dtype=bool)
        masks[:, columns] = (distinct[:, None] >> np.arange(len(columns), dtype=dtype)) & 1
        return masks, inverse
    packed = np.ascontiguousarray(np.packbits(missing[:, columns], axis=1))
    _, first, inverse = np.unique(
        packed.view(f"V{packed.shape[1]}").ravel(), return_index=True, return_inverse=True
    )
    return missing[first], inverse.reshape(-1)


def _pattern_comoments(
    values: np.ndarray, usable: np.ndarray, sizes: np.ndarray, groups: np.ndarray, own: bool
) -> _algebra.CoMoments | None:
    """Pairwise-complete co-moments of groups of runs of rows, in which each column counts
    in all the rows of a run or in none: what
    :func:`~spark_explore.states._algebra.segment_comoments` gives for the rows of each
    group, up to rounding.

    Parameters
    ----------
    values
        ``(rows, m)`` Fortran-ordered float64, the rows of each run together and the runs of
        each group together; overwritten when ``own``, else left as it is.
    usable
        ``(runs, m)``: whether a column's entries in a run count.
    sizes
        Rows of each run, every run holding a row.
    groups
        Increasing first run of each group, ``groups[0] == 0``.

    Returns
    -------
    CoMoments or None
        Shape ``(len(groups), m, m)``; None where the sum of a group's values overflows
        float64 (the caller then rescales them with ``segment_comoments``).

    Notes
    -----
    The shifted-data algorithm of :func:`~spark_explore.states._algebra.batch_comoments`
    ([1] section 3): each column is shifted by its mean over the group's counting entries
    (by the value itself where it is constant), then sums, sums of squares and cross
    products of the shifted columns are taken per run, one matrix product per run, and
    added up per group over the pairs of columns they count for. As a column counts in all
    of a run or none, the pair counts come from the run sizes, and the entries that do not
    count are set to zero once, before the first pass.

    References
    ----------
    .. [1] T. F. Chan, G. H. Golub and R. J. LeVeque, "Algorithms for computing the sample
       variance: analysis and recommendations", The American Statistician 37(3), 1983,
       pp. 242-247.
    """
    runs, m = usable.shape
    starts = np.cumsum(sizes) - sizes
    if not usable.all():
        if not own:
            values, own = np.array(values, order="F"), True
        np.copyto(values, 0.0, where=_algebra.spread_rows(~usable, sizes))
    d = values
    with np.errstate(over="ignore", invalid="ignore"):
        sums = np.add.reduceat(np.add.reduceat(d, starts, axis=0), groups, axis=0)
        if not np.isfinite(sums).all():
            return None
        n_col = np.add.reduceat(usable * sizes[:, None], groups, axis=0).astype(np.float64)
        low = np.where(usable, np.minimum.reduceat(d, starts, axis=0), np.inf)
        high = np.where(usable, np.maximum.reduceat(d, starts, axis=0), -np.inf)
        low = np.minimum.reduceat(low, groups, axis=0)
        high = np.maximum.reduceat(high, groups, axis=0)
        safe_n = np.where(n_col > 0, n_col, 1.0)
        shift = np.where(n_col > 0, np.where(low == high, low, sums / safe_n), 0.0)
        group_of_run = np.repeat(np.arange(len(groups)), np.diff(np.append(groups, runs)))
        run_shift = shift[group_of_run] * usable  # entries that do not count stay zero
        p_run = np.empty((runs, m, m))
        if not own:
            d = np.empty(values.shape, order="F")
        for i, (lo, hi) in enumerate(zip(starts.tolist(), (starts + sizes).tolist())):
            part = d[lo:hi]
            np.subtract(values[lo:hi], run_shift[i], out=part)
            p_run[i] = part.T @ part
        s_run = np.add.reduceat(d, starts, axis=0)
        q_run = np.einsum("rii->ri", p_run)
        u = usable.astype(np.float64)
        n = np.add.reduceat(sizes[:, None, None] * u[:, :, None] * u[:, None, :], groups)
        s_ij = np.add.reduceat(s_run[:, :, None] * u[:, None, :], groups)
        q_ij = np.add.reduceat(q_run[:, :, None] * u[:, None, :], groups)
        p = np.add.reduceat(p_run, groups)
        return _algebra.pairwise_comoments(shift, n, s_ij, q_ij, p)


def _infinity_signatures(
    matrix: np.ndarray, columns: np.ndarray
) -> tuple[np.ndarray | None, np.ndarray]:
    """For each row, a small code of which of ``columns`` hold an infinity there (0 for
    none), and ``(codes, m)`` the columns of each code; None for no infinity at all."""
    none = np.zeros((1, matrix.shape[1]), dtype=bool)
    if not len(columns):
        return None, none
    hot = np.isinf(matrix[:, columns])
    rows = np.flatnonzero(hot.any(axis=1))
    if not len(rows):
        return None, none
    distinct, code = np.unique(hot[rows], axis=0, return_inverse=True)
    signature = np.zeros(matrix.shape[0], dtype=np.intp)
    signature[rows] = code.reshape(-1) + 1
    infinite = np.zeros((len(distinct) + 1, matrix.shape[1]), dtype=bool)
    infinite[1:, columns] = distinct
    return signature, infinite


def _narrow(keys: np.ndarray) -> np.ndarray:
    """Sort keys as int16 where they fit, for which numpy's stable sort is a radix sort."""
    return keys.astype(np.int16) if keys.max(initial=0) <= np.iinfo(np.int16).max else keys


def _tag(pattern: bytes) -> bytes:
    return b"\x02" + pattern


def _popcount(pattern: bytes) -> int:
    return int.from_bytes(pattern, "big").bit_count()


@functools.lru_cache(maxsize=1 << 14)
def _pattern_hash(pattern: bytes) -> int:
    """The 64-bit hash of a pattern, for its cap rank and the bottom-k sketch (cached: the
    same patterns come back batch after batch)."""
    return key_hash(_tag(pattern))


def _pattern_rank(pattern: bytes) -> tuple[int, int, bytes]:
    """Cap rank of a pattern: fewer missing slots first, then by hash, ties by bytes."""
    return (_popcount(pattern), _pattern_hash(pattern), pattern)


def _pattern_order(pattern: bytes) -> tuple[int, bytes]:
    """Storage order of the kept patterns: by missing slots, then bytes."""
    return (_popcount(pattern), pattern)
