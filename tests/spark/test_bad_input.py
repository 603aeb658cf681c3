"""Bad input: a clear message and exit status 2, or an explicit not-applicable entry."""

from __future__ import annotations

import datetime as dt
import json
import logging
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql import types as T

from spark_explore.cli import EXIT_BAD_INPUT, main


def _run(table: str, output, *extra: str) -> int:
    return main(["profile", "--table", table, "--output", str(output), "--quiet", *extra])


def _profile(spark, tmp_path, rows, schema, name="t") -> dict:
    path = tmp_path / name
    spark.createDataFrame(rows, schema).write.parquet(str(path))
    assert _run(str(path), tmp_path / f"{name}-out") == 0
    return json.loads((tmp_path / f"{name}-out" / "profile.json").read_text())


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert err and "Traceback" not in "\n".join(err)
    return err[-1]


@pytest.mark.parametrize(
    ("table", "code"),
    [
        ("/nonexistent/folder/events.parquet", "SOURCE_NOT_FOUND"),
        ("no_such_db.no_such_table", "SOURCE_NOT_FOUND"),
    ],
)
def test_missing_source(tmp_path, capsys, spark, table, code) -> None:
    assert _run(table, tmp_path / "out") == EXIT_BAD_INPUT
    assert f"[{code}]" in _error_line(capsys)
    assert not (tmp_path / "out" / "profile.json").exists()


def test_unknown_column_and_bad_filter(spark, tmp_path, capsys) -> None:
    path = tmp_path / "t"
    spark.range(10).write.parquet(str(path))
    assert _run(str(path), tmp_path / "o1", "--columns", "nope") == EXIT_BAD_INPUT
    assert "[COLUMN_NOT_FOUND]" in _error_line(capsys)
    assert _run(str(path), tmp_path / "o2", "--where", "id >") == EXIT_BAD_INPUT
    assert "[INVALID_FILTER]" in _error_line(capsys)


def test_empty_table_and_empty_filter_result(spark, tmp_path, capsys) -> None:
    path = tmp_path / "empty"
    spark.createDataFrame([], "x double, s string").write.parquet(str(path))
    assert _run(str(path), tmp_path / "o1") == EXIT_BAD_INPUT
    assert "[EMPTY_SOURCE]" in _error_line(capsys)
    full = tmp_path / "full"
    spark.range(5).write.parquet(str(full))
    assert _run(str(full), tmp_path / "o2", "--where", "id > 100") == EXIT_BAD_INPUT
    assert "[EMPTY_SOURCE]" in _error_line(capsys)


def test_existing_profile_is_not_overwritten(spark, tmp_path, capsys) -> None:
    path = tmp_path / "t"
    spark.range(3).write.parquet(str(path))
    out = tmp_path / "out"
    assert _run(str(path), out) == 0
    before = (out / "profile.json").read_text()
    assert _run(str(path), out) == EXIT_BAD_INPUT
    assert "[OUTPUT_EXISTS]" in _error_line(capsys)
    assert (out / "profile.json").read_text() == before
    assert _run(str(path), out, "--overwrite") == 0


def test_all_null_constant_and_single_row_columns(spark, tmp_path) -> None:
    schema = "all_null double, constant double, label string, one double"
    rows = [(None, 2.5, None, 1.0 if i == 0 else None) for i in range(20)]
    columns = _profile(spark, tmp_path, rows, schema)["columns"]
    all_null = columns["all_null"]
    assert all_null["count"] == 0 and all_null["null_count"] == 20
    assert all_null["mean"] is None and "mean" in all_null["undefined"]
    assert columns["label"]["undefined"]["all"]
    constant = columns["constant"]
    assert constant["std"] == 0.0 and constant["min"] == constant["max"] == 2.5
    assert constant["skewness"] is None and "skewness" in constant["undefined"]
    one = columns["one"]
    assert one["mean"] == 1.0 and one["std"] is None and "std" in one["undefined"]


