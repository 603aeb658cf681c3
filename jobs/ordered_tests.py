"""spark-submit job: serial dependence along an ordering column, and exact duplicate rows.

    spark-submit jobs/ordered_tests.py --table db.events --order-by event_time \\
        --columns latency bytes --output /dbfs/profiles/events/ordered

This is a separate, named job, not part of the one-pass profile: the profile reads the rows
in whatever order the partitions hold them, while serial dependence is defined along an
order, and putting rows in order needs a sort, which costs a shuffle.

What it does
------------
1. Sorts the table by ``--order-by`` (a range-partitioning shuffle, for which Spark first
   samples the key, then a sort within each partition; rows whose key is null go last and
   are left out).
2. In one ``mapInArrow`` pass over the sorted partitions, summarises each partition's run of
   consecutive values of every ``--columns`` column in a
   :class:`~spark_explore.stats.serial.LagMoments` (count, mean, central sums, lag-1
   cross-product, first and last value), tagged with the partition id, together with the
   number of adjacent ties of the ordering key.
3. Collects the summaries and merges them on the driver *in partition order*: the merge is
   associative but not commutative, and the partitions of a range-partitioned sort are in
   key order.
4. Reports per column the lag-1 autocorrelation r1 (NIST's definition) with its test, the
   Durbin-Watson statistic and the Wald-Wolfowitz runs test about the mean.

The runs test needs its cutoff while it counts. With ``--profile DIR`` the mean is taken
from that profile's ``profile.json`` and runs are counted in the same pass; otherwise the
sorted rows are cached and a second pass over the cache counts runs about the exact mean
merged in the first (values equal to the mean count as above it).

``--exact-duplicates`` adds one more job: a ``groupBy`` over every column (a shuffle) that
counts the rows repeating another row exactly, the exact counterpart of the profile's
HyperLogLog estimate.

Output: ``DIR/ordered_tests.json`` and a summary on stdout. Exit status as for
``spark-explore``: 0 on success, 2 for bad input, 1 for a failure of Spark or the machine.
Ties of the ordering key leave the order of the tied rows, and so the statistics, to Spark;
their number is reported.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import pickle
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from spark_explore.errors import (
    ColumnNotFoundError,
    InvalidArgumentError,
    OutputExistsError,
    SparkExploreError,
)
from spark_explore.states.batch import to_float64
from spark_explore.stats.serial import (
    LagMoments,
    durbin_watson,
    lag1_autocorrelation,
    merge_lag_moments,
    runs_test,
)

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

OUTPUT_FILE = "ordered_tests.json"
EXIT_BAD_INPUT = 2
EXIT_FAILURE = 1
_PARTIAL_DDL = "partition int, payload binary"
_SORT_NOTE = (
    "a sort was needed: the rows were range-partitioned by `{key}` (a shuffle; Spark first "
    "samples the key to choose the ranges) and sorted within each partition"
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ordered_tests",
        description="Serial dependence along an ordering column (a separate job with a sort), "
        "and optionally an exact count of duplicate rows.",
    )
    parser.add_argument("--table", required=True, help="catalog table name or path")
    parser.add_argument("--output", required=True, help="folder for ordered_tests.json")
    parser.add_argument("--order-by", help="the column that orders the rows")
    parser.add_argument(
        "--columns",
        nargs="+",
        metavar="NAME",
        help="numeric columns to test (default: every numeric column)",
    )
    parser.add_argument(
        "--format",
        choices=("delta", "parquet", "csv", "json", "orc"),
        help="source format (default: detected)",
    )
    parser.add_argument("--where", metavar="PREDICATE", help="SQL filter applied first")
    parser.add_argument(
        "--partitions",
        type=int,
        help="partitions of the sort (default: spark.sql.shuffle.partitions)",
    )
    parser.add_argument(
        "--profile",
        metavar="DIR",
        help="a profile of the same table: its means are the runs cutoffs",
    )
    parser.add_argument(
        "--exact-duplicates",
        action="store_true",
        help="also count duplicate rows exactly (one more job, a shuffle)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier output")
    parser.add_argument("--master", help="Spark master for a local session (default local[*])")
    parser.add_argument("--remote", help="Spark Connect URL, e.g. sc://host:15002")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the job; return the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except SparkExploreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as exc:  # Spark, Java or I/O failures: one line, not a traceback
        text = str(exc).strip().splitlines()
        print(f"failed: {type(exc).__name__}: {text[0] if text else ''}", file=sys.stderr)
        return EXIT_FAILURE


def _run(args: argparse.Namespace) -> int:
    from spark_explore.readers import open_source
    from spark_explore.scan.session import get_session

    if args.order_by is None and not args.exact_duplicates:
        raise InvalidArgumentError("give `--order-by COL`, `--exact-duplicates`, or both.")
    if args.partitions is not None and args.partitions < 1:
        raise InvalidArgumentError(f"`--partitions` must be positive; got {args.partitions}.")
    target = Path(args.output) / OUTPUT_FILE
    if target.exists() and not args.overwrite:
        raise OutputExistsError(
            f"`{target}` exists; choose another --output or pass --overwrite.", path=str(target)
        )
    spark = get_session("spark-explore-ordered-tests", master=args.master, remote=args.remote)
    source = open_source(spark, args.table, args.format, where=args.where)
    document: dict[str, Any] = {"job": "ordered_tests", "table": args.table, "where": args.where}
    if args.order_by is not None:
        cutoffs = _profile_means(args.profile) if args.profile else None
        document.update(
            ordered_statistics(
                source.df, args.order_by, args.columns, partitions=args.partitions, cutoffs=cutoffs
            )
        )
    if args.exact_duplicates:
        document["exact_duplicates"] = exact_duplicates(source.df)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{OUTPUT_FILE}.tmp")
    tmp.write_text(json.dumps(document, indent=2, allow_nan=False, default=str) + "\n")
    os.replace(tmp, target)
    for line in _summary(document):
        print(line)
    print(f"wrote {target}", file=sys.stderr)
    return 0


def ordered_statistics(
    df: DataFrame,
    order_by: str,
    columns: Sequence[str] | None = None,
    *,
    partitions: int | None = None,
    cutoffs: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Sort ``df`` by ``order_by`` and test every column for serial dependence.

    Parameters
    ----------
    df
        The table.
    order_by
        The ordering column.
    columns
        Numeric columns to test; every numeric column but ``order_by`` when None.
    partitions
        Partitions of the range-partitioned sort; Spark's ``orderBy`` default when None.
    cutoffs
        Runs-test cutoff per column (e.g. the means from a profile). Without it the sorted
        rows are cached and runs are counted about the exact mean in a second pass.

    Returns
    -------
    dict
        ``order_by``, ``sort`` (what the sort cost), ``partitions``, ``rows``,
        ``rows_with_null_order_key``, ``tied_order_keys``, ``passes`` and ``columns``:
        per column ``lag1_autocorrelation``, ``durbin_watson``, ``runs_test`` (TestResult
        dictionaries) and ``runs_cutoff``.

    Raises
    ------
    ColumnNotFoundError, InvalidArgumentError
        An unknown column, a non-numeric test column or an unorderable key.
    """
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    names = _checked_columns(df, order_by, columns)
    projected = df.select(
        _col(order_by).alias("_order"), *(_col(n).alias(f"_v{j}") for j, n in enumerate(names))
    )
    key = F.col("_order").asc_nulls_last()
    ordered = (
        projected.orderBy(key)
        if partitions is None
        else projected.repartitionByRange(partitions, key).sortWithinPartitions(key)
    )
    passes = 1
    if cutoffs is None:
        ordered = ordered.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        cut = None if cutoffs is None else [(float(cutoffs[n]), 0.0) for n in names]
        parts = _collect(ordered, len(names), cut, with_lags=True)
        lags = _merged_lags(parts, len(names))
        if cut is None:  # runs about the exact (double-double) mean of the first pass
            cut = [(lag.mean, lag.mean_lo) for lag in lags]
            runs = _merged_runs(_collect(ordered, len(names), cut, with_lags=False), len(names))
            passes = 2
        else:
            runs = _merged_runs(parts, len(names))
    finally:
        if cutoffs is None:
            ordered.unpersist()
    results = {}
    for j, name in enumerate(names):
        results[name] = {
            "lag1_autocorrelation": lag1_autocorrelation(lags[j]).to_dict(),
            "durbin_watson": durbin_watson(lags[j]).to_dict(),
            "runs_test": runs_test(*runs[j][:3]).to_dict(),
            "runs_cutoff": {
                "value": cut[j][0] + cut[j][1],
                "source": "mean from the profile"
                if cutoffs is not None
                else "exact mean of the first pass over the sorted rows",
                "rule": "values at or above the cutoff count as above",
            },
        }
    filled = [part for part in parts if part["rows"]]
    boundary_ties = sum(int(a["last"] == b["first"]) for a, b in itertools.pairwise(filled))
    ties = sum(p["ties"] for p in parts) + boundary_ties
    null_keys = sum(p["null_keys"] for p in parts)
    notes = []
    if ties:
        notes.append(
            f"{ties} row(s) share their `{order_by}` value with the row before: the order "
            "among tied rows, and so the statistics, are Spark's choice, not the data's"
        )
    if null_keys:
        notes.append(f"{null_keys} row(s) with a null `{order_by}` were left out")
    return {
        "order_by": order_by,
        "sort": _SORT_NOTE.format(key=order_by),
        "partitions": len(parts),
        "passes": passes,
        "rows": sum(p["rows"] for p in parts),
        "rows_with_null_order_key": null_keys,
        "tied_order_keys": ties,
        "notes": notes,
        "columns": results,
    }


