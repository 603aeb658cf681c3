"""What a batch of values leaves in a DataSketches HLL sketch, worked out for a whole array.

The library's Python binding takes one value per call, about 0.1 µs each plus the cost of
making a Python object per value: on a column of ten million distinct values that is
seconds per column, more than reading the column. :class:`CouponRegisters` computes each
value's coupon with the library's own hash, vectorised in numpy, and keeps what the sketch
would keep: while the sketch would still hold a list or set of coupons, the distinct
values behind them, fed to the library when the sketch is asked for; beyond that, the
registers themselves, handed over as an image in the library's own serialization format
(:func:`register_image`) and merged by the library's union. What the sketch holds in the
end is what feeding every value would have left: the registers are the sketch's, not a
second sketch.

The hash is MurmurHash3_x64_128 [1]_ of the value's 8 bytes with the library's default
seed 9001, which the C++ core applies to a 64-bit integer or to a double made canonical
(``-0.0`` as ``0.0``, every NaN as Java's canonical NaN) [2]_. A coupon packs the low 26
bits of the first hash word with the rank ``min(clz(second word), 62) + 1`` in the bits
above: the sparse encoding of HLL++ [4]_, whose registers are HyperLogLog's [3]_, each the
largest rank at its address. A register keeps a maximum, so a key met again changes
nothing: keys are deduplicated, or looked up among those already met, before hashing
wherever that is cheaper than the hash.

References
----------
.. [1] A. Appleby, "MurmurHash3", SMHasher, 2011,
   https://github.com/aappleby/smhasher/blob/master/src/MurmurHash3.cpp
.. [2] Apache DataSketches C++, ``hll_sketch_alloc::update`` and ``HllUtil::coupon``,
   https://github.com/apache/datasketches-cpp/tree/master/hll
.. [3] P. Flajolet, E. Fusy, O. Gandouet and F. Meunier, "HyperLogLog: the analysis of
   a near-optimal cardinality estimation algorithm", Proc. AofA 2007, DMTCS
   proceedings, pp. 137-156.
.. [4] S. Heule, M. Nunkesser and A. Hall, "HyperLogLog in practice: algorithmic
   engineering of a state of the art cardinality estimation algorithm", Proc. EDBT
   2013, pp. 683-692.
"""

from __future__ import annotations

import struct

import datasketches
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
# preamble flags and mode of a serialized HLL sketch [2]_
_COMPACT, _OUT_OF_ORDER = 0x08, 0x10
_HLL_MODE, _HLL_8 = 2, 2
_RAW_KEYS = 1 << 14  # most keys a sparse column collects before deduplicating them
_KNOWN_KEYS = 1 << 16  # most keys whose coupons are remembered as seen
_FIBONACCI = 0x9E3779B97F4A7C15  # odd, about 2**64 divided by the golden ratio


def canonical_double_bits(values: np.ndarray) -> np.ndarray:
    """The uint64 bit patterns the library hashes for float64 ``values``."""
    values = np.asarray(values, dtype=np.float64) + 0.0  # -0.0 + 0.0 == +0.0, a new array
    bits = values.view(np.uint64)
    nan = np.isnan(values)
    if nan.any():
        bits[nan] = _CANONICAL_NAN
    return bits


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
    address = (h1 & np.uint64((1 << _ADDRESS_BITS) - 1)).astype(np.uint32)
    return address | (_rank(h2).astype(np.uint32) << _ADDRESS_BITS)


def _rank(h2: np.ndarray) -> np.ndarray:
    """The register value a hash's second word sets: ``min(clz, 62) + 1`` (uint8)."""
    return (np.minimum(_leading_zeros(h2), 62) + 1).astype(np.uint8)


