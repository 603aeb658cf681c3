"""Bad ``--master`` and ``--remote`` values fail at once, in one line, before any session.

None of these tests needs or starts a Spark session: the values are refused, or the
Connect server found unreachable, before :func:`get_session` looks for the active one.
"""

from __future__ import annotations

import socket
import time

import pytest

from spark_explore.cli import EXIT_BAD_INPUT, EXIT_FAILURE, main
from spark_explore.errors import InvalidArgumentError
from spark_explore.scan.session import get_session
from spark_explore.scan.session_options import (
    ConnectServerUnreachableError,
    check_session_options,
    connect_endpoint,
    probe_connect_server,
)


def _closed_port() -> int:
    """A port nothing listens on: bound to get a free one, then closed."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize(
    "master",
    [
        "local",
        "local[1]",
        "local[16]",
        "local[*]",
        "local[2,3]",
        "local[2, 3]",
        "local[*,4]",
        "local-cluster[2,1,1024]",
        "local-cluster[ 2 , 1 , 1024 ]",
        "spark://host:7077",
        "spark://h1:7077,h2:7077",
        "yarn",
        "k8s://https://api.example.com:6443",
    ],
)
def test_accepted_masters(master: str) -> None:
    check_session_options(master, None)


@pytest.mark.parametrize(
    ("master", "says"),
    [
        ("bogus://x", "is not a master URL"),
        ("local[0]", "0 threads"),
        ("local[0,2]", "0 threads"),
        ("local[-1]", "is not a master URL"),
        ("local[x]", "is not a master URL"),
        ("local[2", "is not a master URL"),
        ("local-cluster[0,1,1024]", "no workers"),
        ("local-cluster[2,1]", "is not a master URL"),
        ("spark://host", "host:port"),
        ("spark://", "host:port"),
        ("spark://h1:7077,", "host:port"),
        ("yarn-client", "is not a master URL"),
        ("k8s://", "Kubernetes"),
        ("sc://host:15002", "is not a master URL"),
        ("mesos://host:5050", "is not a master URL"),
        ("", "is empty"),
    ],
)
def test_refused_masters(master: str, says: str) -> None:
    with pytest.raises(InvalidArgumentError, match="Spark accepts local") as raised:
        check_session_options(master, None)
    assert says in raised.value.message
    assert raised.value.code == "INVALID_ARGUMENT"


@pytest.mark.parametrize(
    "remote",
    [
        "sc://localhost",
        "sc://localhost:15002",
        "sc://127.0.0.1:15002/",
        "sc://host:443/;use_ssl=true;token=abc",
        "sc://[::1]:15002",
        "local",
        "local[2]",
        "local[*]",
    ],
)
def test_accepted_remotes(remote: str) -> None:
    check_session_options(None, remote)


@pytest.mark.parametrize(
    ("remote", "says"),
    [
        ("http://foo", "does not start with sc://"),
        ("grpc://host:15002", "does not start with sc://"),
        ("localhost:15002", "did you mean sc://localhost:15002?"),
        ("host", "did you mean sc://host?"),
        ("local[0]", "0 threads"),
        ("sc://", "names no host"),
        ("sc://:15002", "names no host"),
        ("sc://host:15002/db", "has a path"),
        ("sc://host:port", "port"),
        ("sc://host:99999", "port"),
        ("sc://host:0", "port 0"),
        ("sc://host/;token", "not key=value"),
        ("sc://host:15002?token=abc", "query"),
        ("", "is empty"),
    ],
)
def test_refused_remotes(remote: str, says: str) -> None:
    with pytest.raises(InvalidArgumentError, match="use sc://host") as raised:
        check_session_options(None, remote)
    assert says in raised.value.message


def test_master_and_remote_together_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="give one"):
        check_session_options("local[2]", "sc://localhost:15002")
    with pytest.raises(InvalidArgumentError, match="give one"):  # before anything starts
        get_session(master="local[2]", remote="sc://127.0.0.1:1")


@pytest.mark.parametrize(
    ("remote", "endpoint"),
    [
        ("sc://localhost", ("localhost", 15002)),
        ("sc://host:443/;use_ssl=true", ("host", 443)),
        ("sc://[::1]:9000", ("::1", 9000)),
    ],
)
def test_connect_endpoint(remote: str, endpoint: tuple[str, int]) -> None:
    assert connect_endpoint(remote) == endpoint


def test_unreachable_connect_server_fails_promptly() -> None:
    port = _closed_port()
    start = time.monotonic()
    with pytest.raises(ConnectServerUnreachableError) as raised:
        probe_connect_server(f"sc://127.0.0.1:{port}/;token=abc", timeout=2.0)
    assert time.monotonic() - start < 3
    assert str(raised.value).startswith(
        f"cannot reach the Spark Connect server at 127.0.0.1:{port} ("
    )
    assert isinstance(raised.value, ConnectionError)
    assert "\n" not in str(raised.value)


def test_silent_connect_server_reports_the_timeout(monkeypatch) -> None:
    def no_answer(address, timeout):
        raise TimeoutError("timed out")

    monkeypatch.setattr(socket, "create_connection", no_answer)
    with pytest.raises(ConnectServerUnreachableError, match=r"host:15002 \(no answer within 5 s\)"):
        probe_connect_server("sc://host")


def test_reachable_connect_server_passes_and_local_is_not_probed() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        probe_connect_server(f"sc://127.0.0.1:{server.getsockname()[1]}", timeout=2.0)
    probe_connect_server("local[2]")  # pyspark starts that server itself


def _cli(tmp_path, *extra: str) -> int:
    argv = ["profile", "--table", "unused", "--output", str(tmp_path / "out"), "--quiet"]
    return main([*argv, *extra])


def test_cli_unreachable_remote_is_one_line_and_exit_1(tmp_path, capsys) -> None:
    port = _closed_port()
    start = time.monotonic()
    assert _cli(tmp_path, "--remote", f"sc://127.0.0.1:{port}") == EXIT_FAILURE
    assert time.monotonic() - start < 10
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"failed: ConnectServerUnreachableError: cannot reach the Spark Connect server at "
        f"127.0.0.1:{port} (Connection refused)"
    ]


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--master", "bogus://x"], "master `bogus://x` is not a master URL"),
        (["--master", "local[0]"], "master `local[0]` asks for 0 threads"),
        (["--remote", "http://foo"], "Spark Connect URL `http://foo` does not start with sc://"),
        (["--master", "local[2]", "--remote", "sc://127.0.0.1:1"], "give one"),
    ],
)
def test_cli_bad_master_or_remote_is_exit_2(tmp_path, capsys, extra, says) -> None:
    assert _cli(tmp_path, *extra) == EXIT_BAD_INPUT
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("error: [INVALID_ARGUMENT] ")
    assert says in err[0]
