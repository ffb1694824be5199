"""`zafka topics create|list|describe|alter|reassign|delete`: topic administration over `Admin`."""

from __future__ import annotations

import argparse

from zafka import cli_reassign
from zafka.cli_common import (
    EXIT_OK,
    Action,
    Bootstrap,
    add_command,
    arg,
    key_value,
    positive_int,
    report,
    with_admin,
)
from zafka.clients.admin import Admin, PartitionInfo, TopicDescription
from zafka.errors import ZafkaError

CONFIG_HELP = (
    "a topic config override, repeatable: retention.ms, retention.bytes, segment.bytes, "
    "segment.ms, cleanup.policy (delete|compact), delete.retention.ms, max.message.bytes, "
    "flush.ms, zafka.fsync (always|interval|never), unclean.leader.election.enable "
    "(true|false)"
)


def register(commands: argparse._SubParsersAction) -> None:
    """Add the `topics` subcommand to `commands` (the `zafka` parser's subparsers)."""
    add_command(
        commands,
        "topics",
        "create, list, describe, alter, reassign and delete topics",
        "Create, list, describe, grow, move and delete topics on a running cluster.",
        _actions(),
    )


def _actions() -> tuple[Action, ...]:
    create = Action(
        "create",
        _create,
        "create a topic",
        "Create a topic with its partitions, replication factor and configs.",
        (
            arg("name", metavar="NAME", help="topic name: letters, digits, . _ -"),
            arg("--partitions", type=positive_int, default=1, metavar="N", help="default: 1"),
            arg(
                "--replication-factor",
                type=positive_int,
                default=1,
                metavar="N",
                help="copies of each partition, at most the number of brokers (default: 1)",
            ),
            arg(
                "--config",
                type=key_value,
                action="append",
                default=[],
                metavar="KEY=VALUE",
                help=CONFIG_HELP,
            ),
            arg("--if-not-exists", action="store_true", help="succeed if the topic exists already"),
        ),
        "example: zafka topics create orders --partitions 3 --config retention.ms=86400000",
    )
    internal = arg(
        "--internal", action="store_true", help="include internal topics (names starting __)"
    )
    listing = Action(
        "list",
        _list,
        "list topic names",
        "Print every topic's name, one per line, sorted (with --under-replicated or "
        "--offline: only the topics with such a partition).",
        (
            internal,
            arg(
                "--under-replicated",
                action="store_true",
                help="only topics with a partition whose in-sync replicas are fewer than its "
                "replicas",
            ),
            arg("--offline", action="store_true", help="only topics with a partition no one leads"),
        ),
    )
    describe = Action(
        "describe",
        _describe,
        "show topics' partitions, leaders, replicas and configs",
        "Show each topic's partitions (leader, replicas, in-sync replicas) and config overrides.",
        (arg("names", nargs="+", metavar="NAME", help="topic(s) to describe"),),
    )
    alter = Action(
        "alter",
        _alter,
        "add partitions to a topic",
        "Grow a topic to N partitions in all (kafka-topics.sh --alter --partitions). The count "
        "only grows; keyed records of the old partitions stay where they are, new keys may "
        "map elsewhere.",
        (
            arg("name", metavar="NAME", help="the topic"),
            arg(
                "--partitions",
                type=positive_int,
                required=True,
                metavar="N",
                help="its partitions in all, more than now",
            ),
        ),
        "example: zafka topics alter orders --partitions 6",
    )
    delete = Action(
        "delete",
        _delete,
        "delete topics and their data",
        "Delete topics and all their records. There is no undo.",
        (
            arg("names", nargs="+", metavar="NAME", help="topic(s) to delete"),
            arg("--if-exists", action="store_true", help="succeed for topics that do not exist"),
        ),
    )
    return create, listing, describe, alter, cli_reassign.action(), delete


# --- formatting (pure) ----------------------------------------------------------------------


def _ids(ids: tuple[int, ...]) -> str:
    return ",".join(str(i) for i in ids) or "-"