class CouponRegisters:
    """The coupons of the keys absorbed, kept until a sketch is asked for.

    While at most ``2**lg_k`` distinct coupons have arrived, a sketch fed every key could
    still be in a sparse mode, whose state depends on the coupons themselves: the keys
    behind each new coupon are kept and :meth:`drain` feeds them to the library. Past that
    the sketch is certainly in HLL mode (its coupon set never holds that many); from then
    on only the registers are kept, the largest rank seen at each address, and values
    whose rank cannot raise their register are dropped with one comparison. :meth:`drain`
    then unions a sketch with the registers' image.

    Parameters
    ----------
    lg_k
        log2 of the number of registers, as in the sketch.
    """

    def __init__(self, lg_k: int) -> None:
        self.lg_k = lg_k
        self._seen: np.ndarray | None = np.empty(0, dtype=np.uint32)
        self._pending: list[np.ndarray] = []
        self._raw: list[np.ndarray] = []
        self._raw_count = 0
        self._registers = np.zeros(1 << lg_k, dtype=np.uint8)
        self._ceiling = np.full(1 << lg_k, _ALL, dtype=np.uint64)
        self._dirty = False
        self._known = KeySet()  # keys whose coupons are among those seen

    @property
    def sparse(self) -> bool:
        """Whether a sketch fed every key could still be in a sparse mode."""
        self._settle_raw()
        return self._seen is not None

    def absorb(self, keys: np.ndarray) -> None:
        """Take in a batch of 64-bit keys (int64, or the canonical bits of doubles).

        While sparse, small batches are only collected, up to ``min(2**lg_k, 2**14)`` keys,
        and deduplicated together: on a wide table's batches of a few thousand rows that
        saves most of the per-batch calls.
        """
        if len(keys) == 0:
            return
        if self._seen is None:
            self._absorb_dense(*hash_words(_distinct_if_narrow(keys)))
            return
        self._raw.append(keys)
        self._raw_count += len(keys)
        if self._raw_count > min(1 << self.lg_k, _RAW_KEYS):
            self._settle_raw()

    def drain(self, sketch: datasketches.hll_sketch, doubles: bool) -> datasketches.hll_sketch:
        """``sketch`` with everything absorbed since the last drain added to it.

        ``doubles`` says whether the keys are the bits of doubles, fed to the library as
        the doubles they encode.
        """
        self._settle_raw()
        if self._seen is not None:
            update = sketch.update
            for keys in self._pending:
                for value in (keys.view(np.float64) if doubles else keys).tolist():
                    update(value)
            self._pending = []
            return sketch
        if not self._dirty:
            return sketch
        union = datasketches.hll_union(self.lg_k)
        union.update(sketch)
        union.update(datasketches.hll_sketch.deserialize(register_image(self._registers)))
        self._dirty = False
        return union.get_result(datasketches.HLL_8)

    def _settle_raw(self) -> None:
        if self._raw:
            keys = self._raw[0] if len(self._raw) == 1 else np.concatenate(self._raw)
            self._raw, self._raw_count = [], 0
            self._absorb_sparse(keys)

    def _absorb_sparse(self, keys: np.ndarray) -> None:
        """Keep each new coupon's first key, hashing each distinct key once: a column that
        keeps the sketch sparse has few distinct values, and deduplicating them is cheaper
        than the hash. Keys already met are dropped first, by a lookup cheaper still; their
        coupons are seen, so the coupons new to the sketch, and the first key behind each,
        come out as from the whole batch."""
        assert self._seen is not None
        if len(self._known):
            keys = keys[~self._known.contains(keys)]
            if len(keys) == 0:
                return
        if len(keys) > 1 << self.lg_k and self._absorb_if_overflowing(keys):
            return
        distinct = pc.unique(pa.array(keys)).to_numpy()  # in order of first appearance
        cells, first, _ = first_occurrences(_coupon(*hash_words(distinct)))
        new = np.flatnonzero(~_in_sorted(cells, self._seen))
        if len(self._known) + len(distinct) <= _KNOWN_KEYS:
            self._known.add(distinct)
        if len(new) == 0:
            return
        seen = np.sort(np.concatenate([self._seen, cells[new]]))
        if len(seen) <= 1 << self.lg_k:
            self._seen = seen
            self._pending.append(distinct[first[new]])
            return
        # too many coupons for a sparse sketch: keep registers from here on
        self._seen = seen
        self._leave_sparse()

    def _absorb_if_overflowing(self, keys: np.ndarray) -> bool:
        """Absorb ``keys`` as registers if they certainly hold more than ``2**lg_k`` distinct
        coupons, which no sparse sketch keeps; say whether they did.

        Deduplicating a batch of mostly distinct keys costs several times their hash, so
        a prefix of at most ``4 * 2**lg_k`` keys is hashed first: the distinct values of
        its coupons' low ``lg_k + 3`` address bits are no more than its distinct coupons.
        Once that count exceeds ``2**lg_k``, the sketch fed every key would be in HLL mode
        and keep the registers :meth:`_absorb_dense` keeps.
        """
        head = keys[: 4 << self.lg_k]
        h1, h2 = hash_words(head)
        bits = min(self.lg_k + 3, _ADDRESS_BITS)
        present = np.zeros(1 << bits, dtype=bool)
        present[(h1 & np.uint64((1 << bits) - 1)).view(np.int64)] = True
        if np.count_nonzero(present) <= 1 << self.lg_k:
            return False
        self._leave_sparse()
        self._absorb_dense(h1, h2)
        if len(keys) > len(head):
            self._absorb_dense(*hash_words(keys[len(head) :]))
        return True

    def _leave_sparse(self) -> None:
        """Turn the coupons seen into registers and keep only registers from here on."""
        assert self._seen is not None
        seen = self._seen
        address = (seen & np.uint32((1 << self.lg_k) - 1)).astype(np.intp)
        self._raise(address, (seen >> np.uint32(_ADDRESS_BITS)).astype(np.uint8))
        self._seen, self._pending, self._known = None, [], KeySet()

    def _absorb_dense(self, h1: np.ndarray, h2: np.ndarray) -> None:
        """Raise the registers by the hashes ``h1, h2`` (``h1`` is overwritten)."""
        h1 &= np.uint64((1 << self.lg_k) - 1)
        address = h1.view(np.int64)
        # rank > register  <=>  leading zeros of h2 >= register  <=>  h2 < 2**(64 - register)
        raising = np.flatnonzero(h2 <= self._ceiling[address])
        if len(raising):
            self._raise(address[raising], _rank(h2[raising]))

    def _raise(self, address: np.ndarray, ranks: np.ndarray) -> None:
        """Raise registers ``address`` to at least ``ranks``, and their ceilings with them."""
        np.maximum.at(self._registers, address, ranks)
        register = self._registers[address].astype(np.uint64)
        # largest h2 whose rank still exceeds the register: 2**(64 - register) - 1
        self._ceiling[address] = np.where(
            register > 0, (np.uint64(1) << (np.uint64(64) - register)) - np.uint64(1), _ALL
        )
        self._dirty = True


