"""MissingnessState: counts, co-missingness, patterns and per-pattern co-moments against
numpy and Counter, the pattern cap, and the merge laws."""

from __future__ import annotations

import pickle
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spark_explore.errors import IncompatibleStatesError, InvalidArgumentError
from spark_explore.states import _algebra
from spark_explore.states.base import State
from spark_explore.states.batch import Batch
from spark_explore.states.missing import MissingnessState, _pattern_comoments, _pattern_rank

RTOL = 1e-9
MEASURES = ("bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g")


def _state(data: pa.Table | dict, slots, numeric=(), **options) -> MissingnessState:
    table = pa.table(data) if isinstance(data, dict) else data
    state = MissingnessState(tuple(slots), tuple(numeric), **options)
    state.update(Batch(table))
    return state


def _numpy_pattern_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = x.mean(axis=0)
    d = x - mean
    return mean, d.T @ d


def test_penguins_missingness_is_exactly_the_two_known_groups_of_rows(shared_data: Path) -> None:
    table = pq.read_table(shared_data / "real" / "penguins.parquet")
    slots = tuple(table.column_names)
    state = _state(table, slots, (*MEASURES, "year"))
    k = len(slots)
    measures = [slots.index(m) for m in MEASURES]
    sex = slots.index("sex")
    # 2 rows lack all four measurements and sex, 9 more lack only sex
    want = np.zeros((k, k), dtype=np.int64)
    want[np.ix_(measures + [sex], measures + [sex])] = 2
    want[sex, sex] = 11
    np.testing.assert_array_equal(state.co_missing(), want)
    complete = (False,) * k
    sex_only = tuple(j == sex for j in range(k))
    all_five = tuple(j in measures or j == sex for j in range(k))
    assert state.patterns() == [(complete, 333), (sex_only, 9), (all_five, 2)]
    assert state.pattern_fold.rows == 0 and state.n == 344
    assert state.counts("sex") == {
        "null": 11,
        "nan": 0,
        "posinf": 0,
        "neginf": 0,
        "empty": 0,
        "blank": 0,
        "missing": 11,
        "sentinels": {},
    }
    frame = table.to_pandas()
    numeric = np.column_stack([frame[s].to_numpy(float) for s in (*MEASURES, "year")])
    rows = {
        complete: frame["sex"].notna().to_numpy(),
        sex_only: (frame["sex"].isna() & frame["body_mass_g"].notna()).to_numpy(),
    }
    stats = state.pattern_moments()
    assert [s.mask for s in stats] == [complete, sex_only, all_five]
    for got in stats[:2]:
        mean, comoment = _numpy_pattern_stats(numeric[rows[got.mask]])
        assert got.n == rows[got.mask].sum()
        np.testing.assert_allclose(got.mean, mean, rtol=RTOL)
        np.testing.assert_allclose(got.comoment, comoment, rtol=RTOL, atol=1e-9 * 2.2e8)
    last = stats[2]
    years = frame.loc[frame["body_mass_g"].isna(), "year"].to_numpy(float)
    assert last.n == 2 and np.isnan(last.mean[:4]).all() and last.mean[4] == years.mean()
    assert np.isnan(last.comoment[:4]).all()
    assert last.comoment[4, 4] == ((years - years.mean()) ** 2).sum()


def test_iris_has_one_complete_pattern_with_the_full_comoment_matrix(shared_data: Path) -> None:
    table = pq.read_table(shared_data / "real" / "iris.parquet")
    numeric = tuple(n for n in table.column_names if n != "species")
    state = _state(table, table.column_names, numeric)
    assert state.patterns() == [((False,) * 5, 150)]
    assert not state.co_missing().any()
    x = np.column_stack([table[s].to_numpy() for s in numeric])
    mean, comoment = _numpy_pattern_stats(x)
    (got,) = state.pattern_moments()
    np.testing.assert_allclose(got.mean, mean, rtol=RTOL)
    np.testing.assert_allclose(got.comoment, comoment, rtol=RTOL)


