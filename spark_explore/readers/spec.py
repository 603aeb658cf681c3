"""Telling catalog names from paths, locating paths, and naming formats."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from spark_explore.errors import InvalidArgumentError

FILE_FORMATS = ("delta", "parquet", "csv", "json", "orc")
TABLE_FORMAT = "table"

_EXTENSIONS = {
    "parquet": "parquet",
    "parq": "parquet",
    "pq": "parquet",
    "csv": "csv",
    "json": "json",
    "jsonl": "json",
    "ndjson": "json",
    "orc": "orc",
}
# Compression suffixes Spark's text-based readers decompress transparently.
_COMPRESSION = {"gz", "bz2", "deflate", "lz4", "snappy", "zst", "xz"}


@dataclass(frozen=True)
class Location:
    """Where a path source lives.

    Attributes
    ----------
    spec
        The path as the user passed it.
    spark_path
        The path handed to Spark (absolute when the path exists on this machine).
    local_path
        The path on this machine's file system, or None when it is not local (or not there).
    delta_uri
        The table URI handed to ``deltalake``.
    """

    spec: str
    spark_path: str
    local_path: Path | None
    delta_uri: str


def is_path(table: str) -> bool:
    """Whether ``table`` names a path rather than a catalog table.

    An existing local path, or anything containing ``/`` (which covers ``://`` URIs), is a
    path; anything else, such as ``db.tbl``, is a catalog name.
    """
    return "/" in table or os.path.exists(table)


def locate(table: str) -> Location:
    """Resolve a path spec into the forms Spark and ``deltalake`` need.

    Parameters
    ----------
    table
        A local path, a ``file:`` URI, or a remote URI (``s3://``, ``abfss://``, ``dbfs:/``...).

    Returns
    -------
    Location
        Local paths that exist are made absolute; anything else is passed on unchanged, and a
        missing path is reported by the reader that tries it.
    """
    parsed = urlparse(table)
    if parsed.scheme in ("", "file"):
        local = parsed.path if parsed.scheme == "file" else table
        if local and os.path.exists(local):
            absolute = os.path.abspath(local)
            spark_path = table if parsed.scheme == "file" else absolute
            return Location(table, spark_path, Path(absolute), absolute)
    return Location(table, table, None, table)


def normalize_format(fmt: str | None) -> str | None:
    """Validate a user-given format name and return it in lower case.

    Raises
    ------
    InvalidArgumentError
        With code ``UNKNOWN_FORMAT`` when ``fmt`` is not a supported format.
    """
    if fmt is None:
        return None
    name = str(fmt).strip().lower()
    if name not in FILE_FORMATS + (TABLE_FORMAT,):
        supported = ", ".join(FILE_FORMATS + (TABLE_FORMAT,))
        raise InvalidArgumentError(
            f"`format` {fmt!r} is not supported; use one of: {supported}.",
            code="UNKNOWN_FORMAT",
            got=fmt,
            expected=list(FILE_FORMATS + (TABLE_FORMAT,)),
        )
    return name


def format_from_name(name: str) -> str | None:
    """Return the format a file name's extension implies, or None.

    Compression suffixes are skipped, so ``part-0.csv.gz`` is CSV and
    ``part-0.snappy.parquet`` is Parquet.
    """
    parts = name.lower().split(".")[1:]
    while parts and parts[-1] in _COMPRESSION:
        parts.pop()
    return _EXTENSIONS.get(parts[-1]) if parts else None


def is_hidden(name: str) -> bool:
    """Whether Spark ignores a file or folder of this name when it lists a table."""
    return name.startswith(("_", "."))
