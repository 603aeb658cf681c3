"""Applying the user's row filter and column selection to an opened table."""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from spark_explore.errors import ColumnNotFoundError, InvalidArgumentError, InvalidFilterError
from spark_explore.readers.spark_errors import SPARK_ERRORS, analysed, summary

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

_LISTED = 20  # available columns named in a message


def quote(name: str) -> str:
    """Quote a top-level column name for Spark, so dots and backticks are taken literally."""
    return "`" + name.replace("`", "``") + "`"


def check_columns(columns: Sequence[str] | None) -> tuple[str, ...] | None:
    """Validate a requested column list before anything is read.

    Raises
    ------
    InvalidArgumentError
        ``columns`` is a bare string, empty, holds a non-string, or names a column twice
        (code ``DUPLICATE_COLUMN``).
    """
    if columns is None:
        return None
    if isinstance(columns, str) or not all(isinstance(c, str) for c in columns):
        raise InvalidArgumentError(
            f"`columns` must be a list of column names, got {columns!r}.", got=repr(columns)
        )
    wanted = tuple(columns)
    if not wanted:
        raise InvalidArgumentError("`columns` is empty; pass None to keep every column.")
    repeated = sorted({c for c in wanted if wanted.count(c) > 1})
    if repeated:
        raise InvalidArgumentError(
            f"`columns` names {', '.join(map(repr, repeated))} more than once.",
            code="DUPLICATE_COLUMN",
            column=repeated[0],
        )
    return wanted


def restrict(df: DataFrame, columns: tuple[str, ...] | None, where: str | None) -> DataFrame:
    """Filter rows, then keep the requested columns in the requested order.

    The filter is applied first, so it may use columns that are not profiled.

    Parameters
    ----------
    df
        The whole table.
    columns
        Exact top-level column names, or None for all columns in table order.
    where
        A Spark SQL boolean expression over the table's columns, or None.

    Raises
    ------
    InvalidFilterError
        ``where`` does not parse, names unknown columns, or is not a boolean expression.
    ColumnNotFoundError
        A requested column is not in the table.
    InvalidArgumentError
        A requested name matches more than one column (code ``AMBIGUOUS_COLUMN``).
    """
    if where is not None:
        df = _filter(df, where)
    if columns is None:
        return df
    available = df.columns
    for name in columns:
        if name not in available:
            raise _not_found(name, available)
        if available.count(name) > 1:
            raise InvalidArgumentError(
                f"Column {name!r} appears more than once in the table; it cannot be selected.",
                code="AMBIGUOUS_COLUMN",
                column=name,
            )
    return analysed(df.select(*[df[quote(name)] for name in columns]))


def check_where(where: str | None) -> None:
    """Reject a ``where`` that cannot be a predicate, before anything is read.

    Raises
    ------
    InvalidFilterError
        ``where`` is not a string or is blank.
    """
    if where is not None and (not isinstance(where, str) or not where.strip()):
        raise InvalidFilterError(
            f"`where` must be a non-empty SQL predicate, got {where!r}.", where=where
        )


def _filter(df: DataFrame, where: str) -> DataFrame:
    # In parentheses, a predicate cut short (``b > 50 AND``, ``b > 50 typo``) is a syntax
    # error instead of ``b > 50`` with its last word read as an alias; the line breaks keep
    # a trailing ``--`` comment from swallowing the closing parenthesis.
    try:
        filtered = analysed(df.filter(f"(\n{where}\n)"))
    except SPARK_ERRORS as exc:
        raise InvalidFilterError(
            f"`where` {where!r} is not a valid filter on this table: {_filter_error(exc)}",
            where=where,
        ) from exc
    return filtered


def _filter_error(exc: BaseException) -> str:
    """Spark's message, with positions in the parenthesised text told in the predicate's."""
    text = summary(exc)
    if "(line 3, pos" in text:  # at the closing parenthesis added around the predicate
        return (
            "[PARSE_SYNTAX_ERROR] the predicate ends before it is complete (an operator or a "
            "word left at its end, or a parenthesis left open or closed too often)."
        )
    return re.sub(r"\(?line 2,? pos (\d+)\)?", r"(at character \1)", text)


def _not_found(name: str, available: list[str]) -> ColumnNotFoundError:
    close = difflib.get_close_matches(name, available, n=3, cutoff=0.6)
    close += [c for c in available if c.lower() == name.lower() and c not in close]
    listed = ", ".join(available[:_LISTED]) + (" ..." if len(available) > _LISTED else "")
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    return ColumnNotFoundError(
        f"Column {name!r} is not in the table.{hint} Available columns: {listed}",
        column=name,
        suggestions=close,
        available=available,
    )
