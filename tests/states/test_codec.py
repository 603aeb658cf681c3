"""The state envelope: round trips and refusal of foreign or newer bytes."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from spark_explore.errors import StateFormatError
from spark_explore.states import _codec
from spark_explore.states.base import State


def test_fields_round_trip() -> None:
    fields = {
        "matrix": np.arange(6, dtype=np.float64).reshape(2, 3),
        "counts": np.array([1, 2], dtype=np.int64),
        "blob": b"\x00\x01",
        "names": ["a", "b c", "`x`"],
        "blobs": [b"1", b""],
        "text": "é",
        "number": 3,
        "none": None,
    }
    kind, version, decoded = _codec.decode(_codec.encode("thing", 3, fields))
    assert (kind, version) == ("thing", 3)
    np.testing.assert_array_equal(decoded["matrix"], fields["matrix"])
    assert decoded["matrix"].shape == (2, 3) and decoded["counts"].dtype == np.int64
    assert {k: decoded[k] for k in ("blob", "names", "blobs", "text", "number", "none")} == {
        k: fields[k] for k in ("blob", "names", "blobs", "text", "number", "none")
    }


@pytest.mark.parametrize(
    "data",
    [b"", b"PK\x03\x04 not a state", _codec.MAGIC + struct.pack("<H", 1) + b"garbage"],
)
def test_foreign_bytes_are_refused(data: bytes) -> None:
    with pytest.raises(StateFormatError) as info:
        State.from_bytes(data)
    assert info.value.code == "STATE_FORMAT"


def test_newer_envelope_and_unknown_kind_are_refused() -> None:
    good = _codec.encode("moments", 1, {})
    newer = _codec.MAGIC + struct.pack("<H", _codec.ENVELOPE_VERSION + 1) + good[6:]
    with pytest.raises(StateFormatError):
        State.from_bytes(newer)
    with pytest.raises(StateFormatError):
        State.from_bytes(_codec.encode("no-such-kind", 1, {}))
    with pytest.raises(StateFormatError):
        State.from_bytes(_codec.encode("moments", 99, {}))