def exact_duplicates(df: DataFrame) -> dict[str, Any]:
    """Rows that repeat another row exactly, by a ``groupBy`` over every column (a shuffle).

    Map columns are compared by their JSON text, so equal maps written in a different key
    order count as different. NaN equals NaN and -0.0 equals 0.0, as Spark groups them.
    """
    from pyspark.sql import functions as F
    from pyspark.sql.types import MapType

    keys = [
        (F.to_json(_col(f.name)) if isinstance(f.dataType, MapType) else _col(f.name)).alias(
            f"_k{j}"
        )
        for j, f in enumerate(df.schema.fields)
    ]
    groups = df.groupBy(*keys).agg(F.count(F.lit(1)).alias("_rows"))
    repeated = F.col("_rows") > 1
    row = groups.agg(
        F.sum("_rows").alias("rows"),
        F.count(F.lit(1)).alias("distinct"),
        F.sum(F.when(repeated, 1).otherwise(0)).alias("groups"),
        F.sum(F.when(repeated, F.col("_rows")).otherwise(0)).alias("in_groups"),
    ).first()
    rows = int(row["rows"] or 0)
    distinct = int(row["distinct"] or 0)
    return {
        "method": "exact: groupBy over every column (a shuffle)",
        "rows": rows,
        "distinct_rows": distinct,
        "duplicate_rows": rows - distinct,
        "duplicate_share": (rows - distinct) / rows if rows else None,
        "duplicated_row_groups": int(row["groups"] or 0),
        "rows_in_duplicated_groups": int(row["in_groups"] or 0),
    }


