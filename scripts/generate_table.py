#!/usr/bin/env python
"""Write a synthetic Parquet table for demos, tests and benchmarks.

The table is built by Spark from ``spark.range`` and column expressions, so it is written at
Spark's speed on all cores, with no Python loop, and memory stays bounded: no row is ever
brought to the driver.

Except in the ``wide`` shape, every random value is a function of ``(seed, column, row id)``
through ``xxhash64``, not of Spark's per-partition random generators. The same ``--seed``
therefore gives the same rows whatever ``--partitions`` is, and the same first rows for a
larger ``--rows``. The ``wide`` shape uses Spark's ``randn`` for speed, so it is
deterministic for a given ``--seed`` and ``--partitions``.

Shapes
------
mixed
    20 columns of all the types a data lake holds, with realistic messiness: nulls, NaN and
    infinities, sentinel values, integers and decimals near their type's limits, empty and
    blank strings, unicode, skewed (lognormal, Zipf) and unique-id columns, nested types.
wide
    ``--columns`` normal double columns (default 1000) of varied mean and scale; mind the
    size: 8 bytes x rows x columns, incompressible.
narrow
    10 numeric and string columns with built-in structure: a collinear pair, a target that
    depends on them and on a group (with group-dependent noise), and a binary label.
strings
    One string column with exactly ``min(--rows, --distinct)`` distinct values, in scrambled
    order, plus one Zipf-distributed string column.

Examples
--------
::

    python scripts/generate_table.py --rows 200000 --output /tmp/gen_small
    python scripts/generate_table.py --shape wide --columns 200 --rows 1000000 \\
        --output bench-data/wide_1m --overwrite
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import sys
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_explore.scan.job import session_conf
from spark_explore.scan.session import get_session

SHAPES = ("mixed", "wide", "narrow", "strings")

#: What the scripts' sessions change in the library's local session.
LOCAL_CONF = {
    "spark.driver.memory": "4g",
    "spark.sql.shuffle.partitions": "200",
}

WRITE_CONF = {
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.codegen.wholeStage": "false",
}

_INT64_MAX = 2**63 - 1
_INT64_MIN = -(2**63)
_TWO_53 = float(2**53)
_MASK_53 = 2**53 - 1

CATEGORIES = ("DE", "FR", "US", "GB", "IT", "ES", "NL", "PL", "SE", "JP")
WORDS = (
    "ok",
    "late",
    "damaged",
    "refund",
    "café",
    "naïve",
    "東京",
    "ÅÄÖ",
    "n/a",
    "N/A",
    "-",
    "null",
    "see attached",
    "😀",
    "repeat customer",
    "called twice",
)
MAP_KEYS = ("color", "size", "weight", "qty")


@dataclass(frozen=True)
class Written:
    """What :func:`generate` wrote.

    Attributes
    ----------
    path
        Output folder.
    rows
        Rows in the written files, read from their Parquet footers (local paths), or the
        requested row count otherwise.
    columns
        Number of top-level columns.
    files
        Number of Parquet part files (local paths; 0 when unknown).
    size_bytes
        Total size of the Parquet part files (local paths; 0 when unknown).
    seconds
        Wall-clock seconds of the Spark write.
    """

    path: str
    rows: int
    columns: int
    files: int
    size_bytes: int
    seconds: float

    def describe(self) -> str:
        """Return a one-line human-readable summary."""
        size = f"{self.size_bytes / 2**20:,.1f} MiB in {self.files} files"
        if not self.files:
            size = "size unknown"
        return (
            f"wrote {self.rows:,} rows x {self.columns} columns to {self.path} "
            f"({size}) in {self.seconds:.1f} s"
        )


class _Rng:
    """Counter-based random columns: each draw hashes ``(seed, stream, id, *extra)``.

    Parameters
    ----------
    seed
        Global seed; every stream is independent of the others for a given seed.
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def bits(self, stream: str, *extra: Column) -> Column:
        """Return a 64-bit signed hash column for the named stream."""
        key = zlib.crc32(stream.encode())
        return F.xxhash64(F.lit(self.seed), F.lit(key), F.col("id"), *extra)

    def uniform(self, stream: str, *extra: Column) -> Column:
        """Return a uniform double in [0, 1) with 53 random bits."""
        return self.bits(stream, *extra).bitwiseAND(F.lit(_MASK_53)) / _TWO_53

    def integer(self, stream: str, low: int, high: int, *extra: Column) -> Column:
        """Return a uniform bigint in ``[low, high)``."""
        return F.pmod(self.bits(stream, *extra), F.lit(high - low)) + F.lit(low)

    def normal(self, stream: str, mean: float = 0.0, sd: float = 1.0) -> Column:
        """Return a normal double by the Box-Muller transform of two uniforms."""
        u1 = self.uniform(stream + "/u1")
        u2 = self.uniform(stream + "/u2")
        z = F.sqrt(F.lit(-2.0) * F.log(F.lit(1.0) - u1)) * F.cos(F.lit(2 * math.pi) * u2)
        return z * sd + mean

    def zipf(self, stream: str, support: int) -> Column:
        """Return a Zipf (exponent 1) rank in ``1..support``: ``floor((support + 1) ** U)``.

        ``P(k) = log((k + 1) / k) / log(support + 1)``, which is ``~ 1 / (k log support)``.
        """
        rank = F.floor(F.pow(F.lit(float(support + 1)), self.uniform(stream)))
        return F.least(rank, F.lit(support)).cast("bigint")

    def nulls(self, column: Column, share: float, stream: str, *extra: Column) -> Column:
        """Replace a ``share`` of the values of ``column`` with null."""
        return F.when(self.uniform(stream + "/null", *extra) >= share, column)


