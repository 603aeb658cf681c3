"""Which values could still change a DataSketches HLL sketch, decided for a whole array.

The library's Python binding takes one value per call, about 0.1 µs each plus the cost of
making a Python object per value: on a column of ten million distinct values that is
seconds per column, more than reading the column. Yet almost no value changes a sketch
that has seen a few thousand: in HLL mode a value changes register ``i`` only if its rank
exceeds the register. :class:`CouponFilter` computes each value's coupon with the
library's own hash, vectorised in numpy, and passes on only the values that can change
the sketch. What reaches the library, and so the sketch's bytes, is what feeding every
value would have left: the filter is lossless, not a second sketch.

The hash is MurmurHash3_x64_128 [1]_ of the value's 8 bytes with the library's default
seed 9001, which the C++ core applies to a 64-bit integer or to a double made canonical
(``-0.0`` as ``0.0``, every NaN as Java's canonical NaN) [2]_. A coupon packs the low 26
bits of the first hash word with the rank ``min(clz(second word), 62) + 1`` in the bits
above.

References
----------
.. [1] A. Appleby, "MurmurHash3", SMHasher, 2011,
   https://github.com/aappleby/smhasher/blob/master/src/MurmurHash3.cpp
.. [2] Apache DataSketches C++, ``hll_sketch_alloc::update`` and ``HllUtil::coupon``,
   https://github.com/apache/datasketches-cpp/tree/master/hll
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from spark_explore.states._encoding import first_occurrences

SEED = 9001
_C1 = np.uint64(0x87C37B91114253D5)
_C2 = np.uint64(0x4CF5AD432745937F)
_CANONICAL_NAN = np.uint64(0x7FF8000000000000)
_ADDRESS_BITS = 26
_ALL = np.uint64(2**64 - 1)


def canonical_double_bits(values: np.ndarray) -> np.ndarray:
    """The uint64 bit patterns the library hashes for float64 ``values``."""
    values = np.asarray(values, dtype=np.float64) + 0.0  # -0.0 + 0.0 == +0.0
    bits = values.view(np.uint64).copy()
    bits[np.isnan(values)] = _CANONICAL_NAN
    return bits


def coupons(keys: np.ndarray) -> np.ndarray:
    """HLL coupons (uint32) of 64-bit keys, as the library computes them.

    Parameters
    ----------
    keys
        int64 or uint64 array: the integers, or the canonical bits of doubles.
    """
    h1, h2 = hash_words(keys)
    return _coupon(h1, h2)


def hash_words(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both 64-bit words of MurmurHash3_x64_128 of each 8-byte key with seed :data:`SEED`.

    Written with in-place operations: the hash is most of the filter's cost.
    """
    k = np.asarray(keys).view(np.uint64) * _C1  # a new array, updated in place below
    _rotl_in_place(k, 31)
    k *= _C2
    h1 = k
    h1 ^= np.uint64(SEED ^ 8)  # h1 = seed ^ k1, then ^= length
    h2 = np.uint64(SEED ^ 8)
    h1 += h2
    h2 = h1 + h2
    _fmix_in_place(h1)
    _fmix_in_place(h2)
    h1 += h2
    h2 += h1
    return h1, h2


def _coupon(h1: np.ndarray, h2: np.ndarray) -> np.ndarray:
    rank = np.minimum(_leading_zeros(h2), 62) + 1
    address = (h1 & np.uint64((1 << _ADDRESS_BITS) - 1)).astype(np.uint32)
    return address | (rank.astype(np.uint32) << _ADDRESS_BITS)