def test_each_kind_and_each_sentinel_is_counted_apart() -> None:
    inf = float("inf")
    data = {
        "x": [1.0, None, float("nan"), inf, -inf, -999.0, 0.0, -999.0],
        "i": pa.array([5, -999, None, 7, -1, 0, -999, 3], pa.int64()),
        "s": ["a", "", "  ", "NA", None, "null", "?", "\t"],
        "b": [True, None, False, True, True, True, None, False],
    }
    sentinels = {"*": [-999, "NA"], "s": ["null", "?"], "i": [-1]}
    state = _state(data, ("x", "i", "s", "b"), ("x", "i"), sentinels=sentinels)
    x = state.counts("x")
    assert x == {
        "null": 1,
        "nan": 1,
        "posinf": 1,
        "neginf": 1,
        "empty": 0,
        "blank": 0,
        "missing": 4,
        "sentinels": {-999.0: 2, "NA": 0},
    }
    i = state.counts("i")
    assert i["null"] == 1 and i["nan"] == 0 and i["missing"] == 4
    assert i["sentinels"] == {-999.0: 2, "NA": 0, -1.0: 1}
    s = state.counts("s")
    assert (s["null"], s["empty"], s["blank"], s["missing"]) == (1, 1, 2, 4)
    assert s["sentinels"] == {-999.0: 0, "NA": 1, "null": 1, "?": 1}
    assert state.counts("b") == {
        "null": 2,
        "nan": 0,
        "posinf": 0,
        "neginf": 0,
        "empty": 0,
        "blank": 0,
        "missing": 2,
        "sentinels": {-999.0: 0, "NA": 0},
    }
    missing = np.array(
        [
            [False, True, True, False, False, True, False, True],
            [False, True, True, False, True, False, True, False],
            [False, False, False, True, True, True, True, False],
            [False, True, False, False, False, False, True, False],
        ]
    ).T
    assert state.patterns(None) == sorted(
        Counter(map(tuple, missing.tolist())).items(),
        key=lambda item: (-item[1], sum(item[0]), item[0]),
    )
    np.testing.assert_array_equal(state.co_missing(), missing.T.astype(int) @ missing)
    # infinities are not missing but are not values either: row 3 has x = inf, i = 7
    (row3,) = [p for p in state.pattern_moments() if p.mask == (False, False, True, False)]
    assert np.isnan(row3.mean[0]) and row3.mean[1] == 7.0 and row3.comoment[1, 1] == 0.0


def test_bad_arguments_raise_with_codes() -> None:
    cases = [
        lambda: MissingnessState(("x",), ("y",)),
        lambda: MissingnessState(("x",), sentinels={"y": [1]}),
        lambda: MissingnessState(("x",), sentinels={"*": [float("nan")]}),
        lambda: MissingnessState(("x",), sentinels={"*": [True]}),
        lambda: MissingnessState(("x",), max_patterns=0),
        lambda: _state({"x": ["a"]}, ("x",), ("x",)),
    ]
    for case in cases:
        with pytest.raises(InvalidArgumentError) as info:
            case()
        assert info.value.code == "INVALID_ARGUMENT"


def test_a_refused_batch_leaves_the_state_unchanged() -> None:
    state = _state({"s": ["a", None], "x": [1.0, None]}, ("s", "x"), ("x",))
    before = state.to_bytes()
    with pytest.raises(InvalidArgumentError):
        state.update(Batch(pa.table({"s": [None, ""], "x": ["1", "2"]})))
    assert state.to_bytes() == before


def test_all_null_column_and_empty_batch() -> None:
    state = _state({"x": [1.0, 2.0], "n": pa.array([None, None], pa.null())}, ("x", "n"), ("x",))
    assert state.patterns() == [((False, True), 2)]
    assert state.co_missing().tolist() == [[0, 0], [0, 2]]
    empty = MissingnessState(("x",), ("x",))
    before = empty.to_bytes()
    empty.update(Batch(pa.table({"x": pa.array([], pa.float64())})))
    assert empty.is_empty and empty.to_bytes() == before and empty.patterns() == []
    assert empty.merge(state.__class__(("x",), ("x",))).is_empty


