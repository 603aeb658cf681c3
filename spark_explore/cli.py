"""The ``spark-explore`` command line.

``spark-explore profile --table T --output DIR`` profiles a table in one Spark job and writes
``DIR/profile.json`` (schema in ``docs/profile-schema.md``), the merged state
``DIR/state.arrow`` and a console summary. Exit status: 0 on success, 2 for bad input (a
missing table, an unknown column, an empty table, a bad option), 1 for a failure of Spark or
of the machine. Errors are one clear message on stderr; ``--debug`` adds the traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path

from spark_explore import __version__
from spark_explore.config import READERS, ProfileOptions, load_config
from spark_explore.errors import ConfigError, InvalidArgumentError, SparkExploreError
from spark_explore.protocols.base import load_protocol_config
from spark_explore.protocols.registry import PROTOCOLS

EXIT_BAD_INPUT = 2
EXIT_FAILURE = 1

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spark-explore", description="One-pass data exploration for Spark tables."
    )
    parser.add_argument("--version", action="version", version=f"spark-explore {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("profile", help="profile a table in one Spark job")
    add_profile_arguments(run)
    return parser


def add_profile_arguments(parser: argparse.ArgumentParser) -> None:
    """The options shared by ``spark-explore profile`` and ``jobs/profile_table.py``."""
    parser.add_argument("--table", required=True, help="catalog table name or path")
    parser.add_argument("--output", required=True, help="folder for profile.json and state")
    parser.add_argument(
        "--format",
        choices=("delta", "parquet", "csv", "json", "orc"),
        help="source format (default: detected; a _delta_log folder means Delta)",
    )
    parser.add_argument("--columns", nargs="+", metavar="NAME", help="profile only these columns")
    parser.add_argument("--where", metavar="PREDICATE", help="SQL filter applied before the scan")
    parser.add_argument("--delta-version", type=int, help="read this version of a Delta table")
    parser.add_argument("--config", help="YAML configuration (default: conf/default.yaml)")
    parser.add_argument(
        "--sample-size", type=int, dest="reservoir_size", help="rows in the uniform sample"
    )
    parser.add_argument(
        "--max-corr-columns",
        type=int,
        dest="max_comoment_columns",
        help="numeric columns in the correlation matrix",
    )
    parser.add_argument("--seed", type=int, help="seed of the row sampler")
    parser.add_argument(
        "--group-columns",
        nargs="+",
        metavar="NAME",
        help="group by these columns (default: the first string/boolean ones)",
    )
    parser.add_argument("--target", help="numeric column for the interaction tests")
    parser.add_argument(
        "--reader",
        choices=READERS,
        help="spark, arrow (Python workers read the Parquet files) or auto (default)",
    )
    parser.add_argument(
        "--protocols",
        nargs="+",
        metavar="NAME",
        help=f"run only these protocols ({', '.join(PROTOCOLS)}), or none",
    )
    parser.add_argument(
        "--alpha",
        type=float,
        help="significance level of the verdicts (default: the configuration's, 0.01)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace a profile already in --output"
    )
    parser.add_argument("--master", help="Spark master for a local session (default local[*])")
    parser.add_argument("--remote", help="Spark Connect URL, e.g. sc://host:15002")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or summary table")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = build_parser().parse_args(argv)
    # pyspark logs each analysis error with its Java stack before raising it; the error
    # itself is reported below in one line
    logging.getLogger("SQLQueryContextLogger").setLevel(logging.CRITICAL)
    package_logger = logging.getLogger("spark_explore")
    level = package_logger.level
    if getattr(args, "debug", False):  # protocol steps that fail log their traceback too
        package_logger.setLevel(logging.DEBUG)
    stderr_handler = _root_handler_without_py4j()
    try:
        return run_profile(args)
    except SparkExploreError as exc:
        _report(args, "error: " + " ".join(str(exc).split()))
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        _report(args, "interrupted")
        return 130
    except Exception as exc:  # Spark, Java or I/O failures: one line, not a traceback
        _report(args, f"failed: {type(exc).__name__}: {_first_line(exc)}")
        return EXIT_FAILURE
    finally:
        package_logger.setLevel(level)
        if stderr_handler is not None:
            logging.getLogger().removeHandler(stderr_handler)


def _root_handler_without_py4j() -> logging.Handler | None:
    """Give the root logger, when nothing configured it, a handler like logging's last
    resort (bare messages, warnings and above, on stderr) that drops Py4J's records.

    Py4J logs a connection broken by Ctrl-C with its traceback through the root logger,
    which without a handler would configure itself to print it; the interruption is
    reported in one line instead. Returns the handler, or None where the application had
    configured logging already.
    """
    root = logging.getLogger()
    if root.handlers:
        return None
    handler = logging.StreamHandler()
    handler.setLevel(logging.WARNING)
    handler.addFilter(lambda record: f"{os.sep}py4j{os.sep}" not in record.pathname)
    root.addHandler(handler)
    return handler


def run_profile(args: argparse.Namespace) -> int:
    from spark_explore.api import profile_table
    from spark_explore.report.console import print_summary
    from spark_explore.report.json_writer import check_output, profile_document, write_profile
    from spark_explore.scan.session import get_session

    with _named_by_flags(args):
        scan = load_config(
            args.config,
            reservoir_size=args.reservoir_size,
            max_comoment_columns=args.max_comoment_columns,
            seed=args.seed,
            group_columns=args.group_columns,
            target=args.target,
            reader=args.reader,
        )
        protocol_config = load_protocol_config(args.config, alpha=args.alpha)
    protocol_names = _protocol_names(args.protocols)
    options = ProfileOptions(
        table=args.table,
        output=args.output,
        format=args.format,
        columns=tuple(args.columns) if args.columns else None,
        where=args.where,
        delta_version=args.delta_version,
        overwrite=args.overwrite,
        scan=scan,
    )
    check_output(options.output, options.overwrite)  # fail before the scan, not after
    _check_output_outside_table(options.output, options.table)
    spark = get_session(master=args.master, remote=args.remote)
    result, _ = profile_table(spark, options, progress=False if args.quiet else None)
    result.protocol_names = protocol_names
    result.protocol_config = protocol_config
    path = write_profile(result, options.output, overwrite=options.overwrite)
    if not args.quiet:
        print_summary(profile_document(result))
    print(f"wrote {path} ({result.rows:,} rows, {result.seconds:.1f} s)", file=sys.stderr)
    return 0


#: configuration keys that command-line options set, by the options' names
_FLAG_OF_KEY = {
    "reservoir_size": "--sample-size",
    "max_comoment_columns": "--max-corr-columns",
    "seed": "--seed",
    "alpha": "--alpha",
}


@contextlib.contextmanager
def _named_by_flags(args: argparse.Namespace) -> Iterator[None]:
    """Name the option, not only the configuration key, in errors about a value the
    command line gave (``--sample-size -1`` is reported as `--sample-size`)."""
    try:
        yield
    except ConfigError as exc:
        message = exc.message
        for key, flag in _FLAG_OF_KEY.items():
            if getattr(args, key, None) is not None:
                message = message.replace(f"`{key}`", f"`{flag}` (`{key}`)")
        if message == exc.message:
            raise
        raise ConfigError(message, code=exc.code, **exc.fields) from exc


def _check_output_outside_table(output: str, table: str) -> None:
    """Refuse to write the profile among the table's own files (a local path): inside a
    table folder, or beside a table file, where it would join the folder's data files."""
    source = Path(table)
    if not source.exists():
        return
    target, source = Path(output).resolve(), source.resolve()
    if target == source or source in target.parents:
        raise InvalidArgumentError(
            f"`--output {output}` lies inside the table `{table}`; choose a folder outside it.",
            got=output,
        )
    if source.is_file() and target == source.parent:
        raise InvalidArgumentError(
            f"`--output {output}` is the folder of the table's file `{source.name}`; the "
            "profile would sit among the data files there. Choose another folder.",
            got=output,
        )