class CouponFilter:
    """Remembers what a sketch has been fed and drops values that cannot change it.

    While the sketch may still be in its sparse modes (a list or set of coupons), every
    new coupon is passed on; the filter keeps the set of coupons fed. Once more than
    ``2**lg_k`` distinct coupons were fed the sketch is certainly in HLL mode (its coupon
    set never holds that many), and from then on only values whose rank exceeds a lower
    bound of their register (``shadow``, the largest rank this filter passed there) are
    passed on, at most one per register and batch.

    The filter describes only what it fed. After the sketch absorbs anything else (a
    merge), a fresh filter is still lossless: its knowledge is a subset of the sketch's.
    """

    def __init__(self, lg_k: int) -> None:
        self.lg_k = lg_k
        self._seen: np.ndarray | None = np.empty(0, dtype=np.uint32)
        self._shadow = np.zeros(1 << lg_k, dtype=np.uint8)
        self._ceiling = np.full(1 << lg_k, _ALL, dtype=np.uint64)

    @property
    def sparse(self) -> bool:
        """Whether the sketch may still be in a sparse mode (every new coupon is fed)."""
        return self._seen is not None

    def select(self, keys: np.ndarray) -> np.ndarray:
        """The keys to feed, in order of first appearance, each distinct coupon once."""
        if self._seen is not None:
            return self._select_sparse(keys)
        return keys[self._select_dense(*hash_words(keys))]

    def _select_dense(self, h1: np.ndarray, h2: np.ndarray) -> np.ndarray:
        """Indices of the keys whose rank beats the shadow, the best one per register."""
        slots = (h1 & np.uint64((1 << self.lg_k) - 1)).astype(np.intp)
        # rank > shadow  <=>  leading zeros of h2 >= shadow  <=>  h2 < 2**(64 - shadow)
        candidates = np.flatnonzero(h2 <= self._ceiling[slots])
        if len(candidates) == 0:
            return candidates
        slots = slots[candidates]
        ranks = _coupon(h1[candidates], h2[candidates]) >> np.uint32(_ADDRESS_BITS)
        # the highest rank per register wins, the first such value among ties
        best = np.zeros(1 << self.lg_k, dtype=np.uint32)
        np.maximum.at(best, slots, ranks)
        winners = np.flatnonzero(ranks == best[slots])
        _, pick = np.unique(slots[winners], return_index=True)
        chosen = winners[pick]
        self._raise(slots[chosen], ranks[chosen])
        return np.sort(candidates[chosen])

    def _raise(self, slots: np.ndarray, ranks: np.ndarray) -> None:
        """Set registers ``slots`` to at least ``ranks`` in the shadow and its ceilings."""
        np.maximum.at(self._shadow, slots, ranks.astype(np.uint8))
        shadow = self._shadow[slots].astype(np.uint64)
        # largest h2 whose rank still exceeds the register: 2**(64 - shadow) - 1
        self._ceiling[slots] = np.where(
            shadow > 0, (np.uint64(1) << (np.uint64(64) - shadow)) - np.uint64(1), _ALL
        )

    def _select_sparse(self, keys: np.ndarray) -> np.ndarray:
        """New coupons, hashing each distinct key once: a column that keeps the sketch
        sparse has few distinct values, and deduplicating them is cheaper than the hash."""
        assert self._seen is not None
        distinct = pc.unique(pa.array(keys)).to_numpy()  # in order of first appearance
        cells, first, _ = first_occurrences(_coupon(*hash_words(distinct)))
        new = np.flatnonzero(~_in_sorted(cells, self._seen))
        room = (1 << self.lg_k) + 1 - len(self._seen)
        if len(new) < room:
            self._seen = np.sort(np.concatenate([self._seen, cells[new]]))
            return distinct[first[new]]
        # enough new coupons to force HLL mode: feed those, then filter the rest by rank
        seen = np.sort(np.concatenate([self._seen, cells[new[:room]]]))
        slots = (seen & np.uint32((1 << self.lg_k) - 1)).astype(np.intp)
        self._raise(slots, seen >> np.uint32(_ADDRESS_BITS))
        self._seen = None
        return np.concatenate([distinct[first[new[:room]]], self.select(keys)])


def _in_sorted(values: np.ndarray, sorted_set: np.ndarray) -> np.ndarray:
    """Mask of the ``values`` found in the sorted array ``sorted_set``."""
    if len(sorted_set) == 0:
        return np.zeros(len(values), dtype=bool)
    at = np.minimum(np.searchsorted(sorted_set, values), len(sorted_set) - 1)
    return sorted_set[at] == values


def _rotl_in_place(x: np.ndarray, r: int) -> None:
    high = x >> np.uint64(64 - r)
    x <<= np.uint64(r)
    x |= high


def _fmix_in_place(k: np.ndarray) -> None:
    k ^= k >> np.uint64(33)
    k *= np.uint64(0xFF51AFD7ED558CCD)
    k ^= k >> np.uint64(33)
    k *= np.uint64(0xC4CEB9FE1A85EC53)
    k ^= k >> np.uint64(33)


def _leading_zeros(x: np.ndarray) -> np.ndarray:
    """Leading zero bits of uint64 values (64 for zero), exactly, via 32-bit halves."""
    high = (x >> np.uint64(32)).astype(np.float64)
    low = (x & np.uint64(0xFFFFFFFF)).astype(np.float64)
    high_zeros = 32 - np.frexp(high)[1]  # frexp(0) has exponent 0
    low_zeros = 32 - np.frexp(low)[1]
    return np.where(high_zeros < 32, high_zeros, 32 + low_zeros)
