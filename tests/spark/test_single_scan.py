"""The profile reads the table exactly once; the merge stages read only partial states."""

from __future__ import annotations

import pyarrow.parquet as pq

from spark_explore.api import profile


def _stage_metrics(spark, group: str) -> list[tuple[int, int, str]]:
    """(input records, shuffle records read, status) of every stage of a job group."""
    context = spark.sparkContext
    store = context._jsc.sc().statusStore()
    stages = []
    for job_id in context.statusTracker().getJobIdsForGroup(group):
        stage_ids = store.job(job_id).stageIds().mkString(",").split(",")
        for stage_id in (int(s) for s in stage_ids if s):
            stage = store.lastStageAttempt(stage_id)
            stages.append((stage.inputRecords(), stage.shuffleReadRecords(), stage.status()))
    return stages


def test_table_is_scanned_once(spark, shared_data, tmp_path) -> None:
    table = pq.read_table(shared_data / "real" / "wine.parquet")
    path = tmp_path / "wine"
    spark.read.parquet(str(shared_data / "real" / "wine.parquet")).repartition(6).write.parquet(
        str(path)
    )
    df = spark.read.parquet(str(path))
    spark.sparkContext.setJobGroup("profile-under-test", "single scan check")
    try:
        result = profile(df)
    finally:
        spark.sparkContext.setLocalProperty("spark.jobGroup.id", None)
    assert result.rows == table.num_rows
    stages = [s for s in _stage_metrics(spark, "profile-under-test") if s[2] != "SKIPPED"]
    reading = [s for s in stages if s[0] > 0]
    assert len(reading) == 1, stages
    assert sum(s[0] for s in stages) == table.num_rows
    # the merge stage reads at most one partial state per scan task, not table rows
    assert all(s[1] <= 64 for s in stages)
