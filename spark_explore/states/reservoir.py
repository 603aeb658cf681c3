"""ReservoirState: a mergeable uniform sample of whole rows, by bottom-k on a row hash.

The sample is the ``size`` rows with the smallest keys, where each row's key is a 64-bit hash
of its values computed by the scan (Spark's ``xxhash64`` with a seed). Because the key is a
function of the row and not of where or when the row is read, the sample does not depend on
how the table is partitioned, in which order partitions are merged, or whether a task is
retried: taking the bottom ``size`` keys commutes with taking the union of parts [1, 2].
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pyarrow as pa

from spark_explore.errors import (
    ColumnNotFoundError,
    IncompatibleStatesError,
    InvalidArgumentError,
    StateFormatError,
)
from spark_explore.states._codec import Fields
from spark_explore.states.base import State
from spark_explore.states.batch import Batch


class ReservoirState(State):
    """A uniform sample without replacement of whole rows, kept by bottom-k on a row hash.

    Parameters
    ----------
    size
        Maximum number of rows kept (``k``); ``0`` keeps nothing but still counts rows.
    key_slot
        The batch column holding each row's 64-bit hash (Arrow ``int64``, no nulls).
    slots
        The batch columns kept for each sampled row. The key column is always kept, as the
        first column of :meth:`sample`; the slots follow in the given order.

    Raises
    ------
    InvalidArgumentError
        ``size`` is not a non-negative integer, or a slot name is repeated or not a string.

    See Also
    --------
    MomentsState : exact moments, for statistics that do not need raw values.

    Notes
    -----
    *Sampling rule.* After any sequence of :meth:`update` and :meth:`merge` calls, the sample
    holds the ``min(size, rows_seen)`` rows whose keys are smallest, compared as signed int64,
    stored in ascending key order. This is a bottom-k sketch [2]; with keys that behave as
    independent uniform draws, it is a simple random sample of the rows, which is also the
    unit-weight case of Efraimidis and Spirakis' reservoir [1]. The union of two bottom-k
    samples, cut back to its ``size`` smallest keys, is the bottom-k sample of the union of
    their rows, so :meth:`merge` is exact, associative and commutative.

    *Ties.* The key is the only sort criterion. Identical rows hash alike, so all copies of a
    row share one key and are kept or dropped together; only the tie group at the cut-off
    can be split, and then the copies kept are indistinguishable, so the sample is the same
    whichever copies fill the last places. In other words, duplicated rows are sampled as
    one cluster, which inflates their weight in the sample only when the table holds many
    duplicates; a distinct-row count tells whether that matters. Two *different* rows share
    a key only on a 64-bit hash collision (probability about ``N**2 / 2**65`` for ``N``
    distinct rows), and only a collision exactly at the cut-off could make the sample depend
    on the order of the rows. The key should hash at least the columns in ``slots``.

    *Schema.* The Arrow schema of the first non-empty batch defines the sample's columns;
    any Arrow type is carried unchanged (strings, decimals, timestamps, nested types). The
    empty state holds a table with no columns, which merges as the identity.

    *Cost.* An update is O(b + k log k) for a batch of b rows: once the reservoir is full,
    only the batch rows whose keys are below the current largest kept key are taken out of
    the batch. Memory is bounded by ``size`` rows.

    References
    ----------
    .. [1] P. S. Efraimidis and P. G. Spirakis, "Weighted random sampling with a
           reservoir", Information Processing Letters 97(5), 2006, pp. 181-185.
    .. [2] E. Cohen and H. Kaplan, "Summarizing data using bottom-k sketches", Proceedings
           of the 26th ACM Symposium on Principles of Distributed Computing (PODC), 2007,
           pp. 225-234.

    Examples
    --------
    >>> import pyarrow as pa
    >>> from spark_explore.states.batch import Batch
    >>> state = ReservoirState.empty(2, "h", ("x",))
    >>> state.update(Batch(pa.table({"h": [5, -3, 9], "x": ["a", "b", "c"]})))
    >>> state.sample().column("x").to_pylist(), state.n, state.fraction
    (['b', 'a'], 3, 0.6666666666666666)
    """

    kind = "reservoir"

    def __init__(self, size: int, key_slot: str, slots: tuple[str, ...] = ()) -> None:
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 0:
            raise InvalidArgumentError(
                f"`size` must be a non-negative integer, got {size!r}.",
                expected="integer >= 0",
                got=size,
            )
        names = (key_slot, *slots)
        if not all(isinstance(name, str) for name in names):
            raise InvalidArgumentError(
                f"`key_slot` and `slots` must be column names (str), got {names!r}.",
                expected="str",
                got=names,
            )
        if len(set(slots)) != len(slots):
            raise InvalidArgumentError(
                f"`slots` must not repeat a column, got {tuple(slots)!r}.",
                got=tuple(slots),
            )
        self.size = int(size)
        self.key_slot = key_slot
        self.slots = tuple(slots)
        #: Columns of the stored table: the key first, then the slots.
        self.columns = (key_slot, *(slot for slot in self.slots if slot != key_slot))
        self.rows_seen = 0
        self._table = pa.table({})
        self._keys = np.empty(0, dtype=np.int64)

    @classmethod
    def empty(cls, size: int, key_slot: str, slots: tuple[str, ...] = ()) -> ReservoirState:
        """The identity element for this sample size and these columns."""
        return cls(size, key_slot, slots)

    @property
    def n(self) -> int:
        """Rows absorbed (sampled or not), over all updates and merges."""
        return self.rows_seen

    @property
    def num_rows(self) -> int:
        """Rows held in the sample: ``min(size, rows_seen)``."""
        return int(self._keys.size)

    @property
    def fraction(self) -> float:
        """Sampling fraction ``num_rows / rows_seen``; NaN while no row has been seen."""
        return self.num_rows / self.rows_seen if self.rows_seen else float("nan")

    @property
    def is_complete(self) -> bool:
        """True when the sample holds every row absorbed (``rows_seen <= size``)."""
        return self.rows_seen == self.num_rows

    @property
    def keys(self) -> np.ndarray:
        """The sampled rows' keys, ascending, as a read-only int64 array."""
        view = self._keys.view()
        view.flags.writeable = False
        return view

    def sample(self) -> pa.Table:
        """The sampled rows in ascending key order: the key column, then the slots.

        The empty state (and a state of size 0) returns a table with no columns.
        """
        return self._table

    def column(self, slot: str) -> pa.Array:
        """One column of the sample, in key order.

        Raises
        ------
        ColumnNotFoundError
            ``slot`` is neither the key column nor one of the state's slots.
        """
        if slot not in self.columns:
            raise ColumnNotFoundError(
                f"`{slot}` is not kept by this sample; it keeps {list(self.columns)}.",
                column=slot,
                expected=list(self.columns),
            )
        if self._table.num_columns == 0:
            return pa.array([], type=pa.null())
        column = self._table.column(slot)
        return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()

    def update(self, batch: Batch) -> None:
        """Absorb a batch: keep the ``size`` smallest keys of the sample and the batch.

        Raises
        ------
        ColumnNotFoundError
            The batch lacks the key column or a slot.
        InvalidArgumentError
            The key column is not int64 or holds nulls.
        """
        if batch.num_rows == 0:
            return
        present = set(batch.record_batch.schema.names)
        missing = [name for name in self.columns if name not in present]
        if missing:
            raise ColumnNotFoundError(
                f"the batch has no column {missing[0]!r} that this sample keeps.",
                column=missing[0],
            )
        keys = _keys_of(batch.column(self.key_slot), self.key_slot)
        self.rows_seen += batch.num_rows
        if self.size == 0:
            return
        rows: pa.Table = pa.Table.from_arrays(
            [batch.column(name) for name in self.columns], names=list(self.columns)
        )
        if self._keys.size >= self.size:
            # Full: only rows strictly below the largest kept key can enter (a row equal
            # to it would tie with a kept row, and ties are identical rows).
            entering = np.flatnonzero(keys < self._keys[-1])
            if entering.size == 0:
                return
            if entering.size < keys.size:
                rows, keys = rows.take(pa.array(entering)), keys[entering]
        self._absorb(rows, keys)

    def _merge_key(self) -> Any:
        return (self.size, self.key_slot, self.slots)

    def _merge_in_place(self, other: ReservoirState) -> None:
        self.rows_seen += other.rows_seen
        if other._keys.size == 0:
            return
        if self._keys.size == 0:
            self._table, self._keys = other._table, other._keys.copy()
            return
        self._absorb(other._table, other._keys)

    def _absorb(self, rows: pa.Table, keys: np.ndarray) -> None:
        """Replace the sample by the ``size`` smallest keys of the sample plus ``rows``."""
        if self._keys.size:
            try:
                rows = pa.concat_tables([self._table, rows], promote_options="default")
            except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                raise IncompatibleStatesError(
                    f"sampled rows have schema {self._table.schema} but new rows have "
                    f"schema {rows.schema}: {exc}",
                    expected=str(self._table.schema),
                    got=str(rows.schema),
                ) from None
            keys = np.concatenate([self._keys, keys])
        order = _bottom_k(keys, self.size)
        self._table = rows.take(pa.array(order)).combine_chunks()
        self._keys = keys[order]

    def __deepcopy__(self, memo: dict[int, Any]) -> ReservoirState:
        # Arrow tables are immutable and `_keys` is only ever replaced, never written into,
        # so a copy may share both; this spares `merge` an Arrow IPC round trip.
        result = copy.copy(self)
        result._keys = self._keys.copy()
        return result

    def _fields(self) -> Fields:
        return {
            "size": self.size,
            "key_slot": self.key_slot,
            "slots": list(self.slots),
            "rows_seen": self.rows_seen,
            "sample": _ipc_bytes(self._table) if self._keys.size else b"",
        }

    @classmethod
    def _from_fields(cls, fields: Fields) -> ReservoirState:
        state = cls(fields["size"], fields["key_slot"], tuple(fields["slots"]))
        state.rows_seen = int(fields["rows_seen"])
        if fields["sample"]:
            try:
                table = pa.ipc.open_stream(pa.py_buffer(fields["sample"])).read_all()
            except (pa.ArrowInvalid, OSError) as exc:
                raise StateFormatError(f"damaged reservoir sample: {exc}") from None
            if tuple(table.column_names) != state.columns:
                raise StateFormatError(
                    f"reservoir sample has columns {table.column_names}, expected "
                    f"{list(state.columns)}.",
                    expected=list(state.columns),
                    got=table.column_names,
                )
            state._table = table.combine_chunks()
            state._keys = _keys_of(state.column(state.key_slot), state.key_slot)
        return state


