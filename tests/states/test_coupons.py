"""The coupon filter leaves a DataSketches HLL exactly as feeding every value would."""

from __future__ import annotations

import datasketches
import numpy as np
import pytest

from spark_explore.states._coupons import CouponFilter, canonical_double_bits


def _registers(sketch: datasketches.hll_sketch, lg_k: int) -> bytes:
    """The sketch's registers alone: unioned with itself, it drops the order-dependent HIP
    estimate, as :class:`~spark_explore.states.distinct.HllState` does."""
    union = datasketches.hll_union(lg_k)
    union.update(sketch)
    union.update(sketch)
    return union.get_result(datasketches.HLL_8).serialize_compact()


def _values(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "float":
        values = rng.normal(size=n)
        values[: min(n, 8)] = [0.0, -0.0, np.nan, -np.nan, np.inf, -np.inf, 1.0, 1.0][:n]
        return values
    if kind == "few":  # fewer distinct values than a sparse sketch holds at lg_k 12
        return rng.integers(-300, 300, n, dtype=np.int64) * 7_919
    values = rng.integers(-(2**63), 2**63 - 1, n, dtype=np.int64)
    values[: n // 3] = rng.integers(0, 50, n // 3)  # repeats among distinct values
    return values


@pytest.mark.parametrize("lg_k", [4, 8, 12])
@pytest.mark.parametrize("kind", ["int", "float", "few"])
@pytest.mark.parametrize("n", [3, 200, 5_000, 60_000])
def test_filtered_feed_leaves_the_same_registers(lg_k: int, kind: str, n: int) -> None:
    rng = np.random.default_rng(lg_k * 1000 + n)
    values = _values(kind, n, rng)
    everything = datasketches.hll_sketch(lg_k, datasketches.HLL_8)
    for value in values.tolist():
        everything.update(value)
    filtered = datasketches.hll_sketch(lg_k, datasketches.HLL_8)
    chooser = CouponFilter(lg_k)
    fed = 0
    for chunk in np.array_split(values, 5):
        keys = canonical_double_bits(chunk) if kind == "float" else chunk
        chosen = chooser.select(keys)
        fed += len(chosen)
        values_fed = chosen.view(np.float64) if kind == "float" else chosen
        for value in values_fed.tolist():
            filtered.update(value)
    assert _registers(filtered, lg_k) == _registers(everything, lg_k)
    if kind == "few":  # each distinct value reaches the library once at most
        assert fed <= len(np.unique(values))
    elif n >= 8 << lg_k:  # well past the sparse modes: the point of the filter
        assert fed < n / 4


def test_canonical_double_bits_merge_signed_zero_and_nan_payloads() -> None:
    nan_payload = np.array([0x7FF8000000000001], dtype=np.uint64).view(np.float64)
    bits = canonical_double_bits(np.array([0.0, -0.0, np.nan, nan_payload[0], -np.nan]))
    assert bits[0] == bits[1] and len(set(bits[2:].tolist())) == 1