def format_description(topic: TopicDescription) -> list[str]:
    """Kafka-style lines: one for the topic, one per partition."""
    configs = ",".join(f"{k}={v}" for k, v in sorted(topic.configs.items())) or "-"
    lines = [
        f"Topic: {topic.name}\tPartitions: {len(topic.partitions)}\t"
        f"ReplicationFactor: {topic.replication_factor}\tConfigs: {configs}"
    ]
    for p in topic.partitions:
        leader = "none" if p.leader is None else str(p.leader)
        flags = _flags(p)
        lines.append(
            f"\tPartition: {p.partition}\tLeader: {leader}\tLeaderEpoch: {p.leader_epoch}\t"
            f"Replicas: {_ids(p.replicas)}\tIsr: {_ids(p.isr)}"
            + (f"\t({', '.join(flags)})" if flags else "")
        )
    return lines


# --- commands -------------------------------------------------------------------------------


def _flags(p: PartitionInfo) -> list[str]:
    """The operator's warnings for one partition, as kafka-topics.sh's filters name them."""
    named = (("offline", p.offline), ("under-replicated", p.under_replicated))
    return [name for name, on in named if on]


def _create(args: argparse.Namespace) -> int:
    def work(admin: Admin, bootstrap: Bootstrap) -> int:
        configs = dict(args.config)
        try:
            admin.create_topic(args.name, args.partitions, args.replication_factor, configs)
        except ZafkaError as err:
            if args.if_not_exists and err.error.name == "TOPIC_ALREADY_EXISTS":
                print(f"topic {args.name} exists already")
                return EXIT_OK
            return report(err, bootstrap, f"cannot create topic {args.name!r}")
        print(
            f"created topic {args.name} ({args.partitions} partition"
            f"{'s' if args.partitions != 1 else ''}, replication factor "
            f"{args.replication_factor})"
        )
        return EXIT_OK

    return with_admin(args, work)


def _list(args: argparse.Namespace) -> int:
    def work(admin: Admin, bootstrap: Bootstrap) -> int:
        names = admin.list_topics(include_internal=args.internal)
        if (args.under_replicated or args.offline) and names:
            names = [t.name for t in admin.describe_topics(names) if _flagged(t, args)]
        for name in names:
            print(name)
        return EXIT_OK

    return with_admin(args, work)


def _flagged(topic: TopicDescription, args: argparse.Namespace) -> bool:
    return (args.under_replicated and topic.under_replicated) or (args.offline and topic.offline)


def _describe(args: argparse.Namespace) -> int:
    def work(admin: Admin, bootstrap: Bootstrap) -> int:
        status = EXIT_OK
        for name in dict.fromkeys(args.names):
            try:
                (topic,) = admin.describe_topics([name])
            except ZafkaError as err:
                if err.error.name == "REQUEST_TIMED_OUT":
                    raise
                status = report(err, bootstrap, f"cannot describe topic {name!r}")
                continue
            print("\n".join(format_description(topic)), flush=True)
        return status

    return with_admin(args, work)


def _alter(args: argparse.Namespace) -> int:
    def work(admin: Admin, bootstrap: Bootstrap) -> int:
        error = admin.create_partitions({args.name: args.partitions})[args.name]
        if error is not None:
            return report(error, bootstrap, f"cannot add partitions to topic {args.name!r}")
        print(f"topic {args.name} has {args.partitions} partitions now")
        return EXIT_OK

    return with_admin(args, work)


def _delete(args: argparse.Namespace) -> int:
    def work(admin: Admin, bootstrap: Bootstrap) -> int:
        status = EXIT_OK
        for name, error in admin.delete_topics(args.names).items():
            if error is None:
                print(f"deleted topic {name}")
            elif args.if_exists and error.error.name == "UNKNOWN_TOPIC_OR_PARTITION":
                print(f"topic {name} does not exist")
            else:
                status = report(error, bootstrap, f"cannot delete topic {name!r}")
        return status

    return with_admin(args, work)
