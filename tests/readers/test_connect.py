"""open_source under Spark Connect, where analysis is lazy and errors are gRPC errors.

A Connect session cannot share a JVM with the test session, so the checks run in a child
process that starts a local Connect server on a free port and connects to it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import write_deltalake

pytestmark = pytest.mark.connect

REPO = Path(__file__).resolve().parents[2]

CHILD = r"""
import json, os, sys
from pyspark.sql import SparkSession
from pyspark.sql.connect.session import SparkSession as RemoteSession
from spark_explore.errors import SparkExploreError
from spark_explore.readers import open_source

port, delta, parquet = sys.argv[1], sys.argv[2], sys.argv[3]
server = (
    SparkSession.builder.master("local[1]")
    .config("spark.plugins", "org.apache.spark.sql.connect.SparkConnectPlugin")
    .config("spark.connect.grpc.binding.port", port)
    .config("spark.ui.enabled", "false")
    .getOrCreate()
)
server.sparkContext.setLogLevel("OFF")
os.environ["SPARK_CONNECT_MODE_ENABLED"] = "1"  # pyspark.sql.functions now builds Connect columns
spark = RemoteSession.builder.remote(f"sc://localhost:{port}").getOrCreate()

def attempt(**kwargs):
    try:
        source = open_source(spark, **kwargs)
    except SparkExploreError as exc:
        return {"code": exc.code}
    rows = sorted(tuple(r) for r in source.df.collect())
    return {"format": source.format, "reader": source.delta_reader, "columns": source.df.columns,
            "rows": rows}

cases = {
    "delta": dict(table=delta, columns=["value", "city"], where="year > 2020"),
    "parquet": dict(table=parquet, columns=["b"]),
    "missing_path": dict(table=parquet + ".nope"),
    "missing_table": dict(table="no_db.no_table"),
    "unknown_column": dict(table=parquet, columns=["zz"]),
    "unknown_filter_column": dict(table=parquet, where="zz > 1"),
    "filter_syntax": dict(table=parquet, where="a >"),
    "filter_not_boolean": dict(table=delta, where="value + 1"),
    "unreadable": dict(table=delta + "/_delta_log", fmt="parquet"),
}
print(json.dumps({name: attempt(**kwargs) for name, kwargs in cases.items()}))
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("connect")
    delta = str(root / "delta")
    table = pa.table({"city": ["a b", "x", None], "year": [2020, 2021, 2022], "value": [1, 2, 3]})
    write_deltalake(delta, table, partition_by=["city", "year"])
    parquet = str(root / "t.parquet")
    pq.write_table(pa.table({"a": [1, 2], "b": ["p", "q"]}), parquet)
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(free_port()), delta, parquet],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=root,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_delta_fallback_reads_under_connect(results):
    assert results["delta"] == {
        "format": "delta",
        "reader": "deltalake",
        "columns": ["value", "city"],
        "rows": [[2, "x"], [3, None]],
    }
    assert results["parquet"]["rows"] == [["p"], ["q"]]


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("missing_path", "SOURCE_NOT_FOUND"),
        ("missing_table", "SOURCE_NOT_FOUND"),
        ("unknown_column", "COLUMN_NOT_FOUND"),
        ("unknown_filter_column", "INVALID_FILTER"),
        ("filter_syntax", "INVALID_FILTER"),
        ("filter_not_boolean", "INVALID_FILTER"),
        ("unreadable", "SOURCE_UNREADABLE"),
    ],
)
def test_errors_surface_in_open_source_under_connect(results, case, code):
    assert results[case] == {"code": code}
