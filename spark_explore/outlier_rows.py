"""The outliers protocol's second job: write out a table's rows beyond a profile's fences.

The profile finds the fences in one pass (Tukey's from the sketch quartiles, the robust z
rule's from the sketch median and MAD, the z rule's from the exact moments) and estimates
from the sketch how many values lie beyond them. Listing the rows themselves needs the
data again, so it is a separate, named job (``jobs/flag_outliers.py``): it reads the saved
profile, reads the table, keeps the rows with a finite value beyond a fence, adds a column
naming each ``rule:column`` that flagged the row, and writes them as Parquet or Delta.

Only the DataFrame API is used, so the job runs on classic sessions, Spark Connect and
Databricks. The fences are compared with each value cast to double, as the profile's
sketches saw it; null, NaN and infinite values are never flagged (the profile judged only
finite values), so each rule's row count matches the profile's estimate within the
sketch's stated bound.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spark_explore.columns import NUMERIC, Leaf
from spark_explore.errors import InvalidArgumentError, OutputExistsError, SourceReadError
from spark_explore.protocols.base import ProtocolConfig, ProtocolContext
from spark_explore.protocols.outliers import NAME, rule_names
from spark_explore.protocols.outliers import run as run_outliers
from spark_explore.scan.plan import ScanPlan
from spark_explore.states.bundle import StateBundle

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

logger = logging.getLogger(__name__)

PROFILE_FILE = "profile.json"
STATE_FILE = "state.arrow"

#: Name of the added column (an array of ``"rule:column"`` strings); a suffix is added when
#: the table already has a column of this name.
FLAG_COLUMN = "outlier_flags"

#: Rules written when none are asked for: Tukey's outer fences ("far out" values).
DEFAULT_RULES = ("tukey3",)


@dataclass(frozen=True)
class Fence:
    """One rule's fences on one column, with the profile's estimate of the values beyond.

    Attributes
    ----------
    leaf : Leaf
        The profiled column.
    rule : str
        ``"tukey1.5"``, ``"tukey3"``, ``"robust_z"`` or ``"z"``.
    low, high : float
        A finite value ``x < low`` or ``x > high`` is flagged.
    estimate : int
        The profile's estimate of the number of such values.
    error_bound : float
        Bound on the estimate's error, in values (0 when the sketch was exact).
    """

    leaf: Leaf
    rule: str
    low: float
    high: float
    estimate: int
    error_bound: float

    @property
    def label(self) -> str:
        return f"{self.rule}:{self.leaf.name}"


@dataclass(frozen=True)
class SavedProfile:
    """What the job needs from a profile folder."""

    plan: ScanPlan
    source: dict[str, Any]
    results: dict[str, Any]
    origin: str


def load_profile(folder: str | Path) -> SavedProfile:
    """Read the plan from ``state.arrow`` and the outliers results from ``profile.json``;
    recompute the results from the saved states when the JSON does not hold them.

    Raises
    ------
    StateFormatError
        The folder has no readable ``state.arrow``.
    """
    folder = Path(folder)
    bundle, metadata = StateBundle.load(folder / STATE_FILE)
    if "plan" not in metadata:
        raise SourceReadError(
            f"`{folder / STATE_FILE}` holds no scan plan; re-run the profile.", path=str(folder)
        )
    plan = ScanPlan.from_dict(metadata["plan"])
    source = dict(metadata.get("source") or {})
    results = _json_results(folder / PROFILE_FILE)
    if results is not None:
        return SavedProfile(plan, source, results, f"{folder / PROFILE_FILE}")
    report = run_outliers(ProtocolContext(bundle, plan))
    return SavedProfile(plan, source, report.results, f"{folder / STATE_FILE} (recomputed)")


def _json_results(path: Path) -> dict[str, Any] | None:
    """The outliers protocol's results in a profile document, if it holds them."""
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    results = ((document.get("protocols") or {}).get(NAME) or {}).get("results")
    return results if isinstance(results, dict) and results else None


def parse_rules(text: str | None) -> tuple[str, ...]:
    """``"tukey3,robust_z"`` -> ``("tukey3", "robust_z")``; checks each name.

    Raises
    ------
    InvalidArgumentError
        An unknown rule name, or none at all.
    """
    if text is None:
        return DEFAULT_RULES
    rules = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    known = _known_rules()
    unknown = [rule for rule in rules if rule not in known]
    if unknown or not rules:
        raise InvalidArgumentError(
            f"`--rules` must name rules among {known}, comma-separated; got {text!r}.",
            expected=known,
            got=text,
        )
    return rules


def _known_rules() -> list[str]:
    return rule_names(ProtocolConfig())


def fences(profile: SavedProfile, rules: tuple[str, ...]) -> tuple[list[Fence], list[str]]:
    """The applicable fences of the asked rules on every numeric column, and notes on the
    rules that do not apply to a column."""
    out: list[Fence] = []
    notes: list[str] = []
    for leaf in profile.plan.leaves:
        if leaf.role != NUMERIC:
            continue
        entry = profile.results.get(leaf.name) or {}
        for rule in rules:
            fence = entry.get(rule)
            if not isinstance(fence, dict) or not fence.get("applicable"):
                reason = (fence or {}).get("reason") or entry.get("reason") or "no result"
                notes.append(f"{rule} does not apply to {leaf.name}: {reason}")
                continue
            out.append(
                Fence(
                    leaf,
                    rule,
                    float(fence["low"]),
                    float(fence["high"]),
                    int(fence["count_estimate"]),
                    float(fence["count_error_bound"]),
                )
            )
    return out, notes


