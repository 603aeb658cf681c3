"""Coupons and registers kept in numpy leave a DataSketches HLL exactly as feeding every
value would."""

from __future__ import annotations

import datasketches
import numpy as np
import pytest

from spark_explore.states._coupons import CouponRegisters, canonical_double_bits, register_image


def _union(sketch: datasketches.hll_sketch, lg_k: int) -> datasketches.hll_sketch:
    """The sketch unioned with itself: its registers, without the order-dependent HIP
    estimate, as :class:`~spark_explore.states.distinct.HllState` estimates."""
    union = datasketches.hll_union(lg_k)
    union.update(sketch)
    union.update(sketch)
    return union.get_result(datasketches.HLL_8)


def _registers(sketch: datasketches.hll_sketch, lg_k: int) -> bytes:
    return _union(sketch, lg_k).serialize_compact()


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
@pytest.mark.parametrize("chunks", [5, 40])
def test_drained_sketch_has_the_registers_of_every_value_fed(
    lg_k: int, kind: str, n: int, chunks: int
) -> None:
    rng = np.random.default_rng(lg_k * 1000 + n)
    values = _values(kind, n, rng)
    everything = datasketches.hll_sketch(lg_k, datasketches.HLL_8)
    for value in values.tolist():
        everything.update(value)
    sketch = datasketches.hll_sketch(lg_k, datasketches.HLL_8)
    coupons = CouponRegisters(lg_k)
    for i, chunk in enumerate(np.array_split(values, chunks)):
        coupons.absorb(canonical_double_bits(chunk) if kind == "float" else chunk)
        if i == 2:  # a sketch asked for midway goes on absorbing
            sketch = coupons.drain(sketch, doubles=kind == "float")
    sketch = coupons.drain(sketch, doubles=kind == "float")
    assert _registers(sketch, lg_k) == _registers(everything, lg_k)
    if kind == "few" and lg_k == 12:  # few distinct values: their keys go to the library
        assert coupons.sparse
    elif n >= 8 << lg_k:  # past the sparse modes: registers only, no key is kept
        assert not coupons.sparse


@pytest.mark.parametrize("lg_k", [4, 12, 21])
def test_register_image_is_the_librarys_own_serialization(lg_k: int) -> None:
    sketch = datasketches.hll_sketch(lg_k, datasketches.HLL_8)
    for value in np.random.default_rng(lg_k).integers(0, 2**62, 3 << lg_k).tolist():
        sketch.update(value)
    image = _union(sketch, lg_k).serialize_compact()
    registers = np.frombuffer(image[40:], dtype=np.uint8)
    assert 0 < np.count_nonzero(registers == 0) < len(registers)  # zero registers counted
    assert register_image(registers) == image
    restored = datasketches.hll_sketch.deserialize(register_image(registers))
    assert restored.get_estimate() == _union(sketch, lg_k).get_estimate()


def test_canonical_double_bits_merge_signed_zero_and_nan_payloads() -> None:
    nan_payload = np.array([0x7FF8000000000001], dtype=np.uint64).view(np.float64)
    bits = canonical_double_bits(np.array([0.0, -0.0, np.nan, nan_payload[0], -np.nan]))
    assert bits[0] == bits[1] and len(set(bits[2:].tolist())) == 1
