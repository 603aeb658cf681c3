"""MomentsState and the moment algebra against numpy/scipy, and the merge laws."""

from __future__ import annotations

import pickle
import warnings
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pyarrow as pa
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st

from spark_explore.states import _algebra
from spark_explore.states.base import State
from spark_explore.states.batch import Batch, to_float64, write_float64
from spark_explore.states.moments import MomentsState
from spark_explore.summary import moment_statistics

RTOL = 1e-9


def _batch(**columns: pa.Array) -> Batch:
    return Batch(pa.RecordBatch.from_pydict(columns))


def _state(values: dict[str, list], exact: tuple[str, ...] | None = None) -> MomentsState:
    state = MomentsState(tuple(values), exact)
    state.update(_batch(**{k: pa.array(v) for k, v in values.items()}))
    return state


def _stats(state: MomentsState, j: int) -> dict[str, float]:
    m = state.moments
    n, m2 = m.n[j], m.m2[j]
    return {
        "n": n,
        "mean": m.mean[j] + m.mean_lo[j],
        "var": m2 / (n - 1),
        "skew": np.sqrt(n) * m.m3[j] / m2**1.5,
        "kurt": n * m.m4[j] / m2**2 - 3,
    }


def test_matches_numpy_and_scipy_with_null_nan_and_infinities() -> None:
    rng = np.random.default_rng(7)
    x = rng.lognormal(2.0, 0.7, 5000)
    values = list(x) + [None] * 11 + [float("nan")] * 5 + [np.inf] * 3 + [-np.inf] * 2
    state = _state({"x": values})
    got = _stats(state, 0)
    assert got["n"] == 5000
    np.testing.assert_allclose(got["mean"], np.mean(x), rtol=RTOL)
    np.testing.assert_allclose(got["var"], np.var(x, ddof=1), rtol=RTOL)
    np.testing.assert_allclose(got["skew"], scipy.stats.skew(x), rtol=RTOL)
    np.testing.assert_allclose(got["kurt"], scipy.stats.kurtosis(x), rtol=RTOL)
    counts = {name: int(c[0]) for name, c in state.counts.items()}
    assert counts == {"nan": 5, "posinf": 3, "neginf": 2, "zeros": 0, "negatives": 0}
    assert state.fmin[0] == x.min() and state.fmax[0] == x.max()


def test_exact_extremes_of_bigint_and_decimal_near_their_limits() -> None:
    big = [2**63 - 1, -(2**63), 2**63 - 2, None]
    dec = [Decimal("9" * 38), Decimal("-" + "9" * 38), Decimal(1), None]
    state = MomentsState(("b", "d"), ("int", "decimal"))
    state.update(_batch(b=pa.array(big, pa.int64()), d=pa.array(dec, pa.decimal128(38, 0))))
    assert state.exact_min == [-(2**63), Decimal("-" + "9" * 38)]
    assert state.exact_max == [2**63 - 1, Decimal("9" * 38)]
    # float64 moments of such values stay finite (no overflow)
    assert np.isfinite(state.moments.mean).all() and np.isfinite(state.moments.m2).all()
    restored = State.from_bytes(state.to_bytes())
    assert restored.exact_max == state.exact_max and restored.exact_min == state.exact_min


def test_constant_column_has_exactly_zero_central_moments() -> None:
    state = _state({"c": [0.1] * 1001})
    assert state.moments.m2[0] == 0.0 and state.moments.m3[0] == 0.0
    merged = state.merge(_state({"c": [0.1] * 7}))
    assert merged.moments.m2[0] == 0.0