class KeySet:
    """A set of 64-bit keys with a membership test vectorised over an array of keys.

    Open addressing with linear probing [1]_ in a power-of-two table at most a quarter
    full, each key's home slot the top bits of its product with an odd constant
    (Fibonacci hashing). An empty slot holds a value whose home is the next slot, so it
    equals no key probed there; one gather and one comparison settle most keys, and only
    those whose home slot holds another key are probed further. Rebuilt on each
    :meth:`add`: it holds the few distinct keys of a sparse column.

    References
    ----------
    .. [1] D. E. Knuth, *The Art of Computer Programming*, vol. 3, 2nd ed., 1998,
       section 6.4 (multiplicative hashing; linear probing).
    """

    def __init__(self) -> None:
        self.keys = np.empty(0, dtype=np.uint64)
        self._shift = np.uint64(63)
        self._table = _empty_slots(1)
        self._used = np.zeros(2, dtype=bool)

    def __len__(self) -> int:
        return len(self.keys)

    def add(self, keys: np.ndarray) -> None:
        """Add 64-bit ``keys`` (int64 or uint64) to the set."""
        self.keys = np.union1d(self.keys, np.asarray(keys).view(np.uint64))
        bits = max(2, (4 * len(self.keys) - 1).bit_length())
        size = 1 << bits
        self._shift = np.uint64(64 - bits)
        self._table = _empty_slots(bits)
        self._used = np.zeros(size, dtype=bool)
        slot = self._home(self.keys)
        waiting = np.arange(len(self.keys))
        while len(waiting):
            at = slot[waiting]
            free = ~self._used[at]
            # of the keys reaching a free slot, the first takes it; the others probe on
            taken, first = np.unique(at[free], return_index=True)
            placed = waiting[free][first]
            self._table[taken] = self.keys[placed]
            self._used[taken] = True
            left = np.ones(len(self.keys), dtype=bool)
            left[placed] = False
            waiting = waiting[left[waiting]]
            slot[waiting] = (slot[waiting] + 1) & (size - 1)

    def contains(self, keys: np.ndarray) -> np.ndarray:
        """Boolean mask of the ``keys`` (int64 or uint64) in the set."""
        keys = np.asarray(keys).view(np.uint64)
        slot = self._home(keys)
        found = self._table[slot] == keys
        mask = len(self._table) - 1
        probing = np.flatnonzero(~found)
        while len(probing):
            probing = probing[self._used[slot[probing]]]  # an empty slot ends the probe
            at = (slot[probing] + 1) & mask
            slot[probing] = at
            hit = self._table[at] == keys[probing]
            found[probing[hit]] = True
            probing = probing[~hit]
        return found

    def _home(self, keys: np.ndarray) -> np.ndarray:
        slot = keys * np.uint64(_FIBONACCI)
        slot >>= self._shift
        return slot.view(np.int64)


