"""first_occurrences agrees with numpy's sorting np.unique, reordered by first appearance."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from spark_explore.states._encoding import first_occurrences


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