finite_floats = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
cells = st.one_of(finite_floats, st.none(), st.just(float("nan")), st.just(float("inf")))


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(st.tuples(cells, finite_floats), min_size=0, max_size=60),
    cuts=st.lists(st.integers(0, 60), max_size=6),
    seed=st.integers(0, 2**32 - 1),
)
def test_merge_of_any_split_equals_the_whole(rows, cuts, seed) -> None:
    a = [r[0] for r in rows]
    b = [r[1] for r in rows]
    whole = _state({"a": a, "b": b})
    bounds = sorted({0, len(rows), *[min(c, len(rows)) for c in cuts]})
    parts = [_state({"a": a[lo:hi], "b": b[lo:hi]}) for lo, hi in zip(bounds, bounds[1:])] or [
        MomentsState(("a", "b"))
    ]
    np.random.default_rng(seed).shuffle(parts)
    merged = MomentsState.empty(("a", "b"))
    for part in parts:
        merged = merged.merge(part)
    for name, want in whole.counts.items():
        np.testing.assert_array_equal(merged.counts[name], want)
    np.testing.assert_array_equal(merged.moments.n, whole.moments.n)
    np.testing.assert_array_equal(merged.fmin, whole.fmin)
    mean_w = whole.moments.mean + whole.moments.mean_lo
    mean_m = merged.moments.mean + merged.moments.mean_lo
    np.testing.assert_allclose(mean_m, mean_w, rtol=1e-12, atol=1e-9)
    scale = np.maximum(whole.moments.m2, 1.0)
    np.testing.assert_allclose(merged.moments.m2 / scale, whole.moments.m2 / scale, atol=1e-9)


def test_merge_is_pure_and_empty_is_identity() -> None:
    left = _state({"x": [1.0, 2.0, 5.0]})
    right = _state({"x": [7.0, None]})
    before = left.to_bytes()
    merged = left.merge(right)
    assert left.to_bytes() == before
    assert merged.moments.n[0] == 4
    identity = MomentsState.empty(("x",)).merge(left)
    assert identity.to_bytes() == left.to_bytes()


def test_round_trip_through_bytes_and_pickle() -> None:
    state = _state({"x": [1.5, None, float("nan"), -2.0], "y": [1, 2, 3, None]}, ("", "int"))
    for restored in (State.from_bytes(state.to_bytes()), pickle.loads(pickle.dumps(state))):
        assert restored.to_bytes() == state.to_bytes()
        assert restored.exact_max == [None, 3]


def test_merging_different_columns_is_refused() -> None:
    from spark_explore.errors import IncompatibleStatesError

    with pytest.raises(IncompatibleStatesError) as info:
        _state({"x": [1.0]}).merge(_state({"y": [1.0]}))
    assert info.value.code == "INCOMPATIBLE_STATES"


#: Values at both ends of the float64 range in turn with zeros, the smallest subnormal and
#: non-finite values: the mean of the finite ones is about 0, their squares overflow.
SPECIALS = [0.0, -0.0, float("nan"), np.inf, -np.inf, 1e308, -1e308, 5e-324]


def _exact_mean(x: np.ndarray) -> float:
    return float(sum(Fraction(float(v)) for v in x) / len(x))


@pytest.mark.parametrize("parts", [1, 3, 7])
def test_values_near_the_float64_limits_keep_their_mean_and_warn_nothing(parts: int) -> None:
    rows = 4000
    rng = np.random.default_rng(5)
    columns = {
        "v": np.array(SPECIALS)[np.arange(rows) % len(SPECIALS)],
        "a": rng.choice([1.7e308, -1.7e308, 1.0], rows, p=[0.5, 0.2, 0.3]),
        "big": rng.normal(0.0, 1e100, rows),  # M2 representable, M4 not
    }
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a worker's warnings reach the console
        merged = MomentsState.empty(tuple(columns))
        for part in np.array_split(np.arange(rows), parts):
            merged = merged.merge(_state({k: c[part].tolist() for k, c in columns.items()}))
    m = merged.moments
    for j, x in enumerate(columns.values()):
        x = x[np.isfinite(x)]
        # exact to the rounding of sums of values this large (numpy's mean overflows)
        assert abs(m.mean[j] + m.mean_lo[j] - _exact_mean(x)) <= 1e-14 * np.abs(x).max()
    assert np.isinf(m.m2[:2]).all() and not np.isfinite(m.m4[2])
    big, m2 = columns["big"], m.m2[2]
    np.testing.assert_allclose(m2 / (rows - 1), np.var(big, ddof=1), rtol=RTOL)
    np.testing.assert_allclose(
        m.m3[2] / rows / (m2 / rows) ** 1.5, scipy.stats.skew(big), rtol=RTOL
    )


