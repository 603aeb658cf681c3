"""Catalog tables, read by name with spark.table."""

from __future__ import annotations

import pytest

from spark_explore.errors import InvalidArgumentError, SourceNotFoundError, UnsupportedSourceError
from spark_explore.readers import open_source

DB = "spark_explore_readers_test"


@pytest.fixture(scope="module")
def catalog_table(spark, tmp_path_factory):
    location = tmp_path_factory.mktemp("warehouse")
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {DB} LOCATION '{location}'")
    spark.range(5).selectExpr("id", "id * 2 AS twice").write.saveAsTable(f"{DB}.numbers")
    yield f"{DB}.numbers"
    spark.sql(f"DROP DATABASE IF EXISTS {DB} CASCADE")


def test_catalog_table_by_name(spark, catalog_table):
    source = open_source(spark, catalog_table)

    assert source.format == "table"
    assert source.spec == catalog_table
    assert (source.delta_version, source.delta_reader, source.row_estimate) == (None, None, None)
    assert source.df.columns == ["id", "twice"]
    assert sorted(r.twice for r in source.df.collect()) == [0, 2, 4, 6, 8]


def test_catalog_table_with_columns_and_filter(spark, catalog_table):
    source = open_source(spark, catalog_table, columns=["twice"], where="id > 2")

    assert source.df.columns == ["twice"]
    assert sorted(r.twice for r in source.df.collect()) == [6, 8]


def test_format_table_forces_a_catalog_lookup(spark, catalog_table):
    assert open_source(spark, catalog_table, "table").format == "table"


def test_missing_catalog_table(spark, catalog_table):
    with pytest.raises(SourceNotFoundError) as info:
        open_source(spark, f"{DB}.no_such_table")
    assert info.value.code == "SOURCE_NOT_FOUND"
    assert info.value.fields["table"] == f"{DB}.no_such_table"


def test_missing_database(spark):
    with pytest.raises(SourceNotFoundError) as info:
        open_source(spark, "no_such_db.tbl")
    assert info.value.code == "SOURCE_NOT_FOUND"


def test_invalid_table_name(spark):
    with pytest.raises(InvalidArgumentError) as info:
        open_source(spark, "not a name")
    assert info.value.code == "INVALID_TABLE_NAME"


def test_time_travel_needs_delta(spark, catalog_table):
    with pytest.raises(UnsupportedSourceError) as info:
        open_source(spark, catalog_table, delta_version=0)
    assert info.value.code == "UNSUPPORTED_SOURCE_FEATURE"
