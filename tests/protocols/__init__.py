"""Shared data and profiles for the protocol tests.

Each table is profiled once per test run (profiles are cached here, keyed by name, so the
four protocol test modules share them) and kept with the raw Arrow table it was read from,
which the tests use to compute scipy/statsmodels references.
"""

from __future__ import annotations

import atexit
import hashlib
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql.pandas.types import from_arrow_schema

from spark_explore.api import ProfileResult, profile
from spark_explore.config import ScanConfig
from spark_explore.protocols.base import ProtocolContext
from spark_explore.scan.plan import KEY_SLOT, hash_slot_of, plan_from_schema
from spark_explore.states.batch import Batch, to_float64

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


def _hash64(value: object) -> int:
    digest = hashlib.blake2b(repr(value).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


def local_context(table: pa.Table, config: ScanConfig | None = None) -> ProtocolContext:
    """A context from states updated on the driver, without Spark (for degenerate cases)."""
    plan = plan_from_schema(from_arrow_schema(table.schema), config)
    batch = table.rename_columns([plan.leaf(name).slot for name in table.column_names])
    batch = batch.append_column(KEY_SLOT, pa.array(np.arange(table.num_rows, dtype=np.int64)))
    for leaf in plan.hashed_leaves:  # what Spark's xxhash64 provides in a scan
        hashes = [_hash64(value) for value in table.column(leaf.name).to_pylist()]
        batch = batch.append_column(hash_slot_of(leaf), pa.array(hashes, pa.int64()))
    bundle = plan.empty_bundle()
    bundle.update(Batch(batch))
    return ProtocolContext(bundle, plan)


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


#: Values at both ends of the float64 range in turn with zeros, the smallest subnormal and
#: non-finite values: the mean of the finite ones is about 0, their squares overflow.
SPECIALS = (0.0, -0.0, float("nan"), float("inf"), float("-inf"), 1e308, -1e308, 5e-324)


def extremes_table(rows: int = 4000, seed: int = 11) -> pa.Table:
    """Columns whose central moments overflow float64, beside ordinary ones.

    ``v``: ``SPECIALS`` in turn (its M2 overflows); ``w``: ``v`` as float32, clipped to
    +-3e38 (its moments stay finite); ``big``: N(0, 1e100) (its M4 overflows); ``x``:
    N(0, 1); ``g``: three groups in turn; ``h``: two groups in runs of 7 rows.
    """
    rng = np.random.default_rng(seed)
    v = np.array(SPECIALS)[np.arange(rows) % len(SPECIALS)]
    return pa.table(
        {
            "g": pa.array(np.array(["a", "b", "c"])[np.arange(rows) % 3]),
            "h": pa.array(np.array(["p", "q"])[(np.arange(rows) // 7) % 2]),
            "v": pa.array(v),
            "w": pa.array(v.clip(-3e38, 3e38).astype(np.float32)),
            "big": pa.array(rng.normal(0.0, 1e100, rows)),
            "x": pa.array(rng.normal(0.0, 1.0, rows)),
        }
    )


def failed_steps(results: Any) -> list[str]:
    """Every ``"failed: ..."`` reason in a protocol's results: a step that raised."""
    if isinstance(results, dict):
        reason = results.get("reason")
        own = [reason] if isinstance(reason, str) and reason.startswith("failed") else []
        return own + [text for value in results.values() for text in failed_steps(value)]
    if isinstance(results, list):
        return [text for value in results for text in failed_steps(value)]
    return []


def extremes_report(module: Any, config: ScanConfig | None = None) -> tuple[pa.Table, dict]:
    """The extremes table and a protocol's report on it, run with every warning an error
    (nothing may reach the console); no step may fail."""
    table = extremes_table()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = module.run(local_context(table, config)).to_dict()
    assert failed_steps(report["results"]) == []
    return table, report


def finite_values(table: pa.Table, name: str) -> np.ndarray:
    """A column's finite values as float64."""
    x = to_float64(table.column(name).combine_chunks())
    return x[np.isfinite(x)]


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
