"""The scan plan: which leaves the scan reads and which states it keeps for them.

:func:`plan_from_schema` walks a Spark schema into leaves (see :mod:`spark_explore.columns`);
:class:`ScanPlan` then decides the states, once, for every executor and for the driver.
The plan is plain data (picklable, JSON-serialisable) so the same object travels to the
Python workers and is saved beside the merged states.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from spark_explore.columns import (
    ARRAY,
    BINARY,
    BOOLEAN,
    MAP,
    NUMBER_ROLES,
    NUMERIC,
    STRING,
    TEMPORAL,
    UNSUPPORTED,
    Leaf,
)
from spark_explore.config import ScanConfig
from spark_explore.errors import ColumnNotFoundError, InvalidArgumentError
from spark_explore.states.booleans import BooleanState
from spark_explore.states.bundle import StateBundle
from spark_explore.states.cells import CellMomentsState
from spark_explore.states.comoments import CoMomentState
from spark_explore.states.contingency import ContingencyState
from spark_explore.states.distinct import FrequentItemsState, HllState
from spark_explore.states.grouped import GroupedMomentsState
from spark_explore.states.missing import MissingnessState
from spark_explore.states.moments import MomentsState
from spark_explore.states.quantiles import KllState
from spark_explore.states.reservoir import ReservoirState
from spark_explore.states.strings import StringState
from spark_explore.states.table import TableState

if TYPE_CHECKING:
    from pyspark.sql.types import DataType, StructType

KEY_SLOT = "_key"


@dataclass(frozen=True)
class ScanPlan:
    """Leaves to read and the states to keep, with the configuration they were built from."""

    leaves: tuple[Leaf, ...]
    config: ScanConfig = field(default_factory=ScanConfig)

    @property
    def number_leaves(self) -> tuple[Leaf, ...]:
        return tuple(leaf for leaf in self.leaves if leaf.role in NUMBER_ROLES)

    @property
    def comoment_leaves(self) -> tuple[Leaf, ...]:
        """Numeric leaves in the co-moment matrix: the first ``max_comoment_columns``."""
        numeric = [leaf for leaf in self.leaves if leaf.role == NUMERIC]
        return tuple(numeric[: self.config.max_comoment_columns])

    @property
    def comoment_left_out(self) -> tuple[Leaf, ...]:
        numeric = [leaf for leaf in self.leaves if leaf.role == NUMERIC]
        return tuple(numeric[self.config.max_comoment_columns :])

    @property
    def group_leaves(self) -> tuple[Leaf, ...]:
        """Categorical leaves kept as group columns: those named by ``group_columns``, or
        else the first ``max_group_columns`` string and boolean leaves."""
        if self.config.group_columns is not None:
            return tuple(self.leaf(name) for name in self.config.group_columns)
        candidates = [leaf for leaf in self.leaves if leaf.role in (STRING, BOOLEAN)]
        return tuple(candidates[: self.config.max_group_columns])

    @property
    def group_pairs(self) -> tuple[tuple[Leaf, Leaf], ...]:
        """Pairs of group leaves whose contingency table is kept."""
        groups = self.group_leaves
        return tuple((a, b) for i, a in enumerate(groups) for b in groups[i + 1 :])

    @property
    def sample_rows(self) -> int:
        """Rows of the uniform sample: ``reservoir_size``, fewer on tables so wide that the
        sample would exceed ``reservoir_cells``."""
        width = max(1, len(self.leaves))
        return min(self.config.reservoir_size, max(1, self.config.reservoir_cells // width))

    @property
    def hashed_leaves(self) -> tuple[Leaf, ...]:
        """Leaves whose distinct count is taken from a 64-bit hash computed by Spark:
        strings and decimals, which the sketch library would otherwise hash one by one."""
        return tuple(
            leaf
            for leaf in self.leaves
            if leaf.role == STRING or (leaf.role == NUMERIC and leaf.exact == "decimal")
        )

    @property
    def key_slots(self) -> tuple[str, ...]:
        """The row key's arguments in order: each leaf's slot, or its hash slot for a hashed
        leaf (whose bytes are then not hashed a second time with the row's running seed)."""
        hashed = {leaf.slot for leaf in self.hashed_leaves}
        return tuple(
            hash_slot_of(leaf) if leaf.slot in hashed else leaf.slot for leaf in self.leaves
        )

    def leaf(self, name: str) -> Leaf:
        for leaf in self.leaves:
            if leaf.name == name:
                return leaf
        raise KeyError(name)

    def empty_bundle(self) -> StateBundle:
        """Empty states for every leaf; what each partition starts from."""
        cfg = self.config
        # the co-moment slots first: their batch matrix is then the moments' leading columns
        first = self.comoment_leaves
        numbers = first + tuple(leaf for leaf in self.number_leaves if leaf not in first)
        states: dict[str, Any] = {
            "table": TableState(tuple(leaf.slot for leaf in self.leaves)),
            "moments": MomentsState(
                tuple(leaf.slot for leaf in numbers), tuple(leaf.exact for leaf in numbers)
            ),
            "comoments": CoMomentState(tuple(leaf.slot for leaf in self.comoment_leaves)),
            "boolean": BooleanState(
                tuple(leaf.slot for leaf in self.leaves if leaf.role == BOOLEAN)
            ),
            "reservoir": ReservoirState(
                self.sample_rows,
                KEY_SLOT,
                tuple(leaf.slot for leaf in self.leaves if leaf.role != UNSUPPORTED),
            ),
        }
        numeric_slots = tuple(leaf.slot for leaf in self.comoment_leaves)
        states["missingness"] = MissingnessState(
            tuple(leaf.slot for leaf in self.leaves if leaf.role != UNSUPPORTED),
            numeric_slots,
            sentinels={"*": _sentinel_values(cfg.sentinels)},
            max_patterns=cfg.max_patterns,
            max_numeric=min(30, max(1, len(numeric_slots))),
        )
        states[f"hll/{KEY_SLOT}"] = HllState(KEY_SLOT, cfg.hll_lg_k)
        # automatically chosen group columns stop being groups beyond max_groups levels
        # (ids, free text); columns the user named fold their extra levels into "other"
        give_up = cfg.group_columns is None
        for group in self.group_leaves:
            states[f"grouped/{group.slot}"] = GroupedMomentsState(
                numeric_slots, group.slot, cfg.max_groups, give_up
            )
        for a, b in self.group_pairs:
            states[f"contingency/{a.slot}/{b.slot}"] = ContingencyState(
                a.slot, b.slot, cfg.max_groups, give_up
            )
        if cfg.target is not None:  # the target's moments per cell, for two-way ANOVA
            target = self.leaf(cfg.target).slot
            for a, b in self.group_pairs:
                states[f"cells/{a.slot}/{b.slot}"] = CellMomentsState(
                    target, a.slot, b.slot, cfg.max_groups, give_up
                )
        hashed = {leaf.slot for leaf in self.hashed_leaves}
        for leaf in self.number_leaves:
            states[f"kll/{leaf.slot}"] = KllState(leaf.slot, cfg.kll_k)
        for leaf in self.leaves:
            if leaf.role in (NUMERIC, TEMPORAL, STRING):
                hash_slot = hash_slot_of(leaf) if leaf.slot in hashed else None
                states[f"hll/{leaf.slot}"] = HllState(leaf.slot, cfg.hll_lg_k, hash_slot)
            if leaf.role == STRING:
                states[f"string/{leaf.slot}"] = StringState(leaf.slot, cfg.exact_counts_cap)
                states[f"frequent/{leaf.slot}"] = FrequentItemsState(
                    leaf.slot, cfg.frequent_items_lg_max_size
                )
        return StateBundle(states)

    def to_dict(self) -> dict[str, Any]:
        config = asdict(self.config)
        config["quantiles"] = list(self.config.quantiles)
        for key in ("group_columns", "sentinels"):
            if config[key] is not None:
                config[key] = list(config[key])
        return {"leaves": [leaf.to_dict() for leaf in self.leaves], "config": config}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScanPlan:
        config = dict(data["config"])
        for key in ("quantiles", "group_columns", "sentinels"):
            if config.get(key) is not None:
                config[key] = tuple(config[key])
        return cls(tuple(Leaf.from_dict(d) for d in data["leaves"]), ScanConfig(**config))


def hash_slot_of(leaf: Leaf) -> str:
    """The batch column holding the 64-bit hashes of a hashed leaf's values."""
    return f"{leaf.slot}_hash"


def _sentinel_values(texts: tuple[str, ...]) -> list[Any]:
    """Sentinels as given (text, compared with strings) plus the numeric ones as numbers."""
    values: list[Any] = list(texts)
    for text in texts:
        try:
            number = float(text)
        except ValueError:
            continue
        if math.isfinite(number):
            values.append(number)
    return values


def plan_from_schema(schema: StructType, config: ScanConfig | None = None) -> ScanPlan:
    """Flatten a Spark schema into leaves with roles and slots.

    Struct fields become leaves named ``parent.field``; a display name that collides with
    an earlier one gets a ``#2``-style suffix so every leaf keeps its own entry.
    """
    leaves: list[Leaf] = []
    seen: set[str] = set()

    def visit(path: tuple[str, ...], data_type: DataType) -> None:
        from pyspark.sql.types import StructType

        if isinstance(data_type, StructType):
            for struct_field in data_type.fields:
                visit(path + (struct_field.name,), struct_field.dataType)
            return
        name = ".".join(path)
        suffix = 2
        while name in seen:
            name, suffix = f"{'.'.join(path)}#{suffix}", suffix + 1
        seen.add(name)
        leaves.append(_leaf(name, path, f"_c{len(leaves)}", data_type))

    for top in schema.fields:
        visit((top.name,), top.dataType)
    plan = ScanPlan(tuple(leaves), config or ScanConfig())
    _check_named_columns(plan)
    return plan


def _check_named_columns(plan: ScanPlan) -> None:
    """Group columns and the target must be profiled leaves of a fitting role."""
    names = {leaf.name: leaf for leaf in plan.leaves}
    wanted = [("group_columns", n) for n in plan.config.group_columns or ()]
    if plan.config.target is not None:
        wanted.append(("target", plan.config.target))
    for option, name in wanted:
        leaf = names.get(name)
        if leaf is None:
            raise ColumnNotFoundError(
                f"`{option}` names `{name}`, which is not among the profiled columns (a "
                "column of the table left out by `columns` is not profiled); profiled: "
                f"{sorted(names)[:20]}.",
                column=name,
            )
        if option == "target" and leaf.role != NUMERIC:
            raise InvalidArgumentError(
                f"the target `{name}` must be numeric; it is {leaf.spark_type}.",
                column=name,
                got=leaf.spark_type,
            )
        groupable = leaf.role in (STRING, BOOLEAN) or (leaf.role == NUMERIC and leaf.exact == "int")
        if option == "group_columns" and not groupable:
            raise InvalidArgumentError(
                f"cannot group by `{name}` of type {leaf.spark_type}; group columns must be "
                "string, boolean or integer columns.",
                column=name,
                got=leaf.spark_type,
            )


def _leaf(name: str, path: tuple[str, ...], slot: str, data_type: DataType) -> Leaf:
    from pyspark.sql import types as T

    spark_type = data_type.simpleString()
    if isinstance(data_type, (T.ByteType, T.ShortType, T.IntegerType, T.LongType)):
        return Leaf(name, path, slot, NUMERIC, spark_type, exact="int")
    if isinstance(data_type, T.DecimalType):
        return Leaf(name, path, slot, NUMERIC, spark_type, exact="decimal")
    if isinstance(data_type, (T.FloatType, T.DoubleType)):
        return Leaf(name, path, slot, NUMERIC, spark_type)
    if isinstance(data_type, (T.StringType, T.VarcharType, T.CharType)):
        return Leaf(name, path, slot, STRING, spark_type)
    if isinstance(data_type, T.BooleanType):
        return Leaf(name, path, slot, BOOLEAN, spark_type)
    if isinstance(data_type, T.DateType):
        return Leaf(name, path, slot, TEMPORAL, spark_type, exact="int", temporal_unit="date")
    if isinstance(data_type, T.TimestampNTZType):
        return Leaf(
            name, path, slot, TEMPORAL, spark_type, exact="int", temporal_unit="timestamp_ntz"
        )
    if isinstance(data_type, T.TimestampType):
        return Leaf(name, path, slot, TEMPORAL, spark_type, exact="int", temporal_unit="timestamp")
    if isinstance(data_type, T.BinaryType):
        return Leaf(name, path, slot, BINARY, spark_type, exact="int")
    if isinstance(data_type, T.ArrayType):
        return Leaf(name, path, slot, ARRAY, spark_type, exact="int")
    if isinstance(data_type, T.MapType):
        return Leaf(name, path, slot, MAP, spark_type, exact="int")
    return Leaf(
        name,
        path,
        slot,
        UNSUPPORTED,
        spark_type,
        reason=f"values of type {spark_type} are not profiled; only rows and nulls are counted",
    )
