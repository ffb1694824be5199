"""The `zafka` command line. Each subcommand is a thin layer over a library call."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from zafka import (
    broker_main,
    cli_bench,
    cli_consume,
    cli_groups,
    cli_leaders,
    cli_produce,
    cli_topics,
    cluster,
    cluster_restart,
    cluster_zk,
    zookeeper,
)
from zafka.version import __version__

DEFAULT_CLUSTER_DIR = ".zafka"
DEFAULT_ZK_PORT = 2181
ZK_MODE_WORDS = {
    cluster_zk.LOCAL: "local install",
    cluster_zk.CONTAINER: "in a container",
    cluster_zk.AUTO: "local install, else in a container",
}


def _invocation() -> str:
    """How the user can run this same `zafka` again: bare if it is on PATH, else by its path."""
    argv0 = sys.argv[0]
    on_path = shutil.which("zafka")
    if os.path.basename(argv0) != "zafka" or (
        on_path and os.path.realpath(on_path) == os.path.realpath(argv0)
    ):
        return "zafka"
    return os.path.relpath(argv0)


def _cluster_up(args: argparse.Namespace) -> int:
    cluster.check_broker_count(args.brokers)  # before anything starts
    root = Path(args.dir).resolve()
    if cluster_zk.running(root) is None:
        where = f"127.0.0.1:{args.zk_port}" if args.zk_port else "a free port on 127.0.0.1"
        how = ZK_MODE_WORDS[args.zookeeper or cluster_zk.LOCAL]
        print(f"starting ZooKeeper ({how}) on {where} (state in {root}) ...", flush=True)
    zk = cluster.start_zookeeper(root, args.zk_port, args.zookeeper, args.zookeeper_image)
    print(f"ZooKeeper is ready: 127.0.0.1:{zk.port} answers ruok ({zk.identity()})")
    if zk.container:
        print(f"  log:   docker logs {zk.container[:12]} (saved to {zk.log} by `cluster down`)")
    else:
        print(f"  log:   {zk.log}")
    plural = "s" if args.brokers > 1 else ""
    print(f"starting {args.brokers} broker{plural} ...", flush=True)
    brokers = cluster.start_brokers(root, args.brokers, kafka=not args.no_kafka)
    for info in brokers:
        print(f"{info.name} is ready: tcp://127.0.0.1:{info.port} answers (pid {info.pid})")
        if info.kafka_port:
            print(f"  kafka: 127.0.0.1:{info.kafka_port} (Kafka protocol listener)")
        print(f"  log:   {info.log}")
    dir_option = "" if args.dir == DEFAULT_CLUSTER_DIR else f" --dir {args.dir}"
    print(f"bootstrap: {cluster.bootstrap(brokers)}")
    if cluster.kafka_bootstrap(brokers):
        print(f"kafka-bootstrap: {cluster.kafka_bootstrap(brokers)}")
    print(f"  check: {_invocation()} cluster status{dir_option}")
    print(f"  stop:  {_invocation()} cluster down{dir_option}")
    return 0


def _cluster_down(args: argparse.Namespace) -> int:
    results = cluster.stop_all(Path(args.dir).resolve())
    if not results:
        print("nothing to stop: no cluster was started from this directory")
    for info, was_running in results:
        done = "stopped" if was_running else "was not running"
        if was_running and info.container:
            done += ", container removed"
        print(f"{info.name}: {done} ({info.identity()})")
    return 0


def _cluster_restart(args: argparse.Namespace) -> int:
    brokers = cluster_restart.restart(Path(args.dir).resolve(), args.rolling, _say)
    for info in brokers:
        print(f"{info.name} is ready: tcp://127.0.0.1:{info.port} answers (pid {info.pid})")
    return 0


def _say(line: str) -> None:
    print(line, flush=True)


def _cluster_status(args: argparse.Namespace) -> int:
    rows = cluster.describe(Path(args.dir).resolve())
    if not rows:
        print("no cluster: start one with `zafka cluster up`")
        return 1
    healthy = True
    for info, running, answering in rows:
        health = "ready" if answering else ("running, not answering" if running else "stopped")
        healthy = healthy and answering
        print(f"{info.name}: {health} ({info.identity()}, 127.0.0.1:{info.port})")
    found = cluster.controller(Path(args.dir).resolve())
    if found is None:  # for a moment after a start or a controller's death
        print("controller: none yet (a broker takes control within the ZooKeeper session)")
    else:
        print(f"controller: broker-{found[0]} (controller epoch {found[1]})")
    infos = [info for info, _, _ in rows]
    print(f"bootstrap: {cluster.bootstrap(infos)}")
    if cluster.kafka_bootstrap(infos):
        print(f"kafka-bootstrap: {cluster.kafka_bootstrap(infos)}")
    return 0 if healthy else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zafka",
        description="zafka: partitioned, replicated, durable event logs (a Kafka in Python).",
    )
    parser.add_argument("--version", action="version", version=f"zafka {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    cluster_cmd = commands.add_parser(
        "cluster",
        help="run a local cluster on this machine (127.0.0.1 only)",
        description="Start, check and stop a local cluster: ZooKeeper (Debian's package, "
        "or an image run by Docker) and N brokers, each a separate process with its own data "
        "directory and log under the cluster directory. Everything binds 127.0.0.1 only.",
    )
    actions = cluster_cmd.add_subparsers(dest="action", metavar="ACTION", required=True)
    up = actions.add_parser(
        "up",
        help="start ZooKeeper and the brokers, wait until they answer",
        description="Start ZooKeeper (a local install or a container: --zookeeper) and wait "
        "until it answers ruok, then brokers 1..N (`zafka broker` processes with topic "
        "auto-creation on, each on a free 127.0.0.1 port), and wait until each broker has "
        "registered in ZooKeeper and answers a metadata request. Prints the bootstrap "
        "address for clients (bootstrap: 127.0.0.1:PORT[,...]) and how to stop the cluster. "
        "Processes already running are kept, so running it again is harmless.",
    )
    up.add_argument(
        "--zk-port",
        type=int,
        default=DEFAULT_ZK_PORT,
        help=f"ZooKeeper client port on 127.0.0.1 (default: {DEFAULT_ZK_PORT}; 0: a free one)",
    )
    up.add_argument(
        "--zookeeper",
        choices=cluster_zk.MODES,
        help="how ZooKeeper runs: local = Debian's `zookeeper` package (scripts/setup.sh "
        "installs it); container = an image run by Docker with host networking, stopped and "
        "removed by `cluster down`; auto = local if installed, else container (default: "
        "local; a ZooKeeper this cluster runs already is kept, whichever way it runs)",
    )
    up.add_argument(
        "--zookeeper-image",
        metavar="IMAGE",
        help=f"the image of --zookeeper container (default: ${zookeeper.IMAGE_ENV}, else "
        f"{zookeeper.DEFAULT_IMAGE}, built by scripts/zk-image.sh; the official `zookeeper` "
        "image works too)",
    )
    up.add_argument(
        "--brokers",
        type=int,
        default=1,
        metavar="N",
        help="number of brokers, ids 1..N (default: 1)",
    )
    up.add_argument(
        "--no-kafka",
        action="store_true",
        help="no Kafka protocol listener (by default each broker gets one on a free port, "
        "printed as the kafka-bootstrap: line for Kafka clients)",
    )
    up.set_defaults(func=_cluster_up)
    down = actions.add_parser(
        "down",
        help="stop every process the cluster started",
        description="Stop the brokers (SIGTERM, then SIGKILL if one has not stopped within "
        "a grace period), then ZooKeeper (a container is stopped the same way through Docker, "
        "its output appended to its log, then removed). Data and logs stay in the cluster "
        "directory.",
    )
    down.set_defaults(func=_cluster_down)
    status = actions.add_parser(
        "status",
        help="show each process and whether it answers",
        description="List each process of the cluster: ready (it answers: ruok for ZooKeeper, "
        "a metadata request for a broker), running but not answering, or stopped. Exit code "
        "0 only when all are ready.",
    )
    status.set_defaults(func=_cluster_status)
    restart = actions.add_parser(
        "restart",
        help="restart the brokers (--rolling: one at a time)",
        description="Restart the running brokers on their ports. At once: stop all, start "
        "all, wait until each answers. --rolling: one at a time, the controller last; each "
        "is waited for until it answers and the cluster has as few offline and "
        "under-replicated partitions as before it was stopped.",
    )
    restart.add_argument(
        "--rolling", action="store_true", help="one broker at a time, keeping the cluster up"
    )
    restart.set_defaults(func=_cluster_restart)
    cli_leaders.add_elect_leaders(actions)
    for action in (up, down, status, restart):
        action.add_argument(
            "--dir",
            default=DEFAULT_CLUSTER_DIR,
            help="directory holding the cluster's state, data and logs "
            f"(default: {DEFAULT_CLUSTER_DIR})",
        )
    broker_cmd = commands.add_parser(
        "broker",
        help="run one broker process in the foreground (stop it with SIGTERM or Ctrl-C)",
        description="Run a broker: it registers in ZooKeeper, hosts the partitions it leads "
        "and serves produce, fetch, metadata and admin requests. Prints 'broker N ready at "
        "ENDPOINT' once serving.",
    )
    broker_main.add_arguments(broker_cmd)
    broker_cmd.set_defaults(func=broker_main.run)
    for client_command in (cli_topics, cli_groups, cli_produce, cli_consume, cli_bench):
        client_command.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except cluster.LauncherError as err:
        print(f"zafka: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
