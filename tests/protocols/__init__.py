"""Shared data and profiles for the protocol tests.

Each table is profiled once per test run (profiles are cached here, keyed by name, so the
four protocol test modules share them) and kept with the raw Arrow table it was read from,
which the tests use to compute scipy/statsmodels references.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from spark_explore.api import ProfileResult, profile
from spark_explore.config import ScanConfig
from spark_explore.protocols.base import ProtocolContext
from spark_explore.states.batch import to_float64

#: Rows of the planted table, and of its uniform sample (a strict subset of the rows).
PLANTED_ROWS = 6000
PLANTED_SAMPLE = 2000
#: Rows planted as multivariate (but not univariate) outliers: x1 = 2, x2 = -2 while x2
#: otherwise follows x1 within a standard deviation of 0.1.
PLANTED_MV = 40

_PROFILES: dict[str, Profiled] = {}
_FOLDER = Path(tempfile.mkdtemp(prefix="spark-explore-protocols-"))
atexit.register(shutil.rmtree, _FOLDER, ignore_errors=True)


@dataclass
class Profiled:
    """A profiled table: the profile, the raw table and the protocol context."""

    result: ProfileResult
    table: pa.Table
    path: Path

    @property
    def context(self) -> ProtocolContext:
        return ProtocolContext(self.result.bundle, self.result.plan)

    def values(self, name: str) -> np.ndarray:
        """A column of the raw table as float64, null as NaN."""
        return to_float64(self.table.column(name).combine_chunks())

    def finite(self, name: str) -> np.ndarray:
        x = self.values(name)
        return x[np.isfinite(x)]

    def sample_column(self, name: str) -> pa.Array:
        """A column of the profile's uniform sample (the reservoir), by column name."""
        slot = self.result.plan.leaf(name).slot
        return self.result.bundle["reservoir"].column(slot)

    def sample_values(self, name: str) -> np.ndarray:
        return to_float64(self.sample_column(name))


def profiled(
    spark: Any, name: str, config: ScanConfig | None = None, *, key: str | None = None
) -> Profiled:
    """The cached profile of a shared real table or of a generated one (see ``TABLES``),
    with ``CONFIGS[name]`` or ``config`` (then cached under ``key``)."""
    key = key or name
    if key not in _PROFILES:
        path = TABLES[name]()
        table = pq.read_table(path)
        result = profile(spark.read.parquet(str(path)).repartition(3), config or CONFIGS.get(name))
        _PROFILES[key] = Profiled(result, table, path)
    return _PROFILES[key]


def _real(name: str) -> Any:
    def path() -> Path:
        from tests.conftest import SHARED_DATA

        return SHARED_DATA / "real" / f"{name}.parquet"

    return path


def _written(name: str, table: pa.Table) -> Path:
    path = _FOLDER / f"{name}.parquet"
    if not path.exists():
        pq.write_table(table, path)
    return path


def planted_table(rows: int = PLANTED_ROWS, seed: int = 7) -> pa.Table:
    """Generated data with known properties, each in its own column.

    ``g``: three groups of equal size. ``y_het``: normal with sd 1, 2 and 4 in groups a, b
    and c (heteroscedastic); ``y_homo``: normal with sd 1 in every group. ``normal_col``:
    N(10, 2). ``skewed``: lognormal(0, 1). ``spiky``: N(0, 1) with 3 % of its values
    replaced by outliers at 12 to 20 sd. ``x1``, ``x2``: x2 = x1 + N(0, 0.1), with
    ``PLANTED_MV`` rows at (2, -2). ``m_mcar``: N(5, 1) with 10 % nulls completely at
    random; ``m_mar``: N(0, 1), null wherever ``normal_col`` exceeds 11.5 (missing at random
    given ``normal_col``).
    """
    rng = np.random.default_rng(seed)
    g = np.array(["a", "b", "c"])[np.arange(rows) % 3]
    sd = np.array([1.0, 2.0, 4.0])[np.arange(rows) % 3]
    normal_col = rng.normal(10.0, 2.0, rows)
    spiky = rng.normal(0.0, 1.0, rows)
    spikes = rng.random(rows) < 0.03
    spiky[spikes] = rng.choice([-1.0, 1.0], spikes.sum()) * rng.uniform(12, 20, spikes.sum())
    x1 = rng.normal(0.0, 1.0, rows)
    x2 = x1 + rng.normal(0.0, 0.1, rows)
    planted = rng.choice(np.flatnonzero(~spikes), PLANTED_MV, replace=False)
    x1[planted], x2[planted] = 2.0, -2.0
    normal_col[planted] = 10.0
    m_mcar = rng.normal(5.0, 1.0, rows)
    m_mar = rng.normal(0.0, 1.0, rows)
    return pa.table(
        {
            "g": pa.array(g),
            "y_het": pa.array(rng.normal(0.0, 1.0, rows) * sd),
            "y_homo": pa.array(rng.normal(0.0, 1.0, rows)),
            "normal_col": pa.array(normal_col),
            "skewed": pa.array(rng.lognormal(0.0, 1.0, rows)),
            "spiky": pa.array(spiky),
            "x1": pa.array(x1),
            "x2": pa.array(x2),
            "m_mcar": pa.array(m_mcar, mask=rng.random(rows) < 0.10),
            "m_mar": pa.array(m_mar, mask=normal_col > 11.5),
        }
    )


def degenerate_table() -> pa.Table:
    """Twelve rows of degenerate cases.

    ``one_group``: a single level. ``g``: groups a (5 rows), b (6 rows) and c (1 row).
    ``const_in_a``: constant within group a, varying elsewhere. ``all_null``: no value.
    ``few``: 5 values, the rest null. ``constant``: one value everywhere. ``messy_num``:
    one each of null, NaN, +inf, -inf and the sentinel -999. ``messy_txt``: one each of
    null, an empty string, a blank string and the sentinel "NA".
    """
    nan, inf = float("nan"), float("inf")
    g = ["a"] * 5 + ["b"] * 6 + ["c"]
    return pa.table(
        {
            "one_group": pa.array(["only"] * 12),
            "g": pa.array(g),
            "const_in_a": pa.array([3.0] * 5 + [1.0, 4.0, 2.0, 8.0, 5.0, 7.0, 6.0]),
            "x": pa.array([0.5, 1.5, 2.0, 2.5, 4.0, 1.0, 3.0, 3.5, 5.0, 6.0, 7.5, 9.0]),
            "all_null": pa.array([None] * 12, type=pa.float64()),
            "few": pa.array([1.0, 2.0, 4.0, 8.0, 16.0] + [None] * 7),
            "constant": pa.array([2.5] * 12),
            "messy_num": pa.array(
                [1.0, nan, inf, -inf, -999.0, None, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
            ),
            "messy_txt": pa.array(["a", "", "  ", "NA", None, "b"] + ["a", "b"] * 3),
        }
    )


TABLES = {
    "iris": _real("iris"),
    "penguins": _real("penguins"),
    "planted": lambda: _written("planted", planted_table()),
    "planted_full_sample": lambda: _written("planted", planted_table()),
    "degenerate": lambda: _written("degenerate", degenerate_table()),
}

#: Scan parameters per table (the defaults otherwise): the planted table is profiled with a
#: sample of a third of its rows, and once more with the default sample, which holds them all.
CONFIGS = {"planted": ScanConfig(reservoir_size=PLANTED_SAMPLE)}
