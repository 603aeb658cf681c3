"""StringState against Python/numpy/scipy on the same strings, and the merge laws."""

from __future__ import annotations

import pickle
from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st

from spark_explore.errors import IncompatibleStatesError, InvalidArgumentError
from spark_explore.states.base import State
from spark_explore.states.batch import Batch
from spark_explore.states.strings import StringState, string_measures, string_value_counts
from tests.states.merging import merge_randomly

RTOL = 1e-9

UNICODE = ["é", "e\u0301", "😀", "中文字", "\u3000", " \t\n", "\u00a0", "\u200b", "", "a b"]


def _batch(values: list | pa.Array, type: pa.DataType | None = None) -> Batch:
    array = values if isinstance(values, pa.Array) else pa.array(values, type=type)
    return Batch(pa.RecordBatch.from_arrays([array], ["s"]))


def _state(values: list | pa.Array, exact_cap: int = 1000) -> StringState:
    state = StringState.empty("s", exact_cap)
    state.update(_batch(values, pa.string() if isinstance(values, list) else None))
    return state


def _length_stats(state: StringState) -> dict[str, float]:
    m = state.length
    n, m2 = m.n[0], m.m2[0]
    return {
        "mean": m.mean[0] + m.mean_lo[0],
        "var": m2 / (n - 1),
        "skew": np.sqrt(n) * m.m3[0] / m2**1.5,
        "kurt": n * m.m4[0] / m2**2 - 3,
    }


def _assert_matches_python(state: StringState, values: list[str | None]) -> None:
    present = [v for v in values if v is not None]
    lengths = [len(v) for v in present]
    assert state.n == state.count == len(present)
    assert state.empty_count == sum(v == "" for v in present)
    assert state.blank_count == sum(v != "" and v.isspace() for v in present)
    assert state.min_length == (min(lengths) if lengths else None)
    assert state.max_length == (max(lengths) if lengths else None)
    assert state.length.n[0] == len(present)
    if not state.exact_overflow:
        assert state.exact_counts() == dict(Counter(present))


def test_counts_lengths_and_moments_match_python_and_scipy() -> None:
    rng = np.random.default_rng(17)
    alphabet = np.array(list("ab ") + UNICODE[:4])
    values: list[str | None] = ["".join(rng.choice(alphabet, rng.poisson(6))) for _ in range(3000)]
    values += UNICODE + [None] * 20
    state = StringState.empty("s")
    for part in np.array_split(np.array(values, dtype=object), 4):
        state.update(_batch(part.tolist(), pa.string()))
    _assert_matches_python(state, values)
    lengths = np.array([len(v) for v in values if v is not None], dtype=float)
    got = _length_stats(state)
    np.testing.assert_allclose(got["mean"], lengths.mean(), rtol=RTOL)
    np.testing.assert_allclose(state.mean_length, lengths.mean(), rtol=RTOL)
    np.testing.assert_allclose(got["var"], lengths.var(ddof=1), rtol=RTOL)
    np.testing.assert_allclose(got["skew"], scipy.stats.skew(lengths), rtol=RTOL)
    np.testing.assert_allclose(got["kurt"], scipy.stats.kurtosis(lengths), rtol=RTOL)
    assert state.exact_overflow  # far more than 1000 distinct strings
    assert state.exact_counts() is None and state.top_exact(3) is None


def test_unicode_lengths_and_whitespace() -> None:
    state = _state(UNICODE)
    _assert_matches_python(state, UNICODE)
    # é precomposed is 1 code point, e + combining accent 2; U+200B is not whitespace
    assert state.empty_count == 1 and state.blank_count == 3
    assert state.min_length == 0 and state.max_length == 3


def test_very_long_strings() -> None:
    long = ["x" * 1_000_000, "😀" * 100_000, "y"]
    state = _state(long)
    _assert_matches_python(state, long)
    assert state.max_length == 1_000_000 and state.top_exact(1) == [("x" * 1_000_000, 1)]
    restored = State.from_bytes(state.to_bytes())
    assert isinstance(restored, StringState) and restored.exact_counts() == state.exact_counts()


def test_top_exact_is_ordered_by_count_then_value() -> None:
    values = ["b", "a", "c", "b", "a", "d", "b"]
    state = _state(values)
    assert state.top_exact(3) == [("b", 3), ("a", 2), ("c", 1)]
    assert state.top_exact(0) == []


def test_string_types() -> None:
    values = ["a", None, "bb", "a"]
    for array in (
        pa.array(values, type=pa.large_string()),
        pa.array(values, type=pa.string_view()),
        pa.array(values).dictionary_encode(),
    ):
        state = _state(array)
        _assert_matches_python(state, values)


def test_empty_all_null_and_single_value() -> None:
    for state in (_state([]), _state([None, None]), _state(pa.nulls(2))):
        assert state.is_empty and state.exact_counts() == {} and state.top_exact(3) == []
        assert state.min_length is None and state.mean_length is None
        restored = State.from_bytes(state.to_bytes())
        assert isinstance(restored, StringState) and restored.is_empty
        assert restored.min_length is None
    single = _state(["only"])
    assert single.mean_length == 4.0 and single.length.m2[0] == 0.0
    assert single.exact_counts() == {"only": 1}


def test_overflow_rules() -> None:
    assert _state(["a", "b", "c"], exact_cap=3).exact_counts() == {"a": 1, "b": 1, "c": 1}
    assert _state(["a", "b", "c", "d"], exact_cap=3).exact_overflow
    left, right = _state(["a", "b"], exact_cap=3), _state(["c", "d"], exact_cap=3)
    assert not left.exact_overflow and not right.exact_overflow
    assert left.merge(right).exact_overflow  # the union exceeds the cap
    assert left.merge(_state(["a", "c"], exact_cap=3)).exact_counts() == {"a": 2, "b": 1, "c": 1}
    assert _state(["a"], exact_cap=0).exact_overflow
    assert not _state([], exact_cap=0).exact_overflow


