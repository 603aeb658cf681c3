"""Leaf columns: what the scan profiles, and in which role.

A table's schema is flattened into leaves: top-level columns and the fields of structs
(named ``parent.field``). Arrays are profiled by their length, maps by their size and binary
values by their byte length; types the profiler cannot read are still counted (rows and
nulls) and reported as not profiled, with the reason. Each leaf is projected into the scan
under a positional *slot* name, so odd column names (spaces, dots, backticks) never reach an
expression string.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

NUMERIC = "numeric"
STRING = "string"
BOOLEAN = "boolean"
TEMPORAL = "temporal"
BINARY = "binary"
ARRAY = "array"
MAP = "map"
UNSUPPORTED = "unsupported"

#: Roles whose values are numbers in the scan (lengths and sizes included).
NUMBER_ROLES = (NUMERIC, TEMPORAL, BINARY, ARRAY, MAP)


@dataclass(frozen=True)
class Leaf:
    """One profiled column.

    Parameters
    ----------
    name
        Display name: the column name, or ``parent.field`` for struct fields.
    path
        The field names from the top-level column down to this leaf.
    slot
        Name of the projected column in the scan.
    role
        One of the role constants of this module.
    spark_type
        The Spark type as a simple string (``decimal(38,0)``, ``array<int>`` ...).
    exact
        How exact extremes are kept (``""``, ``"int"`` or ``"decimal"``), see
        :data:`spark_explore.states.moments.EXACT_KINDS`.
    temporal_unit
        ``"date"`` (days), ``"timestamp"`` (UTC microseconds) or ``"timestamp_ntz"`` (local
        microseconds) for temporal leaves.
    reason
        Why an unsupported leaf is not profiled.
    """

    name: str
    path: tuple[str, ...]
    slot: str
    role: str
    spark_type: str
    exact: str = ""
    temporal_unit: str | None = None
    reason: str | None = None

    @property
    def measure(self) -> str:
        """What the numbers of this leaf are: values, lengths, sizes or nothing."""
        return {BINARY: "byte length", ARRAY: "length", MAP: "size"}.get(
            self.role, "nulls only" if self.role == UNSUPPORTED else "value"
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["path"] = list(self.path)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Leaf:
        return cls(**{**data, "path": tuple(data["path"])})