def test_merging_means_too_far_apart_to_subtract() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        merged = _state({"x": [1.7e308] * 3}).merge(_state({"x": [-1.7e308]}))
    m = merged.moments
    assert m.mean[0] + m.mean_lo[0] == pytest.approx(0.85e308, rel=1e-15)
    assert m.m2[0] == np.inf and m.n[0] == 4


def test_statistics_from_overflowing_or_underflowing_moments_are_undefined_with_a_reason() -> None:
    rng = np.random.default_rng(8)
    cases = {
        "v": np.array(SPECIALS * 125),
        "big": rng.normal(0.0, 1e100, 1000),  # M4 overflows
        "e76": rng.normal(0.0, 1e76, 1000),  # M4 fits, M2 squared does not
        "tiny": rng.normal(0.0, 1e-160, 1000),  # M2 underflows
    }
    state = _state({k: list(x) for k, x in cases.items()})
    m = state.moments
    out = {}
    for j, name in enumerate(cases):
        out[name] = moment_statistics(
            float(m.n[j]), float(m.mean[j] + m.mean_lo[j]), m.m2[j], m.m3[j], m.m4[j]
        )
    values, reasons = out["v"]
    assert values == {"mean": 0.0}
    assert set(reasons) == {"variance", "std", "skewness", "kurtosis"}
    assert all("overflows float64" in text for text in reasons.values())
    values, reasons = out["big"]
    big = cases["big"]
    np.testing.assert_allclose(values["std"], np.std(big, ddof=1), rtol=RTOL)
    np.testing.assert_allclose(values["skewness"], scipy.stats.skew(big), rtol=RTOL)
    assert reasons == {"kurtosis": "the fourth central moment overflows float64"}
    values, reasons = out["e76"]  # n M4 / M2**2 would be 0, the kurtosis -3
    np.testing.assert_allclose(values["kurtosis"], scipy.stats.kurtosis(cases["e76"]), rtol=RTOL)
    values, reasons = out["tiny"]
    assert "std" not in values and "underflows float64" in reasons["std"]
    assert values["mean"] == pytest.approx(np.mean(cases["tiny"]), rel=RTOL)


def _awkward_matrices() -> list[np.ndarray]:
    """Matrices with NaN, infinities, values near the float64 limits, tiny values,
    constant, empty, rounded (decimal-like) columns and one row, in both memory orders."""
    out = []
    for seed in range(24):
        rng = np.random.default_rng(seed)
        rows = int(rng.choice([1, 2, 7, 300, 2500]))
        centre = rng.choice([0.0, 1e6, -3.0, 1e-300, 1e300])
        x = rng.normal(centre, rng.choice([1.0, 1e-3, 1e8]), size=(rows, 5))
        x[:, 1] = 0.25  # constant
        x[:, 2] = np.round(x[:, 2], 2)
        if seed % 2:
            x[rng.random(x.shape) < 0.1] = np.nan
            x[rng.random(x.shape) < 0.01] = np.inf
            x[rng.random(x.shape) < 0.01] = -np.inf
        if seed % 3 == 0:
            x[:, 3] = np.nan
        if seed % 4 == 0:
            x[::2, 4], x[1::2, 4] = 1.7e308, -1.7e308
        if seed % 5 == 0:
            x[:, 0] = 5e-324 * rng.integers(-3, 4, rows)
        out += [np.asfortranarray(x), np.ascontiguousarray(x)]
    return out


