"""Helpers shared by the schema tests: test messages (registered once, on import) and
the checks they share."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass

import pytest

from zafka.errors import ZafkaError
from zafka.transport.schema import Frame, Message


@dataclass(frozen=True, slots=True)
class SchemaScalars(Message):
    i: int
    b: bool
    f: float
    s: str
    raw: bytes


@dataclass(frozen=True, slots=True)
class SchemaCollections(Message):
    items: tuple[str, ...]
    table: dict[str, int]
    maybe: int | None


@dataclass(frozen=True, slots=True)
class SchemaFrames(Message):
    first: Frame
    name: str
    second: Frame


@dataclass(frozen=True, slots=True)
class SchemaLeaf(Message):
    n: int


@dataclass(frozen=True, slots=True)
class SchemaTree(Message):
    leaf: SchemaLeaf
    leaves: tuple[SchemaLeaf, ...]
    maybe: SchemaLeaf | None
    by_name: dict[str, SchemaLeaf]


@dataclass(frozen=True, slots=True)
class SchemaDepth2(Message):
    tree: SchemaTree


@dataclass(frozen=True, slots=True)
class SchemaDepth3(Message):
    inner: SchemaDepth2


@dataclass(frozen=True, slots=True)
class SchemaDepth4(Message):
    inner: tuple[SchemaDepth3, ...]


def scalars(**changes: object) -> SchemaScalars:
    fields: dict[str, object] = {"i": 1, "b": True, "f": 1.5, "s": "x", "raw": b"\x00"}
    fields.update(changes)
    return SchemaScalars(**fields)  # type: ignore[arg-type]


def tree(n: int = 1) -> SchemaTree:
    leaf = SchemaLeaf(n)
    return SchemaTree(leaf, (leaf, SchemaLeaf(n + 1)), None, {"a": leaf})


def invalid(match: str) -> AbstractContextManager[object]:
    return pytest.raises(ZafkaError, match=f"INVALID_REQUEST.*{match}")
