"""Spark SQL's ``xxhash64`` computed in numpy on Arrow arrays, bit for bit.

Python workers that read Parquet files themselves use these functions to compute the same
64-bit keys the scan would compute in Spark with ``F.xxhash64(F.col(c))`` or with the row hash
``F.xxhash64(*cols, F.lit(seed))``.

The hash is XXH64, the 64-bit xxHash by Yann Collet (specification:
https://github.com/Cyan4973/xxHash/blob/dev/doc/xxhash_spec.md), as Spark applies it in its
Catalyst ``XxHash64`` expression (``sql/catalyst/.../expressions/hash.scala``, hasher
``XXH64.java`` in ``spark-unsafe``):

- The hash of a row starts at the seed (42 unless given). Each argument in turn replaces it by
  the hash of its value seeded with the hash so far; a null leaves it unchanged.
- boolean (as 1 or 0), byte, short, int and date (days) take XXH64's 4-byte path, ``hashInt``;
  long and timestamp (microseconds, with or without time zone) its 8-byte path, ``hashLong``.
- float is ``hashInt`` of ``Float.floatToIntBits`` and double ``hashLong`` of
  ``Double.doubleToLongBits``: -0.0 hashes as 0 (the same as 0.0) and every NaN as the one
  canonical NaN (``0x7fc00000``, ``0x7ff8000000000000``), whatever its sign and payload.
- string (UTF-8 bytes) and binary are XXH64 of their bytes, ``hashUnsafeBytes``.
- decimal of precision up to 18 is ``hashLong`` of the unscaled value; of larger precision,
  XXH64 of the unscaled value's minimal two's-complement big-endian bytes (Java's
  ``BigInteger.toByteArray()``).

Everything is vectorised with wrapping ``uint64`` arithmetic. Variable-length values are read
straight from the Arrow buffers and hashed all at once, one step (32-byte stripe, 8-byte word,
4-byte word, byte) at a time. Stripes are taken longest value first so that each step works on
a prefix of the values that still have one: the cost is the total number of bytes plus a
Python-level loop of one step per stripe of the longest values, about 7 microseconds each. The
stripe rounds are sequential within a value, so when only a few values have stripes left each
is finished alone in Python integers, about 1 microsecond a stripe: a single 10 MB value takes
about 0.3 seconds. Under one seed (a column's own hash, not a step of a row hash) a dictionary
array, or a long string or binary array whose values repeat in a sample, has each distinct
value hashed once, the values encoded by Arrow's ``dictionary_encode`` first.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["SPARK_SEED", "hash_array", "hash_columns", "hash_long_literal"]

SPARK_SEED = 42
"""The seed of Spark's ``xxhash64`` when none is given."""

_MASK = (1 << 64) - 1
_INT32_MIN, _INT32_MAX = -(1 << 31), (1 << 31) - 1

# XXH64's primes
_P1_INT = 0x9E3779B185EBCA87
_P2_INT = 0xC2B2AE3D27D4EB4F
_P3_INT = 0x165667B19E3779F9
_P4_INT = 0x85EBCA77C2B2AE63
_P5_INT = 0x27D4EB2F165667C5
_P1, _P2, _P3, _P4, _P5 = (np.uint64(p) for p in (_P1_INT, _P2_INT, _P3_INT, _P4_INT, _P5_INT))

# seed offsets, summed with Python integers (numpy scalars would warn when they wrap)
_INT_INIT = np.uint64((_P5_INT + 4) & _MASK)
_LONG_INIT = np.uint64((_P5_INT + 8) & _MASK)
_LANE_INIT = np.array(
    [(_P1_INT + _P2_INT) & _MASK, _P2_INT, 0, (-_P1_INT) & _MASK], dtype=np.uint64
)
_LANE_OFFSETS = np.array([0, 8, 16, 24], dtype=np.int64)

