"""spark-submit entry point of the outlier-rows job (the outliers protocol's second pass).

    spark-submit jobs/flag_outliers.py --profile /dbfs/profiles/events \\
        --table s3://lake/events --output s3://lake/events_outliers --rules tukey3,robust_z

Reads a saved profile (``DIR/profile.json`` for the outliers protocol's fences, or, when the
JSON does not hold them, the saved states ``DIR/state.arrow``, from which the protocol
recomputes them), reads the table, and writes the rows with a finite value beyond a fence
of one of ``--rules`` (default ``tukey3``; also ``tukey1.5``, ``robust_z``, ``z``) to
``--output``, as Parquet or Delta, with an ``outlier_flags`` column listing each
``rule:column`` that flagged the row. The profile's row filter (``--where``) and Delta
version are applied again when ``--table`` is the table that was profiled. An existing
output is never overwritten. Without the Delta connector in the session, ``--format delta``
writes Parquet and says so. Exit status: 0 on success, 2 for bad input, 1 for a failure of
Spark or of the machine.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence

from spark_explore.errors import SparkExploreError

EXIT_BAD_INPUT = 2
EXIT_FAILURE = 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flag_outliers.py",
        description="Write a table's rows beyond the fences of a saved spark-explore profile.",
    )
    parser.add_argument("--profile", required=True, help="folder of a saved profile")
    parser.add_argument("--table", required=True, help="catalog table name or path")
    parser.add_argument("--output", required=True, help="path for the outlier rows")
    parser.add_argument(
        "--format", choices=("parquet", "delta"), default="parquet", help="output format"
    )
    parser.add_argument(
        "--rules",
        help="comma-separated rules among tukey1.5, tukey3, robust_z, z (default tukey3)",
    )
    parser.add_argument(
        "--table-format",
        choices=("delta", "parquet", "csv", "json", "orc"),
        help="format of --table (default: detected)",
    )
    parser.add_argument("--master", help="Spark master for a local session (default local[*])")
    parser.add_argument("--remote", help="Spark Connect URL, e.g. sc://host:15002")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the job; return the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except SparkExploreError as exc:
        _report(args, f"error: {exc}")
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        _report(args, "interrupted")
        return 130
    except Exception as exc:  # Spark, Java or I/O failures: one line, not a traceback
        text = str(exc).strip().splitlines()
        _report(args, f"failed: {type(exc).__name__}: {text[0] if text else '(no message)'}")
        return EXIT_FAILURE


def run(args: argparse.Namespace) -> int:
    from spark_explore import outlier_rows
    from spark_explore.readers import open_source
    from spark_explore.scan.session import get_session

    rules = outlier_rows.parse_rules(args.rules)
    outlier_rows.check_output_free(args.output)  # fail before reading anything
    profile = outlier_rows.load_profile(args.profile)
    fence_list, notes = outlier_rows.fences(profile, rules)
    same_table = profile.source.get("table") == args.table
    spark = get_session("spark-explore-flag-outliers", master=args.master, remote=args.remote)
    source = open_source(
        spark,
        args.table,
        args.table_format,
        where=profile.source.get("where") if same_table else None,
        delta_version=profile.source.get("delta_version") if same_table else None,
    )
    flagged, flag = outlier_rows.flag_rows(source.df, fence_list)
    written, write_notes = outlier_rows.write_rows(spark, flagged, args.output, args.format)
    counts = outlier_rows.written_counts(spark, args.output, written, flag)
    total = spark.read.format(written).load(args.output).count()
    print(f"fences from {profile.origin}; rules: {', '.join(rules)}", file=sys.stderr)
    for line in outlier_rows.summary_lines(fence_list, counts, total):
        print(line)
    for note in [*write_notes, *notes]:
        print(f"note: {note}", file=sys.stderr)
    print(f"wrote {args.output} ({written}, column `{flag}`)", file=sys.stderr)
    return 0


def _report(args: argparse.Namespace, message: str) -> None:
    print(message, file=sys.stderr)
    if getattr(args, "debug", False):
        traceback.print_exc()


if __name__ == "__main__":
    sys.exit(main())