def test_bad_arguments_raise() -> None:
    with pytest.raises(InvalidArgumentError):
        StringState("s", exact_cap=-1)
    with pytest.raises(InvalidArgumentError) as info:
        _state(pa.array([1, 2]))
    assert info.value.code == "INVALID_ARGUMENT"
    with pytest.raises(IncompatibleStatesError):
        StringState("s").merge(StringState("s", exact_cap=10))


def _assert_same(a: StringState, b: StringState) -> None:
    exact = ("slot", "exact_cap", "count", "empty_count", "blank_count")
    exact += ("min_length", "max_length", "exact_overflow")
    assert {k: getattr(a, k) for k in exact} == {k: getattr(b, k) for k in exact}
    assert a.exact_counts() == b.exact_counts() and a.top_exact(5) == b.top_exact(5)
    assert a.length.n[0] == b.length.n[0]
    for name in ("mean", "m2", "m3", "m4"):
        x = getattr(a.length, name)[0] + (a.length.mean_lo[0] if name == "mean" else 0.0)
        y = getattr(b.length, name)[0] + (b.length.mean_lo[0] if name == "mean" else 0.0)
        scale = max(abs(y), b.length.m2[0], 1.0)
        assert abs(x - y) <= RTOL * scale


text = st.text(st.sampled_from(list("ab \t\u3000é😀中\u0301")), max_size=6)


@settings(max_examples=50, deadline=None)
@given(
    values=st.lists(st.none() | text, max_size=60),
    cap=st.integers(0, 12),
    cuts=st.lists(st.integers(0, 60), max_size=6),
    seed=st.integers(0, 2**32),
)
def test_merge_of_any_split_equals_whole(
    values: list[str | None], cap: int, cuts: list[int], seed: int
) -> None:
    whole = _state(values, cap)
    _assert_matches_python(whole, values)
    assert whole.exact_overflow == (len({v for v in values if v is not None}) > cap)
    bounds = [0, *sorted(min(c, len(values)) for c in cuts), len(values)]
    parts = [_state(values[a:b], cap) for a, b in zip(bounds, bounds[1:])]
    before = [p.to_bytes() for p in parts]
    _assert_same(merge_randomly(parts, seed), whole)
    assert [p.to_bytes() for p in parts] == before  # inputs untouched
    _assert_same(whole.merge(StringState.empty("s", cap)), whole)
    _assert_same(StringState.empty("s", cap).merge(whole), whole)
    restored = State.from_bytes(whole.to_bytes())
    assert isinstance(restored, StringState)
    _assert_same(restored, whole)
    assert restored.to_bytes() == whole.to_bytes()
    _assert_same(pickle.loads(pickle.dumps(whole)), whole)


def _awkward_string_arrays() -> list[pa.Array]:
    rng = np.random.default_rng(5)
    words = ["a", "bb", " x", "x ", "", " ", "\t", "\x1c", "~", "!", "ab", "  "]
    ascii_values = [words[i] if i < len(words) else None for i in rng.integers(0, 14, 3_000)]
    mixed = ascii_values[:1_000] + UNICODE * 40 + [None, "", "\u2028", "\x85"]
    few = [f"k{i % 7}" for i in range(4_000)]
    return [
        pa.array(ascii_values),
        pa.array(ascii_values).slice(37, 2_001),  # offsets into shared buffers
        pa.array(ascii_values, type=pa.large_string()).slice(3),
        pa.array(mixed),
        pa.array(mixed, type=pa.large_string()).slice(999, 60),
        pa.array(mixed).cast(pa.string_view()),
        pa.array(mixed).dictionary_encode(),
        pa.DictionaryArray.from_arrays(pa.array([0, 1, None, 2, 1]), pa.array(["a", None, " "])),
        pa.array(few),
        pa.array([f"id{i}" for i in range(5_000)]),  # all distinct
        pa.array(["", "", None]),  # no bytes at all
        pa.array([None, None], type=pa.string()),
        pa.array(["only", "ascii"]).slice(2),
        pa.array([" "] * 9 + ["\u3000"]),
    ]


@pytest.mark.parametrize("array", _awkward_string_arrays(), ids=lambda a: str(a.type))
def test_string_measures_and_counts_match_arrow_on_the_plain_values(array: pa.Array) -> None:
    """The shortcuts (lengths from offsets in ASCII text, only values not starting with a
    printable character tested for blankness, counting with the nulls then dropping them)
    agree with Arrow's kernels on the dictionary-decoded values."""
    batch = _batch(array)
    plain = array.dictionary_decode() if pa.types.is_dictionary(array.type) else array
    if pa.types.is_string_view(plain.type):
        plain = plain.cast(pa.large_string())
    lengths, blank = string_measures(batch, "s")
    expected = pc.utf8_length(plain).fill_null(-1).to_numpy(zero_copy_only=False)
    assert lengths.dtype == expected.dtype
    np.testing.assert_array_equal(lengths, expected)
    assert blank == int(pc.sum(pc.utf8_is_space(plain)).as_py() or 0)
    counts = string_value_counts(batch, "s")
    reference = pc.value_counts(plain.drop_null())
    assert counts.type == reference.type
    assert counts.field("values").to_pylist() == reference.field("values").to_pylist()
    assert counts.field("counts").to_pylist() == reference.field("counts").to_pylist()
    state = _state(array)
    assert state.count == len(plain) - plain.null_count
    assert state.blank_count == blank
    assert state.empty_count == int(np.count_nonzero(expected == 0))
