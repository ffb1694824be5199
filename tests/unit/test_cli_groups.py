"""`zafka groups`: parsing, help, the --to-datetime format, the describe and reset tables,
how reset targets are chosen, and each command's flow and exit code over a fake Admin (what
it asks for, what it refuses: a reset of an active group). No sockets."""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import ClassVar

import pytest

from zafka import cli, cli_common, cli_groups
from zafka.cli_groups import (
    format_group,
    format_partitions,
    format_subscription,
    format_table,
    parse_datetime,
    reset_targets,
)
from zafka.clients.admin import PartitionInfo, TopicDescription
from zafka.clients.admin_groups import (
    EARLIEST,
    LATEST,
    GroupDescription,
    GroupListing,
    GroupOffset,
    MemberDescription,
)
from zafka.errors import ZafkaError
from zafka.transport.names import TopicPartition as TP

T0 = 1_700_000_000_000


def member(
    member_id: str,
    assignment: tuple[TP, ...] = (),
    revoking: tuple[TP, ...] = (),
    pattern: str | None = None,
) -> MemberDescription:
    topics = () if pattern else ("orders",)
    return MemberDescription(member_id, None, topics, pattern, 3, "stable", assignment, revoking)


# --- parsing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["groups", "--help"],
        ["groups", "list", "--help"],
        ["groups", "describe", "--help"],
        ["groups", "reset-offsets", "--help"],
        ["groups", "delete", "--help"],
    ],
)
def test_help_at_every_level(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: zafka groups")
    assert "exit codes" in out
    if len(argv) > 2:
        assert "--bootstrap" in out and "ZAFKA_BOOTSTRAP" in out


def test_reset_help_says_to_stop_the_consumers(capsys):
    with pytest.raises(SystemExit):
        cli.main(["groups", "reset-offsets", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "stop its consumers first" in out
    for option in ("--to-earliest", "--to-latest", "--to-datetime", "--to-offset", "--dry-run"):
        assert option in out


def test_reset_parses_its_options():
    argv = "groups reset-offsets g --topic t --partition 2 --partition 0 --to-offset 42 --dry-run"
    args = cli.build_parser().parse_args(argv.split())
    assert (args.group, args.topic, args.partition, args.to_offset) == ("g", "t", [2, 0], 42)
    assert args.dry_run and not args.to_earliest and not args.to_latest
    assert args.to_datetime is None and args.func is cli_groups._reset
    args = cli.build_parser().parse_args(
        ["groups", "reset-offsets", "g", "--topic", "t", "--to-datetime", "2023-11-14T22:13:20Z"]
    )
    assert args.to_datetime == T0 and args.partition is None and not args.dry_run


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        ("groups reset-offsets g --topic t", "one of the arguments --to-earliest"),
        ("groups reset-offsets g --to-earliest", "--topic"),
        ("groups reset-offsets g --topic t --to-earliest --to-latest", "not allowed with"),
        ("groups reset-offsets g --topic t --to-offset -1", "must be 0 or more"),
        ("groups reset-offsets g --topic t --to-offset x", "not a whole number"),
        ("groups reset-offsets g --topic t --partition -1 --to-latest", "must be 0 or more"),
        ("groups reset-offsets g --topic t --to-datetime yesterday", "not an ISO 8601"),
        ("groups describe", "GROUP"),
        ("groups delete", "GROUP"),
        ("groups", "ACTION"),
    ],
)
def test_bad_command_lines_exit_2(argv, complaint, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv.split())
    assert exit_info.value.code == 2
    assert complaint in capsys.readouterr().err


def test_parse_datetime():
    assert parse_datetime("2023-11-14T22:13:20Z") == T0
    assert parse_datetime("2023-11-14T23:13:20.250+01:00") == T0 + 250
    assert parse_datetime(" 2023-11-14 22:13:20+00:00 ") == T0
    local = datetime(2023, 11, 14, 22, 13, 20).astimezone()  # no zone: local time
    assert parse_datetime("2023-11-14T22:13:20") == int(local.timestamp() * 1000)
    midnight = datetime(2023, 11, 14).astimezone()
    assert parse_datetime("2023-11-14") == int(midnight.timestamp() * 1000)
    for bad in ("", "14/11/2023", "2023-13-01", "now"):
        with pytest.raises(argparse.ArgumentTypeError, match="ISO 8601"):
            parse_datetime(bad)
    with pytest.raises(argparse.ArgumentTypeError, match="before 1970"):
        parse_datetime("1969-12-31T23:59:59Z")


# --- formatting ------------------------------------------------------------------------------


def test_format_table_aligns_columns():
    assert format_table(("A", "LONG-HEADER", "C"), [("xyz", None, 1), ("", 22, "last")]) == [
        "A    LONG-HEADER  C",
        "xyz  -            1",
        "     22           last",
    ]


def test_format_partitions_and_subscription():
    tps = [TP("orders", p) for p in (5, 0, 1, 2, 7, 8)] + [TP("audit", 1), TP("orders", 0)]
    assert format_partitions(tps) == "audit:1;orders:0-2,5,7-8"
    assert format_partitions([]) == "-"
    assert format_subscription(member("m")) == "orders"
    assert format_subscription(member("m", pattern="ord.*")) == "pattern:ord.*"


def test_format_group_with_members_offsets_and_lag():
    group = GroupDescription(
        "readers",
        "reconciling",
        3,
        "uniform",
        (
            member("m-2", (TP("orders", 1),), (TP("orders", 2),)),
            member("m-1", (TP("orders", 0),)),
        ),
        1,
    )
    offsets = [
        GroupOffset("orders", 1, None, "", 5),
        GroupOffset("orders", 0, 10, "", 12),
        GroupOffset("orders", 2, 4, "", None),
    ]
    assert format_group(group, offsets) == [
        "Group: readers\tState: reconciling\tEpoch: 3\tAssignor: uniform\tCoordinator: 1\t"
        "Members: 2",
        "",
        "MEMBER-ID  INSTANCE-ID  EPOCH  STATE   SUBSCRIPTION  ASSIGNED  REVOKING",
        "m-1        -            3      stable  orders        orders:0  -",
        "m-2        -            3      stable  orders        orders:1  orders:2",
        "",
        "TOPIC   PARTITION  CURRENT-OFFSET  LOG-END-OFFSET  LAG  MEMBER-ID",
        "orders  0          10              12              2    m-1",
        "orders  1          -               5               -    m-2",
        "orders  2          4               -               -    -",
    ]


def test_format_empty_group():
    group = GroupDescription("idle", "empty", 0, "uniform", (), 2)
    lines = format_group(group, [])
    assert lines[0].startswith("Group: idle\tState: empty")
    assert "(no active members)" in lines and "(no committed offsets, no partitions owned)" in lines


# --- reset targets ---------------------------------------------------------------------------


A, B = TP("t", 0), TP("t", 1)
LOW = {A: 3, B: 0}
HIGH = {A: 10, B: 4}


def test_reset_targets_earliest_latest():
    assert reset_targets([A, B], LOW, HIGH, "earliest") == ({A: 3, B: 0}, [])
    assert reset_targets([A, B], LOW, HIGH, "latest") == ({A: 10, B: 4}, [])


def test_reset_targets_datetime_none_found_is_the_log_end():
    assert reset_targets([A, B], LOW, HIGH, "datetime", found={A: 5, B: None}) == (
        {A: 5, B: 4},
        [],
    )


def test_reset_targets_offset_is_moved_into_the_log():
    targets, notes = reset_targets([A, B], LOW, HIGH, "offset", offset=2)
    assert targets == {A: 3, B: 2}
    assert notes == ["t partition 0: offset 2 is outside the log (3..10); using 3"]
    targets, notes = reset_targets([A, B], LOW, HIGH, "offset", offset=50)
    assert targets == {A: 10, B: 4} and len(notes) == 2


# --- commands over a fake Admin --------------------------------------------------------------


class FakeAdmin:
    """What cli_groups asks of Admin, answered from fixed data; records resets/deletes."""

    groups: ClassVar[dict[str, GroupDescription]] = {}
    committed: ClassVar[dict[tuple[str, TP], int]] = {}
    resets: ClassVar[list[tuple[str, dict]]] = []
    deleted: ClassVar[list[str]] = []

    def __init__(self, servers: str, request_timeout_ms: int) -> None:
        self.servers = servers

    def __enter__(self) -> FakeAdmin:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def list_groups(self) -> list[GroupListing]:
        return [GroupListing(g.group_id, g.state, g.coordinator) for g in self.groups.values()]

    def describe_group(self, group_id: str) -> GroupDescription:
        if group_id not in self.groups:
            raise ZafkaError("GROUP_ID_NOT_FOUND", f"group {group_id!r}")
        return self.groups[group_id]

    def list_group_offsets(self, group_id, partitions=None):
        tps = (
            sorted(tp for g, tp in self.committed if g == group_id)
            if partitions is None
            else sorted(partitions)
        )
        return [
            GroupOffset(tp[0], tp[1], self.committed.get((group_id, TP(*tp))), "", HIGH[TP(*tp)])
            for tp in tps
        ]

    def describe_topics(self, names):
        (name,) = names
        if name != "t":
            raise ZafkaError("UNKNOWN_TOPIC_OR_PARTITION", f"topic {name!r}")
        parts = tuple(PartitionInfo(p, 1, 0, (1,), (1,)) for p in range(2))
        return [TopicDescription("t", parts, {})]

    def list_offsets(self, specs):
        out = {}
        for tp, spec in specs.items():
            tp = TP(*tp)
            if spec == EARLIEST:
                out[tp] = LOW[tp]
            elif spec == LATEST:
                out[tp] = HIGH[tp]
            else:
                out[tp] = 7 if tp == A and spec <= T0 else None
        return out

    def reset_group_offsets(self, group_id, offsets):
        self.resets.append((group_id, dict(offsets)))

    def delete_group(self, group_id):
        group = self.describe_group(group_id)
        if group.members:
            raise ZafkaError("NON_EMPTY_GROUP", f"group {group_id!r} has 1 active member")
        self.deleted.append(group_id)


@pytest.fixture
def fake(monkeypatch):
    FakeAdmin.groups = {
        "idle": GroupDescription("idle", "empty", 0, "uniform", (), 1),
        "busy": GroupDescription("busy", "stable", 2, "uniform", (member("m-1", (A, B)),), 1),
    }
    FakeAdmin.committed = {("idle", A): 4, ("busy", A): 9}
    FakeAdmin.resets, FakeAdmin.deleted = [], []
    monkeypatch.setattr(cli_common, "Admin", FakeAdmin)
    monkeypatch.delenv("ZAFKA_BOOTSTRAP", raising=False)
    return FakeAdmin


def run(argv: str) -> int:
    return cli.main([*argv.split(), "--bootstrap", "127.0.0.1:1"])


def test_list(fake, capsys):
    assert run("groups list") == 0
    assert capsys.readouterr().out == "idle\nbusy\n"
    assert run("groups list --state") == 0
    assert capsys.readouterr().out.splitlines() == [
        "GROUP  STATE   COORDINATOR",
        "idle   empty   1",
        "busy   stable  1",
    ]


def test_describe_shows_owned_partitions_without_commits(fake, capsys):
    assert run("groups describe busy") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-2:] == [
        "t      0          9               10              1    m-1",
        "t      1          -               4               -    m-1",
    ]


