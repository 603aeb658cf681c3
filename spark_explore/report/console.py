"""The console summary: one line per column, printed after the profile is written."""

from __future__ import annotations

from typing import Any, TextIO

from rich.console import Console
from rich.table import Table

_FINDINGS_SHOWN = 8
_HEADERS = (
    "column",
    "type",
    "count",
    "nulls",
    "NaN",
    "distinct",
    "mean",
    "std",
    "min",
    "median",
    "max",
)


def print_summary(document: dict[str, Any], file: TextIO | None = None) -> None:
    """Print the profile's per-column table to ``file`` (stdout by default)."""
    console = Console(file=file)
    if not console.is_terminal:
        console.width = max(console.width, 140)
    source = document.get("source", {}).get("table", "")
    table = Table(title=f"{source}: {document['rows']:,} rows", title_justify="left")
    for header in _HEADERS:
        table.add_column(
            header, justify="left" if header in ("column", "type") else "right", overflow="fold"
        )
    for name, column in document["columns"].items():
        table.add_row(
            name,
            column["spark_type"],
            _count(column["count"]),
            _count(column["null_count"]),
            _count(column.get("nan_count")),
            _distinct(column),
            _fmt(column.get("mean")),
            _fmt(column.get("std")),
            _fmt(column.get("min")),
            _fmt((column.get("quantiles") or {}).get("0.5")),
            _fmt(column.get("max")),
        )
    console.print(table)
    left_out = document.get("correlations", {}).get("left_out") or []
    if left_out:
        console.print(f"correlation matrix capped: {len(left_out)} numeric column(s) left out")
    infinite = []
    for name, column in document["columns"].items():
        positive, negative = column.get("posinf_count") or 0, column.get("neginf_count") or 0
        if positive or negative:
            infinite.append(f"{name} (+inf {positive:,}, -inf {negative:,})")
    if infinite:
        console.print(
            f"infinite values, left out of mean to max: {', '.join(infinite)}", markup=False
        )
    for name, column in document["columns"].items():
        if column.get("not_profiled"):
            console.print(f"not profiled: {name}: {column['not_profiled']}")
    for name, report in (document.get("protocols") or {}).items():
        if report.get("error"):
            console.print(f"[bold]{name}[/bold]: failed ({report['error']})")
            continue
        findings = report.get("findings") or []
        if findings:
            console.print(f"[bold]{name}[/bold]")
            for finding in findings[:_FINDINGS_SHOWN]:
                console.print(f"  - {finding}", markup=False)
            if len(findings) > _FINDINGS_SHOWN:
                console.print(f"  ... {len(findings) - _FINDINGS_SHOWN} more in profile.json")


def _distinct(column: dict[str, Any]) -> str:
    if column.get("distinct_count") is not None:
        return _count(column["distinct_count"])
    estimate = column.get("distinct_estimate")
    return "" if estimate is None else f"~{estimate:,.0f}"


def _count(value: int | None) -> str:
    return "" if value is None else f"{value:,}"


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
