"""`zafka groups list|describe|reset-offsets|delete`: consumer-group administration over
`Admin` (clients/admin_groups.py).

`describe` prints, like Kafka's kafka-consumer-groups.sh, a line for the group, its members
(with the partitions each owns and is giving up) and a table of partitions: the committed
offset, the log end offset and the lag, with the member that owns the partition.
`reset-offsets` commits new offsets from outside the group, which the coordinator accepts
only while the group has no members: stop its consumers first.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

from zafka.cli_common import (
    EXIT_OK,
    Action,
    Bootstrap,
    OneOf,
    add_command,
    arg,
    fail,
    non_negative_int,
    report,
    with_admin,
)
from zafka.clients.admin import Admin
from zafka.clients.admin_groups import (
    EARLIEST,
    LATEST,
    GroupDescription,
    GroupOffset,
    MemberDescription,
)
from zafka.errors import ZafkaError
from zafka.transport.names import TopicPartition

NONE = "-"  # a table cell with no value
DATETIME_EXAMPLES = "2024-05-01T12:00:00Z, 2024-05-01T14:00:00+02:00, 2024-05-01"


def register(commands: argparse._SubParsersAction) -> None:
    """Add the `groups` subcommand to `commands` (the `zafka` parser's subparsers)."""
    add_command(
        commands,
        "groups",
        "list, describe, reset the offsets of and delete consumer groups",
        "List, describe, reset the committed offsets of and delete consumer groups on a "
        "running cluster.",
        (_list_action(), _describe_action(), _reset_action(), _delete_action()),
    )


def _list_action() -> Action:
    state = arg(
        "--state",
        action="store_true",
        help="print a table with each group's state (empty: no members, stable, or "
        "reconciling: partitions are moving) and its coordinator broker",
    )
    return Action(
        "list",
        _list,
        "list consumer groups",
        "Print every consumer group's id, one per line, sorted (every broker is asked for "
        "the groups it coordinates). Groups never used, or deleted, are not listed.",
        (state,),
    )


def _describe_action() -> Action:
    return Action(
        "describe",
        _describe,
        "show groups' members, assignments, committed offsets and lag",
        "Show each group: its state, epoch, assignor and coordinator; its members (id, "
        "static instance id, epoch, state, subscription, the partitions each owns and those "
        "it is giving up); and per partition the committed offset (CURRENT-OFFSET), the log "
        "end offset (LOG-END-OFFSET), the lag (their difference) and the member that owns it. "
        "A partition owned but never committed shows - as its offset and lag.",
        (arg("groups", nargs="+", metavar="GROUP", help="group(s) to describe"),),
        "example: zafka groups describe readers",
    )


def _reset_action() -> Action:
    to = OneOf(
        (
            arg("--to-earliest", action="store_true", help="the first offset still in the log"),
            arg(
                "--to-latest",
                action="store_true",
                help="the log end offset: the consumers skip every record written so far",
            ),
            arg(
                "--to-datetime",
                type=parse_datetime,
                metavar="ISO8601",
                help="the first record written at or after this time (the log end if none "
                f"is); e.g. {DATETIME_EXAMPLES}; without a time zone, local time",
            ),
            arg(
                "--to-offset",
                type=non_negative_int,
                metavar="N",
                help="offset N; moved into the log's range (its first offset .. its end) if "
                "outside",
            ),
        )
    )
    where = (
        arg("group", metavar="GROUP", help="the group whose offsets to set"),
        arg("--topic", required=True, metavar="TOPIC", help="the topic to reset"),
        arg(
            "--partition",
            type=non_negative_int,
            action="append",
            metavar="P",
            help="a partition to reset, repeatable (default: every partition of --topic)",
        ),
    )
    dry_run = arg("--dry-run", action="store_true", help="print the new offsets, change nothing")
    return Action(
        "reset-offsets",
        _reset,
        "set a group's committed offsets (only while it has no members)",
        "Set the group's committed offsets of a topic's partitions (all of them, or those "
        "given with --partition), so that its consumers start there. The group must have no "
        "members: stop its consumers first (a reset is refused otherwise). A group that does "
        "not exist is created with these offsets. Prints each partition's current and new "
        "offset; --dry-run prints them without changing anything.",
        (*where, to, dry_run),
        "examples:\n"
        "  zafka groups reset-offsets readers --topic orders --to-earliest\n"
        "  zafka groups reset-offsets readers --topic orders --partition 0 --to-offset 42\n"
        "  zafka groups reset-offsets readers --topic orders --to-datetime 2024-05-01T12:00Z "
        "--dry-run",
    )


def _delete_action() -> Action:
    return Action(
        "delete",
        _delete,
        "delete groups and their committed offsets",
        "Delete consumer groups and their committed offsets (only while a group has no "
        "members: stop its consumers first). There is no undo.",
        (
            arg("groups", nargs="+", metavar="GROUP", help="group(s) to delete"),
            arg("--if-exists", action="store_true", help="succeed for groups that do not exist"),
        ),
    )


# --- parsing and formatting (pure) ----------------------------------------------------------


def parse_datetime(text: str) -> int:
    """argparse type: an ISO 8601 date and time (local time without a zone) as ms since the
    epoch."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not an ISO 8601 date and time: {text!r} (e.g. {DATETIME_EXAMPLES})"
        ) from None
    if moment.tzinfo is None:
        moment = moment.astimezone()  # local time
    ms = int(moment.timestamp() * 1000)
    if ms < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is before 1970-01-01T00:00:00Z")
    return ms


def format_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    """Columns left-aligned, two spaces apart; None shows as -."""
    cells = [list(headers)] + [[NONE if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]


def format_partitions(tps: Iterable[tuple[str, int]]) -> str:
    """`orders:0-2,5;audit:1` (runs of partitions as ranges, topics by name), or -."""
    by_topic: dict[str, list[int]] = {}
    for topic, partition in sorted(set(tps)):
        by_topic.setdefault(topic, []).append(partition)
    parts = []
    for topic, partitions in by_topic.items():
        runs: list[list[int]] = []
        for p in partitions:
            if runs and p == runs[-1][1] + 1:
                runs[-1][1] = p
            else:
                runs.append([p, p])
        text = ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)
        parts.append(f"{topic}:{text}")
    return ";".join(parts) or NONE


def format_subscription(member: MemberDescription) -> str:
    """The topics, comma-separated, or `pattern:REGEX`."""
    if member.subscription_pattern is not None:
        return f"pattern:{member.subscription_pattern}"
    return ",".join(member.subscription) or NONE


def format_group(group: GroupDescription, offsets: Sequence[GroupOffset]) -> list[str]:
    """A line for the group, a table of its members, a table of its partitions (sorted,
    each with its committed offset, log end, lag and owner)."""
    n = len(group.members)
    lines = [
        f"Group: {group.group_id}\tState: {group.state}\tEpoch: {group.epoch}\t"
        f"Assignor: {group.assignor}\tCoordinator: {group.coordinator}\tMembers: {n}",
        "",
    ]
    if group.members:
        lines += format_table(
            ("MEMBER-ID", "INSTANCE-ID", "EPOCH", "STATE", "SUBSCRIPTION", "ASSIGNED", "REVOKING"),
            (
                (
                    m.member_id,
                    m.instance_id,
                    m.member_epoch,
                    m.state,
                    format_subscription(m),
                    format_partitions(m.assignment),
                    format_partitions(m.revoking),
                )
                for m in sorted(group.members, key=lambda m: m.member_id)
            ),
        )
    else:
        lines.append("(no active members)")
    lines.append("")
    owners = group.owners()
    if offsets:
        lines += format_table(
            ("TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "MEMBER-ID"),
            (
                (
                    o.topic,
                    o.partition,
                    o.committed,
                    o.log_end,
                    o.lag,
                    owners.get(TopicPartition(o.topic, o.partition)),
                )
                for o in sorted(offsets, key=lambda o: (o.topic, o.partition))
            ),
        )
    else:
        lines.append("(no committed offsets, no partitions owned)")
    return lines


def reset_targets(
    tps: Sequence[TopicPartition],
    earliest: dict[TopicPartition, int],
    latest: dict[TopicPartition, int],
    to: str,
    found: dict[TopicPartition, int | None] | None = None,
    offset: int = 0,
) -> tuple[dict[TopicPartition, int], list[str]]:
    """The new offset of each partition, and notes for the user. `to`: "earliest", "latest",
    "datetime" (`found`: the offsets ListOffsets found for the time, None where no record is
    that late: the log end) or "offset" (`offset`, moved into [earliest, latest])."""
    targets: dict[TopicPartition, int] = {}
    notes = []
    for tp in tps:
        low, high = earliest[tp], latest[tp]
        if to == "earliest":
            targets[tp] = low
        elif to == "latest":
            targets[tp] = high
        elif to == "datetime":
            assert found is not None
            at = found[tp]
            targets[tp] = high if at is None else at
        else:
            targets[tp] = min(max(offset, low), high)
            if targets[tp] != offset:
                notes.append(
                    f"{tp.topic} partition {tp.partition}: offset {offset} is outside the "
                    f"log ({low}..{high}); using {targets[tp]}"
                )
    return targets, notes


# --- commands -------------------------------------------------------------------------------


def _hint(error: ZafkaError, group: str) -> str:
    """What the user can do about a group error, or ""."""
    name = error.error.name
    if name == "GROUP_ID_NOT_FOUND":
        return "see the groups with `zafka groups list`."
    if name == "NON_EMPTY_GROUP":
        return f"see its members with `zafka groups describe {group}`."
    if name == "INVALID_GROUP_ID":
        return "a group id is 1..249 characters of A-Z a-z 0-9 . _ -"
    return ""


def _with_admin(args: argparse.Namespace, work: Callable[[Admin, Bootstrap], int]) -> int:
    group = getattr(args, "group", None) or "GROUP"
    return with_admin(args, work, lambda error: _hint(error, group))


def _list(args: argparse.Namespace) -> int:
    def work(admin: Admin, bootstrap: Bootstrap) -> int:
        groups = admin.list_groups()
        if not args.state:
            for g in groups:
                print(g.group_id)
        elif groups:
            rows = ((g.group_id, g.state, g.coordinator) for g in groups)
            print("\n".join(format_table(("GROUP", "STATE", "COORDINATOR"), rows)))
        return EXIT_OK

    return _with_admin(args, work)


def _describe(args: argparse.Namespace) -> int:
    def work(admin: Admin, bootstrap: Bootstrap) -> int:
        status, first = EXIT_OK, True
        for group_id in dict.fromkeys(args.groups):
            try:
                group = admin.describe_group(group_id)
                offsets = admin.list_group_offsets(group_id)
                owned = set(group.owners()) - {(o.topic, o.partition) for o in offsets}
                if owned:  # owned but never committed: their log ends all the same
                    offsets += admin.list_group_offsets(group_id, owned)
            except ZafkaError as err:
                if err.error.name == "REQUEST_TIMED_OUT":
                    raise
                what = f"cannot describe group {group_id!r}"
                status = report(err, bootstrap, what, _hint(err, group_id))
                continue
            if not first:
                print()
            first = False
            print("\n".join(format_group(group, offsets)), flush=True)
        return status

    return _with_admin(args, work)


def _reset(args: argparse.Namespace) -> int:
    def work(admin: Admin, bootstrap: Bootstrap) -> int:
        group_id, topic = args.group, args.topic
        try:
            members = len(admin.describe_group(group_id).members)
        except ZafkaError as err:
            if err.error.name != "GROUP_ID_NOT_FOUND":
                raise
            members = 0  # a new group: the reset creates it
        if members and not args.dry_run:
            return _refuse(group_id, members)
        (description,) = admin.describe_topics([topic])
        count = len(description.partitions)
        partitions = sorted(set(args.partition or range(count)))
        beyond = [p for p in partitions if p >= count]
        if beyond:
            return fail(
                f"topic {topic!r} has {count} partition{'s' if count != 1 else ''} "
                f"(0..{count - 1}); there is no partition {beyond[0]}"
            )
        tps = [TopicPartition(topic, p) for p in partitions]
        committed = admin.list_group_offsets(group_id, tps)
        current = {TopicPartition(o.topic, o.partition): o.committed for o in committed}
        targets, notes = _targets(admin, args, tps)
        header = ("GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "NEW-OFFSET")
        rows = ((group_id, tp.topic, tp.partition, current.get(tp), targets[tp]) for tp in tps)
        print("\n".join(format_table(header, rows)), flush=True)
        for note in notes:
            print(f"zafka: note: {note}", file=sys.stderr)
        if args.dry_run:
            if members:
                print(
                    f"zafka: note: group {group_id} has {members} active member(s): the "
                    "reset would be refused until its consumers stop",
                    file=sys.stderr,
                )
            print("dry run: nothing changed")
            return EXIT_OK
        try:
            admin.reset_group_offsets(group_id, targets)
        except ZafkaError as err:
            return report(err, bootstrap, f"cannot reset group {group_id!r}", _hint(err, group_id))
        print(f"reset the offsets of group {group_id} on {len(tps)} partition(s) of {topic}")
        return EXIT_OK

    return _with_admin(args, work)


def _targets(
    admin: Admin, args: argparse.Namespace, tps: list[TopicPartition]
) -> tuple[dict[TopicPartition, int], list[str]]:
    """The new offsets the command line asks for (looked up with ListOffsets), and notes."""
    earliest = _ints(admin.list_offsets(dict.fromkeys(tps, EARLIEST)))
    latest = _ints(admin.list_offsets(dict.fromkeys(tps, LATEST)))
    if args.to_datetime is not None:
        found = admin.list_offsets(dict.fromkeys(tps, args.to_datetime))
        return reset_targets(tps, earliest, latest, "datetime", found=found)
    if args.to_offset is not None:
        return reset_targets(tps, earliest, latest, "offset", offset=args.to_offset)
    return reset_targets(tps, earliest, latest, "earliest" if args.to_earliest else "latest")


def _ints(offsets: dict[TopicPartition, int | None]) -> dict[TopicPartition, int]:
    """Log bounds (never None: that is only for a time with no record)."""
    return {tp: 0 if o is None else o for tp, o in offsets.items()}


def _refuse(group_id: str, members: int) -> int:
    return fail(
        f"group {group_id} has {members} active member{'s' if members != 1 else ''}: its "
        "offsets can only be reset while it has none. Stop its consumers first (see them "
        f"with `zafka groups describe {group_id}`), then run this again."
    )


def _delete(args: argparse.Namespace) -> int:
    def work(admin: Admin, bootstrap: Bootstrap) -> int:
        status = EXIT_OK
        for group_id in dict.fromkeys(args.groups):
            try:
                admin.delete_group(group_id)
            except ZafkaError as err:
                if args.if_exists and err.error.name == "GROUP_ID_NOT_FOUND":
                    print(f"group {group_id} does not exist")
                    continue
                if err.error.name == "REQUEST_TIMED_OUT":
                    raise
                status = report(
                    err, bootstrap, f"cannot delete group {group_id!r}", _hint(err, group_id)
                )
                continue
            print(f"deleted group {group_id}")
        return status

    return _with_admin(args, work)