def _protocol_names(requested: list[str] | None) -> list[str] | None:
    if requested is None:
        return None
    if requested == ["none"]:
        return []
    if "none" in requested:
        raise InvalidArgumentError(
            "`--protocols none` runs no protocol, so it cannot be given with others: "
            f"{[name for name in requested if name != 'none']}.",
            got=requested,
        )
    unknown = sorted(set(requested) - set(PROTOCOLS))
    if unknown:
        raise InvalidArgumentError(
            f"unknown protocol(s) {unknown}; choose from {list(PROTOCOLS)} or `none`.",
            got=unknown,
        )
    return requested


def _report(args: argparse.Namespace, message: str) -> None:
    print(message, file=sys.stderr)
    if getattr(args, "debug", False):
        traceback.print_exc()


def _first_line(exc: BaseException) -> str:
    """The first line of an error's message; for a Java error raised through Py4J, of the
    Java exception's, since the Python one only names the call that failed; for an error
    in a Python worker, the worker's exception line, since the first only says where."""
    text = str(exc).strip()
    java = getattr(exc, "java_exception", None)
    if java is not None:
        with contextlib.suppress(Exception):  # the JVM may be gone
            text = str(java.toString()).strip()
    if type(exc).__name__ == "PythonException":
        raised = _worker_exception_line(text)
        if raised:
            return raised
    return text.splitlines()[0] if text else "(no message)"


def _worker_exception_line(text: str) -> str | None:
    """The ``Type: message`` line that ends a Python worker's traceback, or None."""
    traceback_text = text.split("JVM stacktrace:")[0]
    lines = [line for line in traceback_text.splitlines() if line.strip()]
    for line in reversed(lines):
        if not line[0].isspace() and not line.startswith(("Traceback", "An exception")):
            return line
    return None


if __name__ == "__main__":
    sys.exit(main())
