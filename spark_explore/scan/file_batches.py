"""Reading a table's Parquet files in the Python workers, as Spark's projection would see them.

The file reader gives each state exactly the batches that :func:`spark_explore.scan.job.project`
gives it through Spark: one column per leaf under its slot name, with the Arrow type Spark
ships for the leaf's Spark type, then the row key and the 64-bit hashes of string and
decimal leaves, computed with Spark's own ``xxhash64`` (:mod:`spark_explore.scan.spark_hash`),
so that the sample and the distinct counts are the same whichever reader ran. Only columns
whose Parquet type Spark reads as the same value are taken this way (struct fields, and
arrays and maps by their lengths, included); :func:`file_column_problem` says why another
column is not.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlparse

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from spark_explore.columns import ARRAY, BINARY, BOOLEAN, MAP, NUMERIC, STRING, TEMPORAL, Leaf
from spark_explore.scan.file_tasks import FileSplit
from spark_explore.scan.plan import KEY_SLOT, ScanPlan, hash_slot_of
from spark_explore.scan.spark_hash import hash_array, hash_columns

#: Roles the file reader projects; leaves of types the profiler does not read need Spark.
FILE_ROLES = (NUMERIC, STRING, BOOLEAN, TEMPORAL, BINARY, ARRAY, MAP)

#: Footer keys of files whose dates or timestamps Spark would rebase from the hybrid
#: Julian calendar (written by Spark 2.x or in LEGACY mode); pyarrow would not.
LEGACY_CALENDAR_KEYS = (b"org.apache.spark.legacyDateTime", b"org.apache.spark.legacyINT96")

_SIMPLE_TYPES = {
    "tinyint": pa.int8(),
    "smallint": pa.int16(),
    "int": pa.int32(),
    "bigint": pa.int64(),
    "float": pa.float32(),
    "double": pa.float64(),
    "string": pa.string(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "timestamp_ntz": pa.timestamp("us"),
}


def slot_type(leaf: Leaf, time_zone: str) -> pa.DataType | None:
    """The Arrow type of the leaf's slot in Spark's projection (None: not a file-reader
    type). Spark ships timestamps in microseconds labelled with the session time zone."""
    if leaf.role in (BINARY, ARRAY, MAP):
        return pa.int32()  # the projection holds the byte length, length or size
    if leaf.spark_type == "timestamp":
        return pa.timestamp("us", tz=time_zone)
    if leaf.spark_type.startswith("decimal("):
        precision, scale = leaf.spark_type[len("decimal(") : -1].split(",")
        return pa.decimal128(int(precision), int(scale))
    return _SIMPLE_TYPES.get(leaf.spark_type)


def file_column_problem(leaf: Leaf, field: pa.Field | None, time_zone: str) -> str | None:
    """Why the file column ``field`` (None: the file lacks it) cannot stand for ``leaf`` in
    the file reader, or None.

    The file's Arrow type must hold the same values Spark reads: the same integer width,
    float width and decimal, strings for strings, timestamps in milli- or microseconds with
    a time zone exactly where Spark reads a ``timestamp`` (nanoseconds and INT96 need
    Spark's conversions).
    """
    target = slot_type(leaf, time_zone) if leaf.role in FILE_ROLES else None
    if target is None:
        return f"column `{leaf.name}` of type {leaf.spark_type} is projected by Spark"
    if field is None:
        return None  # read as nulls, as Spark reads a column a file lacks
    kind = field.type
    if leaf.role == BINARY:
        ok = pa.types.is_binary(kind) or pa.types.is_large_binary(kind)
    elif leaf.role == ARRAY:
        ok = pa.types.is_list(kind) or pa.types.is_large_list(kind)
    elif leaf.role == MAP:
        ok = pa.types.is_map(kind)
    elif leaf.role == STRING:
        ok = pa.types.is_string(kind) or pa.types.is_large_string(kind)
    elif pa.types.is_timestamp(target):
        ok = (
            pa.types.is_timestamp(kind)
            and kind.unit in ("ms", "us")
            and (kind.tz is None) == (target.tz is None)
        )
    else:
        ok = kind == target
    if ok:
        return None
    return (
        f"column `{leaf.name}` is {kind} in the data files, which Spark reads as "
        f"{leaf.spark_type} by conversions of its own"
    )


def schema_problem(schema: pa.Schema, plan: ScanPlan, time_zone: str) -> str | None:
    """Why a data file of this Arrow schema cannot be read by the file reader as Spark
    reads it (a legacy calendar, or a leaf per :func:`file_column_problem`), or None."""
    if any(key in (schema.metadata or {}) for key in LEGACY_CALENDAR_KEYS):
        return "the file asks for Spark's legacy calendar rebase of dates and timestamps"
    for leaf in plan.leaves:
        place = leaf_place(schema, leaf.path)
        problem = file_column_problem(leaf, place and place.field, time_zone)
        if problem is not None:
            return problem
    return None


#: Bytes a Parquet column chunk is read in: the reader then holds about this much of each
#: column at a time, instead of whole column chunks (a row group of 128 MB, say).
READ_BUFFER_BYTES = 2**20


def streaming_parquet(handle: pa.NativeFile) -> pq.ParquetFile:
    """A Parquet file whose column chunks are streamed in buffers of
    :data:`READ_BUFFER_BYTES` as batches are decoded, not read whole first: the worker's
    memory is then bounded by the batch size, not by the table's row-group size."""
    return pq.ParquetFile(handle, buffer_size=READ_BUFFER_BYTES, pre_buffer=False)


def open_file(uri: str) -> pa.NativeFile:
    """Open a data file by the URI Spark lists it under (``file:``, ``s3://``, ...)."""
    filesystem, path = file_system(uri)
    return filesystem.open_input_file(path)


def file_system(uri: str) -> tuple[pafs.FileSystem, str]:
    """The pyarrow file system of a data file and the file's path in it.

    Spark lists local files as ``file:`` URIs whose spaces and ``%`` are percent-encoded
    but whose other characters (``é``, ``ñ``) are not, which pyarrow's URI parser rejects;
    so local paths are decoded here, and other URIs have such characters encoded.
    """
    parts = urlparse(uri)
    if parts.scheme in ("", "file"):
        return pafs.LocalFileSystem(), unquote(parts.path) if parts.scheme else uri
    return pafs.FileSystem.from_uri(quote(uri, safe=":/%?=&@+,;~!$'()*[]#"))


@dataclass(frozen=True)
class FileProjection:
    """Reads byte ranges of Parquet files into the batches of Spark's projection.

    Parameters
    ----------
    plan
        The scan plan; every leaf must pass :func:`file_column_problem`.
    batch_rows
        Rows per batch, as the Spark scan's ``maxRecordsPerBatch``.
    time_zone
        The session time zone, which labels timestamp slots.
    """

    plan: ScanPlan
    batch_rows: int
    time_zone: str

    def read(self, splits: Sequence[FileSplit]) -> Iterator[pa.RecordBatch]:
        """The projected batches of the row groups whose midpoints lie in ``splits``."""
        for split in splits:
            with open_file(split.path) as handle:
                parquet = streaming_parquet(handle)
                yield from self._read_split(parquet, split)

    def _read_split(self, parquet: pq.ParquetFile, split: FileSplit) -> Iterator[pa.RecordBatch]:
        groups = split_row_groups(parquet.metadata, split)
        if not groups:
            return
        schema = parquet.schema_arrow
        problem = schema_problem(schema, self.plan, self.time_zone)
        if problem is not None:  # the file changed since the driver checked it
            raise ValueError(f"{split.path}: {problem}; profile it with --reader spark.")
        places = [leaf_place(schema, leaf.path) for leaf in self.plan.leaves]
        names = sorted({place.column for place in places if place is not None})
        for batch in parquet.iter_batches(
            batch_size=self.batch_rows, row_groups=groups, columns=names, use_threads=False
        ):
            if batch.num_rows:
                yield self.project(batch, places)

    def project(self, batch: pa.RecordBatch, places: Sequence[LeafPlace | None]) -> pa.RecordBatch:
        """One file batch as Spark's projection: the slots, the row key, the hashes."""
        arrays = []
        for leaf, place in zip(self.plan.leaves, places):
            target = slot_type(leaf, self.time_zone)
            if place is None:  # a column some files lack reads as null, as in Spark
                arrays.append(pa.nulls(batch.num_rows, target))
                continue
            values = batch.column(place.column)
            if place.indices:  # null where any enclosing struct is null, as getField
                values = pc.struct_field(values, list(place.indices))
            arrays.append(_slot_values(values, leaf.role, target))
        columns = {leaf.slot: array for leaf, array in zip(self.plan.leaves, arrays)}
        for leaf in self.plan.hashed_leaves:
            columns[hash_slot_of(leaf)] = pa.array(hash_array(columns[leaf.slot]), pa.int64())
        keyed = [columns[slot] for slot in self.plan.key_slots]
        key = hash_columns([*keyed, self.plan.config.seed])  # the seed as F.lit types it
        hashes = [columns[hash_slot_of(leaf)] for leaf in self.plan.hashed_leaves]
        names = [
            *(leaf.slot for leaf in self.plan.leaves),
            KEY_SLOT,
            *(hash_slot_of(leaf) for leaf in self.plan.hashed_leaves),
        ]
        return pa.RecordBatch.from_arrays([*arrays, pa.array(key, pa.int64()), *hashes], names)


def _slot_values(values: pa.Array, role: str, target: pa.DataType) -> pa.Array:
    """A leaf's values as its slot holds them: byte lengths of binaries, lengths of arrays,
    sizes of maps (null where the value is null), else the values as ``target``."""
    if role == BINARY:
        values = pc.binary_length(values)
    elif role == MAP:  # list_value_length takes lists only: a map is a list of entries
        entries = pa.struct([values.type.key_field, values.type.item_field])
        values = pc.list_value_length(values.cast(pa.list_(entries)))
    elif role == ARRAY:
        values = pc.list_value_length(values)
    return values if values.type == target else values.cast(target)


@dataclass(frozen=True)
class LeafPlace:
    """Where a leaf lives in a file: its top-level ``column``, the child ``indices`` down
    the structs, and the leaf's own ``field``."""

    column: str
    indices: tuple[int, ...]
    field: pa.Field


def leaf_place(schema: pa.Schema, path: Sequence[str]) -> LeafPlace | None:
    """Find a leaf's field in a file schema by its path of names (None: the file lacks it,
    or a step of the path is not a struct there)."""
    top = find_field(schema, path[0])
    if top is None:
        return None
    field, indices = top, ()
    for name in path[1:]:
        if not pa.types.is_struct(field.type):
            return None
        child = find_field(pa.schema(list(field.type)), name)
        if child is None:
            return None
        indices += (field.type.get_field_index(child.name),)
        field = child
    return LeafPlace(top.name, indices, field)


def find_field(schema: pa.Schema, name: str) -> pa.Field | None:
    """The file's field for a column: by exact name, else by the one name that matches
    ignoring case (Spark's default resolution)."""
    index = schema.get_field_index(name)
    if index >= 0:
        return schema.field(index)
    matches = [field for field in schema if field.name.lower() == name.lower()]
    return matches[0] if len(matches) == 1 else None


def split_row_groups(metadata: pq.FileMetaData, split: FileSplit) -> list[int]:
    """The row groups of a file that belong to ``split``: those whose midpoint it holds."""
    return [i for i in range(metadata.num_row_groups) if split.holds(_midpoint(metadata, i))]


def _midpoint(metadata: pq.FileMetaData, index: int) -> float:
    """The byte midpoint of a row group: where its first column chunk starts, plus half of
    its compressed size."""
    group = metadata.row_group(index)
    first = group.column(0)
    start = first.data_page_offset
    if first.has_dictionary_page and first.dictionary_page_offset:
        start = min(start, first.dictionary_page_offset)
    size = sum(group.column(j).total_compressed_size for j in range(group.num_columns))
    return start + size / 2