def leaf_column(leaf: Leaf) -> Column:
    """The table column (or struct field) behind a leaf, as the profile's scan read it."""
    from pyspark.sql import functions as F

    column = F.col("`" + leaf.path[0].replace("`", "``") + "`")
    for name in leaf.path[1:]:
        column = column.getField(name)
    return column


def flag_column_name(df: DataFrame) -> str:
    """``FLAG_COLUMN``, or ``FLAG_COLUMN_2`` ... when the table already has that name."""
    taken = set(df.columns)
    name, suffix = FLAG_COLUMN, 2
    while name in taken:
        name, suffix = f"{FLAG_COLUMN}_{suffix}", suffix + 1
    return name


def flag_rows(df: DataFrame, fence_list: list[Fence]) -> tuple[DataFrame, str]:
    """The rows of ``df`` with a finite value beyond some fence, with a column listing the
    ``rule:column`` labels that flagged them; returns the frame and that column's name."""
    from pyspark.sql import functions as F

    flag = flag_column_name(df)
    labels = []
    for fence in fence_list:
        value = leaf_column(fence.leaf).cast("double")
        finite = (
            value.isNotNull()
            & ~F.isnan(value)
            & (value != F.lit(float("inf")))
            & (value != F.lit(float("-inf")))
        )
        beyond = (value < F.lit(fence.low)) | (value > F.lit(fence.high))
        labels.append(F.when(finite & beyond, F.lit(fence.label)))
    if not labels:
        return df.where(F.lit(False)).withColumn(flag, F.array().cast("array<string>")), flag
    flags = F.filter(F.array(*labels), lambda x: x.isNotNull())
    flagged = df.withColumn(flag, flags).where(F.size(F.col(flag)) > 0)
    return flagged, flag


def check_output_free(output: str) -> None:
    """Refuse an output path that already exists (checked here for local paths; Spark's
    ``errorifexists`` mode refuses remote ones when writing).

    Raises
    ------
    OutputExistsError
        The path exists.
    """
    path = Path(output[len("file:") :] if output.startswith("file:") else output)
    if "://" not in output and path.exists():
        raise OutputExistsError(
            f"`{output}` already exists; the outlier rows are never written over existing "
            "data. Choose another --output or remove it first.",
            path=output,
        )


def write_rows(spark: SparkSession, df: DataFrame, output: str, fmt: str) -> tuple[str, list[str]]:
    """Write ``df`` to ``output`` as ``fmt`` (``"parquet"`` or ``"delta"``) without
    overwriting; returns the format written and notes.

    Delta is written through the Delta Spark connector when the session has it. Without
    it the rows are written as Parquet and a note says so: executors cannot write a Delta
    table on their own (``deltalake``'s writer runs in one process), and collecting the
    rows to the driver would not scale.

    Raises
    ------
    OutputExistsError
        ``output`` exists.
    """
    from spark_explore.readers.delta import has_delta_connector
    from spark_explore.readers.spark_errors import SPARK_ERRORS, condition

    notes: list[str] = []
    check_output_free(output)
    if fmt == "delta" and not has_delta_connector(spark):
        notes.append(
            "the Spark session has no Delta connector (io.delta.sql.DeltaSparkSessionExtension),"
            " so the outlier rows were written as Parquet instead of Delta"
        )
        fmt = "parquet"
    writer = df.write.mode("errorifexists")
    try:
        if fmt == "delta":
            writer.format("delta").save(output)
        else:
            writer.parquet(output)
    except SPARK_ERRORS as exc:
        if "ALREADY_EXISTS" in condition(exc) or "already exists" in str(exc):
            raise OutputExistsError(
                f"`{output}` already exists; choose another --output.", path=output
            ) from None
        raise
    return fmt, notes


def written_counts(spark: SparkSession, output: str, fmt: str, flag: str) -> dict[str, int]:
    """Rows per ``rule:column`` label in the written output (reads only the output)."""
    from pyspark.sql import functions as F

    reader = spark.read.format("delta") if fmt == "delta" else spark.read.format("parquet")
    rows = (
        reader.load(output)
        .select(F.explode(F.col(flag)).alias("label"))
        .groupBy("label")
        .count()
        .collect()
    )
    return {row["label"]: int(row["count"]) for row in rows}


def summary_lines(fence_list: list[Fence], counts: dict[str, int], total: int) -> list[str]:
    """One line per fence: rows written, and the profile's estimate with its bound."""
    lines = [f"{total} row(s) written"]
    for fence in fence_list:
        written = counts.get(fence.label, 0)
        # the estimate rounds each side's share times n, hence the extra row
        within = abs(written - fence.estimate) <= fence.error_bound + 1
        lines.append(
            f"  {fence.label}: {written} row(s) beyond [{fence.low:.6g}, {fence.high:.6g}]; "
            f"profile estimate {fence.estimate} +/- {fence.error_bound:.1f}"
            + ("" if within else " (outside the bound: has the table changed?)")
        )
    return lines
