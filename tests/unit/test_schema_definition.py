"""Message schemas: registration, checks at definition, validation on construction."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

import pytest

from tests.unit.schema_helpers import (
    SchemaCollections,
    SchemaDepth2,
    SchemaDepth3,
    SchemaDepth4,
    SchemaFrames,
    SchemaLeaf,
    SchemaScalars,
    SchemaTree,
    invalid,
    scalars,
    tree,
)
from zafka import limits
from zafka.transport.schema import (
    INT_MAX,
    INT_MIN,
    Frame,  # noqa: F401 -- resolved by name: test_unsupported_field_types_fail_at_definition
    Message,
    message_types,
)

# --- registration -------------------------------------------------------------------------


def test_defining_a_message_registers_it_by_name():
    types = message_types()
    assert types["SchemaScalars"] is SchemaScalars
    assert types["Ping"].__module__ == "zafka.transport.control"
    types.clear()  # a copy: the registry is untouched
    assert message_types()["SchemaScalars"] is SchemaScalars


def test_messages_are_frozen_slotted_and_hashable():
    msg = SchemaLeaf(3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        msg.n = 4  # type: ignore[misc]
    assert not hasattr(msg, "__dict__")
    assert hash(msg) == hash(SchemaLeaf(3)) and msg == SchemaLeaf(3)


def test_a_duplicate_name_fails_at_definition():
    with pytest.raises(TypeError, match="duplicate message type Ping"):

        @dataclass(frozen=True, slots=True)
        class Ping(Message):
            sent_ms: int

    assert message_types()["Ping"].__module__ == "zafka.transport.control"


def test_a_message_must_be_a_frozen_slotted_dataclass():
    with pytest.raises(TypeError, match="frozen=True, slots=True"):

        @dataclass(slots=True)
        class SchemaNotFrozen(Message):
            n: int

    @dataclass(frozen=True)
    class SchemaNoSlots(Message):
        n: int

    with pytest.raises(TypeError, match="frozen=True, slots=True"):
        SchemaNoSlots(1)
    assert "SchemaNoSlots" not in message_types()


@pytest.mark.parametrize(
    "annotation",
    [
        "list[int]",
        "int | str",
        "tuple[int, str]",
        "dict[int, str]",
        "set[int]",
        "object",
        "Frame | None",
        "tuple[Frame, ...]",
        "dict[str, Frame]",
        "SchemaFrames",
    ],
)
def test_unsupported_field_types_fail_at_definition(annotation):
    namespace = {"__annotations__": {"x": annotation}, "__module__": __name__}
    with pytest.raises(TypeError, match=r"SchemaBad\.x"):
        dataclass(frozen=True, slots=True)(type("SchemaBad", (Message,), namespace))
    assert "SchemaBad" not in message_types()


def test_fields_must_be_init_arguments():
    with pytest.raises(TypeError, match="__init__ argument"):

        @dataclass(frozen=True, slots=True)
        class SchemaNoInit(Message):
            n: int = dataclasses.field(default=0, init=False)


def test_epoch_kind_must_be_known():
    with pytest.raises(TypeError, match="EPOCH"):

        @dataclass(frozen=True, slots=True)
        class SchemaBadEpoch(Message):
            EPOCH = "generation"


def test_nesting_is_bounded_by_nesting_depth_max():
    assert limits.nesting_depth_max == 4  # SchemaDepth4 nests Depth3, Depth2, Tree and Leaf
    assert SchemaDepth4((SchemaDepth3(SchemaDepth2(tree())),)).inner[0].inner.tree.leaf.n == 1
    with pytest.raises(TypeError, match="SchemaDepth5 nests messages 5 deep"):

        @dataclass(frozen=True, slots=True)
        class SchemaDepth5(Message):
            inner: SchemaDepth4 | None

    assert "SchemaDepth5" not in message_types()


# --- validation on construction -----------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("i", True, "expected int, got bool"),
        ("i", "1", "expected int, got str"),
        ("i", 1.0, "expected int, got float"),
        ("i", INT_MAX + 1, "out of the int64/uint64 range"),
        ("i", INT_MIN - 1, "out of the int64/uint64 range"),
        ("b", 1, "expected bool, got int"),
        ("b", None, "expected bool, got NoneType"),
        ("f", 1, "expected float, got int"),
        ("s", b"x", "expected str, got bytes"),
        ("s", "\ud800", "lone surrogate"),
        ("s", "x" * (limits.string_bytes_max + 1), "string_bytes_max"),
        ("s", "é" * (limits.string_bytes_max // 2) + "x", "string_bytes_max"),
        ("raw", "x", "expected bytes, got str"),
        ("raw", bytearray(b"x"), "expected bytes, got bytearray"),
        ("raw", b"x" * (limits.string_bytes_max + 1), "string_bytes_max"),
    ],
)
def test_scalars_reject_wrong_types_and_sizes(field, value, problem):
    with invalid(f"SchemaScalars.{field}: .*{re.escape(problem)}"):
        scalars(**{field: value})


def test_scalars_accept_their_bounds():
    most = limits.string_bytes_max
    s = scalars(i=INT_MAX, s="é" * (most // 2), raw=b"x" * most)
    assert s.i == INT_MAX and scalars(i=INT_MIN).i == INT_MIN
    assert scalars(s="x" * limits.string_bytes_max).s.startswith("x")


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"items": ["a"]}, r"items: expected tuple, got list"),
        ({"items": ("a", 1)}, r"items\[1\]: expected str, got int"),
        (
            {"items": ("a",) * (limits.collection_items_max + 1)},
            f"items: {limits.collection_items_max + 1} items >",
        ),
        ({"table": (("a", 1),)}, r"table: expected dict, got tuple"),
        ({"table": {1: 1}}, r"table\[1\]: expected str, got int"),
        ({"table": {"k": "v"}}, r"table\['k'\]: expected int, got str"),
        ({"table": {"x" * 100: "v"}}, r"table\['xxx.*\.\.\.\]"),
        (
            {"table": {str(i): i for i in range(limits.collection_items_max + 1)}},
            f"table: {limits.collection_items_max + 1} it",
        ),
        ({"maybe": "1"}, r"maybe: expected int, got str"),
    ],
)
def test_collections_and_optionals_check_every_item(changes, problem):
    fields = {"items": ("a",), "table": {"k": 1}, "maybe": None, **changes}
    with invalid(f"SchemaCollections.{problem}"):
        SchemaCollections(**fields)


def test_collections_accept_their_bounds():
    n = limits.collection_items_max
    msg = SchemaCollections(("a",) * n, {str(i): i for i in range(n)}, 7)
    assert len(msg.items) == n and msg.maybe == 7


def test_frames_accept_buffers_and_reject_the_rest():
    view = memoryview(bytearray(b"abc"))
    msg = SchemaFrames(b"x", "n", view)
    assert msg.second is view
    assert SchemaFrames(bytearray(b"x"), "n", b"").first == b"x"
    with invalid(r"SchemaFrames.first: expected bytes, bytearray or memoryview, got str"):
        SchemaFrames("x", "n", b"")  # type: ignore[arg-type]
    with invalid("frame_bytes_max"):
        SchemaFrames(b"", "n", memoryview(bytes(limits.frame_bytes_max + 1)))


def test_nested_messages_are_checked_by_class():
    assert tree().leaves[1].n == 2
    leaf = SchemaLeaf(1)
    with invalid(r"SchemaTree.leaf: expected SchemaLeaf, got dict"):
        SchemaTree({"n": 1}, (), None, {})  # type: ignore[arg-type]
    with invalid(r"SchemaTree.leaves\[1\]: expected SchemaLeaf, got SchemaScalars"):
        SchemaTree(leaf, (leaf, scalars()), None, {})  # type: ignore[arg-type]
    with invalid(r"SchemaTree.by_name\['k'\]: expected SchemaLeaf, got int"):
        SchemaTree(leaf, (), leaf, {"k": 1})  # type: ignore[dict-item]


def test_a_nested_message_validates_its_own_fields():
    with invalid(r"SchemaLeaf.n: expected int, got str"):
        SchemaLeaf("1")  # type: ignore[arg-type]
