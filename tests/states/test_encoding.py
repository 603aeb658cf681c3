"""first_occurrences agrees with numpy's sorting np.unique, reordered by first appearance;
valid_mask with Arrow's is_valid."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spark_explore.states._encoding import first_occurrences, valid_mask


@settings(deadline=None)  # the first call loads Arrow's kernels
@given(values=st.lists(st.integers(0, 2**32 - 1) | st.sampled_from([0, 1, 7]), max_size=300))
def test_first_occurrences_match_numpy_unique(values: list[int]) -> None:
    array = np.array(values, dtype=np.uint32)
    distinct, first, inverse = first_occurrences(array)
    sorted_distinct, sorted_first = np.unique(array, return_index=True)
    order = np.argsort(sorted_first)
    np.testing.assert_array_equal(distinct, sorted_distinct[order])
    np.testing.assert_array_equal(first, sorted_first[order])
    np.testing.assert_array_equal(distinct[inverse], array)
    assert np.all(np.diff(first) > 0)


def test_first_occurrences_of_an_empty_array() -> None:
    distinct, first, inverse = first_occurrences(np.zeros(0, dtype=np.uint64))
    assert len(distinct) == len(first) == len(inverse) == 0


@pytest.mark.parametrize("offset", [0, 1, 7, 8, 13])
@pytest.mark.parametrize(
    "array",
    [
        pa.array([None if i % 3 == 0 else i for i in range(40)], pa.int64()),
        pa.array([None if i % 5 else "s" for i in range(40)]),
        pa.array([True, None, False] * 13),
        pa.array(range(40), pa.int32()),  # no nulls, no bitmap
        pa.nulls(40),
        pa.array([None if i % 2 else "v" for i in range(40)]).dictionary_encode(),
        pa.DictionaryArray.from_arrays(pa.array([0, 1, None] * 13 + [0]), pa.array(["a", None])),
    ],
)
def test_valid_mask_is_arrows_is_valid(array: pa.Array, offset: int) -> None:
    sliced = array.slice(offset, 20)
    mask = valid_mask(sliced)
    assert mask.dtype == bool and len(mask) == len(sliced)
    np.testing.assert_array_equal(mask, np.asarray(sliced.is_valid()))
