"""Driver-side statistical tests completed from merged states or from the sample.

Numpy and scipy only: nothing here imports pyspark, so every test runs on in-memory data.
"""