def _random_missing(rows: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 6)) + np.arange(6) * 100
    x[rng.random(x.shape) < np.linspace(0.05, 0.5, 6)] = np.nan
    return {f"c{j}": x[:, j] for j in range(6)}


def test_pattern_cap_keeps_the_lowest_ranked_patterns_whatever_the_split() -> None:
    data = _random_missing(3000, seed=8)
    slots = tuple(data)
    state = _state(data, slots, slots, max_patterns=8)
    missing = np.column_stack([np.isnan(v) for v in data.values()])
    keys = [bytes(row) for row in np.packbits(missing, axis=1)]
    counter = Counter(keys)
    kept = sorted(counter, key=_pattern_rank)[:8]
    got = dict(state.patterns(None))
    assert len(got) == 8
    for key in kept:
        mask = tuple(np.unpackbits(np.frombuffer(key, np.uint8))[:6].astype(bool).tolist())
        assert got[mask] == counter[key]
    assert got[(False,) * 6] == counter[bytes(1)]  # the complete pattern ranks first
    fold = state.pattern_fold
    assert fold.exact and fold.levels == len(counter) - 8
    assert fold.rows == sum(c for key, c in counter.items() if key not in kept)
    np.testing.assert_array_equal(state.co_missing(), missing.T.astype(int) @ missing)
    rng = np.random.default_rng(9)
    for _ in range(4):
        bounds = [0, *np.sort(rng.integers(0, 3000, 5)).tolist(), 3000]
        parts = [
            _state({k: v[lo:hi] for k, v in data.items()}, slots, slots, max_patterns=8)
            for lo, hi in zip(bounds, bounds[1:])
        ]
        rng.shuffle(parts)
        merged = parts[0]
        for part in parts[1:]:
            merged = part.merge(merged)
        assert merged.patterns(None) == state.patterns(None)
        assert merged.pattern_fold == fold
        for a, b in zip(merged.pattern_moments(), state.pattern_moments()):
            assert a.mask == b.mask and a.n == b.n
            np.testing.assert_allclose(a.mean, b.mean, rtol=1e-9)
            np.testing.assert_allclose(a.comoment, b.comoment, rtol=1e-9, atol=1e-6)


cells = st.one_of(
    st.floats(-1e3, 1e3, allow_nan=False),
    st.none(),
    st.just(float("nan")),
    st.just(float("inf")),
    st.just(-999.0),
)
texts = st.one_of(st.sampled_from(["a", "", " ", "NA", "b"]), st.none())


@settings(max_examples=50, deadline=None)
@given(
    rows=st.lists(st.tuples(cells, cells, texts), max_size=50),
    cuts=st.lists(st.integers(0, 50), max_size=5),
    max_patterns=st.sampled_from([1, 3, 256]),
    seed=st.integers(0, 2**32 - 1),
)
def test_merge_of_any_split_in_any_order_equals_the_whole(rows, cuts, max_patterns, seed) -> None:
    data = {
        "x": pa.array([r[0] for r in rows], pa.float64()),
        "y": pa.array([r[1] for r in rows], pa.float64()),
        "s": pa.array([r[2] for r in rows], pa.string()),
    }
    options = {"sentinels": {"*": [-999, "NA"]}, "max_patterns": max_patterns}
    whole = _state(data, ("x", "y", "s"), ("x", "y"), **options)
    bounds = sorted({0, len(rows), *[min(c, len(rows)) for c in cuts]})
    parts = [
        _state({k: v[lo:hi] for k, v in data.items()}, ("x", "y", "s"), ("x", "y"), **options)
        for lo, hi in zip(bounds, bounds[1:])
    ]
    rng = np.random.default_rng(seed)
    rng.shuffle(parts)
    merged = MissingnessState.empty(("x", "y", "s"), ("x", "y"), **options)
    for part in parts:
        before = part.to_bytes()
        merged = merged.merge(part) if rng.random() < 0.5 else part.merge(merged)
        assert part.to_bytes() == before
    assert merged.n == whole.n == len(rows)
    for slot in ("x", "y", "s"):
        assert merged.counts(slot) == whole.counts(slot)
    np.testing.assert_array_equal(merged.co_missing(), whole.co_missing())
    assert merged.patterns(None) == whole.patterns(None)
    assert merged.pattern_fold == whole.pattern_fold
    if max_patterns == 256:

        def missing(v: object) -> bool:
            return v is None or v != v or v in (-999.0, "NA")

        masks = Counter(tuple(missing(v) for v in row) for row in rows)
        assert dict(whole.patterns(None)) == dict(masks)
    for a, b in zip(merged.pattern_comoments(), whole.pattern_comoments()):
        np.testing.assert_array_equal(a[1].n, b[1].n)
        for name in ("mean", "m2", "c"):
            got, want = getattr(a[1], name), getattr(b[1], name)
            np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-6)