def test_single_row_table(spark, tmp_path) -> None:
    document = _profile(spark, tmp_path, [(3.0, "a")], "x double, s string")
    assert document["rows"] == 1
    assert document["columns"]["x"]["std"] is None
    assert document["correlations"]["matrix"] == [[None]]


def test_odd_column_names(spark, tmp_path) -> None:
    names = ["with space", "dot.ted", "back`tick", "count", "mean", "_c0", "_key"]
    schema = T.StructType([T.StructField(n, T.DoubleType()) for n in names])
    rows = [tuple(float(i * (j + 1)) for j in range(len(names))) for i in range(10)]
    document = _profile(spark, tmp_path, rows, schema)
    assert list(document["columns"]) == names
    for j, name in enumerate(names):
        assert document["columns"][name]["max"] == 9.0 * (j + 1), name
    assert document["correlations"]["columns"] == names


def test_decimal_and_bigint_near_their_limits(spark, tmp_path) -> None:
    big, low = Decimal("9" * 38), Decimal("-" + "9" * 38)  # not -big: context precision 28
    schema = T.StructType(
        [T.StructField("d", T.DecimalType(38, 0)), T.StructField("b", T.LongType())]
    )
    rows = [(big, 2**63 - 1), (low, -(2**63)), (Decimal(0), 0), (None, None)]
    columns = _profile(spark, tmp_path, rows, schema)["columns"]
    assert columns["d"]["max"] == str(big) and columns["d"]["min"] == str(low)
    assert columns["b"]["max"] == 2**63 - 1 and columns["b"]["min"] == -(2**63)
    for name in ("d", "b"):
        assert columns[name]["count"] == 3 and columns[name]["null_count"] == 1
        assert columns[name]["mean"] == pytest.approx(0.0, abs=1e-3 * 2**63)


def test_values_near_the_float64_limits(spark, tmp_path, capsys, caplog) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from tests.protocols import SPECIALS, failed_steps

    v = np.array(SPECIALS)[np.arange(5000) % len(SPECIALS)]
    w = v.clip(-3e38, 3e38).astype(np.float32)
    pq.write_table(pa.table({"v": v, "w": w}), tmp_path / "specials.parquet")
    assert _run(str(tmp_path / "specials.parquet"), tmp_path / "out") == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err and "Warning" not in err and "failed" not in err
    assert not [r.getMessage() for r in caplog.records if r.name.startswith("spark_explore")]
    document = json.loads((tmp_path / "out" / "profile.json").read_text())
    column = document["columns"]["v"]
    # the finite values 0, -0, 1e308, -1e308 and 5e-324 have a mean; their squares overflow
    assert column["mean"] == 0.0 and column["finite_count"] == 3125
    for name in ("std", "variance", "skewness", "kurtosis"):
        assert column[name] is None and "overflows float64" in column["undefined"][name]
    finite = w[np.isfinite(w)].astype(np.float64)
    assert document["columns"]["w"]["std"] == pytest.approx(np.std(finite, ddof=1), rel=1e-12)
    assert failed_steps(document["protocols"]) == []
    assert "overflows float64" in document["protocols"]["normality"]["results"]["v"]["reason"]
    # the console says that min and max leave the infinities out, and how many there are
    table, output = str(tmp_path / "specials.parquet"), str(tmp_path / "shown")
    assert main(["profile", "--table", table, "--output", output, "--protocols", "none"]) == 0
    shown = capsys.readouterr().out
    counts = f"v (+inf {np.isposinf(v).sum():,}, -inf {np.isneginf(v).sum():,})"
    assert f"infinite values, left out of mean to max: {counts}" in " ".join(shown.split())