def _choice(values: Sequence[str], index: Column) -> Column:
    """Pick ``values[index - 1]`` for a 1-based integer column."""
    return F.element_at(F.array(*[F.lit(v) for v in values]), index.cast("int"))


def _mixed(spark: SparkSession, rows: int, partitions: int, seed: int) -> DataFrame:
    """The 20-column messy table (see the module docstring)."""
    r = _Rng(seed)
    base = spark.range(0, rows, 1, partitions)

    lognormal = F.exp(r.normal("lognormal"))
    u_special = r.uniform("lognormal/special")
    money = F.round(F.exp(r.normal("money", 3.0, 1.2)), 2)
    u_extreme = r.uniform("int64/side")
    u_age = r.uniform("age/sentinel")
    u_comment = r.uniform("comment/kind")
    u_date = r.uniform("date/sentinel")
    arr_len = F.floor(r.uniform("array/len") * 6).cast("int")
    map_len = F.floor(r.uniform("map/len") * 5).cast("int")
    bin_len = F.floor(r.uniform("binary/len") * 33).cast("int")
    sha = F.unhex(F.sha2(F.concat_ws(":", F.lit(seed), F.col("id")), 256))
    words = F.concat_ws(
        " ",
        _choice(WORDS, r.integer("comment/w1", 1, len(WORDS) + 1)),
        _choice(WORDS, r.integer("comment/w2", 1, len(WORDS) + 1)),
    )
    big = (
        F.lit(Decimal(10**37))
        + r.integer("dec38/a", 0, 10**18).cast("decimal(18,0)") * F.lit(Decimal(10**19))
        + r.integer("dec38/b", 0, 9 * 10**18).cast("decimal(19,0)")
    )
    array_items = [
        r.nulls(r.integer(f"array/{i}", 0, 1000).cast("int"), 0.05, f"array/{i}") for i in range(5)
    ]
    map_values = [
        r.nulls(r.integer(f"map/{i}", -50, 50).cast("int"), 0.05, f"map/{i}")
        for i in range(len(MAP_KEYS))
    ]
    micros_2015 = int(dt.datetime(2015, 1, 1, tzinfo=dt.timezone.utc).timestamp()) * 10**6
    ten_years = 10 * 365 * 86_400 * 10**6

    columns: dict[str, Column] = {
        # full tinyint range
        "int8_score": r.integer("int8", -128, 128).cast("tinyint"),
        # ages with sentinels -1 (1.5 %) and 999 (0.5 %)
        "int16_age": F.when(u_age < 0.015, F.lit(-1))
        .when(u_age < 0.02, F.lit(999))
        .otherwise(r.integer("age", 18, 96))
        .cast("smallint"),
        # geometric counts, 2 % null
        "int32_count": r.nulls(
            F.floor(F.log(F.lit(1.0) - r.uniform("count")) * -20.0).cast("int"), 0.02, "count"
        ),
        # 40 % within 1e6 of the maximum, 40 % of the minimum, 20 % small values
        "int64_extreme": F.when(u_extreme < 0.4, F.lit(_INT64_MAX) - r.integer("i64", 0, 10**6))
        .when(u_extreme < 0.8, F.lit(_INT64_MIN) + r.integer("i64", 0, 10**6))
        .otherwise(r.integer("i64", -1000, 1000)),
        # N(100, 15), 5 % null
        "dbl_normal": r.nulls(r.normal("normal", 100.0, 15.0), 0.05, "normal"),
        # lognormal(0, 1): 0.5 % NaN, 0.1 % +inf, 0.1 % -inf, 1 % null
        "dbl_lognormal": r.nulls(
            F.when(u_special < 0.005, F.lit(float("nan")))
            .when(u_special < 0.006, F.lit(float("inf")))
            .when(u_special < 0.007, F.lit(float("-inf")))
            .otherwise(lognormal),
            0.01,
            "lognormal",
        ),
        # N(0, 1000) as float32, 1 % null
        "flt_measure": r.nulls(r.normal("float", 0.0, 1000.0).cast("float"), 0.01, "float"),
        # +/- [1e37, 2e37), 30 % negative
        "dec38_big": F.when(r.uniform("dec38/sign") < 0.3, -big).otherwise(big),
        # lognormal amounts in cents, 3 % negative (refunds), 1 % null
        "dec12_money": r.nulls(
            F.when(r.uniform("money/refund") < 0.03, -money).otherwise(money),
            0.01,
            "money",
        ).cast("decimal(12,2)"),
        # 30 % true, 10 % null
        "bool_flag": r.nulls(r.uniform("flag") < 0.3, 0.10, "flag"),
        # 10 skewed categories, 1 % null
        "str_category": r.nulls(
            _choice(CATEGORIES, F.floor(r.uniform("category") ** 2 * len(CATEGORIES)) + 1),
            0.01,
            "category",
        ),
        # Zipf(1) over 100 000 items
        "str_zipf": F.concat(F.lit("item_"), r.zipf("zipf", 100_000).cast("string")),
        # 16 hex digits (63 random bits), unique up to hash collisions
        "str_id": F.hex(r.bits("id").bitwiseOR(F.lit(_INT64_MIN))),
        # 5 % null, 10 % empty, 5 % spaces, 2 % tab/newline, 3 % padded, rest free text
        "str_comment": F.when(u_comment < 0.05, F.lit(None).cast("string"))
        .when(u_comment < 0.15, F.lit(""))
        .when(u_comment < 0.20, F.lit("   "))
        .when(u_comment < 0.22, F.lit("\t\n"))
        .when(u_comment < 0.25, F.concat(F.lit("  "), words, F.lit(" ")))
        .otherwise(words),
        # 2000-01-01 + up to ~24.6 years; 0.5 % 1900-01-01, 0.5 % 9999-12-31, 2 % null
        "date_event": r.nulls(
            F.when(u_date < 0.005, F.lit(dt.date(1900, 1, 1)))
            .when(u_date < 0.01, F.lit(dt.date(9999, 12, 31)))
            .otherwise(
                F.date_add(F.lit(dt.date(2000, 1, 1)), r.integer("date", 0, 9000).cast("int"))
            ),
            0.02,
            "date",
        ),
        # 2015-2025 with microseconds, 2 % null
        "ts_event": r.nulls(
            F.timestamp_micros(r.integer("ts", micros_2015, micros_2015 + ten_years)),
            0.02,
            "ts",
        ),
        # struct<x double, y string>: 2 % null structs, 5 % null x
        "struct_point": r.nulls(
            F.struct(
                r.nulls(r.normal("point/x"), 0.05, "point/x").alias("x"),
                _choice(CATEGORIES, r.integer("point/y", 1, 6)).alias("y"),
            ),
            0.02,
            "point",
        ),
        # 0-5 elements in [0, 1000), 5 % null elements, 3 % null arrays
        "arr_int": r.nulls(F.slice(F.array(*array_items), 1, arr_len), 0.03, "array"),
        # 0-4 keys, 5 % null values, 3 % null maps
        "map_attrs": r.nulls(
            F.map_from_arrays(
                F.slice(F.array(*[F.lit(k) for k in MAP_KEYS]), 1, map_len),
                F.slice(F.array(*map_values), 1, map_len),
            ),
            0.03,
            "map",
        ),
        # 0-32 bytes of a SHA-256, 3 % null
        "bin_payload": r.nulls(F.substr(sha, F.lit(1), bin_len), 0.03, "binary"),
    }
    return base.select(*[col.alias(name) for name, col in columns.items()])


