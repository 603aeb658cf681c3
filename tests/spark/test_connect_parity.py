"""The same profile through Spark Connect and through a classic session.

A Connect server cannot share a JVM with the test session, so a child process starts a
local server (a classic session with the Connect plugin) and profiles the table with it
through the API; while the server runs, a grandchild runs ``spark-explore profile --remote``,
a pure Connect client as on Databricks serverless compute. The classic profile takes the
default reader, which reads this local Parquet file in the Python workers; the Connect one
is told to read it with Spark, so both readers are compared too.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from tests.spark.reference import check_quantiles

pytestmark = pytest.mark.connect

REPO = Path(__file__).resolve().parents[2]

CHILD = r"""
import json, subprocess, sys
from pyspark.sql import SparkSession
from spark_explore.api import profile_table
from spark_explore.config import ProfileOptions
from spark_explore.report.json_writer import profile_document, _json_safe

port, table, output = sys.argv[1], sys.argv[2], sys.argv[3]
server = (
    SparkSession.builder.master("local[2]")
    .config("spark.plugins", "org.apache.spark.sql.connect.SparkConnectPlugin")
    .config("spark.connect.grpc.binding.port", port)
    .config("spark.ui.enabled", "false")
    .config("spark.sql.shuffle.partitions", "4")
    .getOrCreate()
)
server.sparkContext.setLogLevel("OFF")
classic, _ = profile_table(server, ProfileOptions(table=table, output=output), progress=False)
status = subprocess.run(
    [sys.executable, "-m", "spark_explore.cli", "profile", "--table", table, "--output", output,
     "--remote", f"sc://localhost:{port}", "--quiet", "--debug", "--reader", "spark"]
).returncode
print(json.dumps({"status": status, "classic": _json_safe(profile_document(classic))}))
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        return sock.getsockname()[1]


def _strip_run_fields(document: dict) -> dict:
    """Drop what legitimately differs between two runs: timing, creation time, and which
    reader was asked for and used."""
    document = dict(document)
    document.pop("created")
    document["scan"] = {k: v for k, v in document["scan"].items() if k != "seconds"}
    document["scan"]["config"] = {
        k: v for k, v in document["scan"]["config"].items() if k != "reader"
    }
    document["source"] = {
        k: v for k, v in document["source"].items() if k not in ("reader", "notes")
    }
    return document


def test_connect_profile_equals_classic_profile(shared_data, tmp_path) -> None:
    table = str(shared_data / "real" / "penguins.parquet")
    output = tmp_path / "connect"
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYTHONPATH": str(REPO)}
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(_free_port()), table, str(output)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert child.returncode == 0, child.stderr[-3000:]
    report = json.loads(child.stdout.strip().splitlines()[-1])
    assert report["status"] == 0
    assert report["classic"]["source"]["reader"] == "arrow"
    assert json.loads((output / "profile.json").read_text())["source"]["reader"] == "spark"
    classic = _strip_run_fields(report["classic"])
    connect = _strip_run_fields(json.loads((output / "profile.json").read_text()))
    # Quantiles come from KLL sketches, whose compaction is randomised inside DataSketches:
    # each run's quantiles must lie within the rank error; everything else must be equal.
    data = pq.read_table(table)
    for document in (classic, connect):
        for name, column in document["columns"].items():
            if "quantiles" in column:
                values = data.column(name).drop_null().to_numpy()
                check_quantiles(column, values[np.isfinite(values)])
                column.pop("quantiles")
    # Protocol results computed from the sketches inherit their randomness; those from
    # exact aggregates and from the (deterministic) sample must be equal.
    protocols = classic.pop("protocols"), connect.pop("protocols")
    assert classic == connect
    exact = [dict(_deterministic_results(p)) for p in protocols]
    assert exact[0] and exact[0] == exact[1]
    assert list(protocols[0]) == list(protocols[1])


def _deterministic_results(node, path=()):
    """(path, result) of every test result computed exactly or on the sample."""
    if isinstance(node, dict):
        if node.get("method") in ("exact-from-aggregates", "reservoir-sample"):
            yield path, node
            return
        for key, value in node.items():
            yield from _deterministic_results(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _deterministic_results(value, (*path, i))
