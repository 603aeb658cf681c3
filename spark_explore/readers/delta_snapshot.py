"""Resolving a Delta snapshot with deltalake (delta-rs): version, schema and active files."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from deltalake import DeltaTable
from deltalake.exceptions import DeltaError, DeltaProtocolError, TableNotFoundError

from spark_explore.errors import (
    InvalidArgumentError,
    SourceNotFoundError,
    SourceReadError,
    UnsupportedSourceError,
)
from spark_explore.readers.delta_features import check_readable
from spark_explore.readers.spark_errors import summary
from spark_explore.readers.spec import Location

# How deltalake words a protocol it cannot read (its kernel raises a plain DeltaError).
_UNSUPPORTED = re.compile(r"feature .* not supported|unsupported:|catalog-managed", re.IGNORECASE)


@dataclass(frozen=True)
class DataFile:
    """One active data file of a snapshot.

    Attributes
    ----------
    path
        The path from the log's add action: a URL-encoded path relative to the table root,
        or an absolute URI.
    partition_values
        The file's typed partition values, in the order of the snapshot's partition columns.
    num_records
        Rows in the file, from the add action's statistics, or None.
    """

    path: str
    partition_values: tuple[Any, ...]
    num_records: int | None


@dataclass(frozen=True)
class DeltaSnapshot:
    """What the fallback needs to read one version of a Delta table.

    Attributes
    ----------
    version
        The snapshot version.
    schema
        The table schema as Delta stores it (the JSON form of a Spark ``StructType``).
    partition_columns
        Partition column names, in the log's order.
    files
        The active data files.
    """

    version: int
    schema: dict[str, Any]
    partition_columns: tuple[str, ...]
    files: tuple[DataFile, ...]

    @property
    def row_estimate(self) -> int | None:
        """Total rows from the files' statistics; None unless every file has them."""
        counts = [f.num_records for f in self.files]
        return None if None in counts else sum(c for c in counts if c is not None)


def load_snapshot(location: Location, version: int | None = None) -> DeltaSnapshot:
    """Resolve a Delta snapshot and check the fallback can read it.

    Parameters
    ----------
    location
        The table's location; ``location.delta_uri`` is opened. Cloud credentials come from
        the environment variables ``deltalake`` reads (``AWS_*``, ``AZURE_*``...).
    version
        The version to read; the latest when None.

    Returns
    -------
    DeltaSnapshot

    Raises
    ------
    SourceNotFoundError
        No Delta table at the path.
    InvalidArgumentError
        ``version`` does not exist (code ``DELTA_VERSION_NOT_FOUND``).
    UnsupportedSourceError
        The table needs a feature the fallback cannot honour.
    SourceReadError
        The log cannot be read.
    """
    table = _open(location, version)
    check_readable(table, location.spec)
    partition_columns = tuple(table.metadata().partition_columns)
    adds = pa.table(table.get_add_actions(flatten=False))
    paths = adds.column("path").to_pylist()
    counts = adds.column("num_records").to_pylist() if "num_records" in adds.column_names else []
    parts = adds.column("partition").to_pylist() if partition_columns else []
    files = tuple(
        DataFile(
            path=path,
            partition_values=tuple(parts[i][c] for c in partition_columns) if parts else (),
            num_records=counts[i] if counts else None,
        )
        for i, path in enumerate(paths)
    )
    return DeltaSnapshot(
        version=table.version(),
        schema=json.loads(table.schema().to_json()),
        partition_columns=partition_columns,
        files=files,
    )


def _open(location: Location, version: int | None) -> DeltaTable:
    """Open the table with deltalake, translating its errors."""
    try:
        return DeltaTable(location.delta_uri, version=version)
    except (DeltaError, OSError, ValueError) as exc:
        raise _open_error(exc, location, version) from exc


def _open_error(exc: Exception, location: Location, version: int | None) -> Exception:
    spec = location.spec
    if isinstance(exc, TableNotFoundError):
        return SourceNotFoundError(f"No Delta table at {spec}: {summary(exc)}", path=spec)
    if isinstance(exc, DeltaProtocolError) or (
        isinstance(exc, DeltaError) and _UNSUPPORTED.search(str(exc))
    ):
        return UnsupportedSourceError(
            f"The Delta table {spec} needs a feature deltalake cannot read: {summary(exc)}. "
            "Run on a cluster with the Delta Spark connector.",
            path=spec,
        )
    latest = _latest_version(location) if version is not None else None
    if latest is not None:
        return InvalidArgumentError(
            f"Version {version} of the Delta table {spec} cannot be read (versions run from "
            f"0 to {latest}, and old ones may have been vacuumed): {summary(exc)}",
            code="DELTA_VERSION_NOT_FOUND",
            path=spec,
            version=version,
        )
    return SourceReadError(f"Cannot read the Delta log of {spec}: {summary(exc)}", path=spec)


def _latest_version(location: Location) -> int | None:
    """The latest version, or None when the table itself does not open (to tell a bad
    version from a bad table)."""
    try:
        return DeltaTable(location.delta_uri).version()
    except Exception:  # any failure means the table itself is the problem
        return None
