"""StateBundle: the keyed set of states one scan keeps, and its file format.

A bundle is what each partition emits and what the driver receives after the merge. On disk
(``state.arrow`` beside ``profile.json``) it is an Arrow IPC file with one row per state
(``key``, ``state`` bytes in the envelope of :mod:`spark_explore.states._codec`); the schema
metadata holds JSON documents such as the scan plan, so a saved bundle can be re-analysed or
merged with a later scan without reading the table again.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa

from spark_explore.errors import IncompatibleStatesError, StateFormatError
from spark_explore.states.base import State
from spark_explore.states.batch import Batch

_SCHEMA = pa.schema([("key", pa.string()), ("state", pa.binary())])


class StateBundle(Mapping[str, State]):
    """An immutable-keyed mapping from state key to state.

    Merging is key by key and inherits associativity and commutativity from the states.
    """

    def __init__(self, states: Mapping[str, State]) -> None:
        self._states = dict(states)

    def __getitem__(self, key: str) -> State:
        return self._states[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._states)

    def __len__(self) -> int:
        return len(self._states)

    def update(self, batch: Batch) -> None:
        """Absorb one batch into every state (in place; used on the executors)."""
        for state in self._states.values():
            state.update(batch)  # type: ignore[attr-defined]

    def merge(self, other: StateBundle) -> StateBundle:
        """Key-by-key merge; both bundles must hold the same keys."""
        if self._states.keys() != other._states.keys():
            missing = sorted(self._states.keys() ^ other._states.keys())
            raise IncompatibleStatesError(
                f"bundles hold different states (differing keys: {missing[:5]}).",
                got=missing,
            )
        return StateBundle({k: s.merge(other._states[k]) for k, s in self._states.items()})

    def merge_in_place(self, other: StateBundle) -> None:
        """Absorb ``other`` into this bundle (the reducer's fast path)."""
        for key, state in self._states.items():
            other_state = other._states[key]
            state._check_compatible(other_state)
            state._merge_in_place(other_state)

    def to_table(self) -> pa.Table:
        return pa.table(
            {"key": list(self._states), "state": [s.to_bytes() for s in self._states.values()]},
            schema=_SCHEMA,
        )

    def to_bytes(self) -> bytes:
        """Arrow IPC stream of the (key, state) table."""
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, _SCHEMA) as writer:
            writer.write_table(self.to_table())
        return sink.getvalue().to_pybytes()

    @classmethod
    def from_table(cls, table: pa.Table) -> StateBundle:
        keys = table.column("key").to_pylist()
        payloads = table.column("state").to_pylist()
        return cls({key: State.from_bytes(data) for key, data in zip(keys, payloads)})

    @classmethod
    def from_bytes(cls, data: bytes) -> StateBundle:
        try:
            table = pa.ipc.open_stream(pa.py_buffer(data)).read_all()
        except (pa.ArrowInvalid, OSError) as exc:
            raise StateFormatError(f"damaged state bundle: {exc}") from None
        return cls.from_table(table)

    def save(self, path: str | Path, metadata: Mapping[str, Any]) -> None:
        """Write the bundle as an Arrow IPC file; ``metadata`` values are stored as JSON."""
        schema = _SCHEMA.with_metadata({k: json.dumps(v) for k, v in metadata.items()})
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
            writer.write_table(self.to_table().replace_schema_metadata(schema.metadata))

    @classmethod
    def load(cls, path: str | Path) -> tuple[StateBundle, dict[str, Any]]:
        """Read a bundle saved by :meth:`save`, with its metadata."""
        try:
            with pa.memory_map(str(path)) as source:
                table = pa.ipc.open_file(source).read_all()
        except FileNotFoundError:
            raise StateFormatError(f"no saved state at `{path}`.", path=str(path)) from None
        except (pa.ArrowInvalid, OSError) as exc:
            raise StateFormatError(f"`{path}` is not a saved state bundle: {exc}") from None
        metadata = {k.decode(): json.loads(v) for k, v in (table.schema.metadata or {}).items()}
        return cls.from_table(table), metadata
