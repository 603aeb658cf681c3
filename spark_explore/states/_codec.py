"""The versioned byte envelope every state is stored in.

Layout: the 4 magic bytes ``SXST``, a little-endian uint16 envelope version, then an Arrow
IPC stream holding one record batch of one row. The batch's schema metadata names the state
kind and the state's own format version; each field of the state is one column:

* a numpy array becomes a ``list<dtype>`` cell, its shape kept in the field metadata;
* ``bytes`` (sketches in their own serialization, nested Arrow tables) become ``binary``;
* ``str``, ``int``, ``float``, ``bool`` and ``None`` become the matching scalar types;
* a list of ``str`` or ``bytes`` becomes a ``list<string>`` / ``list<binary>`` cell.

Using Arrow IPC keeps the format readable by any Arrow implementation.
"""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np
import pyarrow as pa

from spark_explore.errors import StateFormatError

MAGIC = b"SXST"
ENVELOPE_VERSION = 1
_HEADER = struct.Struct("<4sH")

Fields = dict[str, Any]


def encode(kind: str, version: int, fields: Fields) -> bytes:
    """Serialize a state's fields into the envelope."""
    columns: list[pa.Array] = []
    schema_fields: list[pa.Field] = []
    for name, value in fields.items():
        array, metadata = _to_arrow(name, value)
        columns.append(array)
        schema_fields.append(pa.field(name, array.type, metadata=metadata))
    schema = pa.schema(schema_fields, metadata={"kind": kind, "version": str(version)})
    batch = pa.RecordBatch.from_arrays(columns, schema=schema)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, schema) as writer:
        writer.write_batch(batch)
    return _HEADER.pack(MAGIC, ENVELOPE_VERSION) + sink.getvalue().to_pybytes()


def decode(data: bytes) -> tuple[str, int, Fields]:
    """Read the kind, the state version and the fields from envelope bytes.

    Raises
    ------
    StateFormatError
        The bytes do not start with the magic, or come from a newer envelope version, or
        the Arrow payload is damaged.
    """
    if len(data) < _HEADER.size:
        raise StateFormatError(f"state bytes too short ({len(data)} bytes).")
    magic, envelope_version = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise StateFormatError(
            f"not a spark_explore state: expected magic {MAGIC!r}, got {magic!r}.",
            expected=MAGIC,
            got=magic,
        )
    if envelope_version > ENVELOPE_VERSION:
        raise StateFormatError(
            f"state envelope version {envelope_version} is newer than this release reads "
            f"({ENVELOPE_VERSION}); upgrade spark_explore.",
            expected=ENVELOPE_VERSION,
            got=envelope_version,
        )
    try:
        reader = pa.ipc.open_stream(pa.py_buffer(data)[_HEADER.size :])
        batch = reader.read_next_batch()
    except (pa.ArrowInvalid, OSError, StopIteration) as exc:
        raise StateFormatError(f"damaged state payload: {exc}") from None
    metadata = batch.schema.metadata or {}
    kind = metadata.get(b"kind", b"").decode()
    version = int(metadata.get(b"version", b"0"))
    fields = {f.name: _from_arrow(f, batch.column(i)) for i, f in enumerate(batch.schema)}
    return kind, version, fields


def _to_arrow(name: str, value: Any) -> tuple[pa.Array, dict[str, str] | None]:
    if isinstance(value, np.ndarray):
        flat = np.ascontiguousarray(value).reshape(-1)
        offsets = pa.array([0, flat.size], type=pa.int32())
        array = pa.ListArray.from_arrays(offsets, pa.array(flat))
        return array, {"shape": json.dumps(list(value.shape))}
    if isinstance(value, (bytes, bytearray)):
        return pa.array([bytes(value)], type=pa.binary()), None
    if isinstance(value, (list, tuple)):
        if all(isinstance(v, str) for v in value):
            return pa.array([list(value)], type=pa.list_(pa.string())), None
        if all(isinstance(v, (bytes, bytearray)) for v in value):
            return pa.array([[bytes(v) for v in value]], type=pa.list_(pa.binary())), None
    if value is None or isinstance(value, (str, bool, int, float)):
        return pa.array([value]), None
    raise TypeError(f"state field `{name}` has unsupported type {type(value).__name__}")


def _from_arrow(field: pa.Field, column: pa.Array) -> Any:
    if field.metadata and b"shape" in field.metadata:
        shape = tuple(json.loads(field.metadata[b"shape"]))
        values = column.values.to_numpy(zero_copy_only=False)
        return values.reshape(shape).copy()
    return column[0].as_py()