def _wide(spark: SparkSession, rows: int, partitions: int, seed: int, width: int) -> DataFrame:
    """``width`` normal double columns, column ``j`` ~ N(j mod 10, 1 + j mod 5).

    Spark's ``randn`` is used here, not the hashed Box-Muller of the other shapes: Spark
    evaluates ``log`` and ``cos`` with ``StrictMath``, which makes a thousand hashed normals per
    row about six times slower. ``randn`` is seeded per partition, so this shape's values
    depend on ``partitions`` as well as on ``seed``.
    """
    digits = len(str(width - 1))
    return spark.range(0, rows, 1, partitions).select(
        *[
            (F.randn(zlib.crc32(f"{seed}/wide/{j}".encode())) * float(1 + j % 5) + j % 10).alias(
                f"x{j:0{digits}d}"
            )
            for j in range(width)
        ]
    )


def _narrow(spark: SparkSession, rows: int, partitions: int, seed: int) -> DataFrame:
    """Ten columns with known structure (see the module docstring)."""
    r = _Rng(seed)
    x1 = r.normal("x1")
    x2 = x1 * 0.8 + r.normal("x2") * 0.6  # corr(x1, x2) = 0.8
    group_index = r.integer("group", 1, 6)
    group_effect = _choice(("0", "1", "-1", "0.5", "2"), group_index).cast("double")
    noise_sd = group_index.cast("double") * 0.5  # variance differs by group
    return spark.range(0, rows, 1, partitions).select(
        F.col("id"),
        x1.alias("x1"),
        x2.alias("x2"),
        r.nulls(F.exp(r.normal("x3", 0.0, 0.75)), 0.02, "x3").alias("x3"),
        F.floor(F.log(F.lit(1.0) - r.uniform("count")) * -5.0).cast("int").alias("n_count"),
        _choice(("A", "B", "C", "D", "E"), group_index).alias("grp"),
        _choice(CATEGORIES, r.integer("region", 1, len(CATEGORIES) + 1)).alias("region"),
        F.concat(F.lit("item_"), r.zipf("zipf", 10_000).cast("string")).alias("item"),
        (F.lit(2.0) + x1 * 1.5 - x2 * 0.5 + group_effect + r.normal("y") * noise_sd).alias("y"),
        F.when(r.uniform("label") < F.lit(1.0) / (F.exp(-x1) + 1.0), F.lit("yes"))
        .otherwise(F.lit("no"))
        .alias("label"),
    )


