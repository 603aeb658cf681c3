#!/usr/bin/env python
"""Time a profile against a plain scan, the Arrow-transfer floor, ``summary()`` and whylogs.

For one Parquet table, in one process and one local Spark session, these jobs over the same
columns are timed, and each is printed as a ratio to ``noop``:

noop
    ``df.write.format("noop").mode("overwrite").save()`` reads and decodes every column and
    discards the rows: the floor for any single pass over the table.
profile
    ``spark_explore.api.profile(df)``: the one-pass profile, from reading to the finished
    ``ProfileResult`` on the driver.
profile_files
    The same profile with ``reader: arrow`` (``spark_explore.api.profile_table``, from
    opening the path to the finished result): the Python workers read the Parquet files
    with pyarrow themselves instead of receiving Spark's rows as Arrow batches
    (``spark_explore.scan.file_reader``). Its states equal the profile's.
file_floor
    The file reader's tasks, the same byte ranges of the same files, read by the workers
    with pyarrow (the profiled columns only) and only counted: the floor for
    ``profile_files``, as ``arrow_floor`` is the floor for ``profile``.
arrow_floor
    The projection the profile ships to the Python workers
    (``spark_explore.scan.job.project``: one slot per leaf, the row key and the hashes of
    string and decimal leaves, in Arrow batches of the same number of rows), sent through
    ``mapInArrow`` to a function that only counts the rows: the floor for any profile that
    folds the rows in Python. ``profile / arrow_floor`` is then the cost of the states
    themselves. The projection is built once, before the timed rounds, so that the floor is
    the transfer alone; the seconds that building it took on the driver (py4j calls, a few
    per leaf, which the profile pays inside its time) are reported apart.
summary
    ``df.summary().collect()``: Spark's built-in count, mean, stddev, min, quartiles and max.
    It runs with ``spark.sql.ansi.enabled=false``: under ANSI mode its ``avg`` fails with an
    overflow on ``decimal(38,0)`` columns near 1e37, such as the mixed table's ``dec38_big``.
    On 10 million mixed rows it takes about 90 s; ``--skip-summary`` leaves it out.
whylogs
    ``whylogs.api.pyspark.experimental.collect_dataset_profile_view(df)``, when whylogs is
    importable (``--skip-whylogs`` leaves it out); a job that fails is dropped from the
    later rounds with a printed note. whylogs is not a dependency of this project, not even
    an optional one: whylogs 1.6.4 (the latest, December 2024) pins ``pyarrow<13`` in its
    ``spark`` extra, while pyspark 4.2 needs pyarrow >= 18; plain ``whylogs`` installs next to
    pyarrow 26, but its type mapping uses ``np.unicode_``, removed in NumPy 2, so every task
    fails with an ``AttributeError``; and pyarrow 26 in turn needs NumPy >= 2. It runs with
    NumPy 1.26 and pyarrow 21 (and pyspark 4.2, Python 3.11) in a separate environment,
    which ``scripts/whylogs_env.sh`` creates as ``.venv-whylogs/`` with this package in it;
    this script run by that environment's Python times all the jobs side by side.

Each job runs ``--repeat`` times, in interleaved rounds (noop, profile, arrow_floor, ...) so
that a change in machine load hits all of them alike, and the best (shortest) time is kept
as the least disturbed. The ratio of the profile to the floor is also printed round by
round, with the median of the rounds after the first: the two jobs run one after the
other, so a round's ratio shares its load, while the best times may come from different
rounds. A noop scan of one file first warms up the JVM, so that the first timed job does
not pay for it. The first profile also starts the Python workers and imports the library
in them, which a fresh session pays once; ``--repeat 2`` leaves that out.

Besides the times, the run reports for the profile: rows per second per core; the Spark jobs
and stages it ran and how many of those stages read the table (stages with input records or
input bytes, from the status store; every job runs in its own job group); the size of the
merged state (the serialized ``StateBundle``); and the peak resident memory (``VmRSS``) of the
Python worker processes, polled from ``/proc`` every 50 ms: the largest single worker and the
largest sum over the daemon and its workers (pages that the workers share with the daemon
count once in each of them). Workers are reused between jobs, so the figure printed is that of
the first profile round, before any other Python job ran in them; every round's is kept in
the JSON. The stages' input bytes are kept in the JSON too, but for Parquet Spark counts
little more than the footers there: the scans are told by their input records.

With ``--check-distinct`` (on by default for ``--case strings``) the string columns'
distinct estimates are compared with exact counts from one more, untimed job.

Tables
------
``--table PATH`` takes any Parquet table. ``--case NAME`` picks a preset synthetic table in
``bench-data/``, written by ``scripts/generate_table.py`` the first time (see :data:`CASES`):
``mixed`` (10M rows x 20 mixed columns), ``wide`` (1M rows x 1000 doubles), ``long`` (100M
rows x 10 columns of the narrow shape) and ``strings`` (10M rows: a key column with a
distinct value per row, and a Zipf column). ``--rows`` and, for ``wide``, ``--columns``
override the preset's size; the folder is named after shape, rows and columns, e.g.
``bench-data/wide_1m_x1000``, so that no two sizes or cases share data (``--data-dir``
puts them elsewhere). ``--generate ROWS`` is short for ``--case mixed --rows ROWS``.

Why ratios
----------
Absolute seconds depend on the cores, the disk cache, the JVM and whatever else the machine
runs; on a shared machine they can vary twofold from one run to the next. Jobs measured
side by side suffer the same conditions, so their ratios are far more stable:
``profile / noop`` is what profiling costs on top of reading the data (1 would be free), and
``profile / summary`` compares it with what Spark users run today. Rows per second per core
is printed for scale, but compare it only between runs on the same machine.

JSON
----
``--json FILE`` writes one document per run: the figures, the run's configuration (case,
table, rows, columns, repeat, skipped jobs), the versions (spark_explore and its git commit,
Spark, Java, Python, pyarrow, NumPy, pandas, whylogs) and the machine. FILE holds a JSON list
of runs, oldest first: an existing FILE is never replaced but extended by the new run (a
FILE holding a single document becomes a list of two), so runs can be compared; a FILE that
is not JSON is refused before anything runs.

Examples
--------
::

    python scripts/bench.py --case mixed --skip-summary --json out/bench.json
    python scripts/bench.py --case long --rows 30_000_000 --json out/bench.json
    python scripts/bench.py --case wide --rows 100_000 --columns 200
    python scripts/bench.py --table /data/events.parquet --repeat 3
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "scripts")]

import generate_table  # noqa: E402  (needs the path set above)
import pyarrow as pa  # noqa: E402
from pyspark.sql import DataFrame, SparkSession  # noqa: E402

BENCH_DATA = REPO / "bench-data"
JOBS = ("noop", "profile", "arrow_floor", "profile_files", "file_floor", "summary", "whylogs")
#: The jobs whose Python workers' memory is watched.
PROFILES = ("profile", "profile_files")
POLL_SECONDS = 0.05


@dataclass(frozen=True)
class Case:
    """A preset benchmark table, written by :func:`generate_table.generate`.

    Attributes
    ----------
    shape
        Shape of ``generate_table``.
    rows
        Default number of rows.
    columns
        Number of top-level columns; only the ``wide`` shape can change it.
    about
        One line for ``--help``.
    """

    shape: str
    rows: int
    columns: int
    about: str


#: The ``--case`` presets. The ``strings`` shape is generated with ``distinct = rows``, so its
#: key column has one distinct value per row whatever ``--rows`` is.
CASES = {
    "mixed": Case("mixed", 10_000_000, 20, "10M rows x 20 columns of mixed types"),
    "wide": Case("wide", 1_000_000, 1000, "1M rows x 1000 normal doubles"),
    "long": Case("narrow", 100_000_000, 10, "100M rows x 10 numeric and string columns"),
    "strings": Case("strings", 10_000_000, 2, "10M rows: an all-distinct key and a Zipf string"),
}


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


def _label(rows: int) -> str:
    """Return ``10m`` for 10 000 000, ``200k`` for 200 000, the digits otherwise."""
    if rows % 1_000_000 == 0:
        return f"{rows // 1_000_000}m"
    if rows % 1000 == 0:
        return f"{rows // 1000}k"
    return str(rows)


def case_table(
    spark: SparkSession, case: str, rows: int, columns: int, folder: Path = BENCH_DATA
) -> Path:
    """Return the table of a ``--case`` in ``bench-data/``, generating it if needed.

    Parameters
    ----------
    spark
        Session that writes the table.
    case
        Key of :data:`CASES`.
    rows
        Number of rows.
    columns
        Number of columns; must be the preset's except for the ``wide`` shape.
    folder
        Folder of the benchmark tables.

    Returns
    -------
    Path
        ``<folder>/<shape>_<rows>_x<columns>``, e.g. ``bench-data/narrow_100m_x10``. For the
        mixed shape an existing table of the older name ``mixed_<rows>`` is reused.
    """
    shape = CASES[case].shape
    path = folder / f"{shape}_{_label(rows)}_x{columns}"
    legacy = folder / f"mixed_{_label(rows)}"
    for candidate in (path, legacy) if shape == "mixed" else (path,):
        if (candidate / "_SUCCESS").exists():
            print(f"reusing {candidate}")
            return candidate
    written = generate_table.generate(
        spark,
        str(path),
        overwrite=True,
        shape=shape,
        rows=rows,
        columns=columns,
        distinct=rows,
    )
    print(written.describe())
    return path


def _arrow_floor(projected: DataFrame, batch_rows: int) -> int:
    """Ship a projection to the Python workers in Arrow batches, count the rows there.

    Parameters
    ----------
    projected, batch_rows
        As returned by ``spark_explore.scan.job.project``.

    Returns
    -------
    int
        Rows counted by the workers.
    """
    from spark_explore.scan import job

    def count_rows(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        # nested, so that cloudpickle ships it by value even when this module is imported
        rows = 0
        for batch in batches:
            rows += batch.num_rows
        yield pa.RecordBatch.from_pydict({"rows": [rows]})

    with job.session_conf(projected.sparkSession, job.batch_conf(batch_rows)):
        counts = projected.mapInArrow(count_rows, "rows long").collect()
    return sum(row["rows"] for row in counts)


def _file_floor(spark: SparkSession, scan: Any, columns: list[str]) -> int:
    """Read the file reader's byte ranges in the Python workers with pyarrow, count the rows.

    Parameters
    ----------
    spark
        The session.
    scan
        The ``FileScan`` of the profile's file reader.
    columns
        The columns to read.

    Returns
    -------
    int
        Rows counted by the workers.
    """
    tasks = scan.tasks

    def count_rows(ids: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        # nested, so that cloudpickle ships it by value even when this module is imported
        from spark_explore.scan.file_batches import (
            open_file,
            split_row_groups,
            streaming_parquet,
        )

        rows = 0
        for batch in ids:
            for task in batch.column(0).to_pylist():
                for split in tasks[task]:
                    with open_file(split.path) as handle:
                        parquet = streaming_parquet(handle)
                        groups = split_row_groups(parquet.metadata, split)
                        for read in parquet.iter_batches(
                            row_groups=groups, columns=columns, use_threads=False
                        ):
                            rows += read.num_rows
        yield pa.RecordBatch.from_pydict({"rows": [rows]})

    ids = spark.range(0, len(tasks), 1, max(1, len(tasks)))
    return sum(row["rows"] for row in ids.mapInArrow(count_rows, "rows long").collect())


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


def import_whylogs() -> tuple[Callable[[DataFrame], Any] | None, str]:
    """Return whylogs' Spark profiler and its version, or None and why it is missing."""
    os.environ.setdefault("WHYLOGS_NO_ANALYTICS", "1")  # no usage report over the network
    try:
        import whylogs
        from whylogs.api.pyspark.experimental import collect_dataset_profile_view
    except ImportError as exc:
        return None, f"whylogs is not importable ({exc})"
    return collect_dataset_profile_view, str(whylogs.__version__)


