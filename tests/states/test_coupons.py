"""Coupons and registers kept in numpy leave a DataSketches HLL exactly as feeding every
value would."""

from __future__ import annotations

import datasketches
import numpy as np
import pytest

from spark_explore.states._coupons import (
    _FIBONACCI,
    CouponRegisters,
    KeySet,
    _coupon,
    _distinct_if_narrow,
    _empty_slots,
    canonical_double_bits,
    hash_words,
    register_image,
)


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


@pytest.mark.parametrize("lg_k", [4, 8, 12])
@pytest.mark.parametrize("kind", ["few", "growing", "narrow", "crossing"])
@pytest.mark.parametrize("chunks", [1, 7, 60])
def test_absorbing_keeps_the_first_key_of_each_new_coupon_then_the_registers(
    lg_k: int, kind: str, chunks: int
) -> None:
    """While sparse, the keys kept are, in order, the first key of each new coupon in the
    whole stream, however the stream is split and whichever keys were already met; past
    the sparse modes (also when one batch holds more than ``2**lg_k`` keys, some known),
    the registers are those of every key, narrow batches included."""
    rng = np.random.default_rng(lg_k * 7 + chunks)
    n = 30_000
    if kind == "few":  # repeats from the first batch on
        values = rng.integers(-150, 150, n) * 104_729
    elif kind == "growing":  # each batch brings some keys not met before
        values = (rng.integers(0, 1 + np.arange(n) // 12) * 7_919) ^ (2**62)
    elif kind == "narrow":  # few values between the extremes: deduplicated before hashing
        values = rng.integers(-2_000, 2_000, n)
        values[:7] = [0, -1, 1, -(2**63), 2**63 - 1, 0, -(2**63)]
    else:  # few distinct keys at first, then many, in large batches
        values = np.concatenate([rng.integers(0, 50, n // 2), rng.integers(0, 2**40, n // 2)])
    values = values.astype(np.int64)
    everything = datasketches.hll_sketch(lg_k, datasketches.HLL_8)
    for value in values.tolist():
        everything.update(value)
    coupons = CouponRegisters(lg_k)
    seen: set[int] = set()
    first_keys: list[int] = []
    for value, coupon in zip(values.tolist(), _coupon(*hash_words(values)).tolist()):
        if coupon not in seen:
            seen.add(coupon)
            first_keys.append(value)
    for chunk in np.array_split(values, chunks):
        coupons.absorb(chunk)
    if coupons.sparse:
        assert len(seen) <= 1 << lg_k
        kept = np.concatenate(coupons._pending).tolist() if coupons._pending else []
        assert kept == first_keys
    else:
        assert len(seen) > 1 << lg_k
    sketch = coupons.drain(datasketches.hll_sketch(lg_k, datasketches.HLL_8), doubles=False)
    assert _registers(sketch, lg_k) == _registers(everything, lg_k)


def _fibonacci_inverse() -> int:
    return pow(_FIBONACCI, -1, 1 << 64)


@pytest.mark.parametrize("size", [1, 5, 300, 5_000])
def test_key_set_membership_matches_numpy_isin(size: int) -> None:
    """Awkward keys: 0, -1 and the int64 extremes, the very values empty slots hold, and
    clusters of keys sharing a home slot, including the table's last slot (probes wrap)."""
    rng = np.random.default_rng(size)
    members = rng.integers(-(2**63), 2**63 - 1, size, dtype=np.int64)
    bits = max(2, (4 * (size + 64) - 1).bit_length())
    homes = np.array([0, 1, (1 << bits) - 1, (1 << bits) - 2], dtype=np.uint64)
    low = rng.integers(0, 2**40, (len(homes), 8), dtype=np.uint64)
    clustered = ((homes[:, None] << np.uint64(64 - bits)) | low).ravel()
    clustered = (clustered * np.uint64(_fibonacci_inverse())).view(np.int64)
    extremes = np.array([0, -1, 1, -(2**63), 2**63 - 1], dtype=np.int64)
    members = np.concatenate([members, clustered[: len(clustered) // 2], extremes[:2]])
    fillers = np.concatenate([_empty_slots(b).view(np.int64) for b in range(2, bits + 2)])
    queries = np.concatenate(
        [members, clustered, extremes, fillers, rng.integers(-(2**63), 2**63 - 1, 2_000)]
    )
    keys = KeySet()
    for part in np.array_split(members, 3):  # rebuilt as it grows
        keys.add(part)
        np.testing.assert_array_equal(
            keys.contains(queries), np.isin(queries, keys.keys.view(np.int64))
        )
    np.testing.assert_array_equal(keys.contains(queries), np.isin(queries, members))
    assert len(keys) == len(np.unique(members))
    unsigned = queries.view(np.uint64)
    np.testing.assert_array_equal(keys.contains(unsigned), np.isin(queries, members))


def test_an_empty_key_set_holds_nothing() -> None:
    queries = np.array([0, -1, 2**63 - 1, -(2**63)], dtype=np.int64)
    assert not KeySet().contains(queries).any()
    assert not KeySet().contains(_empty_slots(2).view(np.int64)).any()


@pytest.mark.parametrize(
    "values",
    [
        np.arange(-1_500, 1_500, dtype=np.int64).repeat(2)[::-1],  # narrow: deduplicated
        np.r_[np.zeros(2_000, dtype=np.int64), -(2**63), 2**63 - 1],  # wide: as they are
        np.r_[np.full(1_500, 2**63 - 1, dtype=np.int64), 2**63 - 1_000],  # near int64 max
        np.r_[np.full(1_500, -(2**63), dtype=np.int64), -(2**63) + 1_400],  # near int64 min
        np.full(1_100, -2.5).view(np.uint64),  # the bits of one double
        (np.full(2_000, -1.0).view(np.uint64) + np.arange(2_000, dtype=np.uint64)).repeat(2),
        np.arange(500, dtype=np.int64),  # too few to bother
    ],
)
def test_narrow_batches_are_hashed_once_per_distinct_key(values: np.ndarray) -> None:
    kept = _distinct_if_narrow(values)
    assert kept.dtype == values.dtype
    np.testing.assert_array_equal(np.unique(kept), np.unique(values))
    if len(values) >= 1024 and int(values.max()) - int(values.min()) < len(values):
        np.testing.assert_array_equal(kept, np.unique(values))
    else:
        assert kept is values
    dense = CouponRegisters(4)
    dense.absorb(np.arange(1, 10_000, dtype=np.int64) * 7_919)  # past the sparse modes
    everything = datasketches.hll_sketch(4, datasketches.HLL_8)
    for value in np.arange(1, 10_000).tolist():
        everything.update(value * 7_919)
    dense.absorb(values)
    doubles = values.dtype == np.uint64
    for value in (values.view(np.float64) if doubles else values).tolist():
        everything.update(value)
    sketch = dense.drain(datasketches.hll_sketch(4, datasketches.HLL_8), doubles=doubles)
    assert _registers(sketch, 4) == _registers(everything, 4)