def _strings(
    spark: SparkSession, rows: int, partitions: int, seed: int, distinct: int
) -> DataFrame:
    """Exactly ``min(rows, distinct)`` distinct keys in scrambled order, plus a Zipf column."""
    r = _Rng(seed)
    # id -> (id * a + seed) mod distinct visits every residue once per `distinct` rows when
    # gcd(a, distinct) = 1; `a` is small enough that id * a cannot overflow a bigint.
    a = 1_000_003
    while math.gcd(a, distinct) != 1:
        a += 2
    residue = F.pmod(F.col("id") * a + seed, F.lit(distinct))
    return spark.range(0, rows, 1, partitions).select(
        F.concat(F.lit("key-"), F.lpad(residue.cast("string"), len(str(distinct)), "0")).alias(
            "key"
        ),
        F.concat(F.lit("w"), r.zipf("zipf", distinct).cast("string")).alias("zipf"),
    )


def build(
    spark: SparkSession,
    shape: str = "mixed",
    rows: int = 10_000_000,
    partitions: int = 8,
    seed: int = 0,
    columns: int = 1000,
    distinct: int = 10_000_000,
) -> DataFrame:
    """Return the lazy DataFrame of a synthetic table.

    Parameters
    ----------
    spark
        Session that builds the plan.
    shape
        One of ``mixed``, ``wide``, ``narrow``, ``strings``.
    rows
        Number of rows.
    partitions
        Number of Spark partitions, hence of files when written.
    seed
        Seed of every random column.
    columns
        Number of columns of the ``wide`` shape.
    distinct
        Number of distinct keys of the ``strings`` shape.

    Returns
    -------
    DataFrame
        The table; nothing is computed until an action runs.

    Raises
    ------
    ValueError
        If ``shape`` is unknown or a size is not positive.
    """
    if shape not in SHAPES:
        raise ValueError(f"`shape` must be one of {SHAPES}, got {shape!r}")
    if min(rows, partitions, columns, distinct) < 1:
        raise ValueError("`rows`, `partitions`, `columns` and `distinct` must be >= 1")
    builders: dict[str, Callable[[], DataFrame]] = {
        "mixed": lambda: _mixed(spark, rows, partitions, seed),
        "wide": lambda: _wide(spark, rows, partitions, seed, columns),
        "narrow": lambda: _narrow(spark, rows, partitions, seed),
        "strings": lambda: _strings(spark, rows, partitions, seed, distinct),
    }
    return builders[shape]()


