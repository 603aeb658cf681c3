#!/usr/bin/env python
"""Time a profile against a plain scan and against Spark's ``summary()``.

For one Parquet table, in one process and one local Spark session, three jobs over the
same columns are timed:

noop
    ``df.write.format("noop").mode("overwrite").save()`` reads and decodes every column and
    discards the rows: the floor for any single pass over the table.
profile
    ``spark_explore.api.profile(df)``: the one-pass profile, from reading to the finished
    ``ProfileResult`` on the driver.
summary
    ``df.summary().collect()``: Spark's built-in count, mean, stddev, min, quartiles and max.
    It runs with ``spark.sql.ansi.enabled=false``: under ANSI mode its ``avg`` fails with an
    overflow on ``decimal(38,0)`` columns near 1e37, such as the mixed table's ``dec38_big``.
    On 10 million mixed rows it takes about 90 s; ``--skip-summary`` leaves it out.

Each job runs ``--repeat`` times, in interleaved rounds (noop, profile, summary, noop, ...)
so that a change in machine load hits all three alike, and the best (shortest) time is kept
as the least disturbed. A noop scan of one file first warms up the JVM, so that the first
timed job does not pay for it. The first profile also starts the Python workers and imports
the library in them, which a fresh session pays once; ``--repeat 2`` leaves that out.

Why ratios
----------
Absolute seconds depend on the cores, the disk cache, the JVM and whatever else the machine
runs; on a shared machine they can vary twofold from one run to the next. Jobs measured
side by side suffer the same conditions, so their ratios are far more stable:
``profile / noop`` is what profiling costs on top of reading the data (1 would be free), and
``profile / summary`` compares it with what Spark users run today. Rows per second per core
is printed for scale, but compare it only between runs on the same machine.

Examples
--------
::

    python scripts/bench.py --generate 10_000_000 --skip-summary --json out/bench.json
    python scripts/bench.py --table /data/events.parquet --repeat 3
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "scripts")]

import generate_table  # noqa: E402  (needs the path set above)
from pyspark.sql import DataFrame, SparkSession  # noqa: E402

BENCH_DATA = REPO / "bench-data"


def import_profile() -> Callable[..., Any]:
    """Return ``spark_explore.api.profile``, or exit with a message if it is not there yet.

    Returns
    -------
    callable
        The ``profile(df, config=None, *, progress=False)`` function.

    Raises
    ------
    SystemExit
        If ``spark_explore.api`` or one of the modules it imports is missing.
    """
    try:
        from spark_explore.api import profile
    except ImportError as exc:
        if not (exc.name or "").startswith("spark_explore"):
            raise
        raise SystemExit(
            f"error: cannot import `profile` from spark_explore.api ({exc}); the library is "
            "not complete yet, so there is nothing to benchmark"
        ) from None
    return profile  # type: ignore[no-any-return]


def mixed_table(spark: SparkSession, rows: int) -> Path:
    """Return the mixed table of ``rows`` rows in ``bench-data/``, generating it if needed.

    Parameters
    ----------
    spark
        Session that writes the table.
    rows
        Number of rows.

    Returns
    -------
    Path
        ``bench-data/mixed_<rows>``, e.g. ``bench-data/mixed_10m``.
    """
    label = str(rows)
    if rows % 1_000_000 == 0:
        label = f"{rows // 1_000_000}m"
    elif rows % 1000 == 0:
        label = f"{rows // 1000}k"
    path = BENCH_DATA / f"mixed_{label}"
    if (path / "_SUCCESS").exists():
        print(f"reusing {path}")
    else:
        written = generate_table.generate(spark, str(path), rows=rows, overwrite=True)
        print(written.describe())
    return path


def _noop(df: DataFrame) -> None:
    """Read and decode every column of ``df``, discarding the rows."""
    df.write.format("noop").mode("overwrite").save()


def _summary(df: DataFrame) -> None:
    """Run ``df.summary().collect()`` with ANSI mode off (see the module docstring)."""
    conf = df.sparkSession.conf
    previous = conf.get("spark.sql.ansi.enabled", "true")
    conf.set("spark.sql.ansi.enabled", "false")
    try:
        df.summary().collect()
    finally:
        conf.set("spark.sql.ansi.enabled", previous or "true")


def run(
    spark: SparkSession, table: str, repeat: int = 1, skip_summary: bool = False
) -> dict[str, Any]:
    """Time the three jobs on a Parquet table and return the figures.

    Parameters
    ----------
    spark
        Session that runs the jobs.
    table
        Path of a Parquet table.
    repeat
        Rounds of measurement; the best time of each job is kept.
    skip_summary
        Leave out ``df.summary()``.

    Returns
    -------
    dict
        Table, rows, columns, cores, the best seconds of each job, the ratios and the
        profile's rows per second per core; ``None`` for what was not measured.
    """
    profile = import_profile()
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    df = spark.read.parquet(table)
    rows = df.count()
    cores = spark.sparkContext.defaultParallelism
    _noop(spark.read.schema(df.schema).parquet(df.inputFiles()[0]))  # JVM warm-up

    jobs: dict[str, Callable[[], object]] = {
        "noop": lambda: _noop(df),
        "profile": lambda: profile(df),
    }
    if not skip_summary:
        jobs["summary"] = lambda: _summary(df)
    best: dict[str, float | None] = {"noop": None, "profile": None, "summary": None}
    for round_ in range(1, repeat + 1):
        for name, job in jobs.items():
            start = time.perf_counter()
            job()
            seconds = time.perf_counter() - start
            print(f"round {round_}/{repeat}  {name:<8} {seconds:8.2f} s", flush=True)
            previous = best[name]
            best[name] = seconds if previous is None else min(previous, seconds)

    noop, prof, summary = best["noop"], best["profile"], best["summary"]
    assert noop is not None and prof is not None
    return {
        "table": str(Path(table).resolve()) if "://" not in table else table,
        "rows": rows,
        "columns": len(df.columns),
        "cores": cores,
        "repeat": repeat,
        "seconds": best,
        "profile_over_noop": prof / noop,
        "profile_over_summary": prof / summary if summary else None,
        "profile_rows_per_second_per_core": rows / prof / cores,
        "spark": spark.version,
        "python": platform.python_version(),
        "machine": platform.node(),
        "started": started,
    }


def report(figures: dict[str, Any]) -> str:
    """Format the figures returned by :func:`run` for the console."""
    seconds = figures["seconds"]
    lines = [
        f"table    {figures['table']}",
        f"         {figures['rows']:,} rows x {figures['columns']} columns, "
        f"{figures['cores']} cores, best of {figures['repeat']}",
        f"noop     {seconds['noop']:8.2f} s",
        f"profile  {seconds['profile']:8.2f} s   "
        f"{figures['profile_rows_per_second_per_core']:,.0f} rows/s/core",
    ]
    if seconds["summary"] is not None:
        lines.append(f"summary  {seconds['summary']:8.2f} s")
    lines.append(f"profile / noop     {figures['profile_over_noop']:6.2f}")
    if figures["profile_over_summary"] is not None:
        lines.append(f"profile / summary  {figures['profile_over_summary']:6.2f}")
    return "\n".join(lines)


def _positive(text: str) -> int:
    """Parse a positive integer, accepting underscores (``10_000_000``)."""
    value = int(text.replace("_", ""))
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        description="Time profile() against a noop scan and df.summary() on one table."
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--table", help="path of a Parquet table")
    source.add_argument(
        "--generate",
        type=_positive,
        metavar="ROWS",
        help="use (and first write, if missing) a mixed table of ROWS rows in bench-data/",
    )
    parser.add_argument("--repeat", type=_positive, default=1, help="rounds, best kept")
    parser.add_argument("--skip-summary", action="store_true", help="leave out df.summary()")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write figures here")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = parse_args(argv)
    import_profile()  # fail before starting Spark if the library is not there
    if args.table and "://" not in args.table and not Path(args.table).exists():
        print(f"error: `--table` {args.table} does not exist", file=sys.stderr)
        return 2
    spark = generate_table.local_session("spark-explore-bench")
    try:
        table = str(mixed_table(spark, args.generate)) if args.generate else args.table
        figures = run(spark, table, args.repeat, args.skip_summary)
    finally:
        spark.stop()
    print(report(figures))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