def test_identity_purity_round_trip_and_pickle() -> None:
    options = {"sentinels": {"s": ["?"], "*": [-1]}, "max_patterns": 4}
    left = _state({"x": [1.0, None, 3.0], "s": ["a", "?", None]}, ("x", "s"), ("x",), **options)
    right = _state({"x": [-1.0, 5.0], "s": ["b", "c"]}, ("x", "s"), ("x",), **options)
    before = left.to_bytes()
    merged = left.merge(right)
    assert left.to_bytes() == before
    empty = MissingnessState.empty(("x", "s"), ("x",), **options)
    assert empty.merge(merged).to_bytes() == merged.to_bytes()
    assert merged.merge(empty).to_bytes() == merged.to_bytes()
    for restored in (State.from_bytes(merged.to_bytes()), pickle.loads(pickle.dumps(merged))):
        assert isinstance(restored, MissingnessState)
        assert restored.to_bytes() == merged.to_bytes()
        assert restored.patterns() == merged.patterns()
        assert restored.counts("s") == merged.counts("s")
        for a, b in zip(restored.pattern_moments(), merged.pattern_moments()):
            np.testing.assert_array_equal(a.comoment, b.comoment)
    with pytest.raises(IncompatibleStatesError):
        left.merge(MissingnessState(("x", "s"), ("x",), sentinels={"*": [-2]}))


def _is_missing(value: object, sentinels: list) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return value in [s for s in sentinels if isinstance(s, str)]
    number = float(value)  # type: ignore[arg-type]
    return number != number or number in [s for s in sentinels if not isinstance(s, str)]


def _check_against_rows(state: MissingnessState, batches: list[pa.Table], sentinels: list) -> None:
    """Every count, the co-missingness, the patterns and each kept pattern's pairwise
    co-moments of ``state`` against a row-by-row reference over the concatenated batches."""
    table = pa.concat_tables(batches)
    slots = state.slots
    rows = table.to_pylist()
    missing = np.array([[_is_missing(row[s], sentinels) for s in slots] for row in rows])
    assert state.n == len(rows)
    np.testing.assert_array_equal(state.co_missing(), missing.T.astype(int) @ missing)
    counter = Counter(map(tuple, missing.tolist()))
    kept = dict(state.patterns(None))
    assert sum(kept.values()) + state.pattern_fold.rows == len(rows)
    for mask, count in kept.items():
        assert counter[mask] == count
    for j, slot in enumerate(slots):
        counts = state.counts(slot)
        values = [row[slot] for row in rows]
        assert counts["null"] == sum(v is None for v in values)
        assert counts["missing"] == missing[:, j].sum()
        floats = [float(v) for v in values if isinstance(v, float)]
        assert counts["nan"] == sum(v != v for v in floats)
        assert counts["posinf"] == floats.count(float("inf"))
        assert counts["neginf"] == floats.count(float("-inf"))
        for sentinel, hits in counts["sentinels"].items():
            same = [
                v
                for v in values
                if v is not None and isinstance(v, str) == isinstance(sentinel, str)
            ]
            assert hits == sum((v if isinstance(v, str) else float(v)) == sentinel for v in same)
    x = np.array(
        [[np.nan if row[s] is None else float(row[s]) for s in state.moment_slots] for row in rows]
    ).reshape(len(rows), len(state.moment_slots))
    for mask, cm in state.pattern_comoments():
        block = x[(missing == np.array(mask)).all(axis=1)]
        m = block.shape[1]
        observed = [not mask[slots.index(s)] for s in state.moment_slots]
        for i in range(m):
            for j in range(m):
                both = np.isfinite(block[:, i]) & np.isfinite(block[:, j])
                both &= observed[i] and observed[j]
                assert cm.n[i, j] == both.sum()
                if not both.any():
                    continue
                xi, xj = block[both, i], block[both, j]
                spread = max(np.abs(xi - xi.mean()).max(), np.abs(xj - xj.mean()).max(), 1e-300)
                scale = both.sum() * spread * spread
                assert abs(cm.mean[i, j] + cm.mean_lo[i, j] - xi.mean()) <= RTOL * (
                    abs(xi.mean()) + spread
                )
                assert abs(cm.m2[i, j] - ((xi - xi.mean()) ** 2).sum()) <= RTOL * scale
                want = ((xi - xi.mean()) * (xj - xj.mean())).sum()
                assert abs(cm.c[i, j] - want) <= RTOL * scale