def _keys_of(array: pa.Array, slot: str) -> np.ndarray:
    """The key column as an int64 numpy array; raises on a wrong type or on nulls."""
    if not pa.types.is_int64(array.type):
        raise InvalidArgumentError(
            f"the key column `{slot}` must be int64 (a 64-bit row hash), got {array.type}.",
            column=slot,
            expected="int64",
            got=str(array.type),
        )
    if array.null_count:
        raise InvalidArgumentError(
            f"the key column `{slot}` holds {array.null_count} nulls; every row needs a "
            "hash (Spark's xxhash64 never returns null).",
            column=slot,
            expected="no nulls",
            got=array.null_count,
        )
    return np.asarray(array.to_numpy(zero_copy_only=False), dtype=np.int64)


def _bottom_k(keys: np.ndarray, size: int) -> np.ndarray:
    """Positions of the ``size`` smallest keys, in ascending key order.

    ``argpartition`` selects in O(len(keys)); only the selected positions are then sorted,
    stably, so that equal keys keep their input order.
    """
    if keys.size > size:
        chosen = np.argpartition(keys, size - 1)[:size]
        chosen.sort()
        return chosen[np.argsort(keys[chosen], kind="stable")]
    return np.argsort(keys, kind="stable")


def _ipc_bytes(table: pa.Table) -> bytes:
    """The table as Arrow IPC stream bytes."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()