def _col(name: str) -> Column:
    from pyspark.sql import functions as F

    return F.col("`" + name.replace("`", "``") + "`")


def _checked_columns(df: DataFrame, order_by: str, columns: Sequence[str] | None) -> list[str]:
    from pyspark.sql.types import DecimalType, FractionalType, IntegralType, MapType

    types = {f.name: f.dataType for f in df.schema.fields}
    for name in [order_by, *(columns or ())]:
        if name not in types:
            raise ColumnNotFoundError(
                f"`{name}` is not a column of the table; columns: {sorted(types)[:20]}.",
                column=name,
            )
    if isinstance(types[order_by], MapType):
        raise InvalidArgumentError(
            f"cannot order by `{order_by}` of type {types[order_by].simpleString()}.",
            column=order_by,
            got=types[order_by].simpleString(),
        )
    numeric = (IntegralType, FractionalType, DecimalType)
    if columns is None:
        names = [n for n, t in types.items() if n != order_by and isinstance(t, numeric)]
        if not names:
            raise InvalidArgumentError("the table has no numeric column besides the order key.")
        return names
    for name in columns:
        if not isinstance(types[name], numeric):
            raise InvalidArgumentError(
                f"`{name}` must be numeric; it is {types[name].simpleString()}.",
                column=name,
                got=types[name].simpleString(),
            )
    return list(dict.fromkeys(columns))


def _collect(
    ordered: DataFrame, k: int, cutoffs: list[tuple[float, float]] | None, *, with_lags: bool
) -> list[dict[str, Any]]:
    """One pass: the per-partition summaries, in partition order."""
    rows = ordered.mapInArrow(_summarise(k, cutoffs, with_lags), _PARTIAL_DDL).collect()
    rows = sorted(rows, key=lambda row: row["partition"])
    return [pickle.loads(row["payload"]) for row in rows]