_FLOAT_NAN_BITS = np.uint32(0x7FC00000)
_DOUBLE_NAN_BITS = np.uint64(0x7FF8000000000000)
_MAX_LONG_DIGITS = 18
# 2**(8k - 1) for k = 1..8: a 64-bit magnitude's bitLength() // 8 is how many it reaches
_BYTE_SIGN_BITS = [np.uint64(1 << (8 * k - 1)) for k in range(1, 9)]
# with this many values or fewer left in the stripe loop, finish each in Python integers
_FEW_LONG_VALUES = 3
_STRIPE_CHUNK_WORDS = 1 << 16  # multiple of 4: whole stripes
# one-seed string hashes go through dictionary_encode for arrays of at least this many
# values, of this many bytes each on average, with at most half distinct in a sample:
_ENCODE_MIN_ROWS = 1 << 14
_ENCODE_MIN_BYTES_PER_VALUE = 14  # offsets included
_ENCODE_SAMPLE = 1024


def hash_array(
    array: pa.Array | pa.ChunkedArray, seeds: np.ndarray | int = SPARK_SEED
) -> np.ndarray:
    """Spark's ``xxhash64`` of each value of ``array``, seeded by ``seeds``.

    With the default seed this is ``F.xxhash64(F.col(c))`` for the column ``c`` that Spark
    reads as ``array``; with ``seeds`` the hash of a row so far, it is one step of the row hash
    (see :func:`hash_columns`).

    Parameters
    ----------
    array : pyarrow.Array or pyarrow.ChunkedArray
        Of type int8, int16, int32, int64, float32, float64, bool, date32, timestamp in
        microseconds (with or without a time zone), decimal128, string, large_string, binary,
        large_binary, null, or a dictionary of one of these. Offsets (slices) and nulls are
        allowed.
    seeds : numpy.ndarray or int, default ``SPARK_SEED``
        One seed for every value, or one per value (``int64`` or ``uint64``, the same length
        as ``array``).

    Returns
    -------
    numpy.ndarray
        ``int64`` (Spark's signed long), one hash per value; the seed where the value is null.

    Raises
    ------
    TypeError
        For an Arrow type Spark's hash is not reproduced for, or seeds of another dtype.
    ValueError
        If ``seeds`` is an array of another length than ``array``.

    References
    ----------
    Yann Collet, "xxHash fast digest algorithm", XXH64, https://github.com/Cyan4973/xxHash.
    Apache Spark, Catalyst expression ``XxHash64`` and ``org.apache.spark.sql.catalyst
    .expressions.XXH64``.
    """
    with np.errstate(over="ignore"):
        one_seed = isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool)
        return _hash_any(array, _as_seeds(seeds, len(array)), one_seed).view(np.int64)


def hash_columns(
    columns: Sequence[pa.Array | pa.ChunkedArray | pa.Scalar | int], seed: int = SPARK_SEED
) -> np.ndarray:
    """The row hash ``F.xxhash64(*columns)``: each column's value hashed into the one before.

    Parameters
    ----------
    columns : sequence of pyarrow.Array, pyarrow.ChunkedArray, pyarrow.Scalar or int
        The arguments of ``xxhash64`` in order, at least one of them an array; the arrays all
        of one length. A scalar is a literal, hashed for every row by its Arrow type: ``pa.
        scalar(v, pa.int64())`` is ``F.lit(v).cast("bigint")``. A Python ``int`` is hashed as
        ``F.lit(v)`` types it, an int if it fits in 32 bits and a bigint otherwise, so
        ``F.lit(42)`` takes XXH64's 4-byte path and ``F.lit(2**40)`` the 8-byte one.
    seed : int, default ``SPARK_SEED``
        The seed the row hash starts from.

    Returns
    -------
    numpy.ndarray
        ``int64``, one hash per row; ``seed`` for a row of nulls only.

    Raises
    ------
    TypeError
        For a column of a type :func:`hash_array` does not take.
    ValueError
        If no column is an array or the arrays' lengths differ.

    References
    ----------
    Yann Collet, "xxHash fast digest algorithm", XXH64, https://github.com/Cyan4973/xxHash.
    Apache Spark, Catalyst expression ``XxHash64`` (``HashExpression.eval``).
    """
    lengths = {len(c) for c in columns if isinstance(c, (pa.Array, pa.ChunkedArray))}
    if len(lengths) != 1:
        raise ValueError(f"hash_columns needs arrays of one length, got lengths {sorted(lengths)}")
    rows = lengths.pop()
    with np.errstate(over="ignore"):
        hashes = _as_seeds(seed, rows)
        for column in columns:
            if isinstance(column, int) and not isinstance(column, bool):
                value = column
                literal_type = pa.int32() if _INT32_MIN <= value <= _INT32_MAX else pa.int64()
                column = pa.scalar(value, literal_type)
            if isinstance(column, pa.Scalar):
                column = pa.repeat(column, rows)
            if not isinstance(column, (pa.Array, pa.ChunkedArray)):
                raise TypeError(f"cannot hash a column of Python type {type(column).__name__}")
            hashes = _hash_any(column, hashes)
        return hashes.view(np.int64)