def _masked_batch_moments(values: np.ndarray, finite: np.ndarray) -> _algebra.Moments:
    """The corrected two-pass moments with every pass masked by ``finite``: what
    ``batch_moments`` computes by overwriting the skipped entries instead."""
    n = finite.sum(axis=0).astype(np.float64)
    safe_n = np.where(n > 0, n, 1.0)
    d = np.where(finite, values, 0.0)
    low = np.where(finite, values, np.inf).min(axis=0)
    high = np.where(finite, values, -np.inf).max(axis=0)
    mean = _algebra._constant_or_mean(_algebra._means(d, safe_n), (low, high))
    with np.errstate(over="ignore", invalid="ignore"):
        d -= mean
        d *= finite
        mean_lo = _algebra._correction(_algebra._means(d, safe_n))
        d -= mean_lo
        d *= finite
        d2 = d * d
        m2 = d2.sum(axis=0)
        d *= d2
        m3 = d.sum(axis=0)
        d2 *= d2
        m4 = d2.sum(axis=0)
    mean, mean_lo = _algebra.two_sum(mean, mean_lo)
    return _algebra.Moments(n, mean, mean_lo, m2, m3, m4)


def _bits(fields: tuple) -> list[bytes]:
    return [np.ascontiguousarray(field).tobytes() for field in fields]


@pytest.mark.parametrize("index", range(48))
def test_batch_moments_equal_the_masked_passes_bit_for_bit(index: int) -> None:
    x = _awkward_matrices()[index]
    finite = np.isfinite(x)
    reference = _masked_batch_moments(x, finite)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        given_mask = _algebra.batch_moments(x, finite)
        listed = _algebra.batch_moments(x, None, skipped=_algebra.skipped_entries(finite))
        extremes = _algebra.finite_extremes(x, None)
    assert _bits(given_mask) == _bits(reference)
    assert _bits(listed) == _bits(reference)
    low = np.where(finite, x, np.inf).min(axis=0)
    high = np.where(finite, x, -np.inf).max(axis=0)
    np.testing.assert_array_equal(extremes, (low, high))  # -0.0 and 0.0 tie


def test_finite_extremes_with_a_mask_leaving_out_numbers() -> None:
    x = np.asfortranarray([[1.0, np.nan], [5.0, 2.0], [-7.0, np.inf]])
    finite = np.array([[True, False], [True, True], [False, False]])
    low, high = _algebra.finite_extremes(x, finite)
    np.testing.assert_array_equal(low, [1.0, 2.0])
    np.testing.assert_array_equal(high, [5.0, 2.0])


def _reference_update(values: dict[str, pa.Array]) -> dict[str, np.ndarray]:
    """Counts, float extremes and moments of one batch, from a float64 copy of each column
    with numpy masks."""
    x = np.column_stack([np.asarray(to_float64(a)) for a in values.values()])
    x = np.asfortranarray(x)
    nulls = np.array([a.null_count for a in values.values()])
    finite = np.isfinite(x)
    return {
        "nan": np.isnan(x).sum(axis=0) - nulls,
        "posinf": (x == np.inf).sum(axis=0),
        "neginf": (x == -np.inf).sum(axis=0),
        "zeros": (x == 0).sum(axis=0),
        "negatives": (finite & (x < 0)).sum(axis=0),
        "fmin": np.where(finite, x, np.inf).min(axis=0),
        "fmax": np.where(finite, x, -np.inf).max(axis=0),
        "moments": _masked_batch_moments(x, finite),
    }


