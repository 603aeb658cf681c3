"""spark_hash reproduces Spark's own ``F.xxhash64`` exactly, type by type and over a row chain."""

from __future__ import annotations

import datetime as dt
import math
import struct
from decimal import Context, Decimal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql import functions as F
from pyspark.sql import types as T

from spark_explore.scan import spark_hash
from spark_explore.scan.spark_hash import (
    SPARK_SEED,
    hash_array,
    hash_columns,
    hash_long_literal,
)

UTC = dt.timezone.utc
RNG = np.random.default_rng(20240601)
EXACT = Context(prec=60)  # scaleb rounds to the context's precision


def _text(length: int, shift: int = 0) -> str:
    return "".join(chr(33 + (7 * i + shift) % 94) for i in range(length))


def _decimals(precision: int, scale: int) -> list[Decimal | None]:
    """Zero, signs, the extremes, and unscaled values either side of each byte boundary."""
    top = 10**precision - 1
    unscaled = {0, 1, -1, top, -top}
    for bits in (b for k in range(1, 17) for b in (8 * k - 1, 8 * k)):
        for value in (2**bits - 1, 2**bits, 2**bits + 1):
            if value <= top:
                unscaled.update((value, -value))
    return [None, *(Decimal(u).scaleb(-scale, EXACT) for u in sorted(unscaled))]


def _case(spark_type, arrow_types, values):
    return spark_type, arrow_types, values


STRINGS = [
    None,
    "",
    *(_text(n) for n in range(81)),
    "é",
    "日本語",
    "naïve café 🚀",
    "𝄞" * 9,
    "x" * 1000,
    _text(1003, 5),
    "é" * 2050,
    _text(10_007, 11),
]
BINARIES = [None, b"", *(RNG.integers(0, 256, n, dtype=np.uint8).tobytes() for n in range(81))]
BINARIES += [RNG.integers(0, 256, n, dtype=np.uint8).tobytes() for n in (1000, 1031, 4096)]
FLOATS = [None, 0.0, -0.0, math.nan, math.inf, -math.inf, 1.0, -1.5, 0.1, 3.4e38, 1e-45, 2.5e-39]
DOUBLES = [None, 0.0, -0.0, math.nan, math.inf, -math.inf, 1.0, -1.5, 0.1, 1.7976931348623157e308]
DOUBLES += [5e-324, -2.2250738585072014e-308, 123456789.123456789]
TIMESTAMPS = [
    None,
    dt.datetime(1970, 1, 1),
    dt.datetime(1969, 12, 31, 23, 59, 59, 999999),
    dt.datetime(2024, 2, 29, 12, 34, 56, 789012),
    dt.datetime(1, 1, 1),
    dt.datetime(1582, 10, 10, 1, 2, 3),
    dt.datetime(9999, 12, 31, 23, 59, 59, 999999),
]


def _ints(bits: int) -> list[int | None]:
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    values = [0, 1, -1, 2, -2, 127, -128, 255, 256, -32769, 65535, low, high, low + 1, high - 1]
    return [None, *(v for v in values if low <= v <= high)]


# name: (Spark type, Arrow types to hash the same values as, values)
CASES = {
    "int8": _case(T.ByteType(), [pa.int8()], _ints(8)),
    "int16": _case(T.ShortType(), [pa.int16()], _ints(16)),
    "int32": _case(T.IntegerType(), [pa.int32()], _ints(32)),
    "int64": _case(T.LongType(), [pa.int64()], _ints(64)),
    "float": _case(T.FloatType(), [pa.float32()], FLOATS),
    "double": _case(T.DoubleType(), [pa.float64()], DOUBLES),
    "bool": _case(T.BooleanType(), [pa.bool_()], [True, None, False, False, True] * 3),
    "date": _case(
        T.DateType(),
        [pa.date32()],
        [None, dt.date(1970, 1, 1), dt.date(1969, 12, 31), dt.date(1, 1, 1), dt.date(9999, 12, 31)],
    ),
    "timestamp": _case(
        T.TimestampType(),
        [pa.timestamp("us", tz="UTC"), pa.timestamp("us", tz="America/New_York")],
        [t and t.replace(tzinfo=UTC) for t in TIMESTAMPS],
    ),
    "timestamp_ntz": _case(T.TimestampNTZType(), [pa.timestamp("us")], TIMESTAMPS),
    "string": _case(T.StringType(), [pa.string(), pa.large_string()], STRINGS),
    "binary": _case(T.BinaryType(), [pa.binary(), pa.large_binary()], BINARIES),
    "decimal_5_2": _case(T.DecimalType(5, 2), [pa.decimal128(5, 2)], _decimals(5, 2)),
    "decimal_18_4": _case(T.DecimalType(18, 4), [pa.decimal128(18, 4)], _decimals(18, 4)),
    "decimal_19_0": _case(T.DecimalType(19, 0), [pa.decimal128(19, 0)], _decimals(19, 0)),
    "decimal_38_10": _case(T.DecimalType(38, 10), [pa.decimal128(38, 10)], _decimals(38, 10)),
}