@contextlib.contextmanager
def job_group(spark: SparkSession, group: str) -> Iterator[None]:
    """Run the Spark jobs started in the block in job group ``group``."""
    context = spark.sparkContext
    context.setJobGroup(group, f"bench: {group}")
    try:
        yield
    finally:
        context.setLocalProperty("spark.jobGroup.id", None)  # type: ignore[arg-type]
        context.setLocalProperty("spark.job.description", None)  # type: ignore[arg-type]


def stage_figures(spark: SparkSession, group: str) -> dict[str, int]:
    """Count the jobs, stages and table scans of a job group, from Spark's status store.

    Parameters
    ----------
    spark
        Classic session that ran the group (the status store is reached through py4j).
    group
        Job group, see :func:`job_group`.

    Returns
    -------
    dict
        ``jobs``, ``stages`` (run, not skipped), ``scans`` (stages with input records or input
        bytes, i.e. that read the table), and the ``input_records`` and ``input_bytes`` of all
        stages.
    """
    context = spark.sparkContext
    scala_context = context._jsc.sc()  # type: ignore[union-attr]
    with contextlib.suppress(Exception):  # let the listener bus record the last events
        scala_context.listenerBus().waitUntilEmpty(10_000)
    store = scala_context.statusStore()
    job_ids = context.statusTracker().getJobIdsForGroup(group)
    stage_ids: set[int] = set()
    for job_id in job_ids:
        listed = store.job(job_id).stageIds().mkString(",")
        stage_ids.update(int(s) for s in listed.split(",") if s)
    figures = {"jobs": len(job_ids), "stages": 0, "scans": 0, "input_records": 0}
    figures["input_bytes"] = 0
    for stage_id in sorted(stage_ids):
        stage = store.lastStageAttempt(stage_id)
        if str(stage.status()) == "SKIPPED":
            continue
        records, size = int(stage.inputRecords()), int(stage.inputBytes())
        figures["stages"] += 1
        figures["scans"] += int(records > 0 or size > 0)
        figures["input_records"] += records
        figures["input_bytes"] += size
    return figures