def test_nested_temporal_and_binary_types(spark, tmp_path) -> None:
    schema = T.StructType(
        [
            T.StructField(
                "s",
                T.StructType(
                    [T.StructField("x", T.DoubleType()), T.StructField("y", T.StringType())]
                ),
            ),
            T.StructField("a", T.ArrayType(T.IntegerType())),
            T.StructField("m", T.MapType(T.StringType(), T.IntegerType())),
            T.StructField("bin", T.BinaryType()),
            T.StructField("day", T.DateType()),
            T.StructField("ts", T.TimestampType()),
            T.StructField("span", T.DayTimeIntervalType()),
        ]
    )
    ts = dt.datetime(2024, 2, 29, 12, 30, 15, 123456, tzinfo=dt.timezone.utc)
    rows = [
        (
            (1.5, "p"),
            [1, 2, 3],
            {"k": 1},
            b"\x00\x01",
            dt.date(2024, 2, 29),
            ts,
            dt.timedelta(days=1),
        ),
        ((2.5, None), [], {}, b"", dt.date(1969, 12, 31), None, None),
        (None, None, None, None, None, None, None),
    ]
    columns = _profile(spark, tmp_path, rows, schema)["columns"]
    assert list(columns) == ["s.x", "s.y", "a", "m", "bin", "day", "ts", "span"]
    assert columns["s.x"]["mean"] == 2.0 and columns["s.x"]["null_count"] == 1
    assert columns["s.y"]["count"] == 1
    assert columns["a"]["measure"] == "length" and columns["a"]["max"] == 3
    assert columns["a"]["min"] == 0 and columns["a"]["null_count"] == 1
    assert columns["m"]["measure"] == "size" and columns["m"]["max"] == 1
    assert columns["bin"]["max"] == 2 and columns["bin"]["min"] == 0
    assert columns["day"]["min"] == "1969-12-31" and columns["day"]["max"] == "2024-02-29"
    assert columns["ts"]["max"] == "2024-02-29T12:30:15.123456Z"
    span = columns["span"]
    assert span["role"] == "unsupported" and span["not_profiled"]
    assert span["null_count"] == 2 and span["count"] == 1


@pytest.mark.parametrize(
    ("extra", "code"),
    [
        (["--protocols", "astrology"], "INVALID_ARGUMENT"),
        (["--group-columns", "nope"], "COLUMN_NOT_FOUND"),
        (["--target", "s"], "INVALID_ARGUMENT"),
        (["--group-columns", "x"], "INVALID_ARGUMENT"),
        (["--alpha", "1.5"], "INVALID_CONFIG"),
        (["--sample-size", "-1"], "INVALID_CONFIG"),
        (["--config", "/nonexistent.yaml"], "INVALID_CONFIG"),
    ],
)
def test_bad_options(spark, tmp_path, capsys, extra, code) -> None:
    path = tmp_path / "t"
    spark.createDataFrame([(1.0, "a")], "x double, s string").write.parquet(str(path))
    assert _run(str(path), tmp_path / "out", *extra) == EXIT_BAD_INPUT
    assert f"[{code}]" in _error_line(capsys)


def test_options_that_contradict_each_other(spark, tmp_path, capsys) -> None:
    path = tmp_path / "t"
    spark.createDataFrame([(1.0, 2.0, "a")], "x double, y double, s string").write.parquet(
        str(path)
    )
    extra = ["--columns", "x", "y", "--group-columns", "s"]
    assert _run(str(path), tmp_path / "o1", *extra) == EXIT_BAD_INPUT
    assert "`s`, which is not among the profiled columns" in _error_line(capsys)
    assert _run(str(path), tmp_path / "o2", "--protocols", "none", "outliers") == EXIT_BAD_INPUT
    assert "cannot be given with others: ['outliers']" in _error_line(capsys)


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        (["--sample-size", "-1"], "`--sample-size` (`reservoir_size`) must be"),
        (["--max-corr-columns", "-3"], "`--max-corr-columns` (`max_comoment_columns`) must be"),
        (["--alpha", "2"], "`--alpha` (`alpha`) must lie in (0, 1)"),
    ],
)
def test_errors_name_the_option_given(tmp_path, capsys, extra, said) -> None:
    assert _run("unused", tmp_path / "out", *extra) == EXIT_BAD_INPUT
    assert said in _error_line(capsys)