@pytest.fixture(scope="module")
def spark_hashes(spark) -> dict[str, list[int]]:
    """Spark's ``xxhash64`` of every case's values, all cases in one job (short columns padded
    with nulls), and the cases' columns as Spark exports them to Arrow."""
    rows = max(len(values) for _, _, values in CASES.values())
    columns = {
        name: values + [None] * (rows - len(values)) for name, (_, _, values) in CASES.items()
    }
    schema = T.StructType([T.StructField(name, kind) for name, (kind, _, _) in CASES.items()])
    frame = spark.createDataFrame(list(zip(*columns.values())), schema)
    hashed = frame.select([F.xxhash64(name).alias(name) for name in CASES]).collect()
    result = {name: [row[name] for row in hashed][: len(CASES[name][2])] for name in CASES}
    result["_arrow"] = frame.toArrow()
    return result


def _check(actual: np.ndarray, expected: list[int]) -> None:
    assert actual.dtype == np.int64
    mismatches = [i for i, (a, e) in enumerate(zip(actual.tolist(), expected)) if a != e]
    assert len(actual) == len(expected) and not mismatches, f"rows differ: {mismatches[:10]}"


@pytest.mark.parametrize(
    ("name", "arrow_type"),
    [(name, arrow_type) for name, (_, types, _) in CASES.items() for arrow_type in types],
    ids=str,
)
def test_one_column_matches_spark(spark_hashes, name, arrow_type) -> None:
    values = CASES[name][2]
    _check(hash_array(pa.array(values, arrow_type)), spark_hashes[name])


def test_arrays_exported_by_spark(spark_hashes) -> None:
    table = spark_hashes["_arrow"]
    for name, (_, _, values) in CASES.items():
        column = table.column(name)
        _check(hash_array(column)[: len(values)], spark_hashes[name])
        _check(hash_array(column.combine_chunks())[: len(values)], spark_hashes[name])


def test_float_normalisation(spark_hashes) -> None:
    """-0.0 hashes as 0.0, and NaN as the canonical NaN (Float/Double ...ToIntBits/LongBits)."""
    for name in ("float", "double"):
        hashes = dict(zip(map(repr, CASES[name][2]), spark_hashes[name]))
        assert hashes["-0.0"] == hashes["0.0"] and hashes["nan"] != hashes["0.0"]
        assert hashes["None"] == SPARK_SEED


@pytest.mark.parametrize(("start", "stop"), [(0, 0), (1, 4), (3, 17), (9, None), (70, 81)])
def test_sliced_arrays(spark_hashes, start, stop) -> None:
    for name, (_, types, values) in CASES.items():
        for arrow_type in types:
            array = pa.array(values, arrow_type)[start:stop]
            _check(hash_array(array), spark_hashes[name][start:stop])


@pytest.mark.parametrize("name", ["string", "binary", "decimal_38_10"])
def test_values_one_at_a_time(spark_hashes, name) -> None:
    """Alone, a long value's stripes are hashed in Python integers rather than numpy."""
    (_, (arrow_type, *_), values), expected = CASES[name], spark_hashes[name]
    for value, hashed in zip(values, expected):
        _check(hash_array(pa.array([value], arrow_type)), [hashed])


