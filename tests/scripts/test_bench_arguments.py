"""``scripts/bench.py`` refuses a ``--json`` file it could not append to, before any run."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_under_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def _refusal(bench, tmp_path, json_path: Path, capsys) -> str:
    table = tmp_path / "table"
    table.mkdir(exist_ok=True)
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["--table", str(table), "--json", str(json_path)])
    assert exit_info.value.code == 2
    return capsys.readouterr().err.strip()


def test_a_folder_is_refused(bench, tmp_path, capsys) -> None:
    assert "cannot read `--json`" in _refusal(bench, tmp_path, tmp_path, capsys)


def test_json_that_is_not_a_list_is_refused_and_kept(bench, tmp_path, capsys) -> None:
    path = tmp_path / "runs.json"
    path.write_text(json.dumps({"mine": 1}))
    assert "holds a JSON dict" in _refusal(bench, tmp_path, path, capsys)
    assert json.loads(path.read_text()) == {"mine": 1}


def test_a_folder_that_cannot_be_made_is_refused(bench, tmp_path, capsys) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("kept")
    message = _refusal(bench, tmp_path, blocker / "sub" / "runs.json", capsys)
    assert "cannot write `--json`" in message and "not a writable folder" in message
    assert blocker.read_text() == "kept"
