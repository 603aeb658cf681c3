"""Refusing Delta tables whose reader features the deltalake fallback cannot honour.

The fallback reads the snapshot's Parquet files with Spark's plain Parquet reader, so any
feature that changes how those files must be read (physical column names, rows marked
deleted outside the file, widened types...) would give silently wrong data. Such tables are
refused with a message that points to the Delta connector.
"""

from __future__ import annotations

import pyarrow as pa
from deltalake import DeltaTable

from spark_explore.errors import UnsupportedSourceError

# Reader features that leave the data files readable as plain Parquet. Deletion vectors and
# column mapping are checked further below, because they matter only when in use.
_HARMLESS_FEATURES = frozenset(
    {"timestampNtz", "v2Checkpoint", "vacuumProtocolCheck", "variantType", "variantType-preview"}
)
_CONDITIONAL_FEATURES = frozenset({"columnMapping", "deletionVectors"})
_MAX_READER_VERSION = 3


def check_readable(table: DeltaTable, spec: str) -> None:
    """Raise unless the fallback can read every active file of ``table`` as plain Parquet.

    Parameters
    ----------
    table
        The snapshot, opened with ``deltalake``.
    spec
        The table path as the user gave it, for messages.

    Raises
    ------
    UnsupportedSourceError
        The table uses column mapping, has deletion vectors on active files, or needs a
        reader feature or protocol version the fallback does not know.
    """
    mode = table.metadata().configuration.get("delta.columnMapping.mode") or "none"
    if mode.lower() != "none":
        raise _refusal(spec, "columnMapping", f"column mapping (delta.columnMapping.mode={mode})")
    protocol = table.protocol()
    if protocol.min_reader_version > _MAX_READER_VERSION:
        raise _refusal(
            spec, "readerVersion", f"reader protocol version {protocol.min_reader_version}"
        )
    features = set(protocol.reader_features or ())
    unknown = sorted(features - _HARMLESS_FEATURES - _CONDITIONAL_FEATURES)
    if unknown:
        raise _refusal(spec, unknown[0], "the reader feature(s) " + ", ".join(unknown))
    if "deletionVectors" in features and _has_deletion_vectors(table):
        raise _refusal(spec, "deletionVectors", "deletion vectors on its active files")


def _has_deletion_vectors(table: DeltaTable) -> bool:
    """Whether any active file carries a deletion vector.

    ``deltalake`` exposes deletion vectors only through ``deletion_vectors()``, which lists
    just the files that have one (and loads their row masks). A failure to load them is
    taken as "yes", since the fallback could not honour them either way.
    """
    try:
        return pa.table(table.deletion_vectors()).num_rows > 0
    except Exception:  # deltalake raises several unrelated types for unreadable vectors
        return True


def _refusal(spec: str, feature: str, what: str) -> UnsupportedSourceError:
    return UnsupportedSourceError(
        f"The Delta table {spec} uses {what}, which the deltalake fallback reader cannot "
        "honour. Run on a cluster with the Delta Spark connector (delta-spark, with "
        "spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension) or on Databricks.",
        feature=feature,
        path=spec,
    )
