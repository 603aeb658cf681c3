"""Readers: turn a user's table spec (catalog name or path) into a Spark DataFrame.

Only this package and ``scan`` import pyspark. ``open_source`` is the one entry point; it
returns a :class:`Source` holding the filtered, column-selected DataFrame and what is known
about the table (format, Delta version and reader, row estimate, notes for the report).
"""

from spark_explore.readers.opener import open_source
from spark_explore.readers.source import Source

__all__ = ["Source", "open_source"]
