"""BooleanState: true/false counts against collections.Counter, and the merge laws."""

from __future__ import annotations

import pickle
from collections import Counter

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spark_explore.errors import IncompatibleStatesError, InvalidArgumentError
from spark_explore.states.base import State
from spark_explore.states.batch import Batch
from spark_explore.states.booleans import BooleanState
from tests.states.merging import merge_randomly

SLOTS = ("a", "b")


def _state(a: list[bool | None], b: list[bool | None]) -> BooleanState:
    state = BooleanState.empty(SLOTS)
    batch = pa.RecordBatch.from_arrays(
        [pa.array(a, type=pa.bool_()), pa.array(b, type=pa.bool_())], names=list(SLOTS)
    )
    state.update(Batch(batch))
    return state


def _assert_same(x: BooleanState, y: BooleanState) -> None:
    assert x.slots == y.slots
    np.testing.assert_array_equal(x.true_counts, y.true_counts)
    np.testing.assert_array_equal(x.false_counts, y.false_counts)
    assert x.true_counts.dtype == x.false_counts.dtype == np.int64


def test_counts_match_counter() -> None:
    rng = np.random.default_rng(5)
    a = [None if r < 0.1 else bool(r < 0.4) for r in rng.random(2001)]
    b = [None] * 2001
    state = _state(a, b)
    counts = Counter(a)
    assert state.counts("a") == (counts[True], counts[False])
    assert state.counts("b") == (0, 0)
    assert state.n == counts[True] + counts[False]


def test_bits_under_nulls_are_not_counted() -> None:
    # values 1,1,1,1 with validity 1,0,1,0: only two trues are valid
    values = pa.py_buffer(bytes([0b1111]))
    validity = pa.py_buffer(bytes([0b0101]))
    array = pa.Array.from_buffers(pa.bool_(), 4, [validity, values], null_count=2)
    sliced = pa.array([False, True, None, True, True]).slice(1, 4)  # offset into the bitmap
    state = BooleanState.empty(("x", "y"))
    state.update(Batch(pa.RecordBatch.from_arrays([array, sliced], ["x", "y"])))
    assert state.counts("x") == (2, 0)
    assert state.counts("y") == (3, 0)


def test_empty_batch_all_null_and_null_type() -> None:
    state = _state([], [])
    assert state.is_empty and state.counts("a") == (0, 0)
    nulls = BooleanState.empty(("n",))
    nulls.update(Batch(pa.RecordBatch.from_arrays([pa.nulls(3)], ["n"])))
    assert nulls.is_empty


def test_single_value() -> None:
    state = _state([True], [False])
    assert state.counts("a") == (1, 0) and state.counts("b") == (0, 1) and state.n == 2


def test_non_boolean_slot_raises() -> None:
    state = BooleanState.empty(("x",))
    with pytest.raises(InvalidArgumentError) as info:
        state.update(Batch(pa.RecordBatch.from_arrays([pa.array([1, 0])], ["x"])))
    assert info.value.code == "INVALID_ARGUMENT"


def test_merging_different_slots_is_refused() -> None:
    with pytest.raises(IncompatibleStatesError):
        BooleanState.empty(("a",)).merge(BooleanState.empty(("a", "b")))


maybe_bool = st.none() | st.booleans()


@settings(max_examples=50, deadline=None)
@given(
    pairs=st.lists(st.tuples(maybe_bool, maybe_bool), max_size=80),
    cuts=st.lists(st.integers(0, 80), max_size=6),
    seed=st.integers(0, 2**32),
)
def test_merge_of_any_split_equals_whole(pairs: list[tuple], cuts: list[int], seed: int) -> None:
    def state_of(rows: list[tuple]) -> BooleanState:
        return _state([r[0] for r in rows], [r[1] for r in rows])

    whole = state_of(pairs)
    for j, slot in enumerate(SLOTS):
        counts = Counter(p[j] for p in pairs)
        assert whole.counts(slot) == (counts[True], counts[False])
    bounds = [0, *sorted(min(c, len(pairs)) for c in cuts), len(pairs)]
    parts = [state_of(pairs[x:y]) for x, y in zip(bounds, bounds[1:])]
    before = [p.to_bytes() for p in parts]
    _assert_same(merge_randomly(parts, seed), whole)
    assert [p.to_bytes() for p in parts] == before
    _assert_same(whole.merge(BooleanState.empty(SLOTS)), whole)
    _assert_same(BooleanState.empty(SLOTS).merge(whole), whole)
    restored = State.from_bytes(whole.to_bytes())
    assert isinstance(restored, BooleanState)
    _assert_same(restored, whole)
    _assert_same(pickle.loads(pickle.dumps(whole)), whole)
