"""Writing Delta partition values as Spark SQL literals.

Partition values are carried as text and cast to the column's type in Spark, which parses
every format written here (ISO dates and timestamps with an explicit UTC offset).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

# Printable ASCII except the quote, the backslash (escape processing can be switched off by
# spark.sql.parser.escapedStringLiterals) and '$' (variable substitution). Anything else is
# written as a hex literal, which no setting changes.
_PLAIN = re.compile(r"[\x20-\x7e]*")
_UNSAFE = set("'\\$")


def to_text(value: Any) -> str | None:
    """Render a typed partition value as text Spark can cast back to the column type.

    Parameters
    ----------
    value
        A value as ``deltalake`` returns it: None, bool, int, float, Decimal, str, bytes,
        date or datetime (timezone-aware for ``timestamp``, naive for ``timestamp_ntz``).

    Returns
    -------
    str or None
        None for a null partition; bytes become hex, to be decoded with ``unhex``.
    """
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.timezone.utc).isoformat()
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return repr(value) if isinstance(value, float) else str(value)


def sql_string(text: str | None) -> str:
    """A Spark SQL expression for the string ``text`` (or a typed NULL)."""
    if text is None:
        return "CAST(NULL AS STRING)"
    if _PLAIN.fullmatch(text) and not _UNSAFE.intersection(text):
        return f"'{text}'"
    return f"CAST(X'{text.encode('utf-8').hex()}' AS STRING)"


def sql_array(texts: Sequence[str | None]) -> str:
    """A Spark SQL expression for an ``array<string>`` literal."""
    return "array(" + ", ".join(sql_string(t) for t in texts) + ")"