def generate(
    spark: SparkSession,
    output: str,
    *,
    overwrite: bool = False,
    shape: str = "mixed",
    rows: int = 10_000_000,
    partitions: int = 8,
    seed: int = 0,
    columns: int = 1000,
    distinct: int = 10_000_000,
) -> Written:
    """Build a synthetic table and write it as Parquet.

    Parameters
    ----------
    spark
        Session that runs the write.
    output
        Output folder, a local path or a URI.
    overwrite
        Replace an existing non-empty folder; without it such a folder is refused.
    shape, rows, partitions, seed, columns, distinct
        As for :func:`build`.

    Returns
    -------
    Written
        Path, rows, columns, files, size and duration of the write.

    Raises
    ------
    FileExistsError
        If ``output`` exists, is not empty, and ``overwrite`` is false.

    Notes
    -----
    The write runs with :data:`WRITE_CONF`, and the session's previous values are restored
    afterwards. Timestamps are written as Parquet ``TIMESTAMP_MICROS`` (not Spark's default
    INT96), so that other Parquet readers see microsecond timestamps. Whole-stage code
    generation is switched off because it fuses all column expressions into one Java method
    too large for the JIT compiler, which then runs it interpreted (about 5 times slower
    for the mixed shape); without it Spark splits the projection into small methods. The
    ``wide`` shape is written without Parquet dictionary encoding, which random doubles
    never benefit from and which makes writing a thousand columns about 3 times slower.
    """
    local = _local_path(output)
    if local is not None and local.exists() and not overwrite:
        if local.is_file() or any(local.iterdir()):
            raise FileExistsError(
                f"`--output` {output} exists and is not empty; pass --overwrite to replace it"
            )
        overwrite = True  # an existing empty folder is fine to write into
    df = build(spark, shape, rows, partitions, seed, columns, distinct)
    start = time.perf_counter()
    writer = df.write.mode("overwrite" if overwrite else "errorifexists")
    if shape == "wide":
        writer = writer.option("parquet.enable.dictionary", "false")
    with session_conf(spark, WRITE_CONF):
        writer.parquet(output)
    seconds = time.perf_counter() - start
    written_rows, files, size = _inspect(local) if local is not None else (rows, 0, 0)
    return Written(
        path=str(local.resolve()) if local is not None else output,
        rows=written_rows,
        columns=len(df.columns),
        files=files,
        size_bytes=size,
        seconds=seconds,
    )


def _local_path(output: str) -> Path | None:
    """Return the local path of ``output``, or None for a non-local URI."""
    if output.startswith("file:"):
        return Path(output.removeprefix("file:").removeprefix("//"))
    if "://" in output:
        return None
    return Path(output)


def _inspect(folder: Path) -> tuple[int, int, int]:
    """Return rows (from Parquet footers), number of part files and their total bytes."""
    import pyarrow.parquet as pq

    parts = sorted(folder.glob("*.parquet"))
    rows = sum(pq.read_metadata(p).num_rows for p in parts)
    return rows, len(parts), sum(p.stat().st_size for p in parts)


def local_session(app_name: str = "spark-explore-scripts") -> SparkSession:
    """Start (or reuse) a local Spark session whose Python workers run this interpreter.

    It is :func:`spark_explore.scan.session.get_session`'s local session with
    :data:`LOCAL_CONF` on top (a larger driver, and Spark's default number of shuffle
    partitions), and its workers always run this interpreter: the benchmark's whylogs
    environment needs its own.
    """
    os.environ["PYSPARK_PYTHON"] = sys.executable
    return get_session(app_name, conf=LOCAL_CONF)


def _positive(text: str) -> int:
    """Parse a positive integer, accepting underscores (``10_000_000``)."""
    value = int(text.replace("_", ""))
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        description="Write a synthetic, deterministic Parquet table with Spark."
    )
    parser.add_argument("--rows", type=_positive, default=10_000_000, help="default 10M")
    parser.add_argument("--output", required=True, help="output folder (local path or URI)")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty folder")
    parser.add_argument("--partitions", type=_positive, default=8, help="files, default 8")
    parser.add_argument("--seed", type=int, default=0, help="random seed, default 0")
    parser.add_argument("--shape", choices=SHAPES, default="mixed", help="default mixed")
    parser.add_argument("--columns", type=_positive, default=1000, help="wide shape only")
    parser.add_argument("--distinct", type=_positive, default=10_000_000, help="strings shape only")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = parse_args(argv)
    spark = local_session("generate-table")
    try:
        written = generate(
            spark,
            args.output,
            overwrite=args.overwrite,
            shape=args.shape,
            rows=args.rows,
            partitions=args.partitions,
            seed=args.seed,
            columns=args.columns,
            distinct=args.distinct,
        )
    except FileExistsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        spark.stop()
    print(f"{args.shape} table, seed {args.seed}: {written.describe()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