def _column(rng: np.random.Generator, rows: int, null: float, **cells: float) -> np.ndarray:
    """Normal values with shares ``null`` of None and ``cells`` of given values (nan, inf,
    -999, ...) at random rows, as an object array."""
    x = (rng.normal(size=rows) * 50 + 200).astype(object)
    for value, share in cells.items():
        x[rng.random(rows) < share] = float(value)
    x[rng.random(rows) < null] = None
    return x


def test_batches_with_and_without_missing_values_match_the_rows() -> None:
    rng = np.random.default_rng(3)
    sentinels = [-999, "NA"]
    slots = ("a", "b", "c", "s", "d")

    def batch(rows: int, a: dict, b: dict, c: dict, texts: list[str], d_null: float) -> pa.Table:
        return pa.table(
            {
                "a": pa.array(_column(rng, rows, **a).tolist(), pa.float64()),
                "b": pa.array(_column(rng, rows, **b).tolist(), pa.float64()),
                "c": pa.array(rng.integers(-1000, 1000, rows)).cast(pa.int32()),
                "s": pa.array(rng.choice(texts, rows).tolist()),
                "d": pa.array(
                    [None if rng.random() < d_null else 1.5 for _ in range(rows)], pa.float64()
                ),
            }
        )

    none = {"null": 0.0}
    batches = [
        # nothing missing at all: one pattern, the plain co-moments
        batch(500, none, none, none, ["x", "yy"], 0.0),
        # one column entirely null, the others complete: still one pattern
        batch(300, none, none, none, ["x", "yy"], 1.0),
        # NaN beside null, infinities in a moment column, a numeric sentinel, and the
        # string sentinel for the first time
        batch(
            2000,
            {"null": 0.05, "nan": 0.05, "-999": 0.02},
            {"null": 0.1, "inf": 0.03, "-inf": 0.01},
            none,
            ["x", "yy", "NA"],
            0.3,
        ),
        batch(40, none, {"null": 0.0, "inf": 0.2}, none, ["x", "yy"], 0.0),
    ]
    batches[0] = batches[0].set_column(2, "c", pa.array(np.arange(500)).cast(pa.int32()))
    state = MissingnessState(slots, ("a", "b", "c", "d"), sentinels={"*": sentinels})
    for table in batches:
        state.update(Batch(table))
        _check_against_rows(state, batches[: batches.index(table) + 1], sentinels)
    assert state.counts("s")["sentinels"]["NA"] > 0 and state.counts("c")["sentinels"][-999.0] > 0


def test_patterns_beyond_the_cap_and_many_columns_with_missing_values() -> None:
    rng = np.random.default_rng(4)
    # 20 columns with missing values (beyond the table of codes) and 70 (beyond one word)
    for k, max_patterns in ((20, 16), (70, 8)):
        data = {f"c{j}": _column(rng, 400, null=0.02, nan=0.02) for j in range(k)}
        table = pa.table({name: pa.array(x.tolist(), pa.float64()) for name, x in data.items()})
        slots = tuple(data)
        numeric = slots[:5]
        state = MissingnessState(slots, numeric, max_patterns=max_patterns)
        halves = [table.slice(0, 150), table.slice(150)]
        for half in halves:
            state.update(Batch(half))
        _check_against_rows(state, halves, [])
        assert state.pattern_fold.rows > 0 and len(state.patterns(None)) == max_patterns
        whole = _state(table, slots, numeric, max_patterns=max_patterns)
        assert whole.patterns(None) == state.patterns(None)