def _empty_slots(bits: int) -> np.ndarray:
    """A table of ``2**bits`` slots, slot ``i`` holding a value whose home is ``i + 1``."""
    size = np.uint64(1 << bits)
    home = (np.arange(1, int(size) + 1, dtype=np.uint64) % size) << np.uint64(64 - bits)
    return home * np.uint64(pow(_FIBONACCI, -1, 1 << 64))


def register_image(registers: np.ndarray) -> bytes:
    """A compact HLL_8 sketch in HLL mode holding ``registers``, in the library's format.

    The 40-byte preamble of DataSketches' HLL arrays [2]_: preamble size 10 (ints), serial
    version 1, family 7, lg_k, flags *compact* and *out of order*, current minimum 0, mode
    byte HLL with target HLL_8; the HIP accumulator 0 (unused out of order), the sums
    ``kxq0`` and ``kxq1`` of ``2**-register`` below and from 32 on, the number of zero
    registers and no auxiliary entries; then one byte per register. The sums are exact in
    any order: their terms are powers of two no finer than 2**-63 and the totals need at
    most 52 significant bits.
    """
    lg_k = int(len(registers)).bit_length() - 1
    ranks = registers.astype(np.int64)
    low = ranks < 32
    kxq0 = float(np.ldexp(1.0, -ranks[low]).sum())
    kxq1 = float(np.ldexp(1.0, -ranks[~low]).sum())
    zeros = int(np.count_nonzero(registers == 0))
    header = struct.pack(
        "<8B3d2i",
        10,
        1,
        7,
        lg_k,
        0,
        _COMPACT | _OUT_OF_ORDER,
        0,
        _HLL_MODE | _HLL_8 << 2,
        0.0,
        kxq0,
        kxq1,
        zeros,
        0,
    )
    return header + registers.astype(np.uint8).tobytes()


def _distinct_if_narrow(keys: np.ndarray) -> np.ndarray:
    """The distinct ``keys`` (in increasing order) when they span fewer values than there
    are keys, such as dates or small integers, else ``keys`` itself: registers take the
    maximum, so a repeated key changes nothing and need not be hashed again."""
    if len(keys) < 1024:
        return keys
    low, high = keys.min(), keys.max()
    if int(high) - int(low) >= len(keys):
        return keys
    offsets = (keys - low).view(np.int64)
    return np.flatnonzero(np.bincount(offsets)).astype(keys.dtype) + low


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