def test_describe_unknown_group_fails_with_a_hint(fake, capsys):
    assert run("groups describe idle nobody") == 1
    captured = capsys.readouterr()
    assert captured.out.startswith("Group: idle")
    assert "cannot describe group 'nobody': GROUP_ID_NOT_FOUND (69)" in captured.err
    assert "zafka groups list" in captured.err


def test_reset_of_an_active_group_is_refused(fake, capsys):
    assert run("groups reset-offsets busy --topic t --to-earliest") == 1
    err = capsys.readouterr().err
    assert "group busy has 1 active member" in err and "Stop its consumers first" in err
    assert fake.resets == []


def test_dry_run_of_an_active_group_prints_the_plan(fake, capsys):
    assert run("groups reset-offsets busy --topic t --to-earliest --dry-run") == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [
        "GROUP  TOPIC  PARTITION  CURRENT-OFFSET  NEW-OFFSET",
        "busy   t      0          9               3",
        "busy   t      1          -               0",
        "dry run: nothing changed",
    ]
    assert "would be refused" in captured.err
    assert fake.resets == []


@pytest.mark.parametrize(
    ("how", "expected"),
    [
        ("--to-earliest", {A: 3, B: 0}),
        ("--to-latest", {A: 10, B: 4}),
        ("--to-offset 5", {A: 5, B: 4}),
        ("--to-datetime 2023-11-14T22:13:20Z", {A: 7, B: 4}),
    ],
)
def test_reset(fake, capsys, how, expected):
    assert run(f"groups reset-offsets idle --topic t {how}") == 0
    assert fake.resets == [("idle", expected)]
    assert "reset the offsets of group idle on 2 partition(s) of t" in capsys.readouterr().out


