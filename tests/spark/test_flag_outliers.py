"""The outlier-rows job (jobs/flag_outliers.py) end to end on a local session.

A generated table with planted outliers is profiled through the command line, then the job
writes its rows beyond the profile's fences. The rows written per rule and column must be
exactly the raw values beyond the fences (counted in numpy), and within the profile's
stated bound of its sketch estimate.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from spark_explore.cli import main as explore
from spark_explore.readers.delta import has_delta_connector
from tests.protocols import PLANTED_SAMPLE, planted_table

REPO = Path(__file__).resolve().parents[2]
RULES = ["tukey1.5", "tukey3", "robust_z", "z"]
COLUMNS = ["skewed", "spiky", "normal_col", "m_mar"]


def _job():
    path = REPO / "jobs" / "flag_outliers.py"
    spec = importlib.util.spec_from_file_location("flag_outliers", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def profiled_folder(spark, tmp_path_factory):
    folder = tmp_path_factory.mktemp("flag")
    table = planted_table()
    path = folder / "table.parquet"
    pq.write_table(table, path)
    out = folder / "profile"
    args = ["profile", "--table", str(path), "--output", str(out), "--quiet"]
    assert explore([*args, "--sample-size", str(PLANTED_SAMPLE)]) == 0
    return table, path, out


def _written(output: Path) -> dict[str, int]:
    flags = pq.read_table(output).column("outlier_flags").to_pylist()
    counts: dict[str, int] = {}
    for labels in flags:
        for label in labels:
            counts[label] = counts.get(label, 0) + 1
    return counts


def test_rows_match_the_raw_values_and_the_profile_estimate(profiled_folder, capsys) -> None:
    table, path, profile = profiled_folder
    output = profile.parent / "rows"
    job = _job()
    rules = ",".join(RULES)
    args = ["--profile", str(profile), "--table", str(path), "--output", str(output)]
    assert job.main([*args, "--rules", rules]) == 0
    err = capsys.readouterr().err
    assert "profile.json" in err  # the fences came from the saved JSON
    results = json.loads((profile / "profile.json").read_text())["protocols"]["outliers"]
    results = results["results"]
    written = _written(output)
    flagged_any = np.zeros(table.num_rows, dtype=bool)
    for name in [n for n in table.column_names if n != "g"]:
        x = table.column(name).to_numpy(zero_copy_only=False).astype(float)
        for rule in RULES:
            entry = results[name][rule]
            beyond = np.isfinite(x) & ((x < entry["low"]) | (x > entry["high"]))
            flagged_any |= beyond
            assert written.get(f"{rule}:{name}", 0) == int(beyond.sum()), (rule, name)
            if name in COLUMNS:
                error = abs(int(beyond.sum()) - entry["count_estimate"])
                assert error <= entry["count_error_bound"] + 1, (rule, name)
    assert pq.read_table(output).num_rows == int(flagged_any.sum())
    assert written["tukey3:spiky"] > 0.02 * table.num_rows  # the planted outliers
    # never written over
    assert job.main([*args, "--rules", rules]) == 2
    assert "already exists" in capsys.readouterr().err


def test_fences_recomputed_from_the_saved_state_and_delta_fallback(
    spark, profiled_folder, capsys
) -> None:
    table, path, profile = profiled_folder
    bare = profile.parent / "bare-profile"
    shutil.copytree(profile, bare)
    document = json.loads((bare / "profile.json").read_text())
    del document["protocols"]
    (bare / "profile.json").write_text(json.dumps(document))
    output = profile.parent / "rows-delta"
    args = ["--profile", str(bare), "--table", str(path), "--output", str(output)]
    assert _job().main([*args, "--format", "delta"]) == 0  # default rule: tukey3
    err = capsys.readouterr().err
    assert "state.arrow (recomputed)" in err
    if not has_delta_connector(spark):
        assert "written as Parquet instead of Delta" in err
        assert not (output / "_delta_log").exists()
    results = json.loads((profile / "profile.json").read_text())["protocols"]["outliers"]
    want = {}
    for name in [n for n in table.column_names if n != "g"]:
        x = table.column(name).to_numpy(zero_copy_only=False).astype(float)
        entry = results["results"][name]["tukey3"]
        count = int((np.isfinite(x) & ((x < entry["low"]) | (x > entry["high"]))).sum())
        if count:
            want[f"tukey3:{name}"] = count
    assert _written(output) == want


def test_bad_rule_is_refused(profiled_folder, capsys) -> None:
    _, path, profile = profiled_folder
    args = ["--profile", str(profile), "--table", str(path), "--output", "/tmp/never-written"]
    assert _job().main([*args, "--rules", "tukey9"]) == 2
    assert "`--rules`" in capsys.readouterr().err
    assert not Path("/tmp/never-written").exists()