class WorkerMemory:
    """Poll the resident memory of this process's PySpark worker processes in a thread.

    The workers are the descendants of this (driver) process whose command line runs
    ``pyspark.daemon`` or ``pyspark.worker``: the JVM starts the daemon, which forks a worker
    per task slot. The tree is walked through ``/proc/<pid>/task/<tid>/children`` every
    second; the daemons' children are listed and every process's ``VmRSS`` read every
    ``interval`` seconds. Linux only: elsewhere the figures stay None.

    Parameters
    ----------
    interval
        Seconds between two polls.
    """

    def __init__(self, interval: float = POLL_SECONDS) -> None:
        self.interval = interval
        self.peak_worker: int | None = None
        self.peak_total: int | None = None
        self.processes = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._roots: list[int] = []

    def __enter__(self) -> WorkerMemory:
        if Path("/proc/self/status").exists():
            self._thread = threading.Thread(target=self._run, name="worker-rss", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def figures(self) -> dict[str, int | None]:
        """Return the peaks in bytes and the most worker processes seen at once."""
        return {
            "peak_worker_rss_bytes": self.peak_worker,
            "peak_total_rss_bytes": self.peak_total,
            "processes": self.processes,
        }

    def _run(self) -> None:
        discovered = 0.0
        while True:
            now = time.monotonic()
            if now - discovered >= 1.0:
                self._roots = self._discover()
                discovered = now
            self._poll()
            if self._stop.wait(self.interval):
                self._poll()  # once more at the end: short jobs may fit between two polls
                return

    def _poll(self) -> None:
        total, largest, count = 0, 0, 0
        for root in self._roots:
            rss = _rss(root)
            if rss is None:
                continue
            total, count = total + rss, count + 1
            if b"pyspark.worker" in _cmdline(root):
                largest = max(largest, rss)  # a worker started without a daemon
            for child in _children(root):
                rss = _rss(child)
                if rss is not None:
                    total, count = total + rss, count + 1
                    largest = max(largest, rss)
        if count:
            self.peak_total = max(self.peak_total or 0, total)
            self.peak_worker = max(self.peak_worker or 0, largest)
            self.processes = max(self.processes, count)

    @staticmethod
    def _discover() -> list[int]:
        """The PySpark daemons and daemon-less workers among this process's descendants."""
        found: list[int] = []
        queue = _children(os.getpid())
        while queue:
            pid = queue.pop()
            command = _cmdline(pid)
            if b"pyspark.daemon" in command or b"pyspark.worker" in command:
                found.append(pid)  # its children are polled, not walked here
            else:
                queue.extend(_children(pid))
        return found


def _children(pid: int) -> list[int]:
    """Child pids of every thread of ``pid`` (empty if it is gone)."""
    pids: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError):
                text = Path(f"/proc/{pid}/task/{task}/children").read_text()
                pids.extend(int(p) for p in text.split())
    return pids


