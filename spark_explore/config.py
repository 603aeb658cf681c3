"""Configuration values, passed explicitly from the command line edge to the scan.

The YAML file in ``conf/`` is parsed only by :func:`load_config`; everything below it takes a
frozen :class:`ScanConfig`. States record the parameters they were built with, so merging
states built with different parameters is refused instead of silently mixed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spark_explore.errors import ConfigError

#: Values of :attr:`ScanConfig.reader`.
READERS = ("auto", "spark", "arrow")

DEFAULT_CONFIG_PATH = Path(__file__).resolve().parent.parent / "conf" / "default.yaml"

#: The top-level sections of a configuration file: ``scan`` (:class:`ScanConfig`) and
#: ``protocols`` (:class:`~spark_explore.protocols.base.ProtocolConfig`).
SECTIONS = ("scan", "protocols")


@dataclass(frozen=True)
class ScanConfig:
    """Parameters of the single scan.

    Parameters
    ----------
    kll_k
        Accuracy parameter of the KLL quantile sketches (200 gives about 1.3 % rank error).
    hll_lg_k
        log2 of the number of HLL buckets for distinct counts (12 gives about 1.6 % error).
    frequent_items_lg_max_size
        log2 of the frequent-items sketch map size.
    exact_counts_cap
        Exact value counts of a string column are kept while it has at most this many
        distinct values; above that only the sketches remain.
    reservoir_size
        Rows kept in the uniform sample.
    reservoir_cells
        Cap on the sample's cells (rows x columns): on a table wider than
        ``reservoir_cells / reservoir_size`` columns the sample keeps fewer rows, so that
        each partition's state stays bounded (2,000 rows at 1,000 columns by default).
    max_comoment_columns
        At most this many numeric columns enter the co-moment (correlation) matrix; the
        report names the columns left out.
    quantiles
        Probabilities reported from the quantile sketch.
    batch_cells
        Target number of cells (rows x columns) per Arrow batch sent to a Python worker,
        which bounds worker memory whatever the table's width.
    seed
        Seed of the row sampler.
    top_values
        Number of most frequent values reported per string column.
    group_columns
        Columns to group by for variance homogeneity, contingency tables and bias; by
        default the first ``max_group_columns`` string and boolean columns.
    max_group_columns
        At most this many group columns are kept when they are chosen automatically.
    max_groups
        Levels kept exactly per group column; the rest are folded into "other".
    max_patterns
        Missingness patterns kept exactly; the rest are counted together.
    sentinels
        Values that stand for "missing" (compared with numbers as numbers, with strings as
        text).
    target
        A numeric column whose interactions with pairs of group columns are tested.
    reader
        How the scan reads the table: ``spark`` (Spark's reader, any source), ``arrow`` (the
        Python workers read the Parquet files with pyarrow; an error where that is not
        possible) or ``auto`` (``arrow`` where possible on local files, else ``spark``).
        See :mod:`spark_explore.scan.file_reader`. The states are the same either way.
    """

    kll_k: int = 200
    hll_lg_k: int = 12
    frequent_items_lg_max_size: int = 10
    exact_counts_cap: int = 1000
    reservoir_size: int = 10_000
    reservoir_cells: int = 2_000_000
    max_comoment_columns: int = 100
    quantiles: tuple[float, ...] = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
    batch_cells: int = 2_000_000
    seed: int = 42
    top_values: int = 10
    group_columns: tuple[str, ...] | None = None
    max_group_columns: int = 10
    max_groups: int = 50
    max_patterns: int = 64
    sentinels: tuple[str, ...] = ("-999", "-9999", "NA", "N/A", "null", "NULL", "?")
    target: str | None = None
    reader: str = "auto"

    def __post_init__(self) -> None:
        if self.reader not in READERS:
            raise ConfigError(
                f"`reader` must be one of {list(READERS)}; got {self.reader!r}.",
                key="reader",
                got=self.reader,
            )
        _check_range("kll_k", self.kll_k, 8, 65535)
        _check_range("hll_lg_k", self.hll_lg_k, 4, 21)
        _check_range("frequent_items_lg_max_size", self.frequent_items_lg_max_size, 3, 26)
        _check_range("exact_counts_cap", self.exact_counts_cap, 0, 10_000_000)
        _check_range("reservoir_size", self.reservoir_size, 0, 10_000_000)
        _check_range("reservoir_cells", self.reservoir_cells, 1000, 10_000_000_000)
        _check_range("max_comoment_columns", self.max_comoment_columns, 0, 5000)
        _check_range("batch_cells", self.batch_cells, 1000, 1_000_000_000)
        _check_range("top_values", self.top_values, 0, 10_000)
        _check_range("max_group_columns", self.max_group_columns, 0, 100)
        _check_range("max_groups", self.max_groups, 2, 10_000)
        _check_range("max_patterns", self.max_patterns, 1, 100_000)
        for q in self.quantiles:
            if not 0.0 <= q <= 1.0:
                raise ConfigError(
                    f"`quantiles` must lie in [0, 1]; got {q}.", key="quantiles", got=q
                )


@dataclass(frozen=True)
class ProfileOptions:
    """What to profile and where to write it (the command line's options)."""

    table: str
    output: str
    format: str | None = None
    columns: tuple[str, ...] | None = None
    where: str | None = None
    delta_version: int | None = None
    overwrite: bool = False
    scan: ScanConfig = field(default_factory=ScanConfig)


def _check_range(name: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(
            f"`{name}` must be a whole number from {low} to {high}; got {value!r}.",
            key=name,
            got=value,
        )


def load_config(path: str | Path | None = None, **overrides: Any) -> ScanConfig:
    """Read a YAML configuration file and apply overrides.

    Parameters
    ----------
    path
        A YAML file with a ``scan:`` mapping; the bundled ``conf/default.yaml`` when None.
    **overrides
        ScanConfig fields that take precedence over the file (None values are ignored).

    Raises
    ------
    ConfigError
        The file is missing or malformed, or names an unknown key (in its ``scan:``
        section or at its top level).
    """
    values: dict[str, Any] = {}
    config_path = Path(path) if path is not None else DEFAULT_CONFIG_PATH
    if path is not None or config_path.exists():
        loaded = read_config_file(config_path)
        if not isinstance(loaded, dict) or not isinstance(loaded.get("scan", {}), dict):
            raise ConfigError(f"`{config_path}` must hold a mapping with a `scan:` section.")
        check_sections(loaded, config_path)
        values.update(loaded.get("scan") or {})
    values.update({k: v for k, v in overrides.items() if v is not None})
    known = {f.name for f in dataclasses.fields(ScanConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(
            f"unknown configuration key(s) {unknown}; known keys: {sorted(known)}.",
            got=unknown,
        )
    for key in ("quantiles", "group_columns", "sentinels"):
        if values.get(key) is not None:
            values[key] = tuple(values[key])
    if "quantiles" in values:
        values["quantiles"] = tuple(float(q) for q in values["quantiles"])
    return ScanConfig(**values)


def read_config_file(path: Path) -> Any:
    """The parsed YAML of a configuration file (``{}`` when it is empty).

    Raises
    ------
    ConfigError
        The file does not exist, cannot be read, is not UTF-8 text or is not YAML.
    """
    import yaml

    try:
        return yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"configuration file `{path}` does not exist.") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read configuration file `{path}`: {exc}") from None


def check_sections(loaded: dict[Any, Any], path: Path) -> None:
    """Refuse top-level keys of a configuration file other than :data:`SECTIONS`, which
    would otherwise be ignored; a key that belongs in a section is named with it
    (``reader`` -> ``scan.reader``).

    Raises
    ------
    ConfigError
        The file has a top-level key that is not a section.
    """
    unknown = [str(key) for key in loaded if key not in SECTIONS]
    if not unknown:
        return
    from spark_explore.protocols.base import ProtocolConfig  # it imports this module

    keys = {
        "scan": {f.name for f in dataclasses.fields(ScanConfig)},
        "protocols": {f.name for f in dataclasses.fields(ProtocolConfig)},
    }
    hints = [
        f"`{section}.{key}`" for key in unknown for section in SECTIONS if key in keys[section]
    ]
    hint = f"; did you mean {' or '.join(hints)}?" if hints else "."
    names = ", ".join(f"`{key}`" for key in unknown)
    raise ConfigError(
        f"unknown top-level key(s) {names} in `{path}`{hint} A configuration file holds only "
        f"the sections {' and '.join(f'`{section}:`' for section in SECTIONS)}.",
        got=unknown,
        expected=list(SECTIONS),
    )
