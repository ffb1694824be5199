"""Message schemas: the wire form, and docs/PROTOCOL.md as the registry, errors and limits."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from tests.unit.schema_helpers import (
    SchemaCollections,
    SchemaDepth2,
    SchemaDepth3,
    SchemaDepth4,
    SchemaFrames,
    invalid,
    scalars,
    tree,
)
from zafka import errors, limits
from zafka.transport import codec
from zafka.transport.group import GroupMember
from zafka.transport.names import TopicPartition
from zafka.transport.schema import from_wire, message_types, to_wire

PROTOCOL_MD = Path(__file__).parents[2] / "docs" / "PROTOCOL.md"


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


def test_topic_partitions_travel_as_pairs_and_bad_ones_are_refused():
    member = GroupMember("m", None, ("t",), None, 1, "stable", (TopicPartition("t", 2),), ())
    body, frames = to_wire(member)
    assert body["assignment"] == (("t", 2),)
    assert type(from_wire("GroupMember", body, frames).assignment[0]) is TopicPartition
    for bad, problem in [
        ((("t",),), r"assignment\[0\]: expected \[topic, partition\], got tuple"),
        ((("t", -1),), r"assignment\[0\].partition: expected an int >= 0, got -1"),
        ((("t", True),), r"assignment\[0\].partition: expected an int >= 0, got True"),
        (((7, 0),), r"assignment\[0\].topic: expected str, got int"),
        (("t",), r"assignment\[0\]: expected \[topic, partition\], got str"),
    ]:
        with invalid(f"GroupMember.{problem}"):
            from_wire("GroupMember", {**body, "assignment": bad}, frames)
    with invalid(r"GroupMember.revoking\[0\]: expected TopicPartition, got tuple"):
        GroupMember("m", None, ("t",), None, 1, "stable", (), (("t", 0),))  # type: ignore[arg-type]


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