def _cmdline(pid: int) -> bytes:
    """Command line of ``pid`` (empty if it is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _rss(pid: int) -> int | None:
    """``VmRSS`` of ``pid`` in bytes, or None if it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return None


def run(
    spark: SparkSession,
    table: str,
    repeat: int = 1,
    skip_summary: bool = False,
    skip_whylogs: bool = False,
    check_distinct: bool = False,
) -> dict[str, Any]:
    """Time the jobs on a Parquet table and return the figures.

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
    skip_whylogs
        Leave out whylogs.
    check_distinct
        Also compare the string columns' distinct estimates with exact counts
        (:func:`distinct_check`).

    Returns
    -------
    dict
        Table, rows, columns, cores, the best seconds of each job and their ratios to noop,
        the profile's rows per second per core, Spark jobs, stages and scans, merged state
        size and Python workers' memory; ``None`` for what was not measured, and in
        ``notes`` why.
    """
    from spark_explore.api import profile_table
    from spark_explore.config import ProfileOptions, ScanConfig
    from spark_explore.readers import Source, spark_errors
    from spark_explore.scan.file_reader import choose_reader
    from spark_explore.scan.job import project
    from spark_explore.scan.plan import plan_from_schema

    profile = import_profile()
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    try:
        df = spark.read.parquet(table)
        rows = df.count()
    except Exception as exc:  # Spark raises py4j, analysis and execution errors alike
        reason = spark_errors.summary(exc)
        print(f"error: cannot read `--table` {table} as Parquet: {reason}", file=sys.stderr)
        raise SystemExit(2) from None
    cores = spark.sparkContext.defaultParallelism
    plan = plan_from_schema(df.schema)
    notes: dict[str, str] = {}
    _noop(spark.read.schema(df.schema).parquet(df.inputFiles()[0]))  # JVM warm-up
    start = time.perf_counter()
    projected, batch_rows = project(df, plan)
    projection_seconds = time.perf_counter() - start

    file_options = ProfileOptions(table, "unused", scan=ScanConfig(reader="arrow"))
    file_source = Source(df, table, "parquet", data_files=tuple(df.inputFiles()))
    file_scan = choose_reader(spark, file_source, plan, None).scan
    results: dict[str, Any] = {}
    floor_rows: list[int] = []
    file_floor_rows: list[int] = []
    jobs: dict[str, Callable[[], object]] = {
        "noop": lambda: _noop(df),
        "profile": lambda: results.setdefault("profile", profile(df)),
        "arrow_floor": lambda: floor_rows.append(_arrow_floor(projected, batch_rows)),
        "profile_files": lambda: results.setdefault(
            "profile_files", profile_table(spark, file_options, progress=False)[0]
        ),
        "file_floor": lambda: file_floor_rows.append(_file_floor(spark, file_scan, df.columns)),
    }
    if skip_summary:
        notes["summary"] = "skipped (--skip-summary)"
    else:
        jobs["summary"] = lambda: _summary(df)
    whylogs_profile, whylogs_version = import_whylogs()
    if skip_whylogs:
        notes["whylogs"] = "skipped (--skip-whylogs)"
    elif whylogs_profile is None:
        notes["whylogs"] = f"skipped: {whylogs_version}"
        print(f"note: whylogs {notes['whylogs']}", flush=True)
    else:
        jobs["whylogs"] = lambda: whylogs_profile(df)

    best: dict[str, float | None] = dict.fromkeys(JOBS)
    rounds: dict[str, list[float]] = {name: [] for name in JOBS}
    spark_figures: dict[str, dict[str, int]] = {}
    memory: dict[str, list[dict[str, int | None]]] = {name: [] for name in PROFILES}
    for round_ in range(1, repeat + 1):
        for name, job in list(jobs.items()):
            group = f"bench-{name}-{round_}"
            watch = WorkerMemory() if name in PROFILES else contextlib.nullcontext()
            start = time.perf_counter()
            try:
                with job_group(spark, group), watch:
                    job()
            except Exception as exc:
                if name != "whylogs":
                    raise
                lines = [line for line in str(exc).splitlines() if line.strip()]
                notes[name] = f"failed: {lines[-1].strip() if lines else type(exc).__name__}"
                print(f"round {round_}/{repeat}  {name:<11} {notes[name]}", flush=True)
                del jobs[name]
                continue
            seconds = time.perf_counter() - start
            print(f"round {round_}/{repeat}  {name:<13} {seconds:8.2f} s", flush=True)
            rounds[name].append(seconds)
            previous = best[name]
            best[name] = seconds if previous is None else min(previous, seconds)
            spark_figures[name] = stage_figures(spark, group)
            if isinstance(watch, WorkerMemory):
                memory[name].append(watch.figures())

    noop, prof, summary = best["noop"], best["profile"], best["summary"]
    files, file_floor = best["profile_files"], best["file_floor"]
    assert noop is not None and prof is not None and files is not None
    if floor_rows and set(floor_rows) != {rows}:
        notes["arrow_floor"] = f"counted {floor_rows} rows, expected {rows}"
    if file_floor_rows and set(file_floor_rows) != {rows}:
        notes["file_floor"] = f"counted {file_floor_rows} rows, expected {rows}"
    if results["profile_files"].rows != rows:
        notes["profile_files"] = f"profiled {results['profile_files'].rows} rows, expected {rows}"
    bundle_bytes = len(results["profile"].bundle.to_bytes())
    floor = best["arrow_floor"]
    whylogs = best["whylogs"]
    return {
        "table": str(Path(table).resolve()) if "://" not in table else table,
        "rows": rows,
        "columns": len(df.columns),
        "leaves": len(plan.leaves),
        "batch_rows": batch_rows,
        "projection_seconds": projection_seconds,
        "cores": cores,
        "repeat": repeat,
        "seconds": best,
        "over_noop": {name: s / noop if s is not None else None for name, s in best.items()},
        "profile_over_noop": prof / noop,
        "profile_over_arrow_floor": prof / floor if floor else None,
        "round_seconds": rounds,
        "profile_over_arrow_floor_by_round": [
            p / f for p, f in zip(rounds["profile"], rounds["arrow_floor"])
        ],
        "profile_over_summary": prof / summary if summary else None,
        "profile_rows_per_second_per_core": rows / prof / cores,
        "file_reader": {
            "tasks": len(file_scan.tasks),
            "files": len(df.inputFiles()),
            "over_noop": files / noop,
            "over_file_floor": files / file_floor if file_floor else None,
            "over_arrow_floor": files / floor if floor else None,
            "over_profile": files / prof,
            "summary_over": summary / files if summary else None,
            "whylogs_over": whylogs / files if whylogs else None,
            "rows_per_second_per_core": rows / files / cores,
            "by_round": [p / f for p, f in zip(rounds["profile_files"], rounds["file_floor"])],
            "state_bytes": len(results["profile_files"].bundle.to_bytes()),
        },
        "spark_jobs": spark_figures,
        "state_bytes": bundle_bytes,
        "python_workers": {
            name: figures[0] | {"rounds": figures} for name, figures in memory.items()
        },
        "distinct_check": distinct_check(df, results["profile"]) if check_distinct else None,
        "notes": notes,
        "spark": spark.version,
        "python": platform.python_version(),
        "machine": platform.node(),
        "started": started,
    }