def test_malformed_config_file(spark, tmp_path, capsys) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("scan:\n  kll_k: [1, 2\n")
    assert _run("unused", tmp_path / "out", "--config", str(config)) == EXIT_BAD_INPUT
    assert "[INVALID_CONFIG]" in _error_line(capsys)
    config.write_text("scan:\n  no_such_key: 1\n")
    assert _run("unused", tmp_path / "out", "--config", str(config)) == EXIT_BAD_INPUT
    assert "[INVALID_CONFIG]" in _error_line(capsys)
    config.write_bytes(b"PAR1\x15\x80\x00 not text")  # a binary file passed by mistake
    assert _run("unused", tmp_path / "out", "--config", str(config)) == EXIT_BAD_INPUT
    assert "[INVALID_CONFIG] cannot read configuration file" in _error_line(capsys)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("reader: arrow\n", "`reader` in `{path}`; did you mean `scan.reader`?"),
        ("bogus: 1\nscan:\n  seed: 3\n", "`bogus` in `{path}`. A configuration"),
        ("alpha: 0.05\n", "`alpha` in `{path}`; did you mean `protocols.alpha`?"),
        (
            "seed: 1\nz: 2.5\n",
            "`seed`, `z` in `{path}`; did you mean `scan.seed` or `protocols.z`?",
        ),
    ],
)
def test_unknown_top_level_config_keys_are_refused(tmp_path, capsys, text, named) -> None:
    from spark_explore.config import load_config
    from spark_explore.errors import ConfigError
    from spark_explore.protocols.base import load_protocol_config

    config = tmp_path / "conf.yaml"
    config.write_text(text)
    assert _run("unused", tmp_path / "out", "--config", str(config)) == EXIT_BAD_INPUT
    line = _error_line(capsys)
    assert line.startswith("error: [INVALID_CONFIG] unknown top-level key(s) ")
    assert named.format(path=config) in line
    assert line.endswith("holds only the sections `scan:` and `protocols:`.")
    for load in (load_config, load_protocol_config):  # each loader refuses the file
        with pytest.raises(ConfigError, match="unknown top-level key"):
            load(config)


def test_output_must_be_writable_and_outside_the_table(spark, tmp_path, capsys) -> None:
    path = tmp_path / "t"
    spark.range(3).write.parquet(str(path))
    assert _run(str(path), "/proc/spark-explore-profile") == EXIT_BAD_INPUT
    assert "[OUTPUT_NOT_WRITABLE]" in _error_line(capsys)
    assert _run(str(path), path / "profile") == EXIT_BAD_INPUT
    assert "[INVALID_ARGUMENT]" in _error_line(capsys)
    assert not (path / "profile").exists()
    part = next(path.glob("part-*.parquet"))
    assert _run(str(part), path) == EXIT_BAD_INPUT  # beside the table's own file
    assert "is the folder of the table's file" in _error_line(capsys)
    assert not (path / "profile.json").exists()


@pytest.mark.parametrize(
    ("output", "said"),
    [
        ("", "`--output` is empty"),
        ("  ", "`--output` is empty"),
        ("file:///tmp/spark-explore-out", "is a URL"),
        ("s3://bucket/profile", "is a URL"),
        ("dbfs:/profiles/events", "is a URL"),
    ],
)
def test_output_must_be_a_local_folder(spark, tmp_path, capsys, monkeypatch, output, said):
    path = tmp_path / "t"
    spark.range(3).write.parquet(str(path))
    monkeypatch.chdir(tmp_path)
    assert _run(str(path), output) == EXIT_BAD_INPUT
    line = _error_line(capsys)
    assert "[INVALID_ARGUMENT]" in line and said in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t"]  # nothing written here