def test_a_batch_holding_only_sentinels_and_dictionary_strings() -> None:
    texts = pa.array(["NA", "a", "NA", None, "?", "bb"]).dictionary_encode()
    data = {"s": texts, "x": pa.array([-999, 1, 2, None, 3, -999], pa.int64())}
    sentinels = ["NA", "?", -999]
    state = _state(data, ("s", "x"), ("x",), sentinels={"*": sentinels})
    _check_against_rows(state, [pa.table(data)], sentinels)
    assert state.counts("s")["sentinels"] == {"NA": 2, "?": 1, -999.0: 0}


def test_sums_that_overflow_float64_and_the_batch_left_unchanged() -> None:
    x = np.array([1.5e308, 1.6e308, 1.7e308, -1e308, 1.2e308, 1.7e308])
    y = np.array([1.0, None, 3.0, 4.0, float("inf"), 6.0], dtype=object)
    table = pa.table({"x": x, "y": pa.array(y.tolist(), pa.float64())})
    batch = Batch(table)
    before = batch.float_matrix(("x", "y"))[0].copy()
    state = MissingnessState(("x", "y"), ("x", "y"))
    state.update(batch)
    np.testing.assert_array_equal(batch.float_matrix(("x", "y"))[0], before)
    complete = dict(state.pattern_comoments())[(False, False)]
    rows = np.array([0, 2, 3, 4, 5])
    assert complete.n[0, 0] == 5 and complete.n[0, 1] == 4
    assert complete.mean[0, 0] == pytest.approx((x[rows] / 8).mean() * 8, rel=1e-12)
    assert complete.mean[1, 0] == pytest.approx(np.mean([1.0, 3.0, 4.0, 6.0]), rel=1e-12)


@pytest.mark.parametrize("own", [True, False])
def test_run_reduction_equals_segment_comoments(own: bool) -> None:
    rng = np.random.default_rng(5)
    sizes = np.array([5, 1, 7, 3, 9, 2, 40])
    groups = np.array([0, 2, 3, 6])  # runs 0-1, 2, 3-5 and 6 make four groups
    usable = rng.random((len(sizes), 5)) < 0.7
    usable[:, 4] = True
    rows = np.repeat(np.arange(len(sizes)), sizes)
    values = rng.normal(size=(len(rows), 5)) * [1, 1e6, 1e-6, 1, 1] + [0, 1e8, 0, 0, 0]
    values[:, 3] = 0.1  # constant: its M2 must come out exactly zero
    values[:, 4] = 0.9999999 + np.arange(len(rows)) * 1e-8
    left_out = ~usable[rows]
    values[left_out] = rng.choice([np.nan, np.inf, -np.inf, -999.0], left_out.sum())
    values = np.asfortranarray(values)
    given = values.copy(order="F")
    got = _pattern_comoments(given, usable, sizes, groups, own=own)
    if not own:
        np.testing.assert_array_equal(given, values)
    starts = (np.cumsum(sizes) - sizes)[groups]
    want = _algebra.segment_comoments(values, ~left_out, starts)
    assert got is not None
    np.testing.assert_array_equal(got.n, want.n)
    spread = np.sqrt(np.einsum("gii->gi", want.m2) / np.maximum(np.einsum("gii->gi", want.n), 1))
    scale = spread[:, :, None] * spread[:, None, :] * want.n
    np.testing.assert_allclose(got.mean + got.mean_lo, want.mean + want.mean_lo, rtol=1e-14)
    np.testing.assert_allclose(got.m2, want.m2, rtol=1e-12, atol=0)
    assert np.all(np.abs(got.c - want.c) <= 1e-12 * scale)
    seen = want.n[:, 3, 3] > 0
    assert not got.m2[seen, 3, 3].any() and not got.c[seen, 3, 3].any()
