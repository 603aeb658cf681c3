"""spark_explore: one-pass, distributed data exploration for Spark tables."""

__version__ = "0.1.0"