def hash_long_literal(value: int, seeds: np.ndarray | int = SPARK_SEED) -> np.ndarray | int:
    """Spark's ``xxhash64`` step for the bigint literal ``value``, e.g. a row hash's trailing seed.

    ``hash_long_literal(v, hash_columns(cols))`` is ``F.xxhash64(*cols, F.lit(v).cast("bigint"))``
    (for ``v`` beyond 32 bits ``F.lit(v)`` is a bigint already).

    Parameters
    ----------
    value : int
        The literal, a signed or unsigned 64-bit integer.
    seeds : numpy.ndarray or int, default ``SPARK_SEED``
        The hash so far, one per row (``int64`` or ``uint64``), or one seed.

    Returns
    -------
    numpy.ndarray or int
        ``int64`` hashes like ``seeds``, or a Python int for an int seed.

    References
    ----------
    Yann Collet, "xxHash fast digest algorithm", XXH64, https://github.com/Cyan4973/xxHash.
    Apache Spark, ``XXH64.hashLong``.
    """
    if not -(1 << 63) <= value <= _MASK:
        raise ValueError(f"{value} is not a 64-bit integer")
    scalar = isinstance(seeds, (int, np.integer))
    with np.errstate(over="ignore"):
        prior = _as_seeds(seeds, 1) if scalar else _as_seeds(seeds, len(seeds))
        words = np.full(len(prior), value & _MASK, dtype=np.uint64)
        hashes = _hash_long(words, prior).view(np.int64)
    return int(hashes[0]) if scalar else hashes


# -- dispatch on the Arrow type -------------------------------------------------------------


def _as_seeds(seeds: np.ndarray | int, rows: int) -> np.ndarray:
    """``seeds`` as a fresh-or-shared ``uint64`` array of ``rows`` seeds (never written to)."""
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        return np.full(rows, int(seeds) & _MASK, dtype=np.uint64)
    seeds = np.asarray(seeds)
    if seeds.dtype not in (np.dtype(np.int64), np.dtype(np.uint64)):
        raise TypeError(f"seeds must be an int or an int64/uint64 array, not {seeds.dtype}")
    if seeds.shape != (rows,):
        raise ValueError(f"{seeds.shape[0] if seeds.ndim else 0} seeds for {rows} values")
    return seeds.view(np.uint64)


def _hash_any(
    array: pa.Array | pa.ChunkedArray, seeds: np.ndarray, one_seed: bool = False
) -> np.ndarray:
    """``uint64`` hashes of ``array`` seeded by the ``uint64`` ``seeds`` (one per value, all
    equal if ``one_seed``, when each distinct value may be hashed once)."""
    if isinstance(array, pa.ChunkedArray):
        parts, start = [], 0
        for chunk in array.chunks:
            parts.append(_hash_any(chunk, seeds[start : start + len(chunk)], one_seed))
            start += len(chunk)
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.uint64)
    if not isinstance(array, pa.Array):
        raise TypeError(f"cannot hash a {type(array).__name__}; expected a pyarrow array")
    kind = array.type
    if pa.types.is_dictionary(kind):
        if one_seed and len(array) and len(array.dictionary) < len(array):
            return _hash_encoded(array, seeds)
        return _hash_any(array.dictionary_decode(), seeds)
    if pa.types.is_null(kind):
        return seeds.copy()
    if one_seed and _worth_encoding(array):
        return _hash_encoded(pc.dictionary_encode(array), seeds)
    hashes = _hash_valid(array, seeds)
    if array.null_count:
        hashes = np.where(_validity(array), hashes, seeds)
    return hashes