def test_dictionary_and_chunked_arrays(spark_hashes) -> None:
    values, expected = CASES["string"][2], spark_hashes["string"]
    dictionary = pa.array(values + values[::-1]).dictionary_encode()
    _check(hash_array(dictionary), expected + expected[::-1])
    chunked = pa.chunked_array([pa.array(values[:5]), pa.array(values[5:])])
    _check(hash_array(chunked), expected)
    _check(hash_array(pa.nulls(3, pa.int64())), [SPARK_SEED] * 3)
    _check(hash_array(pa.array([], pa.string())), [])


@pytest.mark.parametrize("name", ["string", "binary"])
def test_repeated_values_hashed_once_each(spark_hashes, name) -> None:
    """Long arrays of few distinct values are hashed through dictionary_encode, once per
    distinct value; nulls, empty and long values, slices and offsets as everywhere else."""
    (_, arrow_types, values), expected = CASES[name], spark_hashes[name]
    picks = RNG.integers(0, len(values), 20_000)
    want = [expected[i] for i in picks]
    for arrow_type in arrow_types:
        array = pa.array([values[i] for i in picks], arrow_type)
        assert spark_hash._worth_encoding(array) and spark_hash._worth_encoding(array[5:])
        _check(hash_array(array), want)
        _check(hash_array(array[5:]), want[5:])
        _check(hash_array(pa.chunked_array([array[:7], array[7:]])), want)
        seeds = np.full(len(array), SPARK_SEED, dtype=np.int64)  # per-row seeds: every value
        _check(hash_array(array[3:], seeds[3:]), want[3:])


@pytest.mark.parametrize("length", [2, 16, 31, 40, 70])
def test_nulls_among_values_of_one_length(spark_hashes, length) -> None:
    """Values of one length with nulls among them: every tail step applies to all values, and
    the words of values at multiples of 8 bytes are read as aligned words."""
    values, expected = CASES["string"][2], spark_hashes["string"]
    index = values.index(_text(length))
    picks = RNG.choice([0, index], 3000)
    array = pa.array([values[i] for i in picks], pa.string())
    want = [expected[i] for i in picks]
    _check(hash_array(array), want)
    _check(hash_array(array[1:-1]), want[1:-1])


MIXED = T.StructType(
    [
        T.StructField("i", T.IntegerType()),
        T.StructField("s", T.StringType()),
        T.StructField("d", T.DoubleType()),
        T.StructField("m", T.DecimalType(38, 6)),
        T.StructField("b", T.BooleanType()),
        T.StructField("t", T.TimestampType()),
        T.StructField("day", T.DateType()),
        T.StructField("l", T.LongType()),
    ]
)
MIXED_ARROW = [
    pa.int32(),
    pa.string(),
    pa.float64(),
    pa.decimal128(38, 6),
    pa.bool_(),
    pa.timestamp("us", tz="UTC"),
    pa.date32(),
    pa.int64(),
]


def _mixed_rows(count: int) -> list[tuple]:
    rows = [(None,) * len(MIXED_ARROW)]
    for n in range(count):
        row = (
            int(RNG.integers(-(2**31), 2**31)),
            _text(int(RNG.integers(0, 70)), n),
            float(RNG.normal()) if n % 11 else -0.0,
            Decimal(int(RNG.integers(-(2**62), 2**62)) * 10**9).scaleb(-6, EXACT),
            bool(n % 2),
            dt.datetime(2000, 1, 1, tzinfo=UTC)
            + dt.timedelta(microseconds=int(RNG.integers(10**15))),
            dt.date(2000, 1, 1) + dt.timedelta(days=int(RNG.integers(-(10**5), 10**5))),
            int(RNG.integers(-(2**63), 2**63)),
        )
        rows.append(tuple(None if RNG.random() < 0.2 else v for v in row))
    return rows


