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

from spark_explore.states.base import State
from spark_explore.states.batch import Batch
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
