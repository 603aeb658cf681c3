"""The deltalake fallback refuses Delta features it cannot honour, and reads the rest."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from spark_explore.errors import UnsupportedSourceError
from spark_explore.readers import open_source

DATA = pa.table({"s": ["a", "b", "c"], "i": [1, 2, 3]})
Z85 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"


def z85(data: bytes) -> str:
    """Z85-encode ``data`` (zero-padded to a multiple of 4 bytes), as Delta inline DVs are."""
    data += b"\0" * (-len(data) % 4)
    out = []
    for start in range(0, len(data), 4):
        value = int.from_bytes(data[start : start + 4], "big")
        digits = []
        for _ in range(5):
            value, digit = divmod(value, 85)
            digits.append(Z85[digit])
        out.extend(reversed(digits))
    return "".join(out)


def inline_deletion_vector(rows: list[int]) -> dict:
    """A Delta inline deletion vector marking ``rows`` (each < 65536) deleted.

    Layout (Delta protocol, "Deletion Vector Format"): magic 1681511377, then a
    RoaringBitmapArray with one 32-bit bitmap in the portable Roaring format holding one
    array container.
    """
    bitmap = struct.pack("<II", 12346, 1) + struct.pack("<HH", 0, len(rows) - 1)
    bitmap += struct.pack("<I", 16) + b"".join(struct.pack("<H", r) for r in sorted(rows))
    body = struct.pack("<iqi", 1681511377, 1, 0) + bitmap
    return {
        "storageType": "i",
        "pathOrInlineDv": z85(body),
        "sizeInBytes": len(body),
        "cardinality": len(rows),
    }


def commit(path: Path, version: int, actions: list[dict]) -> None:
    log = path / "_delta_log" / f"{version:020d}.json"
    log.write_text("".join(json.dumps(a) + "\n" for a in actions))


def actions_of(path: Path, version: int) -> list[dict]:
    log = path / "_delta_log" / f"{version:020d}.json"
    return [json.loads(line) for line in log.read_text().splitlines()]


def assert_refused(spark, path: Path, feature: str) -> None:
    with pytest.raises(UnsupportedSourceError) as info:
        open_source(spark, str(path))
    assert info.value.code == "UNSUPPORTED_SOURCE_FEATURE"
    assert info.value.fields["feature"] == feature
    assert "connector" in info.value.message


def test_column_mapping_is_refused(spark, tmp_path):
    write_deltalake(tmp_path, DATA, configuration={"delta.columnMapping.mode": "name"})

    assert_refused(spark, tmp_path, "columnMapping")


def test_deletion_vector_on_an_active_file_is_refused(spark, tmp_path):
    write_deltalake(tmp_path, DATA, configuration={"delta.enableDeletionVectors": "true"})
    add = next(a["add"] for a in actions_of(tmp_path, 0) if "add" in a)
    remove = {"path": add["path"], "dataChange": True, "deletionTimestamp": 1, "size": add["size"]}
    commit(
        tmp_path,
        1,
        [
            {"remove": remove},
            {"add": {**add, "deletionVector": inline_deletion_vector([1])}},
        ],
    )
    assert pa.table(DeltaTable(str(tmp_path)).scan()).num_rows == 2  # a valid DV: 1 row gone

    assert_refused(spark, tmp_path, "deletionVectors")


def test_deletion_vectors_enabled_but_unused_are_read(spark, tmp_path):
    write_deltalake(tmp_path, DATA, configuration={"delta.enableDeletionVectors": "true"})

    source = open_source(spark, str(tmp_path))

    assert source.delta_reader == "deltalake"
    assert sorted(r.i for r in source.df.collect()) == [1, 2, 3]


@pytest.mark.parametrize("feature", ["typeWidening", "someFutureFeature"])
def test_unknown_reader_features_are_refused(spark, tmp_path, feature):
    write_deltalake(tmp_path, DATA)
    actions = actions_of(tmp_path, 0)
    for action in actions:
        if "protocol" in action:
            action["protocol"] = {
                "minReaderVersion": 3,
                "minWriterVersion": 7,
                "readerFeatures": [feature],
                "writerFeatures": [feature],
            }
    commit(tmp_path, 0, actions)

    with pytest.raises(UnsupportedSourceError) as info:
        open_source(spark, str(tmp_path))
    assert info.value.code == "UNSUPPORTED_SOURCE_FEATURE"