def test_row_hash_chain_matches_spark(spark) -> None:
    rows = _mixed_rows(120)
    frame = spark.createDataFrame(rows, MIXED)
    columns = [F.col(name) for name in MIXED.fieldNames()]
    expected = frame.select(
        F.xxhash64(*columns).alias("plain"),
        F.xxhash64(*columns, F.lit(2**40 + 3)).alias("long_literal"),
        F.xxhash64(*columns, F.lit(-7).cast("bigint")).alias("cast_literal"),
        F.xxhash64(*columns, F.lit(42)).alias("int_literal"),
        F.xxhash64(F.lit(5).cast("bigint"), *columns[:3]).alias("leading_literal"),
    ).collect()
    spark_types = dict(frame.select(F.lit(2**40 + 3), F.lit(42)).dtypes)
    assert sorted(spark_types.values()) == ["bigint", "int"]  # F.lit(42) is an int literal
    arrays = [pa.array(list(values), kind) for values, kind in zip(zip(*rows), MIXED_ARROW)]

    def spark_column(name: str) -> list[int]:
        return [row[name] for row in expected]

    plain = hash_columns(arrays)
    _check(plain, spark_column("plain"))
    assert spark_column("plain")[0] == SPARK_SEED  # a row of nulls keeps the seed
    _check(hash_columns([*arrays, 2**40 + 3]), spark_column("long_literal"))
    _check(hash_columns([*arrays, pa.scalar(-7, pa.int64())]), spark_column("cast_literal"))
    _check(hash_long_literal(-7, plain), spark_column("cast_literal"))
    _check(hash_columns([*arrays, 42]), spark_column("int_literal"))
    _check(hash_columns([pa.scalar(5, pa.int64()), *arrays[:3]]), spark_column("leading_literal"))

    # step by step, with the chain as per-row seeds (int64 or uint64), on sliced arrays
    chain: np.ndarray = np.full(len(rows) - 10, SPARK_SEED, dtype=np.int64)
    for position, array in enumerate(arrays):
        seeds = chain.view(np.uint64) if position % 2 else chain
        chain = hash_array(array[10:], seeds)
    _check(chain, spark_column("plain")[10:])
    _check(hash_columns([a[10:] for a in arrays]), spark_column("plain")[10:])


def test_nan_payloads_read_from_parquet(spark, tmp_path) -> None:
    """Spark hashes every NaN alike, whatever its sign and payload, and so does hash_array."""
    doubles = [
        struct.unpack("<d", struct.pack("<Q", bits))[0]
        for bits in (0x7FF8000000000000, 0x7FF8000000000001, 0xFFF8000000000000, 0x7FF0000000000001)
    ]
    floats = np.array([0x7FC00000, 0x7FC00001, 0xFFC00000, 0x7F800001], dtype=np.uint32)
    table = pa.table(
        {
            "d": pa.array(np.array(doubles + [0.0, -0.0])),
            "f": pa.array(np.concatenate([floats.view(np.float32), np.float32([0.0, -0.0])])),
        }
    )
    path = str(tmp_path / "nan.parquet")
    pq.write_table(table, path)
    hashed = spark.read.parquet(path).select(F.xxhash64("d"), F.xxhash64("f")).collect()
    read = pq.read_table(path)
    for index, name in enumerate(("d", "f")):
        expected = [row[index] for row in hashed]
        assert len(set(expected[:4])) == 1 and expected[4] == expected[5]
        _check(hash_array(read.column(name)), expected)


def test_unsupported_types_and_bad_seeds() -> None:
    for array in (
        pa.array([1], pa.uint32()),
        pa.array([1], pa.uint64()),
        pa.array([1], pa.timestamp("ns")),
        pa.array([[1]]),
        pa.array([{"a": 1}]),
        pa.array([1], pa.date64()),
    ):
        with pytest.raises(TypeError, match="xxhash64"):
            hash_array(array)
    with pytest.raises(TypeError, match="pa.timestamp"):
        hash_array(pa.array([1], pa.timestamp("ms")))
    with pytest.raises(TypeError, match="seeds"):
        hash_array(pa.array([1]), np.array([1.0]))
    with pytest.raises(ValueError, match="seeds"):
        hash_array(pa.array([1, 2]), np.array([1], dtype=np.int64))
    with pytest.raises(ValueError, match="one length"):
        hash_columns([pa.array([1]), pa.array([1, 2])])


@pytest.mark.filterwarnings("error")
def test_no_overflow_warnings_on_single_values() -> None:
    assert isinstance(hash_long_literal(2**64 - 1, -1), int)
    hash_array(pa.array([2**63 - 1]), 2**64 - 1)
    hash_columns([pa.array(["a" * 40]), -(2**63)])
