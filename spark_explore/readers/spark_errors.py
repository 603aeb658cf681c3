"""Recognising the errors Spark raises, under classic sessions and Spark Connect alike.

Classic sessions raise ``pyspark.errors`` exceptions for errors the JVM classifies and
``Py4JJavaError`` for the rest; Spark Connect raises ``pyspark.errors`` subclasses only.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from pyspark.errors import PySparkException

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

try:
    from py4j.protocol import Py4JError
except ImportError:  # Spark Connect client installs come without py4j
    SPARK_ERRORS: tuple[type[Exception], ...] = (PySparkException,)
else:
    SPARK_ERRORS = (PySparkException, Py4JError)

_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")
_MAX_SUMMARY = 400


def condition(exc: BaseException) -> str:
    """Return the Spark error condition of ``exc`` (e.g. ``"PATH_NOT_FOUND"``), or ``""``."""
    for name in ("getCondition", "getErrorClass"):
        getter = getattr(exc, name, None)
        if getter is None:
            continue
        try:
            value = getter()
        except Exception:  # a Py4J error whose JVM side is gone
            value = None
        if value:
            return str(value)
    return ""


def summary(exc: BaseException) -> str:
    """Return the first meaningful line of an error message, without stack traces.

    Parameters
    ----------
    exc
        Any exception; for ``Py4JJavaError`` the Java exception's own message is used.

    Returns
    -------
    str
        At most a few hundred characters, suitable for a message shown to a person.
    """
    text = str(exc)
    java = getattr(exc, "java_exception", None)
    if java is not None:
        try:
            text = str(java.toString())
        except Exception:  # the gateway may already be closed
            pass
    for line in _ANSI_ESCAPE.sub("", text).splitlines():
        line = line.strip()
        if line and not line.startswith("JVM stacktrace"):
            return line[:_MAX_SUMMARY]
    return type(exc).__name__


def unreadable_file_message(exc: BaseException) -> str | None:
    """The message of a ``FAILED_READ_FILE`` error (a data file Spark cannot read as the
    table's schema says, e.g. files that disagree on a column's type), or None for others.

    Raised while the scan runs, these come as a ``Py4JJavaError`` without a condition on
    classic sessions, so the condition is also looked for in the message.
    """
    text = summary(exc)
    start = text.find("[FAILED_READ_FILE")
    if condition(exc).startswith("FAILED_READ_FILE") or start >= 0:
        return text[max(start, 0) :]
    return None


def is_missing_path(exc: BaseException) -> bool:
    """Whether ``exc`` says that a path does not exist."""
    return condition(exc) in {"PATH_NOT_FOUND", "DELTA_PATH_DOES_NOT_EXIST"}


def analysed(df: DataFrame) -> DataFrame:
    """Return ``df`` once Spark has analysed its plan, so that analysis errors surface now.

    Spark Connect analyses lazily, and answers ``df.schema`` of a filter from its parent's
    cached schema without asking the server; ``isStreaming`` always asks for the analysed
    plan. On classic sessions the plan is already analysed and this costs nothing.
    """
    df.isStreaming  # noqa: B018
    return df
