"""TableState: row and null counts against pyarrow, and the merge laws."""

from __future__ import annotations

import pickle

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spark_explore.errors import IncompatibleStatesError
from spark_explore.states.base import State
from spark_explore.states.batch import Batch
from spark_explore.states.table import TableState
from tests.states.merging import merge_randomly

SLOTS = ("i", "f", "s")


def _batch(rows: list[tuple]) -> Batch:
    columns = list(zip(*rows)) if rows else [[], [], []]
    types = (pa.int64(), pa.float64(), pa.string())
    arrays = [pa.array(list(c), type=t) for c, t in zip(columns, types)]
    return Batch(pa.RecordBatch.from_arrays(arrays, names=list(SLOTS)))


def _state(rows: list[tuple]) -> TableState:
    state = TableState.empty(SLOTS)
    state.update(_batch(rows))
    return state


def _assert_same(a: TableState, b: TableState) -> None:
    assert a.slots == b.slots and a.rows == b.rows
    np.testing.assert_array_equal(a.nulls, b.nulls)
    assert a.nulls.dtype == np.int64


def test_counts_match_pyarrow_null_counts() -> None:
    rng = np.random.default_rng(3)
    table = pa.table(
        {
            "x": pa.array(rng.normal(size=1000), mask=rng.random(1000) < 0.2),
            "nan": pa.array([np.nan] * 999 + [None]),  # NaN is a value, not a null
            "all_null": pa.array([None] * 1000, type=pa.int32()),
            "null_type": pa.nulls(1000),
            "s": pa.array(["a", None] * 500),
        }
    )
    state = TableState.empty(tuple(table.column_names))
    for batch in table.to_batches(max_chunksize=300):
        state.update(Batch(batch))
    assert state.rows == state.n == 1000
    expected = [table.column(name).null_count for name in table.column_names]
    assert state.nulls.tolist() == expected
    assert state.null_count("nan") == 1 and state.null_count("all_null") == 1000
    assert state.null_count("null_type") == 1000


def test_empty_batch_and_no_slots() -> None:
    state = _state([])
    assert state.is_empty and state.rows == 0 and state.nulls.tolist() == [0, 0, 0]
    rows_only = TableState.empty(())
    rows_only.update(_batch([(1, 1.0, "a"), (None, None, None)]))
    assert rows_only.n == 2 and rows_only.nulls.shape == (0,)
    restored = State.from_bytes(rows_only.to_bytes())
    assert isinstance(restored, TableState)
    _assert_same(restored, rows_only)


def test_single_row_of_nulls() -> None:
    state = _state([(None, None, None)])
    assert state.rows == 1 and state.nulls.tolist() == [1, 1, 1]


def test_merging_different_slots_is_refused() -> None:
    with pytest.raises(IncompatibleStatesError) as info:
        TableState.empty(("a",)).merge(TableState.empty(("b",)))
    assert info.value.code == "INCOMPATIBLE_STATES"


row = st.tuples(
    st.none() | st.integers(-(2**63), 2**63 - 1),
    st.none() | st.floats(allow_nan=True),
    st.none() | st.text(max_size=5),
)


@settings(max_examples=50, deadline=None)
@given(
    rows=st.lists(row, max_size=60),
    cuts=st.lists(st.integers(0, 60), max_size=6),
    seed=st.integers(0, 2**32),
)
def test_merge_of_any_split_equals_whole(rows: list[tuple], cuts: list[int], seed: int) -> None:
    whole = _state(rows)
    bounds = [0, *sorted(min(c, len(rows)) for c in cuts), len(rows)]
    parts = [_state(rows[a:b]) for a, b in zip(bounds, bounds[1:])]
    before = [p.to_bytes() for p in parts]
    merged = merge_randomly(parts, seed)
    _assert_same(merged, whole)
    assert [p.to_bytes() for p in parts] == before  # inputs untouched
    _assert_same(whole.merge(TableState.empty(SLOTS)), whole)
    _assert_same(TableState.empty(SLOTS).merge(whole), whole)
    restored = State.from_bytes(whole.to_bytes())
    assert isinstance(restored, TableState)
    _assert_same(restored, whole)
    _assert_same(pickle.loads(pickle.dumps(whole)), whole)
