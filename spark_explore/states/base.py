"""The protocol every state follows, and the registry that decodes state bytes.

A *state* is a mergeable accumulator of sufficient statistics. Every state class offers

* ``empty(...)``: the identity element (merging it with X gives X);
* ``update(...)``: absorb one batch of values, in place, numpy-vectorised;
* ``merge(other)``: a new state, the union of both inputs, which are left unchanged. Merge
  is associative and commutative: the result does not depend on how rows were split into
  partitions or in which order partial states meet;
* ``to_bytes()`` / ``State.from_bytes(data)``: the versioned envelope of ``_codec``;
* ``n`` (values absorbed) and ``is_empty``.

Each class owns its codec through ``_fields()`` / ``_from_fields()``; there is no central
switch over kinds.
"""

from __future__ import annotations

import abc
import copy
from typing import Any, ClassVar, TypeVar

from spark_explore.errors import IncompatibleStatesError, StateFormatError
from spark_explore.states import _codec

S = TypeVar("S", bound="State")

_REGISTRY: dict[str, type[State]] = {}


class State(abc.ABC):
    """Base class of mergeable states; see the module docstring for the contract."""

    kind: ClassVar[str]
    version: ClassVar[int] = 1

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "kind" in cls.__dict__:
            _REGISTRY[cls.kind] = cls

    @property
    @abc.abstractmethod
    def n(self) -> int:
        """Number of values (or rows) absorbed."""

    @property
    def is_empty(self) -> bool:
        """True for the identity element."""
        return self.n == 0

    def merge(self: S, other: S) -> S:
        """Return the union of ``self`` and ``other``; neither input is modified.

        Associative and commutative.
        """
        self._check_compatible(other)
        result = copy.deepcopy(self)
        result._merge_in_place(other)
        return result

    @abc.abstractmethod
    def _merge_in_place(self: S, other: S) -> None:
        """Absorb ``other`` into ``self`` (the reducer's fast path)."""

    def _check_compatible(self, other: State) -> None:
        if type(other) is not type(self):
            raise IncompatibleStatesError(
                f"cannot merge a `{type(self).__name__}` with a `{type(other).__name__}`.",
                expected=type(self).__name__,
                got=type(other).__name__,
            )
        mine, theirs = self._merge_key(), other._merge_key()
        if mine != theirs:
            raise IncompatibleStatesError(
                f"cannot merge `{type(self).__name__}` states built with different "
                f"parameters: {mine!r} vs {theirs!r}.",
                expected=mine,
                got=theirs,
            )

    def _merge_key(self) -> Any:
        """Parameters two states must share to be mergeable."""
        return None

    @abc.abstractmethod
    def _fields(self) -> _codec.Fields:
        """The state's content as codec fields."""

    @classmethod
    @abc.abstractmethod
    def _from_fields(cls: type[S], fields: _codec.Fields) -> S:
        """Rebuild a state from codec fields written by the same state version."""

    def to_bytes(self) -> bytes:
        """Serialize into the versioned envelope."""
        return _codec.encode(self.kind, self.version, self._fields())

    @staticmethod
    def from_bytes(data: bytes) -> State:
        """Decode any registered state kind from envelope bytes.

        Raises
        ------
        StateFormatError
            Unknown kind, or a state version newer than this release reads.
        """
        kind, version, fields = _codec.decode(data)
        cls = _REGISTRY.get(kind)
        if cls is None:
            raise StateFormatError(f"unknown state kind `{kind}`.", got=kind)
        if version > cls.version:
            raise StateFormatError(
                f"`{kind}` state version {version} is newer than this release reads "
                f"({cls.version}); upgrade spark_explore.",
                expected=cls.version,
                got=version,
            )
        return cls._from_fields(fields)

    def __reduce__(self) -> tuple[Any, ...]:
        return (State.from_bytes, (self.to_bytes(),))