def _worth_encoding(array: pa.Array) -> bool:
    """Whether hashing each distinct value of a string or binary ``array`` once, after
    Arrow's ``dictionary_encode``, is likely faster than hashing every value: when values
    are long enough for hashing to cost more than encoding, and repeat often in a sample."""
    kind = array.type
    variable = (
        pa.types.is_string(kind)
        or pa.types.is_binary(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_large_binary(kind)
    )
    if not variable or len(array) < _ENCODE_MIN_ROWS:
        return False
    if array.nbytes < _ENCODE_MIN_BYTES_PER_VALUE * len(array):
        return False
    step = len(array) // _ENCODE_SAMPLE
    sample = pc.take(array, pa.array(np.arange(0, step * _ENCODE_SAMPLE, step)))
    return pc.count_distinct(sample, mode="all").as_py() <= _ENCODE_SAMPLE // 2


def _hash_encoded(array: pa.DictionaryArray, seeds: np.ndarray) -> np.ndarray:
    """Hashes of a dictionary ``array`` under one seed, from its dictionary's hashes."""
    dictionary = array.dictionary
    value_hashes = _hash_any(dictionary, np.full(len(dictionary), seeds[0]))
    indices = array.indices
    positions = _values(indices, indices.type.to_pandas_dtype())
    if indices.null_count:
        valid = _validity(indices)
        return np.where(valid, value_hashes[np.where(valid, positions, 0)], seeds)
    return value_hashes[positions]


def _hash_valid(array: pa.Array, seeds: np.ndarray) -> np.ndarray:
    """Hashes of ``array``'s values, arbitrary where a value is null."""
    kind = array.type
    if pa.types.is_boolean(kind):
        bits = _bits(array.buffers()[1], array.offset, len(array))
        return _hash_int(bits.astype(np.uint64), seeds)
    if pa.types.is_int8(kind) or pa.types.is_int16(kind) or pa.types.is_int32(kind):
        return _hash_int(_to_uint32_words(_values(array, kind.to_pandas_dtype())), seeds)
    if pa.types.is_date32(kind):
        return _hash_int(_to_uint32_words(_values(array, np.int32)), seeds)
    if pa.types.is_int64(kind):
        return _hash_long(_values(array, np.uint64), seeds)
    if pa.types.is_timestamp(kind):
        if kind.unit != "us":
            raise TypeError(
                f"cannot reproduce Spark's xxhash64 for {kind}: Spark's timestamps are in "
                "microseconds; "
                "cast to pa.timestamp('us') first"
            )
        return _hash_long(_values(array, np.uint64), seeds)
    if pa.types.is_float32(kind):
        values = _values(array, np.float32)
        bits = np.where(np.isnan(values), _FLOAT_NAN_BITS, values.view(np.uint32))
        bits[values == 0] = 0  # -0.0 hashes as 0
        return _hash_int(bits.astype(np.uint64), seeds)
    if pa.types.is_float64(kind):
        values = _values(array, np.float64)
        bits = np.where(np.isnan(values), _DOUBLE_NAN_BITS, values.view(np.uint64))
        bits[values == 0] = 0
        return _hash_long(bits, seeds)
    if pa.types.is_decimal128(kind):
        return _hash_decimal(array, seeds)
    if (
        pa.types.is_string(kind)
        or pa.types.is_binary(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_large_binary(kind)
    ):
        return _hash_variable(array, seeds)
    raise TypeError(
        f"cannot reproduce Spark's xxhash64 for Arrow type {kind}; supported: int8, int16, "
        "int32, int64, float32, float64, bool, date32, timestamp[us] (with or without tz), "
        "decimal128, string, large_string, binary, large_binary, null and dictionaries of these"
    )


def _values(array: pa.Array, dtype) -> np.ndarray:
    """The fixed-width values of ``array`` (nulls included) from its buffer, as ``dtype``."""
    dtype = np.dtype(dtype)
    buffer = array.buffers()[1]
    if buffer is None or len(array) == 0:
        return np.zeros(len(array), dtype=dtype)
    return np.frombuffer(buffer, dtype=dtype, count=array.offset + len(array))[array.offset :]


def _bits(buffer: pa.Buffer | None, offset: int, length: int) -> np.ndarray:
    """The bitmap ``buffer`` from bit ``offset`` as ``length`` booleans (all set if none)."""
    if buffer is None:
        return np.ones(length, dtype=bool)
    first, last = offset // 8, (offset + length + 7) // 8
    packed = np.frombuffer(buffer, dtype=np.uint8, count=last)[first:]
    unpacked = np.unpackbits(packed, bitorder="little")
    return unpacked[offset % 8 : offset % 8 + length].view(bool)


def _validity(array: pa.Array) -> np.ndarray:
    return _bits(array.buffers()[0], array.offset, len(array))


def _to_uint32_words(values: np.ndarray) -> np.ndarray:
    """Java ints (sign-extended to 32 bits) as the ``uint64`` ``input & 0xFFFFFFFFL``."""
    return values.astype(np.int32, copy=False).view(np.uint32).astype(np.uint64)


# -- XXH64 ----------------------------------------------------------------------------------


def _rotl(x: np.ndarray, bits: int) -> np.ndarray:
    """``Long.rotateLeft(x, bits)``, in place on ``x`` (which it returns)."""
    high = x >> np.uint64(64 - bits)
    x <<= np.uint64(bits)
    x |= high
    return x


def _fmix(h: np.ndarray) -> np.ndarray:
    """XXH64's final avalanche, in place."""
    h ^= h >> np.uint64(33)
    h *= _P2
    h ^= h >> np.uint64(29)
    h *= _P3
    h ^= h >> np.uint64(32)
    return h


def _round(accumulator: np.ndarray, words: np.ndarray) -> np.ndarray:
    """XXH64's round ``rotl(acc + word * P2, 31) * P1``, in place on ``accumulator``."""
    words = words * _P2
    accumulator += words
    _rotl(accumulator, 31)
    accumulator *= _P1
    return accumulator


def _round_zero(words: np.ndarray) -> np.ndarray:
    """XXH64's round on a zero accumulator, ``rotl(word * P2, 31) * P1``, as a new array."""
    k = words * _P2
    _rotl(k, 31)
    k *= _P1
    return k


def _hash_int(words: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """``XXH64.hashInt``: 4-byte words (as ``uint64`` below 2**32), one per seed."""
    h = seeds + _INT_INIT
    h ^= words * _P1
    _rotl(h, 23)
    h *= _P2
    h += _P3
    return _fmix(h)


def _hash_long(words: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """``XXH64.hashLong``: 8-byte words (``uint64``), one per seed."""
    h = seeds + _LONG_INIT
    h ^= _round_zero(words)
    _rotl(h, 27)
    h *= _P1
    h += _P4
    return _fmix(h)


def _hash_decimal(array: pa.Array, seeds: np.ndarray) -> np.ndarray:
    """Decimals: ``hashLong`` of the unscaled long, or XXH64 of the unscaled value's bytes.

    Spark's ``XxHash64`` hashes a decimal of precision above 18 as
    ``hashUnsafeBytes(unscaled.toByteArray())``: big-endian two's complement in
    ``bitLength() // 8 + 1`` bytes, ``bitLength()`` counting the bits of the value, or of its
    complement if negative. Those are the low bytes of the 128-bit value, so shifting it
    left by the other bytes and swapping each half to little-endian lays them out at the
    start of 16 bytes per value, read from there by :func:`_hash_bytes`.
    """
    rows, offset = len(array), array.offset
    buffer = array.buffers()[1]
    halves = np.frombuffer(buffer, dtype="<u8", count=2 * (offset + rows))[2 * offset :]
    if array.type.precision <= _MAX_LONG_DIGITS:
        return _hash_long(halves[0::2], seeds)
    low, high = halves[0::2].copy(), halves[1::2].copy()
    sign = (high.view(np.int64) >> np.int64(63)).view(np.uint64)  # all ones if negative
    magnitude_high, magnitude_low = high ^ sign, low ^ sign
    # bitLength() // 8 + 1 is 1 plus the number of k >= 1 with magnitude >= 2**(8k - 1)
    high_set = magnitude_high != 0
    top = np.where(high_set, magnitude_high, magnitude_low)
    counts = np.where(high_set, np.uint8(9), np.uint8(1))
    for threshold in _BYTE_SIGN_BITS:
        counts += top >= threshold
    lengths = counts.astype(np.int64)  # of any 16 bytes where null, hashed but not used
    # shifts of 64 bits or more give 0 in numpy, which makes both branches of each half exact
    shift = (128 - 8 * lengths).astype(np.uint64)
    laid = np.empty((rows, 2), dtype=np.uint64)
    left = laid[:, 0]
    np.left_shift(high, shift, out=left)
    left |= low >> (np.uint64(64) - shift)
    left |= low << (shift - np.uint64(64))
    np.left_shift(low, shift, out=laid[:, 1])
    data = laid.byteswap(inplace=True).view(np.uint8).reshape(-1)
    return _hash_bytes(data, np.arange(0, 16 * rows, 16), lengths, seeds)


def _hash_variable(array: pa.Array, seeds: np.ndarray) -> np.ndarray:
    """Strings and binaries: XXH64 of each value's bytes, read from the Arrow buffers."""
    rows = len(array)
    large = pa.types.is_large_string(array.type) or pa.types.is_large_binary(array.type)
    _, offsets_buffer, data_buffer = array.buffers()
    if rows == 0:
        return np.empty(0, dtype=np.uint64)
    offsets = np.frombuffer(
        offsets_buffer, dtype=np.int64 if large else np.int32, count=array.offset + rows + 1
    )[array.offset :].astype(np.int64)
    starts = offsets[:-1]
    lengths = np.diff(offsets)
    if array.null_count:
        # a null's hash is not used: give it the tail of the first value, read from the data's
        # start, so that each tail step still applies to all values when all have one length
        valid = _validity(array)
        first = int(np.argmax(valid))
        if not valid[first]:
            return seeds.copy()
        starts = np.where(valid, starts, 0)
        lengths = np.where(valid, lengths, lengths[first] & 31)
    if data_buffer is None:
        data = np.empty(0, dtype=np.uint8)
    else:
        data = np.frombuffer(data_buffer, dtype=np.uint8)
    return _hash_bytes(data, starts, lengths, seeds)


def _unaligned(data: np.ndarray, dtype: str) -> np.ndarray:
    """A view of ``data`` whose element ``i`` is the little-endian word at byte ``i``."""
    size = np.dtype(dtype).itemsize
    count = max(data.size - size + 1, 0)
    if count == 0:
        return np.empty(0, dtype=dtype)
    return np.ndarray((count,), dtype=dtype, buffer=data, strides=(1,))


def _aligned(data: np.ndarray, dtype: str, starts: np.ndarray) -> np.ndarray | None:
    """A view of ``data`` as whole words of ``dtype``, if ``data`` and every one of ``starts``
    are aligned to them (None if not): gathering from it is several times faster than from
    :func:`_unaligned`, element ``i`` being the word at byte ``i * itemsize``."""
    size = np.dtype(dtype).itemsize
    if data.ctypes.data % size or (starts.size and np.bitwise_or.reduce(starts) % size):
        return None
    return data[: data.size - data.size % size].view(dtype)


def _hash_bytes(
    data: np.ndarray, starts: np.ndarray, lengths: np.ndarray, seeds: np.ndarray
) -> np.ndarray:
    """``XXH64.hashUnsafeBytes`` of ``data[starts[i] : starts[i] + lengths[i]]`` for each ``i``.

    All values advance together: stripes of 32 bytes, then up to three 8-byte words, one
    4-byte word and up to three single bytes, each step applied to the values that have one
    (all of them in place when all have it, as when the values are of one length).
    """
    words8 = _unaligned(data, "<u8")
    h = seeds + _P5

    stripes = lengths >> 5
    striped = np.flatnonzero(stripes)
    if striped.size:
        # longest first: the values with a k-th stripe are a prefix of this order
        order = striped[np.argsort(-stripes[striped], kind="stable")]
        counts = stripes[order]
        active = np.searchsorted(-counts, -np.arange(counts[0]), side="left")
        at = starts[order]
        lanes = seeds[order][:, None] + _LANE_INIT
        for step, count in enumerate(active):
            if count <= _FEW_LONG_VALUES:
                # a few values have stripes left: finish them one by one
                for row in range(count):
                    start, left = int(at[row]) + 32 * step, int(counts[row]) - step
                    lanes[row] = _stripe_rounds(words8, start, left, lanes[row].tolist())
                break
            words = words8[(at[:count] + 32 * step)[:, None] + _LANE_OFFSETS]
            _round(lanes[:count], words)
        h[order] = _merge_lanes(lanes)
        tail_starts = starts + (lengths & ~31)
    else:
        tail_starts = starts
    h += lengths.astype(np.uint64)
    tail = lengths & 31

    # 8-byte words: each word's values are a subset of the previous word's
    aligned8 = _aligned(data, "<u8", tail_starts)
    rows, tails, at = None, tail, tail_starts if aligned8 is None else tail_starts >> 3
    for word in range(3):
        rows, (tails, at) = _narrow(rows, tails >= 8 * (word + 1), tails, at)
        if rows is not None and rows.size == 0:
            break
        if aligned8 is None:
            words = words8[at + 8 * word]
        else:
            words = aligned8[at + word]
        part = h if rows is None else h[rows]
        part ^= _round_zero(words)
        _rotl(part, 27)
        part *= _P1
        part += _P4
        if rows is not None:
            h[rows] = part

    rows, (at,) = _narrow(None, (tail & 4) != 0, tail_starts + (tail & 24))  # a 4-byte word
    if rows is None or rows.size:
        aligned4 = _aligned(data, "<u4", at)
        if aligned4 is None:
            k = _unaligned(data, "<u4")[at].astype(np.uint64)
        else:
            k = aligned4[at >> 2].astype(np.uint64)
        k *= _P1
        part = h if rows is None else h[rows]
        part ^= k
        _rotl(part, 23)
        part *= _P2
        part += _P3
        if rows is not None:
            h[rows] = part

    rows, rests, at = None, tail & 3, tail_starts + (tail & 28)
    for byte in range(3):  # single bytes: each byte's values are a subset of the previous
        rows, (rests, at) = _narrow(rows, rests > byte, rests, at)
        if rows is not None and rows.size == 0:
            break
        k = data[at + byte].astype(np.uint64)
        k *= _P5
        part = h if rows is None else h[rows]
        part ^= k
        _rotl(part, 11)
        part *= _P1
        if rows is not None:
            h[rows] = part
    return _fmix(h)


def _narrow(
    rows: np.ndarray | None, keep: np.ndarray, *columns: np.ndarray
) -> tuple[np.ndarray | None, tuple[np.ndarray, ...]]:
    """The rows (None: all of them) where ``keep``, and ``columns`` (aligned with ``rows``)
    restricted to them; nothing is copied when every row is kept."""
    kept = np.count_nonzero(keep)
    if kept == keep.size:
        return rows, columns
    picked = np.flatnonzero(keep) if kept else np.empty(0, dtype=np.intp)
    narrowed = tuple(column[picked] for column in columns)
    return (picked if rows is None else rows[picked]), narrowed


def _stripe_rounds(words8: np.ndarray, start: int, stripes: int, lanes: list[int]) -> list[int]:
    """XXH64's rounds over ``stripes`` stripes of one value from byte ``start``, in Python
    integers: for a long value alone, faster than numpy's per-call cost on 4-element arrays."""
    v1, v2, v3, v4 = lanes
    positions = np.arange(start, start + 32 * stripes, 8)
    for first in range(0, len(positions), _STRIPE_CHUNK_WORDS):
        products = (words8[positions[first : first + _STRIPE_CHUNK_WORDS]] * _P2).tolist()
        words = iter(products)
        for k1, k2, k3, k4 in zip(words, words, words, words):
            v1 = (v1 + k1) & _MASK
            v1 = (((v1 << 31) | (v1 >> 33)) & _MASK) * _P1_INT & _MASK
            v2 = (v2 + k2) & _MASK
            v2 = (((v2 << 31) | (v2 >> 33)) & _MASK) * _P1_INT & _MASK
            v3 = (v3 + k3) & _MASK
            v3 = (((v3 << 31) | (v3 >> 33)) & _MASK) * _P1_INT & _MASK
            v4 = (v4 + k4) & _MASK
            v4 = (((v4 << 31) | (v4 >> 33)) & _MASK) * _P1_INT & _MASK
    return [v1, v2, v3, v4]


def _merge_lanes(lanes: np.ndarray) -> np.ndarray:
    """XXH64's convergence of the four stripe accumulators (rows of ``lanes``) into one."""
    h = np.zeros(len(lanes), dtype=np.uint64)
    for lane, bits in enumerate((1, 7, 12, 18)):
        h += _rotl(lanes[:, lane].copy(), bits)
    for lane in range(4):
        h ^= _round_zero(lanes[:, lane])
        h *= _P1
        h += _P4
    return h