def distinct_check(df: DataFrame, result: Any) -> list[dict[str, Any]]:
    """The profile's distinct estimates of the string columns beside their exact counts.

    The exact counts come from one more Spark job (``count_distinct``), run after the
    timed rounds. An estimate is within its stated error when it deviates from the truth
    by at most two of the sketch's relative standard errors (``within_2_se``), the
    interval the profile reports as ``distinct_lower_bound`` .. ``distinct_upper_bound``.

    Parameters
    ----------
    df
        The table.
    result
        The ``ProfileResult`` of one profile of ``df``.
    """
    from pyspark.sql import functions as F

    names = [f.name for f in df.schema.fields if f.dataType.typeName() == "string"]
    if not names:
        return []
    exact = df.agg(*(F.count_distinct(F.col(n)).alias(n) for n in names)).first()
    checks = []
    for name in names:
        column = result.columns[name]
        truth, estimate = int(exact[name]), float(column["distinct_estimate"])
        error = abs(estimate - truth) / truth if truth else 0.0
        checks.append(
            {
                "column": name,
                "exact": truth,
                "estimate": estimate,
                "lower_bound": column["distinct_lower_bound"],
                "upper_bound": column["distinct_upper_bound"],
                "relative_error": error,
                "stated_relative_error": column["distinct_relative_error"],
                "within_2_se": error <= 2 * column["distinct_relative_error"],
                "within_bounds": column["distinct_lower_bound"]
                <= truth
                <= column["distinct_upper_bound"],
            }
        )
    return checks


