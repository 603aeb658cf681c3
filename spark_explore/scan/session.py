"""Getting a Spark session for the command line and the jobs.

On a cluster (spark-submit, Databricks) a session already exists and is used as it is.
Locally, a small session is built whose Python workers run the driver's own interpreter,
so that they import the same pyarrow and numpy.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from pyspark.sql import SparkSession

from spark_explore.scan.session_options import check_session_options, probe_connect_server

LOG_CONFIG = Path(__file__).resolve().parents[2] / "conf" / "log4j2.properties"

LOCAL_CONF = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "8",
    "spark.sql.session.timeZone": "UTC",
    "spark.driver.memory": "2g",
}


def get_session(
    app_name: str = "spark-explore",
    master: str | None = None,
    remote: str | None = None,
    conf: Mapping[str, str] | None = None,
) -> SparkSession:
    """Return the active Spark session, or start one.

    Parameters
    ----------
    app_name
        Application name shown by the cluster manager.
    master
        Master URL for a new session (``local[*]`` when None): ``local``, ``local[N]``,
        ``local[*]``, ``local[N,F]``, ``local-cluster[W,C,M]``, ``spark://host:port``,
        ``yarn`` or ``k8s://url``, as Spark accepts them.
    remote
        A Spark Connect URL (``sc://host[:port][/;key=value...]``, port 15002 by default,
        or ``local[2]`` to start a local Connect server). Not together with ``master``.
    conf
        Settings of a new local session that replace or add to :data:`LOCAL_CONF`.

    Raises
    ------
    InvalidArgumentError
        ``master`` and ``remote`` are both given, or either has a form Spark does not
        accept (see :func:`~spark_explore.scan.session_options.check_session_options`);
        checked before any session is looked up or started.
    ConnectServerUnreachableError
        No server accepts a connection at the host and port of an ``sc://`` URL within
        :data:`~spark_explore.scan.session_options.PROBE_TIMEOUT` seconds.

    Notes
    -----
    Under spark-submit (the JVM launched Python) and on Databricks a session is configured
    already, and neither ``master`` nor the local settings (``conf`` included) are applied.
    """
    check_session_options(master, remote)
    if remote:
        probe_connect_server(remote)
        return SparkSession.builder.remote(remote).appName(app_name).getOrCreate()
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    builder = SparkSession.builder.appName(app_name)
    launched_by_spark = "PYSPARK_GATEWAY_PORT" in os.environ or "SPARK_REMOTE" in os.environ
    if not launched_by_spark:
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
        builder = builder.master(master or "local[*]")
        for key, value in {**LOCAL_CONF, **(conf or {})}.items():
            builder = builder.config(key, value)
        if LOG_CONFIG.exists():
            builder = builder.config(
                "spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile={LOG_CONFIG.as_uri()}"
            )
    session = builder.getOrCreate()
    if not launched_by_spark:
        # as conf/log4j2.properties: a failure is reported once, by the caller, in one line
        session.sparkContext.setLogLevel("FATAL")
    return session