def test_reset_of_one_partition_of_a_new_group(fake, capsys):
    assert run("groups reset-offsets fresh --topic t --partition 1 --to-offset 1") == 0
    assert fake.resets == [("fresh", {B: 1})]
    assert "fresh  t      1          -               1" in capsys.readouterr().out


def test_reset_of_a_partition_that_does_not_exist(fake, capsys):
    assert run("groups reset-offsets idle --topic t --partition 2 --to-latest") == 1
    assert "topic 't' has 2 partitions (0..1); there is no partition 2" in capsys.readouterr().err
    assert run("groups reset-offsets idle --topic nope --to-latest") == 1
    assert "UNKNOWN_TOPIC_OR_PARTITION" in capsys.readouterr().err
    assert fake.resets == []


def test_delete(fake, capsys):
    assert run("groups delete idle") == 0
    assert capsys.readouterr().out == "deleted group idle\n"
    assert run("groups delete busy nobody") == 1
    err = capsys.readouterr().err
    assert "cannot delete group 'busy': NON_EMPTY_GROUP" in err
    assert "zafka groups describe busy" in err
    assert "cannot delete group 'nobody': GROUP_ID_NOT_FOUND" in err
    assert run("groups delete nobody --if-exists") == 0
    assert capsys.readouterr().out == "group nobody does not exist\n"
    assert fake.deleted == ["idle"]