def test_update_equals_masked_numpy_on_awkward_columns() -> None:
    rng = np.random.default_rng(7)
    rows = 1000
    floats = rng.normal(0, 1, rows)
    floats[rng.random(rows) < 0.1] = np.nan
    floats[:3] = [np.inf, -np.inf, 0.0]
    columns = {
        "f": pa.array(floats, mask=rng.random(rows) < 0.05),
        "all_finite": pa.array(rng.normal(1e6, 1, rows)),
        "i": pa.array(rng.integers(-5, 5, rows), pa.int32(), mask=rng.random(rows) < 0.2),
        "big": pa.array([2**53 - 1, -(2**53) + 1] * (rows // 2), pa.int64()),
        "huge": pa.array([2**53 + 1, 3] * (rows // 2), pa.int64()),
        "d": pa.array([Decimal("1.25"), None, Decimal("-3.50"), Decimal("0")] * (rows // 4)),
        "t": pa.array(rng.integers(0, 2**50, rows), pa.timestamp("us", "UTC")),
        "day": pa.array(rng.integers(-9000, 9000, rows).astype("int32"), pa.date32()),
        "none": pa.array([None] * rows, pa.float64()),
        "near_max": pa.array([1.7e308, -1.7e308] * (rows // 2)),
        "tiny": pa.array(5e-324 * rng.integers(-3, 4, rows)),
        "f32": pa.array(rng.normal(0, 1, rows).astype(np.float32), mask=rng.random(rows) < 0.1),
    }
    exact = ("", "", "int", "int", "int", "decimal", "int", "int", "", "", "", "")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        state = MomentsState(tuple(columns), exact)
        state.update(Batch(pa.RecordBatch.from_pydict(columns)))
    reference = _reference_update(columns)
    for name in ("nan", "posinf", "neginf", "zeros", "negatives"):
        np.testing.assert_array_equal(state.counts[name], reference[name], err_msg=name)
    np.testing.assert_array_equal(state.fmin, reference["fmin"])
    np.testing.assert_array_equal(state.fmax, reference["fmax"])
    assert _bits(state.moments) == _bits(reference["moments"])
    for j, name in enumerate(columns):
        if exact[j]:
            array = columns[name]
            if name in ("t", "day"):
                array = array.cast(pa.int64() if name == "t" else pa.int32())
            values = [v for v in array.to_pylist() if v is not None]
            assert (state.exact_min[j], state.exact_max[j]) == (min(values), max(values)), name
    assert state.exact_max[3] == 2**53 - 1 and state.exact_max[4] == 2**53 + 1


def test_one_row_and_slices_of_arrow_arrays() -> None:
    ints = pa.array([None, 4, 2**62, -1, None], pa.int64()).slice(1, 3)
    floats = pa.array([1.0, np.nan, None, 2.5], pa.float64()).slice(1, 3)
    state = MomentsState(("i", "x"), ("int", ""))
    state.update(Batch(pa.RecordBatch.from_arrays([ints, floats], names=["i", "x"])))
    assert (state.exact_min[0], state.exact_max[0]) == (-1, 2**62)
    np.testing.assert_array_equal(state.counts["nan"], [0, 1])
    np.testing.assert_array_equal(state.moments.n, [3, 1])
    one = MomentsState(("x",))
    one.update(_batch(x=pa.array([3.0])))
    assert (one.moments.n[0], one.moments.mean[0], one.moments.m2[0]) == (1.0, 3.0, 0.0)


def test_batch_float_values_share_columns_and_non_finite_entries() -> None:
    rng = np.random.default_rng(3)
    rows = 500
    columns = {
        "a": pa.array(rng.normal(0, 1, rows), mask=rng.random(rows) < 0.1),
        "b": pa.array(rng.integers(0, 9, rows), pa.int16(), mask=rng.random(rows) < 0.1),
        "c": pa.array(rng.integers(0, 9, rows), pa.int8()),
        "e": pa.array([np.inf, np.nan] * (rows // 2)),
    }
    for fresh in (True, False):
        batch = Batch(pa.RecordBatch.from_pydict(columns))
        if not fresh:
            batch.floats("b")
        matrix = batch.float_values(("a", "b", "c", "e"))
        for j, (name, array) in enumerate(columns.items()):
            expected = to_float64(array)
            assert matrix[:, j].tobytes() == expected.tobytes()
            assert batch.floats(name).tobytes() == expected.tobytes()
            if fresh:  # a view of the shared matrix
                assert not batch.floats(name).flags.writeable
        row, col = batch.skipped(("a", "b", "c", "e"))
        expected_row, expected_col = _algebra.skipped_entries(np.isfinite(matrix))
        np.testing.assert_array_equal(row, expected_row)
        np.testing.assert_array_equal(col, expected_col)
        prefix_row, prefix_col = batch.skipped(("a", "b"))
        np.testing.assert_array_equal(prefix_row, expected_row[expected_col < 2])
        np.testing.assert_array_equal(prefix_col, expected_col[expected_col < 2])
        values, finite = batch.float_matrix(("a", "b"))
        assert values.base is matrix or values.base is matrix.base
        np.testing.assert_array_equal(finite, np.isfinite(matrix[:, :2]))


def test_exact_extremes_among_values_that_round_to_the_same_float() -> None:
    base = 2**60
    ints = [base + 3, base + 1, None, base + 2, -base - 5, -base - 6, 7]
    wide = [Decimal("123456789012345678.01"), Decimal("123456789012345678.03"), None]
    wide += [Decimal("123456789012345678.02"), Decimal("-123456789012345678.05")]
    wide += [Decimal("-123456789012345678.04"), Decimal("0.00")]
    stamps = pa.array([2**62 + 1, 2**62 + 2, None, -(2**62) - 1, 0, 1, 2], pa.timestamp("ns"))
    state = MomentsState(("i", "d", "t"), ("int", "decimal", "int"))
    state.update(
        _batch(i=pa.array(ints, pa.int64()), d=pa.array(wide, pa.decimal128(38, 2)), t=stamps)
    )
    assert state.exact_min == [-base - 6, Decimal("-123456789012345678.05"), -(2**62) - 1]
    assert state.exact_max == [base + 3, Decimal("123456789012345678.03"), 2**62 + 2]
    empty = MomentsState(("d",), ("decimal",))
    empty.update(_batch(d=pa.array([None, None], pa.decimal128(10, 2))))
    assert empty.exact_min == [None] and empty.exact_max == [None]


def _conversion_cases() -> list[pa.Array]:
    rng = np.random.default_rng(5)
    wide = [Decimal(int(v)) for v in rng.integers(-(2**53) + 1, 2**53, 500)]
    return [
        pa.array([1, None, 3, 2**63 - 1], pa.int64()).slice(1),
        pa.array([None] * 5, pa.int32()),
        pa.array([], pa.float64()),
        pa.array([1.5, np.nan, None, np.inf, -0.0], pa.float32()).slice(1, 3),
        pa.array([2**64 - 1, 0], pa.uint64()),
        pa.array([1, 2, None, 4, 5, 6, 7, 8, 9, 10, None], pa.int8()).slice(3),
        pa.array([True, None, False]),
        pa.array([10, None, -(2**62)], pa.timestamp("ns", "UTC")).slice(1),
        pa.array([-719162, None, 2932896], pa.date32()),
        pa.array([86400000, None], pa.date64()),
        pa.array([5, None], pa.duration("s")),
        pa.array(wide + [None], pa.decimal128(38, 0)),
        pa.array([Decimal(2**53), Decimal(1)], pa.decimal128(38, 0)),
        pa.array([Decimal(-(2**53)), None], pa.decimal128(20, 0)),
        pa.array([Decimal(-(10**30)), Decimal(5)], pa.decimal128(38, 0)).slice(1),
        pa.array([Decimal(-(2**64) + 5), Decimal(7)], pa.decimal128(38, 0)),
        pa.array([Decimal("1.25"), None, Decimal("-0.01")], pa.decimal128(12, 2)),
        pa.array([None, None], pa.decimal128(5, 0)),
        pa.array([None, None]),
    ]


@pytest.mark.parametrize("index", range(19))
def test_writing_into_the_matrix_converts_as_to_float64(index: int) -> None:
    array = _conversion_cases()[index]
    expected = to_float64(array)
    out = np.full(len(array), 7.0)
    write_float64(array, out)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(expected))
    kept = ~np.isnan(expected)
    assert out[kept].tobytes() == expected[kept].tobytes()