def environment(spark: SparkSession) -> dict[str, Any]:
    """Return the versions and the machine of the run, for the JSON document."""
    import numpy
    import pandas

    import spark_explore

    versions: dict[str, str | None] = {
        "spark_explore": spark_explore.__version__,
        "git_commit": _git("rev-parse", "HEAD"),
        "spark": spark.version,
        "java": None,
        "python": platform.python_version(),
        "pyarrow": pa.__version__,
        "numpy": numpy.__version__,
        "pandas": pandas.__version__,
        "whylogs": None,
    }
    if versions["git_commit"] is not None:
        versions["git_dirty"] = "yes" if _git("status", "--porcelain") else "no"
    with contextlib.suppress(Exception):
        jvm = spark.sparkContext._jvm
        versions["java"] = str(jvm.System.getProperty("java.version"))  # type: ignore[union-attr]
    with contextlib.suppress(ImportError):
        import whylogs

        versions["whylogs"] = str(whylogs.__version__)
    machine = {
        "node": platform.node(),
        "platform": platform.platform(),
        "cpu": _proc_field("/proc/cpuinfo", "model name"),
        "cpus": os.cpu_count(),
        "memory": _proc_field("/proc/meminfo", "MemTotal"),
        "spark_master": spark.sparkContext.master,
    }
    return {"versions": versions, "machine": machine}


