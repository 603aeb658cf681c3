"""Exceptions and warnings raised by spark_explore.

Every exception about the input derives from :class:`SparkExploreError` and carries a stable
``code`` that callers and tests branch on; the message is for people and may change. (A
failure of the environment is not bad input: a Spark Connect server that cannot be reached
raises :class:`spark_explore.scan.session_options.ConnectServerUnreachableError`, a
``ConnectionError``.) Subclasses also inherit the matching builtin, so ``except ValueError``
keeps working for callers that do not know this package.

Bad arguments and unusable sources raise. Bad data (a constant column, a tiny group) does not:
it produces a ``None`` statistic with a reason and, where a caller is computing directly on
states, one of the warning classes at the bottom of this module.
"""

from __future__ import annotations

from typing import Any


class SparkExploreError(Exception):
    """Base class of every error this package raises on purpose.

    Parameters
    ----------
    message
        What went wrong, what was expected and, where possible, how to fix it.
    code
        A stable identifier such as ``"SOURCE_NOT_FOUND"``.
    **fields
        Structured context (``column``, ``expected``, ``got``, ``path`` ...), kept on
        ``self.fields`` for programmatic use.
    """

    default_code = "SPARK_EXPLORE_ERROR"

    def __init__(self, message: str, *, code: str | None = None, **fields: Any) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.fields = fields

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"


class InvalidArgumentError(SparkExploreError, ValueError):
    """An option or argument has a value outside what it accepts."""

    default_code = "INVALID_ARGUMENT"


class ConfigError(InvalidArgumentError):
    """The configuration file cannot be read or holds an unknown or invalid key."""

    default_code = "INVALID_CONFIG"


class SourceNotFoundError(SparkExploreError, FileNotFoundError):
    """The table name or path does not exist."""

    default_code = "SOURCE_NOT_FOUND"


class SourceReadError(SparkExploreError, OSError):
    """The source exists but cannot be read as the requested format."""

    default_code = "SOURCE_UNREADABLE"


class UnsupportedSourceError(SparkExploreError, NotImplementedError):
    """The source uses a feature this reader cannot honour (e.g. Delta deletion vectors)."""

    default_code = "UNSUPPORTED_SOURCE_FEATURE"


class ColumnNotFoundError(InvalidArgumentError, KeyError):
    """A requested column is not in the table."""

    default_code = "COLUMN_NOT_FOUND"

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return SparkExploreError.__str__(self)


class InvalidFilterError(InvalidArgumentError):
    """The row filter is not a valid SQL predicate over the table's columns."""

    default_code = "INVALID_FILTER"


class EmptySourceError(SparkExploreError, ValueError):
    """The table (after filtering) has no rows or no columns to profile."""

    default_code = "EMPTY_SOURCE"


class StateFormatError(SparkExploreError, ValueError):
    """Serialized state bytes are not a state, or come from an unknown format version."""

    default_code = "STATE_FORMAT"


class IncompatibleStatesError(SparkExploreError, ValueError):
    """Two states cannot be merged (different kinds, columns or sketch parameters)."""

    default_code = "INCOMPATIBLE_STATES"


class OutputExistsError(SparkExploreError, FileExistsError):
    """The output folder already holds a profile and overwriting was not requested."""

    default_code = "OUTPUT_EXISTS"


class OutputNotWritableError(SparkExploreError, PermissionError):
    """The output folder cannot be created or written."""

    default_code = "OUTPUT_NOT_WRITABLE"


class DegenerateDataWarning(UserWarning):
    """The data make a statistic undefined (constant values, too few rows)."""


class ConstantColumnWarning(DegenerateDataWarning):
    """A column has a single distinct finite value, so its spread-based statistics are undefined."""


class SmallSampleWarning(DegenerateDataWarning):
    """Too few values for a statistic to be defined or reliable."""
