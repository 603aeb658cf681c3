"""A progress bar on the driver while the scan runs; silent when stderr is not a terminal.

Classic sessions are polled through the status tracker; Spark Connect sessions push progress
to a registered handler. Either way the bar counts finished tasks over known tasks.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

_POLL_SECONDS = 0.5


@contextlib.contextmanager
def scan_progress(spark: SparkSession, enabled: bool | None = None) -> Iterator[None]:
    """Show task progress until the block exits.

    Parameters
    ----------
    spark
        The session running the scan.
    enabled
        Force the bar on or off; by default it is shown only when stderr is a terminal.
    """
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        yield
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (
        TextColumn("profiling"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} tasks"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, transient=True) as bar:
        task = bar.add_task("scan", total=1)

        def show(done: int, total: int) -> None:
            bar.update(task, completed=done, total=max(total, 1))

        if hasattr(spark, "registerProgressHandler") and not hasattr(spark, "sparkContext"):
            yield from _connect_progress(spark, show)
        else:
            yield from _classic_progress(spark, show)


def _classic_progress(spark: Any, show: Any) -> Iterator[None]:
    tracker = spark.sparkContext.statusTracker()
    stop = threading.Event()

    def poll() -> None:
        while not stop.wait(_POLL_SECONDS):
            done = total = 0
            for stage_id in tracker.getActiveStageIds():
                info = tracker.getStageInfo(stage_id)
                if info is not None:
                    done += info.numCompletedTasks
                    total += info.numTasks
            show(done, total)

    thread = threading.Thread(target=poll, name="spark-explore-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _connect_progress(spark: Any, show: Any) -> Iterator[None]:
    def handler(stages: Any, inflight_tasks: int, operation_id: str, done: bool) -> None:
        show(
            sum(stage.num_completed_tasks for stage in stages),
            sum(stage.num_tasks for stage in stages),
        )

    spark.registerProgressHandler(handler)
    try:
        yield
    finally:
        spark.removeProgressHandler(handler)