def _summarise(
    k: int, cutoffs: list[tuple[float, float]] | None, with_lags: bool
) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """The ``mapInArrow`` function: one summary row per partition, tagged with its id."""

    def summarise(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from pyspark import TaskContext

        part: dict[str, Any] = {"rows": 0, "null_keys": 0, "ties": 0, "first": None, "last": None}
        lags = [LagMoments.empty() for _ in range(k)]
        runs: list[tuple[int, int, int, bool | None, bool | None]] = [(0, 0, 0, None, None)] * k
        for batch in batches:
            keys = batch.column(0)
            if keys.null_count:
                valid = keys.is_valid()
                part["null_keys"] += keys.null_count
                batch = batch.filter(valid)
                keys = batch.column(0)
            if batch.num_rows == 0:
                continue
            first, last = keys[0].as_py(), keys[-1].as_py()
            if part["rows"]:
                part["ties"] += int(part["last"] == first)
            else:
                part["first"] = first
            part["last"] = last
            part["ties"] += int(pc.sum(pc.equal(keys[1:], keys[:-1])).as_py() or 0)
            part["rows"] += batch.num_rows
            for j in range(k):
                y = to_float64(batch.column(j + 1))
                if with_lags:
                    lags[j] = merge_lag_moments(lags[j], LagMoments.from_values(y))
                if cutoffs is not None:
                    runs[j] = _join_runs(runs[j], _runs(y[np.isfinite(y)], *cutoffs[j]))
        part["lags"] = lags if with_lags else None
        part["runs"] = runs if cutoffs is not None else None
        context = TaskContext.get()
        partition = context.partitionId() if context is not None else 0
        yield pa.RecordBatch.from_arrays(
            [pa.array([partition], pa.int32()), pa.array([pickle.dumps(part)], pa.binary())],
            names=["partition", "payload"],
        )

    return summarise


def _runs(y: np.ndarray, hi: float, lo: float) -> tuple[int, int, int, bool | None, bool | None]:
    """Above/below counts, runs, and the first and last side of consecutive values, with
    "above" meaning ``y >= hi + lo`` decided exactly for the double-double cutoff."""
    if y.size == 0:
        return (0, 0, 0, None, None)
    above = (y > hi) | ((y == hi) & (lo <= 0.0))
    n_above = int(above.sum())
    runs = 1 + int(np.count_nonzero(above[1:] != above[:-1]))
    return (n_above, int(y.size) - n_above, runs, bool(above[0]), bool(above[-1]))


def _join_runs(
    a: tuple[int, int, int, bool | None, bool | None],
    b: tuple[int, int, int, bool | None, bool | None],
) -> tuple[int, int, int, bool | None, bool | None]:
    """Runs of ``a`` followed by ``b``: a run continues across the boundary when the last
    side of ``a`` is the first side of ``b``. Associative, not commutative."""
    if a[0] + a[1] == 0:
        return b
    if b[0] + b[1] == 0:
        return a
    runs = a[2] + b[2] - int(a[4] == b[3])
    return (a[0] + b[0], a[1] + b[1], runs, a[3], b[4])


def _merged_lags(parts: list[dict[str, Any]], k: int) -> list[LagMoments]:
    merged = [LagMoments.empty() for _ in range(k)]
    for part in parts:  # partition order is row order
        merged = [merge_lag_moments(m, p) for m, p in zip(merged, part["lags"], strict=True)]
    return merged


def _merged_runs(
    parts: list[dict[str, Any]], k: int
) -> list[tuple[int, int, int, bool | None, bool | None]]:
    merged: list[tuple[int, int, int, bool | None, bool | None]] = [(0, 0, 0, None, None)] * k
    for part in parts:
        merged = [_join_runs(m, p) for m, p in zip(merged, part["runs"], strict=True)]
    return merged


def _profile_means(folder: str) -> dict[str, float]:
    """Column means from a profile's ``profile.json``."""
    path = Path(folder) / "profile.json"
    try:
        columns = json.loads(path.read_text())["columns"]
    except (OSError, ValueError, KeyError) as exc:
        raise InvalidArgumentError(f"cannot read the means from `{path}`: {exc}") from None
    return {
        name: float(entry["mean"])
        for name, entry in columns.items()
        if isinstance(entry.get("mean"), (int, float)) and math.isfinite(entry["mean"])
    }


def _summary(document: dict[str, Any]) -> list[str]:
    lines = []
    if "columns" in document:
        lines.append(
            f"ordered by {document['order_by']}: {document['sort']}; "
            f"{document['rows']:,} rows in {document['partitions']} partitions"
        )
        lines.extend(f"  note: {note}" for note in document["notes"])
        for name, entry in document["columns"].items():
            r1 = entry["lag1_autocorrelation"]
            dw = entry["durbin_watson"]
            lines.append(
                f"  {name}: r1 = {_fmt(r1['effect_size'])} (p = {_fmt(r1['pvalue'])}), "
                f"Durbin-Watson d = {_fmt(dw['statistic'])}, runs test p = "
                f"{_fmt(entry['runs_test']['pvalue'])}"
            )
    if "exact_duplicates" in document:
        dup = document["exact_duplicates"]
        lines.append(
            f"exact duplicates: {dup['duplicate_rows']:,} of {dup['rows']:,} rows "
            "repeat another row (groupBy over every column: a shuffle)"
        )
    return lines


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


if __name__ == "__main__":
    sys.exit(main())
