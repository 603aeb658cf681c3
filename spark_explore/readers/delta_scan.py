"""Reading a Delta snapshot's files with Spark in one Parquet scan.

Delta data files hold only the non-partition columns; partition values live in the log.
The files are read in a single ``spark.read.parquet(*files)`` scan with the schema from the
log, and each partition column is computed from the hidden ``_metadata`` column: the file's
name (or, if names repeat, the last few segments of its path) is looked up in a literal map
to the index of its partition values. Reading per partition and unioning would multiply the
scans in the physical plan.
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Sequence
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

from pyspark.sql import functions as F
from pyspark.sql.types import BinaryType, StructType

from spark_explore.errors import SourceReadError, UnsupportedSourceError
from spark_explore.readers.delta_snapshot import DeltaSnapshot
from spark_explore.readers.partition_values import sql_array, sql_string, to_text
from spark_explore.readers.select import quote
from spark_explore.readers.spark_errors import SPARK_ERRORS, analysed, summary

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

# Spark looks a key up in a literal map by scanning its entries, so the keys are spread
# over buckets of about this many entries, chosen by the CRC-32 of the key.
BUCKET_SIZE = 16
_GLOB_CHARS = re.compile(r"([\\{}\[\]*?])")


def snapshot_frame(spark: SparkSession, root: str, snapshot: DeltaSnapshot) -> DataFrame:
    """Build a DataFrame of a snapshot's rows, with one file scan in its plan.

    Parameters
    ----------
    spark
        The session.
    root
        The table root as Spark should see it (local absolute path or URI).
    snapshot
        The resolved snapshot.

    Returns
    -------
    DataFrame
        Columns in the order of the Delta schema.

    Raises
    ------
    SourceReadError
        Spark cannot set up the scan.
    """
    schema = StructType.fromJson(snapshot.schema)
    if not snapshot.files:
        return spark.createDataFrame([], schema)
    partitioned = {name.lower() for name in snapshot.partition_columns}
    data_schema = StructType([f for f in schema.fields if f.name.lower() not in partitioned])
    paths = [file_path(root, f.path) for f in snapshot.files]
    try:
        scan = spark.read.schema(data_schema).parquet(*[_escape_glob(p) for p in paths])
        df = analysed(_with_partitions(scan, schema, snapshot, paths) if partitioned else scan)
    except SPARK_ERRORS as exc:
        raise SourceReadError(
            f"Cannot read the data files of the Delta table at {root}: {summary(exc)}",
            path=root,
        ) from exc
    return df


def file_path(root: str, path: str) -> str:
    """Turn an add action's path into the path of the file, as Spark takes it.

    Add-action paths are URIs: relative to the table root unless absolute, and URL-encoded.
    Spark takes (and re-encodes) plain paths.
    """
    if urlparse(path).scheme or path.startswith("/"):
        return unquote(path)
    return root.rstrip("/") + "/" + unquote(path)


def _escape_glob(path: str) -> str:
    # Spark expands glob patterns in the paths it is given; partition values can hold them.
    return _GLOB_CHARS.sub(r"\\\1", path)


def _with_partitions(
    scan: DataFrame, schema: StructType, snapshot: DeltaSnapshot, paths: Sequence[str]
) -> DataFrame:
    """Add the partition columns to the scan, and order all columns as the schema does."""
    depth = _key_depth(paths)
    keys = ["/".join(p.split("/")[-depth:]) for p in paths]
    combos: dict[tuple[str | None, ...], int] = {}
    index = [
        combos.setdefault(tuple(map(to_text, f.partition_values)), len(combos))
        for f in snapshot.files
    ]
    key = _file_key(scan, depth)
    found = _bucketed_map(keys, index)[_bucket_of(key, _buckets(keys))][key]
    missing = F.raise_error(F.concat(F.lit("No Delta partition values for data file "), key))
    # Computed once in its own projection, then shared by every partition column.
    index_name = _free_name(schema.fieldNames())
    staged = scan.select("*", F.coalesce(found, missing).alias(index_name))
    combo = staged[quote(index_name)]
    positions = {name.lower(): i for i, name in enumerate(snapshot.partition_columns)}
    columns = []
    for field in schema.fields:
        position = positions.get(field.name.lower())
        if position is None:
            columns.append(staged[quote(field.name)])
            continue
        texts = F.expr(sql_array([c[position] for c in combos]))[combo]
        value = F.unhex(texts) if isinstance(field.dataType, BinaryType) else texts
        columns.append(value.cast(field.dataType).alias(field.name))
    return staged.select(*columns)


def _free_name(taken: Sequence[str]) -> str:
    """A column name that differs from every name in ``taken``, ignoring case."""
    lowered = {t.lower() for t in taken}
    name = "_partition_index"
    while name.lower() in lowered:
        name = "_" + name
    return name


def _key_depth(paths: Sequence[str]) -> int:
    """The fewest trailing path segments that tell the files apart (1: the file name)."""
    deepest = max(p.count("/") + 1 for p in paths)
    for depth in range(1, deepest + 1):
        if len({tuple(p.split("/")[-depth:]) for p in paths}) == len(paths):
            return depth
    raise UnsupportedSourceError(
        "The Delta log lists the same data file twice; the fallback cannot read it.",
        feature="duplicateFiles",
    )


def _file_key(scan: DataFrame, depth: int) -> Column:
    """Each row's file key: its file name, or the last ``depth`` segments of its path."""
    metadata = scan.metadataColumn("_metadata")
    if depth == 1:
        return metadata.getField("file_name")  # decoded by Spark, like the keys
    # file_path is URL-encoded; '+' is protected first because url_decode turns it into ' '.
    decoded = F.url_decode(F.replace(metadata.getField("file_path"), F.lit("+"), F.lit("%2B")))
    return F.array_join(F.slice(F.split(decoded, "/"), -depth, depth), "/")


def _buckets(keys: Sequence[str]) -> int:
    return max(1, math.ceil(len(keys) / BUCKET_SIZE))


def _bucket_of(key: Column, buckets: int) -> Column:
    """The bucket (0-based) of each row's key; matches ``zlib.crc32(key) % buckets``."""
    return F.pmod(F.crc32(key.cast("binary")), F.lit(buckets)).cast("int")


def _bucketed_map(keys: Sequence[str], index: Sequence[int]) -> Column:
    """An array literal of maps key -> combination index; a key sits in bucket crc32 % n."""
    n = _buckets(keys)
    buckets: list[list[str]] = [[] for _ in range(n)]
    for key, i in zip(keys, index, strict=True):
        buckets[zlib.crc32(key.encode("utf-8")) % n].append(f"{sql_string(key)}, {i}")
    maps = [
        f"map({', '.join(entries)})" if entries else "cast(map() AS map<string, int>)"
        for entries in buckets
    ]
    return F.expr(f"array({', '.join(maps)})")
