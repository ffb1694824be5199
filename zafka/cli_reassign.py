"""`zafka topics reassign`: move partitions' replicas (kafka-reassign-partitions.sh
--execute / --verify) over `Admin.alter_partition_reassignments`.

The plan is Kafka's reassignment JSON:

    {"version": 1, "partitions": [{"topic": "orders", "partition": 0, "replicas": [2, 3]}]}
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from zafka import clock
from zafka.cli_common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    Action,
    Bootstrap,
    OneOf,
    arg,
    fail,
    positive_int,
    progress_arg,
    report,
    show_progress,
    with_admin,
)
from zafka.clients.admin import Admin

Plan = dict[tuple[str, int], list[int]]
POLL_S = 0.5  # how often --wait asks which partitions are still moving
DEFAULT_WAIT_MS = 300_000


class PlanError(ValueError):
    """The plan file is not Kafka's reassignment JSON; the message says where."""


def action() -> Action:
    return Action(
        "reassign",
        _reassign,
        "move partitions' replicas to other brokers",
        "Move partitions' replicas as a plan says (Kafka's reassignment JSON), or show the "
        "moves under way. The controller adds the new replicas, waits until they are in "
        "sync, moves the leader if it is not among them, then drops the old replicas.",
        (
            OneOf(
                (
                    arg("--plan", metavar="FILE", help="Kafka's reassignment JSON file"),
                    arg("--status", action="store_true", help="list the moves under way"),
                )
            ),
            arg("--wait", action="store_true", help="with --plan: until every move is done"),
            arg(
                "--wait-timeout-ms",
                type=positive_int,
                default=DEFAULT_WAIT_MS,
                metavar="MS",
                help=f"how long --wait waits (default: {DEFAULT_WAIT_MS})",
            ),
            progress_arg("while --wait waits"),
        ),
        'example: zafka topics reassign --plan moves.json --wait  (moves.json: {"version": 1, '
        '"partitions": [{"topic": "orders", "partition": 0, "replicas": [2, 3]}]})',
    )


def parse_plan(text: str) -> Plan:
    """The moves of a reassignment JSON; PlanError naming what is wrong."""
    try:
        body = json.loads(text)
    except (ValueError, RecursionError) as err:
        raise PlanError(f"not JSON: {err}") from None
    if not isinstance(body, dict) or body.get("version") != 1:
        raise PlanError('expected an object with "version": 1')
    partitions = body.get("partitions")
    if not isinstance(partitions, list) or not partitions:
        raise PlanError('"partitions" must be a list of moves, at least one')
    plan: Plan = {}
    for n, move in enumerate(partitions):
        topic = move.get("topic") if isinstance(move, dict) else None
        partition = move.get("partition") if isinstance(move, dict) else None
        replicas = move.get("replicas") if isinstance(move, dict) else None
        ids = isinstance(replicas, list) and all(type(r) is int for r in replicas)
        if not isinstance(topic, str) or type(partition) is not int or not ids:
            raise PlanError(
                f'partitions[{n}]: needs "topic" (str), "partition" (int) and '
                '"replicas" (a list of broker ids)'
            )
        if (topic, partition) in plan:
            raise PlanError(f"partitions[{n}]: {topic}-{partition} is moved twice")
        plan[(topic, partition)] = replicas
    return plan


def _reassign(args: argparse.Namespace) -> int:
    plan: Plan = {}
    if args.plan:
        try:
            plan = parse_plan(Path(args.plan).read_text())
        except (OSError, PlanError) as err:
            return fail(f"--plan {args.plan}: {err}", EXIT_USAGE)

    def work(admin: Admin, bootstrap: Bootstrap) -> int:
        if args.status:
            return _status(admin)
        status, started = EXIT_OK, []
        for tp, error in admin.alter_partition_reassignments(plan).items():
            if error is None:
                started.append(tp)
                print(f"moving {tp.topic}-{tp.partition} to {_ids(plan[tp])}")
            else:
                status = report(error, bootstrap, f"cannot move {tp.topic}-{tp.partition}")
        if args.wait and started:
            return _wait(admin, set(started), args) or status
        return status

    return with_admin(args, work)


def _status(admin: Admin) -> int:
    moving = admin.list_partition_reassignments()
    if not moving:
        print("no partition is being moved")
    for tp, r in sorted(moving.items()):
        print(
            f"{tp.topic}-{tp.partition}\treplicas: {_ids(r.replicas)}\tadding: "
            f"{_ids(r.adding)}\tremoving: {_ids(r.removing)}"
        )
    return EXIT_OK


def _wait(admin: Admin, started: set, args: argparse.Namespace) -> int:
    deadline = clock.monotonic_s() + args.wait_timeout_ms / 1000
    bar = None
    if show_progress(args):
        from tqdm import tqdm

        bar = tqdm(total=len(started), unit="partition", desc="moved", file=sys.stderr)
    try:
        while left := started & set(admin.list_partition_reassignments()):
            if bar is not None:
                bar.n = len(started) - len(left)
                bar.refresh()
            if clock.monotonic_s() > deadline:
                names = ", ".join(f"{tp.topic}-{tp.partition}" for tp in sorted(left))
                return fail(
                    f"still moving after {args.wait_timeout_ms} ms: {names} (see "
                    "`zafka topics reassign --status`)",
                    EXIT_FAILED,
                )
            time.sleep(POLL_S)  # the controller reports no completion: ask again
    finally:
        if bar is not None:
            bar.close()
    print(f"every move is done ({len(started)} partition{'s' if len(started) > 1 else ''})")
    return EXIT_OK


def _ids(ids) -> str:
    return ",".join(str(i) for i in ids) or "-"