def test_files_that_disagree_on_a_column_type(spark, tmp_path, capsys) -> None:
    folder = tmp_path / "t"
    folder.mkdir()
    pq.write_table(pa.table({"a": [1, 2, 3], "b": [1.0, 2.0, 3.0]}), folder / "p0.parquet")
    pq.write_table(pa.table({"a": ["x", "y"], "b": [1.0, 2.0]}), folder / "p1.parquet")
    assert _run(str(folder), tmp_path / "out", "--reader", "spark") == EXIT_BAD_INPUT
    line = _error_line(capsys)
    assert "[SOURCE_UNREADABLE]" in line
    assert "PARQUET_COLUMN_DATA_TYPE_MISMATCH" in line
    assert not (tmp_path / "out" / "profile.json").exists()


def test_protocol_settings_come_from_the_configuration(spark, tmp_path, capsys) -> None:
    path = tmp_path / "t"
    spark.createDataFrame([(float(i), "a") for i in range(30)], "x double, s string").write.parquet(
        str(path)
    )
    config = tmp_path / "conf.yaml"
    config.write_text("protocols:\n  tukey_k: [2.0]\n  alpha: 0.05\n")
    assert _run(str(path), tmp_path / "out", "--config", str(config)) == 0
    document = json.loads((tmp_path / "out" / "profile.json").read_text())
    rules = document["protocols"]["outliers"]["results"]["x"]
    assert "tukey2" in rules and "tukey1.5" not in rules
    config.write_text("protocols:\n  no_such_setting: 1\n")
    assert _run(str(path), tmp_path / "out2", "--config", str(config)) == EXIT_BAD_INPUT
    assert "[INVALID_CONFIG]" in _error_line(capsys)


def test_a_spark_failure_names_the_java_error(spark, tmp_path, capsys, monkeypatch) -> None:
    from py4j.protocol import Py4JJavaError

    from spark_explore import cli

    def fail(args):
        cause = spark._jvm.java.lang.IllegalStateException("result lost\nat some frame")
        raise Py4JJavaError("An error occurred while calling o1.collectToPython.\n", cause)

    monkeypatch.setattr(cli, "run_profile", fail)
    assert _run("unused", tmp_path / "out") == cli.EXIT_FAILURE
    line = _error_line(capsys)
    assert line == "failed: Py4JJavaError: java.lang.IllegalStateException: result lost"


def test_a_python_worker_failure_names_the_worker_error(spark, tmp_path, capsys, monkeypatch):
    from spark_explore import cli

    def fail(args):
        def boom(batches):
            for _ in batches:
                raise ValueError("part-0.parquet: column `x` is int32 in this file")
            yield from ()

        spark.range(2).mapInArrow(boom, "id long").collect()

    monkeypatch.setattr(cli, "run_profile", fail)
    assert _run("unused", tmp_path / "out") == cli.EXIT_FAILURE
    line = _error_line(capsys)
    assert line == (
        "failed: PythonException: ValueError: part-0.parquet: column `x` is int32 in this file"
    )


def test_interrupt_is_one_line_whatever_py4j_logs(tmp_path, capsys, monkeypatch) -> None:
    import spark_explore.cli as cli

    # Py4J logs a connection broken by Ctrl-C through the root logger, from its own module
    gateway = str(tmp_path / "site-packages" / "py4j" / "java_gateway.py")
    broken = compile(
        "import logging\n"
        "try:\n    raise OSError('reentrant call')\n"
        "except OSError:\n    logging.exception('Exception while sending command.')\n"
        "raise KeyboardInterrupt\n",
        gateway,
        "exec",
    )
    monkeypatch.setattr(cli, "run_profile", lambda args: exec(broken, {}))
    monkeypatch.setattr(logging.root, "handlers", [])  # as in a fresh interpreter
    assert main(["profile", "--table", "t", "--output", str(tmp_path / "o")]) == 130
    assert capsys.readouterr().err == "interrupted\n"
    assert logging.root.handlers == []