def _git(*args: str) -> str | None:
    """Output of a git command in the repository, or None if git fails."""
    try:
        done = subprocess.run(
            ["git", "-C", str(REPO), *args], capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return done.stdout.strip()


def _proc_field(path: str, key: str) -> str | None:
    """Value of the first ``key: value`` line of a ``/proc`` file, or None."""
    with contextlib.suppress(OSError):
        for line in Path(path).read_text().splitlines():
            name, _, value = line.partition(":")
            if name.strip() == key:
                return value.strip()
    return None


def _mib(size: int | None) -> str:
    return "-" if size is None else f"{size / 2**20:,.1f} MiB"


def report(figures: dict[str, Any]) -> str:
    """Format the figures returned by :func:`run` for the console."""
    seconds, ratios, notes = figures["seconds"], figures["over_noop"], figures["notes"]
    lines = [
        f"table    {figures['table']}",
        f"         {figures['rows']:,} rows x {figures['columns']} columns "
        f"({figures['leaves']} leaves), {figures['cores']} cores, best of {figures['repeat']}",
        f"         projection built in {figures['projection_seconds']:.2f} s, Arrow batches of "
        f"{figures['batch_rows']:,} rows",
        f"{'':<14} {'seconds':>8}  {'/ noop':>6}",
    ]
    for name in JOBS:
        if seconds[name] is None:
            lines.append(f"{name:<14} {'-':>8}  {'-':>6}  {notes.get(name, '')}")
            continue
        line = f"{name:<14} {seconds[name]:8.2f}  {ratios[name]:6.2f}"
        if name == "profile":
            line += f"  {figures['profile_rows_per_second_per_core']:,.0f} rows/s/core"
        lines.append(line)
    if figures["profile_over_arrow_floor"] is not None:
        lines.append(f"profile / arrow_floor  {figures['profile_over_arrow_floor']:6.2f}")
        by_round = figures["profile_over_arrow_floor_by_round"]
        if len(by_round) > 1:  # the first round's profile also starts the workers
            each = " ".join(f"{ratio:.2f}" for ratio in by_round)
            median = statistics.median(by_round[1:])
            lines.append(f"  round by round: {each} (median from round 2 on: {median:.2f})")
    if figures["profile_over_summary"] is not None:
        lines.append(f"profile / summary      {figures['profile_over_summary']:6.2f}")
    for name, jobs in figures["spark_jobs"].items():
        if name in ("profile_files", "file_floor"):  # the workers read the files, not Spark
            lines.append(
                f"{name + ':':<14} Spark jobs {jobs['jobs']}, stages {jobs['stages']}; the "
                f"files read by the Python workers ({jobs['input_records']:,} task ids read)"
            )
        elif name in ("profile", "arrow_floor", "whylogs"):
            lines.append(
                f"{name + ':':<14} Spark jobs {jobs['jobs']}, stages {jobs['stages']}, "
                f"table scans {jobs['scans']} ({jobs['input_records']:,} input records)"
            )
    reader = figures["file_reader"]
    lines.append(
        f"profile_files: {reader['files']} files in {reader['tasks']} tasks, "
        f"{reader['rows_per_second_per_core']:,.0f} rows/s/core"
    )
    ratios_line = [f"/ noop {reader['over_noop']:.2f}", f"/ profile {reader['over_profile']:.2f}"]
    for key, label in (("over_file_floor", "file_floor"), ("over_arrow_floor", "arrow_floor")):
        if reader[key] is not None:
            ratios_line.append(f"/ {label} {reader[key]:.2f}")
    lines.append("  profile_files " + ", ".join(ratios_line))
    if len(reader["by_round"]) > 1:
        each = " ".join(f"{ratio:.2f}" for ratio in reader["by_round"])
        median = statistics.median(reader["by_round"][1:])
        lines.append(
            f"  / file_floor round by round: {each} (median from round 2 on: {median:.2f})"
        )
    for key, label in (("summary_over", "summary"), ("whylogs_over", "whylogs")):
        if reader[key] is not None:
            lines.append(f"  {label} / profile_files {reader[key]:.2f}")
    lines.append(f"merged state {_mib(figures['state_bytes'])} (serialized StateBundle)")
    for name, memory in figures["python_workers"].items():
        lines += [
            f"python workers' peak RSS in the first {name} round ({memory['processes']} "
            "processes):",
            f"             {_mib(memory['peak_worker_rss_bytes'])} in one worker, "
            f"{_mib(memory['peak_total_rss_bytes'])} in all",
        ]
    for check in figures.get("distinct_check") or []:
        lines.append(
            f"distinct {check['column']}: exact {check['exact']:,}, estimate "
            f"{check['estimate']:,.0f} (error {check['relative_error']:.2%}, stated standard "
            f"error {check['stated_relative_error']:.2%}, within bounds: "
            f"{'yes' if check['within_bounds'] else 'NO'})"
        )
    for name in ("arrow_floor", "file_floor", "profile_files"):
        if name in notes:
            lines.append(f"warning: {name} {notes[name]}")
    return "\n".join(lines)


def read_runs(path: Path) -> list[Any]:
    """Return the runs already in a ``--json`` file: a list, empty if there is no file.

    Raises
    ------
    SystemExit
        If the path cannot be read, or holds something other than a JSON list (of runs),
        so that nothing the user had is overwritten.
    """
    if not path.exists():
        return []
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        print(f"error: cannot read `--json` {path}: {reason}", file=sys.stderr)
        raise SystemExit(2) from None
    if not text.strip():
        return []
    try:
        existing = json.loads(text)
    except json.JSONDecodeError as exc:
        print(f"error: `--json` {path} exists and is not JSON ({exc})", file=sys.stderr)
        raise SystemExit(2) from None
    if not isinstance(existing, list):
        kind = type(existing).__name__
        print(
            f"error: `--json` {path} holds a JSON {kind}, not the list of runs this script "
            "appends to; name another file",
            file=sys.stderr,
        )
        raise SystemExit(2)
    return existing


def check_writable(path: Path) -> None:
    """Exit with a message if ``path``'s folder cannot be created or written in.

    Raises
    ------
    SystemExit
        If the nearest existing ancestor of the folder is not a folder this process may
        write in.
    """
    folder = path.absolute().parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        print(
            f"error: cannot write `--json` {path}: {folder} is not a writable folder",
            file=sys.stderr,
        )
        raise SystemExit(2)


def write_run(path: Path, document: dict[str, Any]) -> int:
    """Append ``document`` to the list of runs in ``path``; return the number of runs."""
    runs = [*read_runs(path), document]
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(runs, indent=2) + "\n")
    partial.replace(path)
    return len(runs)


