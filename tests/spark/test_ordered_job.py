"""The ordered-tests job: NIST r(1) through a sort over several partitions, and its CLI.

References: NIST StRD certified lag-1 autocorrelations (certified.json), with the exact r(1)
of the stored doubles (rational arithmetic) as the float64 ceiling; statsmodels 0.15
``stats.stattools.durbin_watson`` and ``sandbox.stats.runs.runstest_1samp``.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from pyspark import cloudpickle
from statsmodels.sandbox.stats.runs import runstest_1samp
from statsmodels.stats.stattools import durbin_watson as sm_durbin_watson

from tests.conftest import REPO
from tests.nist import certified, lre, univariate_values
from tests.stats.test_serial import _exact_r1

SETS = [
    "Lew",
    "Lottery",
    "Mavro",
    "Michelso",
    "NumAcc1",
    "NumAcc2",
    "NumAcc3",
    "NumAcc4",
    "PiDigits",
]


@pytest.fixture(scope="module")
def job():
    """jobs/ordered_tests.py as a module; its functions travel to the workers by value."""
    path = REPO / "jobs" / "ordered_tests.py"
    spec = importlib.util.spec_from_file_location("ordered_tests", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["ordered_tests"] = module
    spec.loader.exec_module(module)
    cloudpickle.register_pickle_by_value(module)
    yield module
    cloudpickle.unregister_pickle_by_value(module)
    del sys.modules["ordered_tests"]


@pytest.fixture(scope="module")
def nist_series(shared_data) -> dict[str, np.ndarray]:
    return {name: np.array(univariate_values(shared_data, name)) for name in SETS}


@pytest.fixture(scope="module")
def nist_frame(spark, nist_series):
    """All sets as columns of one table ordered by `i` (shorter sets end in nulls), stored
    in a scrambled row order so that only the job's sort restores it."""
    length = max(v.size for v in nist_series.values())
    rows = [
        (i, *[float(v[i]) if i < v.size else None for v in nist_series.values()])
        for i in range(length)
    ]
    schema = "i long, " + ", ".join(f"{name} double" for name in SETS)
    df = spark.createDataFrame(rows, schema)
    return df.orderBy((df.i * 7919) % 5003).repartition(5)


@pytest.fixture(scope="module")
def ordered(job, nist_frame):
    return job.ordered_statistics(nist_frame, "i", SETS, partitions=7)


def test_lag1_autocorrelation_matches_nist_over_seven_partitions(
    ordered, nist_series, shared_data
) -> None:
    assert ordered["partitions"] == 7 and ordered["passes"] == 2
    assert "sort was needed" in ordered["sort"] and "shuffle" in ordered["sort"]
    assert ordered["tied_order_keys"] == 0 and ordered["rows_with_null_order_key"] == 0
    info = certified(shared_data)["univariate"]
    for name in SETS:
        values = nist_series[name]
        r1 = ordered["columns"][name]["lag1_autocorrelation"]
        assert r1["n"] == values.size
        cert = info[name]["certified"]["autocorr_lag1"]["value"]
        exact = _exact_r1(values)
        # float64 cannot hold the decimal data: `exact` is the ceiling (NumAcc4: 11.03)
        assert lre(r1["effect_size"], exact) >= 13.5, name
        assert lre(r1["effect_size"], cert) >= min(lre(exact, cert), 13.5) - 0.3, name
        assert lre(r1["effect_size"], cert) >= 11.0, name


def test_durbin_watson_and_runs_match_statsmodels(ordered, nist_series) -> None:
    for name in ("Lew", "Lottery", "Michelso", "PiDigits"):
        y = nist_series[name]
        got = ordered["columns"][name]
        np.testing.assert_allclose(
            got["durbin_watson"]["statistic"], sm_durbin_watson(y - y.mean()), rtol=1e-12
        )
        cutoff = got["runs_cutoff"]["value"]
        np.testing.assert_allclose(cutoff, y.mean(), rtol=1e-15)
        z, p = runstest_1samp(y, cutoff=cutoff, correction=False)
        np.testing.assert_allclose(got["runs_test"]["statistic"], z, rtol=1e-12)
        np.testing.assert_allclose(got["runs_test"]["pvalue"], p, rtol=1e-9)


def test_cutoffs_from_a_profile_need_one_pass_and_give_the_same_result(
    job, nist_frame, nist_series, ordered
) -> None:
    means = {name: float(values.mean()) for name, values in nist_series.items()}
    one_pass = job.ordered_statistics(
        nist_frame, "i", ["Lew", "PiDigits"], partitions=3, cutoffs=means
    )
    assert one_pass["passes"] == 1 and one_pass["partitions"] == 3
    for name in ("Lew", "PiDigits"):
        got, want = one_pass["columns"][name], ordered["columns"][name]
        assert got["runs_cutoff"]["source"] == "mean from the profile"
        assert got["runs_test"]["details"]["runs"] == want["runs_test"]["details"]["runs"]
        assert (
            lre(
                got["lag1_autocorrelation"]["effect_size"],
                want["lag1_autocorrelation"]["effect_size"],
            )
            >= 13.5
        )


def test_command_line_writes_json_and_counts_exact_duplicates(job, spark, tmp_path, capsys) -> None:
    path = tmp_path / "series"
    rows = [(i % 50, float((i * 37) % 11), "a" if i % 3 else None) for i in range(120)]
    spark.createDataFrame(rows, "t long, y double, s string").write.parquet(str(path))
    out = tmp_path / "out"
    argv = [
        "--table",
        str(path),
        "--output",
        str(out),
        "--order-by",
        "t",
        "--columns",
        "y",
        "--exact-duplicates",
    ]
    assert job.main(argv) == 0
    stdout = capsys.readouterr().out
    assert "a sort was needed" in stdout and "exact duplicates" in stdout
    document = json.loads((out / job.OUTPUT_FILE).read_text())
    assert document["rows"] == 120 and document["tied_order_keys"] == 120 - 50
    assert "Spark's choice" in document["notes"][0] and "note:" in stdout
    duplicates = document["exact_duplicates"]
    frame = {(t, y, s) for t, y, s in rows}
    assert duplicates["distinct_rows"] == len(frame)
    assert duplicates["duplicate_rows"] == 120 - len(frame)
    # an existing output is kept unless --overwrite; bad columns exit with status 2
    assert job.main(argv) == job.EXIT_BAD_INPUT
    assert "[OUTPUT_EXISTS]" in capsys.readouterr().err
    # a profile's means are the runs cutoffs: one pass over the sorted rows
    profile_dir = tmp_path / "profile"
    profile_dir.mkdir()
    mean = float(np.mean([y for _, y, _ in rows]))
    (profile_dir / "profile.json").write_text(json.dumps({"columns": {"y": {"mean": mean}}}))
    assert job.main([*argv[:-1], "--overwrite", "--profile", str(profile_dir)]) == 0
    document = json.loads((out / job.OUTPUT_FILE).read_text())
    assert document["passes"] == 1 and "exact_duplicates" not in document
    assert document["columns"]["y"]["runs_cutoff"]["value"] == mean
    bad = ["--table", str(path), "--output", str(tmp_path / "o2"), "--order-by", "t"]
    assert job.main([*bad, "--columns", "nope"]) == job.EXIT_BAD_INPUT
    assert "[COLUMN_NOT_FOUND]" in capsys.readouterr().err
    assert job.main([*bad, "--columns", "s"]) == job.EXIT_BAD_INPUT
    assert "[INVALID_ARGUMENT]" in capsys.readouterr().err
    assert not Path(tmp_path / "o2" / job.OUTPUT_FILE).exists()
