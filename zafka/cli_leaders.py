"""`zafka cluster elect-leaders`: preferred leader election (kafka-leader-election.sh
--election-type PREFERRED) over `Admin.elect_leaders`."""

from __future__ import annotations

import argparse
import sys

from zafka.cli_common import (
    EXIT_CODES_EPILOG,
    EXIT_FAILED,
    EXIT_OK,
    Bootstrap,
    HelpFormatter,
    add_connection_arguments,
    with_admin,
)
from zafka.clients.admin import Admin
from zafka.errors import ZafkaError
from zafka.transport.names import TopicPartition

DONE = "ELECTION_NOT_NEEDED"  # the outcome that is no failure: the preferred one leads


def add_elect_leaders(actions: argparse._SubParsersAction) -> None:
    """Add `elect-leaders` to the `zafka cluster` actions."""
    parser = actions.add_parser(
        "elect-leaders",
        help="move leadership back to each partition's preferred replica",
        description="Preferred leader election: each partition (of --topic, default all) "
        "whose first replica is live and in sync but does not lead gets it as leader again "
        "(the controller does it; this waits until it is done or --request-timeout-ms "
        "passes). The controller also does it by itself every "
        "leader-imbalance-check-interval-ms.",
        epilog="example: zafka cluster elect-leaders --topic orders\n" + EXIT_CODES_EPILOG,
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "--topic", action="append", metavar="NAME", help="only this topic's partitions (repeatable)"
    )
    add_connection_arguments(parser)
    parser.set_defaults(func=_elect)


def format_results(
    results: dict[TopicPartition, ZafkaError | None],
) -> tuple[list[str], list[str]]:
    """What went well and what failed, as kafka-leader-election.sh words it."""
    elected = [tp for tp, error in results.items() if error is None]
    already = [tp for tp, e in results.items() if e is not None and e.error.name == DONE]
    failed = {tp: e for tp, e in results.items() if e is not None and e.error.name != DONE}
    done = "Successfully completed leader election (PREFERRED) for partitions"
    out = [f"{done} {_tps(elected)}"] if elected else []
    if already:
        out.append(f"Valid replica already elected for partitions {_tps(already)}")
    if not results:
        out.append("No partitions to elect leaders for")
    error = "Error completing leader election (PREFERRED) for partition"
    return out, [f"{error} {_tps([tp])}: {e}" for tp, e in failed.items()]


def _tps(tps: list[TopicPartition]) -> str:
    return ", ".join(f"{tp.topic}-{tp.partition}" for tp in tps)


def _elect(args: argparse.Namespace) -> int:
    def work(admin: Admin, bootstrap: Bootstrap) -> int:
        partitions = None
        if args.topic:
            described = admin.describe_topics(args.topic)
            partitions = [(t.name, p.partition) for t in described for p in t.partitions]
        out, failed = format_results(admin.elect_leaders(partitions))
        print("\n".join(out))
        for line in failed:
            print(line, file=sys.stderr)
        return EXIT_FAILED if failed else EXIT_OK

    return with_admin(args, work)
