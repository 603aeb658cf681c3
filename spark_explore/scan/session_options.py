"""Checking the ``master`` and ``remote`` of a session before anything starts.

A master Spark refuses is otherwise reported late, by the JVM, as a Java stack trace; a
Spark Connect URL that nothing answers makes the Connect client retry for minutes without a
word. Both are checked here first, so that a bad value is one clear line at once.

Only the form of a master is checked: whether a ``spark://`` master or a YARN or Kubernetes
cluster answers is left to Spark. A Spark Connect server is probed with one TCP connection.
"""

from __future__ import annotations

import re
import socket
import urllib.parse

from spark_explore.errors import InvalidArgumentError

CONNECT_DEFAULT_PORT = 15002
"""The port of a Spark Connect URL that names none (as pyspark's ``DefaultChannelBuilder``)."""

PROBE_TIMEOUT = 5.0
"""Seconds to wait for the TCP connection to a Spark Connect server."""

MASTER_FORMS = (
    "local, local[N], local[*], local[N,F], local[*,F], local-cluster[W,C,M], "
    "spark://host:port[,host:port...], yarn or k8s://url (N >= 1)"
)
REMOTE_FORMS = "sc://host[:port][/;key=value...] (port 15002 by default), local or local[...]"

# the patterns of Spark's SparkMasterRegex, matched whole as a Scala pattern match does
_LOCAL_N = re.compile(r"local\[([0-9]+|\*)\]")
_LOCAL_N_FAILURES = re.compile(r"local\[([0-9]+|\*)\s*,\s*([0-9]+)\]")
_LOCAL_CLUSTER = re.compile(r"local-cluster\[\s*([0-9]+)\s*,\s*([0-9]+)\s*,\s*([0-9]+)\s*\]")
_SPARK_HOST_PORT = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[^\s:/,\[\]]+):([0-9]+)")
_NOT_A_MASTER = "is not a master URL"


class ConnectServerUnreachableError(ConnectionError):
    """No Spark Connect server answers at the URL's host and port.

    A failure of the environment rather than of the input, so deliberately not a
    :class:`~spark_explore.errors.SparkExploreError`: the command line reports it as a
    failure (exit status 1), in one line.
    """


def check_session_options(master: str | None, remote: str | None) -> None:
    """Refuse a master or remote Spark would refuse, or both at once.

    Parameters
    ----------
    master
        A Spark master URL, or None. Accepted are the forms of Spark's ``SparkMasterRegex``
        and cluster managers: ``local``, ``local[N]``, ``local[*]``, ``local[N,F]``,
        ``local[*,F]`` (N threads, F task failures), ``local-cluster[W,C,M]``,
        ``spark://host:port`` (several masters separated by commas), ``yarn`` and
        ``k8s://url``. N must be at least 1: Spark refuses ``local[0]`` only once the
        context starts.
    remote
        A Spark Connect URL, or None: ``sc://host[:port][/;key=value...]`` as pyspark's
        ``DefaultChannelBuilder`` parses it (port 15002 when none is given), or a local
        master (``local``, ``local[...]``), for which pyspark starts a local Connect server.

    Raises
    ------
    InvalidArgumentError
        Both are given, or either has a form Spark does not accept.
    """
    if master is not None and remote is not None:
        raise InvalidArgumentError(
            f"both a master ({master}) and a Spark Connect URL ({remote}) were given; "
            "give one: --master for a classic session, --remote for Spark Connect.",
            got={"master": master, "remote": remote},
        )
    if master is not None:
        problem = _master_problem(master)
        if problem:
            raise InvalidArgumentError(
                f"master `{master}` {problem}; Spark accepts {MASTER_FORMS}.",
                got=master,
                expected=MASTER_FORMS,
            )
    if remote is not None:
        problem = _master_problem(remote) if remote.startswith("local") else None
        if not remote.startswith("local") or problem == _NOT_A_MASTER:
            problem = _connect_url_problem(remote)  # `localhost:15002` too: not a local master
        if problem:
            raise InvalidArgumentError(
                f"Spark Connect URL `{remote}` {problem}; use {REMOTE_FORMS}.",
                got=remote,
                expected=REMOTE_FORMS,
            )


def probe_connect_server(remote: str, timeout: float = PROBE_TIMEOUT) -> None:
    """Check that something accepts TCP connections at a Spark Connect URL's host and port.

    Parameters
    ----------
    remote
        A URL :func:`check_session_options` accepts; a local one (``local[...]``, for which
        pyspark starts the server itself) is not probed.
    timeout
        Seconds to wait for the connection.

    Raises
    ------
    ConnectServerUnreachableError
        The host does not resolve, or refuses or does not answer the connection in time.

    Notes
    -----
    Without this check pyspark's Connect client retries an unreachable server with
    exponential backoff for minutes, silently, before it fails.
    """
    if not remote.startswith("sc://"):
        return
    host, port = connect_endpoint(remote)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except TimeoutError as exc:
        raise ConnectServerUnreachableError(
            f"cannot reach the Spark Connect server at {_endpoint(host, port)} "
            f"(no answer within {timeout:g} s)"
        ) from exc
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConnectServerUnreachableError(
            f"cannot reach the Spark Connect server at {_endpoint(host, port)} ({reason})"
        ) from exc


def connect_endpoint(remote: str) -> tuple[str, int]:
    """The host and port of an ``sc://`` URL (the port 15002 when it names none)."""
    url = urllib.parse.urlparse("http" + remote[2:])
    port = url.port
    return url.hostname or "", CONNECT_DEFAULT_PORT if port is None else port


def _endpoint(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _master_problem(master: str) -> str | None:
    """What is wrong with a master URL, or None when Spark accepts its form."""
    if not master.strip():
        return "is empty"
    if master in ("local", "yarn"):
        return None
    match = _LOCAL_N.fullmatch(master) or _LOCAL_N_FAILURES.fullmatch(master)
    if match:
        if match.group(1) != "*" and int(match.group(1)) < 1:
            return "asks for 0 threads"
        return None
    match = _LOCAL_CLUSTER.fullmatch(master)
    if match:
        if int(match.group(1)) < 1 or int(match.group(2)) < 1:
            return "asks for no workers or no cores"
        return None
    if master.startswith("spark://"):
        masters = master[len("spark://") :].split(",")
        if all(_SPARK_HOST_PORT.fullmatch(entry) for entry in masters):
            return None
        return "does not name host:port for every master"
    if master.startswith("k8s://"):
        return None if master[len("k8s://") :].strip() else "names no Kubernetes API server"
    return _NOT_A_MASTER


def _connect_url_problem(remote: str) -> str | None:
    """What is wrong with a Spark Connect URL, or None when pyspark reads it as meant.

    pyspark ignores a query or fragment; they are refused here, since a ``?token=...``
    dropped silently would fail later and less clearly.
    """
    if not remote.strip():
        return "is empty"
    if not remote.startswith("sc://"):
        if "://" not in remote:
            return f"has no scheme (did you mean sc://{remote}?)"
        return "does not start with sc://"
    url = urllib.parse.urlparse("http" + remote[2:])
    if url.path not in ("", "/"):
        return f"has a path ({url.path}); parameters follow `/;`"
    if url.query or url.fragment:
        return "has a query or fragment; parameters follow `/;` as key=value"
    if url.params:
        for part in url.params.split(";"):
            if len(part.split("=")) != 2:
                return f"has a parameter `{part}` that is not key=value"
    if not url.hostname:
        return "names no host"
    try:
        port = url.port
    except ValueError:
        return "has a port that is not a number from 1 to 65535"
    if port == 0:
        return "has port 0"
    return None
