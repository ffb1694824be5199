"""Message schemas: registration, validation on construction, wire form, and PROTOCOL.md."""

from __future__ import annotations

import dataclasses
import re
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import pytest

from zafka import errors, limits
from zafka.errors import ZafkaError
from zafka.transport import codec
from zafka.transport.schema import (
    INT_MAX,
    INT_MIN,
    Frame,
    Message,
    from_wire,
    message_types,
    to_wire,
)

PROTOCOL_MD = Path(__file__).parents[2] / "docs" / "PROTOCOL.md"


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


# --- wire form ----------------------------------------------------------------------------


def test_to_wire_gives_maps_for_nested_messages_and_frames_apart():
    body, frames = to_wire(SchemaDepth2(tree(5)))
    assert body == {
        "tree": {
            "leaf": {"n": 5},
            "leaves": ({"n": 5}, {"n": 6}),
            "maybe": None,
            "by_name": {"a": {"n": 5}},
        }
    }
    assert frames == []
    first, second = b"1", memoryview(b"2")
    body, frames = to_wire(SchemaFrames(first, "n", second))
    assert body == {"name": "n"} and frames[0] is first and frames[1] is second


@pytest.mark.parametrize(
    "message",
    [
        scalars(),
        SchemaCollections(("a", "b"), {"k": 1}, None),
        SchemaDepth4((SchemaDepth3(SchemaDepth2(tree())),)),
        SchemaFrames(b"1", "n", b"2"),
    ],
)
def test_from_wire_inverts_to_wire(message):
    body, frames = to_wire(message)
    assert from_wire(type(message).__name__, body, frames) == message


def test_from_wire_is_strict():
    with invalid("unknown message type 'Nope'"):
        from_wire("Nope", {}, [])
    with invalid("unknown message type 7"):
        from_wire(7, {}, [])
    with invalid(r"SchemaLeaf: unknown fields \['m'\], missing fields \[n\]"):
        from_wire("SchemaLeaf", {"m": 1}, [])
    with invalid(r"SchemaLeaf: unknown fields \[\], missing fields \[n\]"):
        from_wire("SchemaLeaf", {}, [])
    with invalid(r"SchemaLeaf: body: expected map, got tuple"):
        from_wire("SchemaLeaf", (1,), [])
    with invalid("SchemaLeaf.n: expected int, got str"):
        from_wire("SchemaLeaf", {"n": "1"}, [])
    with invalid("SchemaFrames takes 2 payload frames, got 1"):
        from_wire("SchemaFrames", {"name": "n"}, [b""])
    with invalid("SchemaFrames takes 2 payload frames, got 3"):
        from_wire("SchemaFrames", {"name": "n"}, [b""] * 3)


def test_from_wire_names_the_innermost_problem():
    body = to_wire(SchemaDepth2(tree()))[0]
    body["tree"]["leaves"] = ({"n": 1}, 5)  # type: ignore[index]
    with invalid(r"SchemaTree.leaves\[1\]: expected map \(SchemaLeaf\), got int"):
        from_wire("SchemaDepth2", body, [])
    body["tree"]["leaves"] = ({"n": 1}, {"n": True})  # type: ignore[index]
    with invalid(r"SchemaLeaf.n: expected int, got bool"):
        from_wire("SchemaDepth2", body, [])
    body["tree"]["leaves"] = [{"n": 1}]  # type: ignore[index]
    with invalid(r"SchemaTree.leaves: expected array, got list"):
        from_wire("SchemaDepth2", body, [])
    body["tree"]["leaves"] = ()  # type: ignore[index]
    body["tree"]["by_name"] = {"k": "v"}  # type: ignore[index]
    with invalid(r"SchemaTree.by_name\['k'\]: expected map \(SchemaLeaf\), got str"):
        from_wire("SchemaDepth2", body, [])
    body["tree"]["by_name"] = ()  # type: ignore[index]
    with invalid(r"SchemaTree.by_name: expected map, got tuple"):
        from_wire("SchemaDepth2", body, [])


def test_to_wire_refuses_what_is_not_a_message():
    with invalid("not a registered message: int"):
        to_wire(3)  # type: ignore[arg-type]


# --- docs/PROTOCOL.md is the registry, the error table and the limits ----------------------


def documented_messages() -> dict[str, list[tuple[str, str]]]:
    """`#### \\`Name\\`` headings and the `| \\`field\\` | \\`type\\` |` rows below each
    (a `|` inside a type is escaped as `\\|`, as GitHub tables need)."""
    messages: dict[str, list[tuple[str, str]]] = {}
    rows: list[tuple[str, str]] = []
    for line in PROTOCOL_MD.read_text().splitlines():
        heading = re.match(r"#### `(\w+)`", line)
        if heading:
            rows = messages.setdefault(heading.group(1), [])
        row = re.match(r"\| `(\w+)` \| `(.+?)` \|", line)
        if row and messages:
            rows.append((row.group(1), row.group(2).replace("\\|", "|")))
    return messages


def test_every_message_of_every_family_is_documented_with_its_fields():
    documented = documented_messages()
    families = {f.__name__ for f in codec.FAMILIES}
    registered = {n: c for n, c in message_types().items() if c.__module__ in families}
    assert len(registered) > 40
    assert set(documented) == set(registered), "update docs/PROTOCOL.md: Messages"
    for name, cls in registered.items():
        fields = [(f.name, f.type) for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
        assert documented[name] == fields, f"update docs/PROTOCOL.md: {name}"


def test_protocol_md_lists_the_error_table():
    text = PROTOCOL_MD.read_text()
    rows = re.findall(r"^\| (-?\d+) \| `(\w+)` \| (yes|no) \| (yes|no) \|", text, re.MULTILINE)
    table = [
        (str(e.code), e.name, "yes" if e.retriable else "no", "yes" if e.refresh_metadata else "no")
        for e in errors.BY_CODE.values()
    ]
    assert sorted(rows) == sorted(table), "update docs/PROTOCOL.md: Errors"


def test_protocol_md_states_the_wire_limits():
    text = PROTOCOL_MD.read_text()
    wire = ("frame_bytes_max", "header_bytes_max", "payload_frames_max")
    for name in (*wire, "nesting_depth_max", "collection_items_max", "string_bytes_max"):
        value = f"{getattr(limits, name):_}".replace("_", ",")
        assert re.search(rf"`{name}` \| {value} \|", text), f"update docs/PROTOCOL.md: {name}"
