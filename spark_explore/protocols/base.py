"""What a protocol receives, and the shape of what it returns.

A protocol module exposes ``NAME`` and ``run(context) -> ProtocolReport``. It reads only the
merged states (and the sample they hold), never the table, so every protocol is finished
on the driver after the one scan.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from spark_explore.columns import Leaf
from spark_explore.config import DEFAULT_CONFIG_PATH, check_sections, read_config_file
from spark_explore.errors import ConfigError
from spark_explore.scan.plan import ScanPlan
from spark_explore.states.bundle import StateBundle


@dataclass(frozen=True)
class ProtocolConfig:
    """Parameters of the protocols (the scan's parameters are in ``ScanConfig``).

    Parameters
    ----------
    alpha
        Significance level for verdicts (after Holm's correction within a protocol).
    tukey_k
        Tukey fence multiples, inner and outer.
    z
        Cut-off of the z rule (exact moments) and the robust z rule (median and MAD).
    mahalanobis_alpha
        Tail probability of the chi-square cut-off for multivariate outliers.
    min_effect
        Effect sizes below these are reported as negligible whatever the p-value.
    """

    alpha: float = 0.01
    tukey_k: tuple[float, ...] = (1.5, 3.0)
    z: float = 3.0
    robust_z: float = 3.5
    mahalanobis_alpha: float = 0.001
    min_effect: dict[str, float] = field(
        default_factory=lambda: {
            "variance_ratio": 2.0,
            "skewness": 0.5,
            "excess_kurtosis": 1.0,
            "cramers_v": 0.1,
            "eta_squared": 0.01,
            "correlation": 0.1,
            "vif": 10.0,
            "condition_index": 30.0,
            "standardized_difference": 0.2,
        }
    )

    def __post_init__(self) -> None:
        for name in ("alpha", "mahalanobis_alpha"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0.0 < value < 1.0):
                raise ConfigError(f"`{name}` must lie in (0, 1); got {value!r}.", key=name)
        for name in ("z", "robust_z"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and value > 0):
                raise ConfigError(f"`{name}` must be positive; got {value!r}.", key=name)
        if not self.tukey_k or any(not k > 0 for k in self.tukey_k):
            raise ConfigError(f"`tukey_k` must be positive numbers; got {self.tukey_k!r}.")


def load_protocol_config(path: str | Path | None = None, **overrides: Any) -> ProtocolConfig:
    """Read the ``protocols:`` section of a YAML configuration, then apply overrides.

    Raises
    ------
    ConfigError
        The section is not a mapping or names an unknown key, or the file has a top-level
        key other than its sections.
    """
    values: dict[str, Any] = {}
    config_path = Path(path) if path is not None else DEFAULT_CONFIG_PATH
    if config_path.exists():
        loaded = read_config_file(config_path)
        section = loaded.get("protocols") or {} if isinstance(loaded, dict) else None
        if not isinstance(section, dict):
            raise ConfigError(f"`protocols:` in `{config_path}` must be a mapping.")
        check_sections(loaded, config_path)
        values.update(section)
    values.update({k: v for k, v in overrides.items() if v is not None})
    known = {f.name for f in dataclasses.fields(ProtocolConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown protocol setting(s) {unknown}; known: {sorted(known)}.")
    if "tukey_k" in values:
        values["tukey_k"] = tuple(float(k) for k in values["tukey_k"])
    if "min_effect" in values:
        values["min_effect"] = {**ProtocolConfig().min_effect, **values["min_effect"]}
    return ProtocolConfig(**values)


@dataclass(frozen=True)
class ProtocolContext:
    """The merged states, the plan that produced them, and the protocol parameters."""

    bundle: StateBundle
    plan: ScanPlan
    config: ProtocolConfig = field(default_factory=ProtocolConfig)

    def sample(self) -> pa.Table:
        """The uniform row sample, columns named by slot."""
        return self.bundle["reservoir"].sample()

    def sample_values(self, leaf: Leaf) -> np.ndarray:
        """A numeric leaf's finite values in the sample, as float64."""
        from spark_explore.states.batch import to_float64

        values = to_float64(self.bundle["reservoir"].column(leaf.slot))
        return values[np.isfinite(values)]

    def leaf_by_slot(self, slot: str) -> Leaf:
        for leaf in self.plan.leaves:
            if leaf.slot == slot:
                return leaf
        raise KeyError(slot)


@dataclass
class ProtocolReport:
    """A protocol's output: results per subject, plain-language findings, caveats.

    ``results`` maps a subject (a column, a pair ``"a ~ b"``, a group column) to named
    :class:`~spark_explore.stats.results.TestResult` dictionaries or other JSON values.
    ``findings`` are one-sentence statements for the console and the report, most
    important first; ``notes`` state limits that apply to the whole protocol.
    """

    name: str
    results: dict[str, Any] = field(default_factory=dict)
    findings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"results": self.results, "findings": self.findings, "notes": self.notes}