def _positive(text: str) -> int:
    """Parse a positive integer, accepting underscores (``10_000_000``)."""
    value = int(text.replace("_", ""))
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        description="Time profile() against a noop scan, the Arrow-transfer floor, "
        "df.summary() and whylogs on one table."
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--table", help="path of a Parquet table")
    source.add_argument(
        "--case",
        choices=CASES,
        help="; ".join(f"{name}: {case.about}" for name, case in CASES.items())
        + " (written to bench-data/ if missing)",
    )
    source.add_argument(
        "--generate", type=_positive, metavar="ROWS", help="same as --case mixed --rows ROWS"
    )
    parser.add_argument("--rows", type=_positive, help="rows of the --case table")
    parser.add_argument("--columns", type=_positive, help="columns of --case wide")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=BENCH_DATA,
        metavar="DIR",
        help="folder of the --case tables, default bench-data/",
    )
    parser.add_argument("--repeat", type=_positive, default=1, help="rounds, best kept")
    parser.add_argument("--skip-summary", action="store_true", help="leave out df.summary()")
    parser.add_argument("--skip-whylogs", action="store_true", help="leave out whylogs")
    parser.add_argument(
        "--check-distinct",
        action="store_true",
        help="compare the string columns' distinct estimates with exact counts (one more "
        "job, untimed; on by default for --case strings)",
    )
    parser.add_argument(
        "--json", type=Path, metavar="FILE", help="also append the run to a JSON list here"
    )
    args = parser.parse_args(argv)
    if args.generate:
        if args.rows:
            parser.error("--generate takes the rows itself; give --rows with --case")
        args.case, args.rows = "mixed", args.generate
    if args.case is None and (args.rows or args.columns):
        parser.error("--rows and --columns need --case")
    if args.columns and args.case != "wide":
        parser.error("--columns is for --case wide only")
    if args.case is not None:
        args.rows = args.rows or CASES[args.case].rows
        args.columns = args.columns or CASES[args.case].columns
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = parse_args(argv)
    import_profile()  # fail before starting Spark if the library is not there
    if args.table and "://" not in args.table and not Path(args.table).exists():
        print(f"error: `--table` {args.table} does not exist", file=sys.stderr)
        return 2
    if args.json is not None:  # refuse what cannot be appended to before running anything
        read_runs(args.json)
        check_writable(args.json)
    os.environ.setdefault("WHYLOGS_NO_ANALYTICS", "1")  # inherited by the Python workers
    spark = generate_table.local_session("spark-explore-bench")
    try:
        table = args.table
        if args.case is not None:
            table = str(case_table(spark, args.case, args.rows, args.columns, args.data_dir))
        check = args.check_distinct or args.case == "strings"
        figures = run(spark, table, args.repeat, args.skip_summary, args.skip_whylogs, check)
        config = {
            "case": args.case,
            "table": figures["table"],
            "rows": figures["rows"],
            "columns": figures["columns"],
            "repeat": args.repeat,
            "skip_summary": args.skip_summary,
            "skip_whylogs": args.skip_whylogs,
        }
        document = {"config": config, **figures, **environment(spark)}
    finally:
        spark.stop()
    print(report(figures))
    if args.json is not None:
        runs = write_run(args.json, document)
        print(f"appended run {runs} to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
