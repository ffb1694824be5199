"""The broker process: `zafka broker --id N --zookeeper HOST:PORT[/chroot] --listen ENDPOINT
--data-dir DIR`.

`run(args)` connects to ZooKeeper (creating the chroot), binds the listen endpoint
(tcp://127.0.0.1 only for now), registers `/brokers/ids/<id>` as an ephemeral znode holding
`{"endpoint": ..., "version": 1}`, spawns the `BrokerActor` and the `ControllerActor` (in
the running for the cluster's controller: actors/controller/actor.py), starts the ZooKeeper worker
thread (the broker's kazoo calls run there, see actors/broker/actor.py) and runs the runtime loop in
the main thread; once the actors have started it prints one line, `broker N ready at ENDPOINT`.

SIGTERM or SIGINT stops it cleanly: the runtime stops every actor (partition logs are
flushed and sealed; requests waiting for ZooKeeper get STOPPED), the ZooKeeper worker stops,
then the broker leaves the controller election (handing control over at once if it had
it), its registration is removed and the ZooKeeper session closed;
the exit code is 0. After a kill -9 the old session's znode lingers until ZooKeeper
expires it, so a restarted broker waits (bounded: twice the session timeout plus 2 s)
for it to go.
"""

from __future__ import annotations

import argparse
import logging
import re
import signal
import sys
import threading
from pathlib import Path

from kazoo.client import KazooClient
from kazoo.exceptions import NodeExistsError
from kazoo.handlers.threading import KazooTimeoutError

from zafka import broker_config, clock, limits
from zafka.actors.broker.actor import BrokerActor, BrokerContext
from zafka.actors.broker.admin import DEFAULT_OFFSETS_PARTITIONS, BrokerZooKeeper
from zafka.actors.controller.actor import ControllerActor
from zafka.actors.controller.context import ControllerContext, ControllerSettings
from zafka.actors.group.host import GroupHost, GroupSettings
from zafka.actors.kafka import service as kafka_service
from zafka.actors.replication.server import ReplicationActor
from zafka.actors.runtime.loop import Runtime, SupervisionError
from zafka.coordination import paths
from zafka.coordination.brokers import registration_json
from zafka.coordination.registry import EphemeralRegistration
from zafka.coordination.worker import ZooKeeperWorker
from zafka.errors import ZafkaError
from zafka.transport.names import broker_node
from zafka.transport.zmq_transport import ZmqTransport

log = logging.getLogger(__name__)

_LISTEN = re.compile(r"tcp://(?P<host>[^:/]+):(?P<port>\d{1,5})")
ALLOWED_HOSTS = ("127.0.0.1",)


class BrokerStartError(Exception):
    """The broker cannot start (bad option, ZooKeeper unreachable, id taken): exit code 2."""


def check_listen(endpoint: str) -> str:
    """`endpoint` if it is tcp://127.0.0.1:PORT; BrokerStartError saying why otherwise."""
    match = _LISTEN.fullmatch(endpoint)
    if match is None or int(match["port"]) > 65535:
        raise BrokerStartError(f"--listen must be tcp://127.0.0.1:PORT, got {endpoint!r}")
    if match["host"] not in ALLOWED_HOSTS:
        raise BrokerStartError(
            f"--listen host {match['host']!r} refused: a broker binds 127.0.0.1 only for now "
            "(no authentication or encryption yet)"
        )
    return endpoint


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `zafka broker` options (used by zafka/cli.py). Required ones may come from the
    --config file instead (zafka/broker_config.py); defaults are applied there."""
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="key=value settings (option names, or Kafka's: broker.id, zookeeper.connect, "
        "listeners, log.dirs, ...); options given here win",
    )
    parser.add_argument("--id", type=int, help="this broker's id (an int >= 0)")
    parser.add_argument(
        "--zookeeper",
        metavar="HOST:PORT[/CHROOT]",
        help="ZooKeeper connect string; the chroot is created if missing",
    )
    parser.add_argument(
        "--listen",
        metavar="tcp://127.0.0.1:PORT",
        help="endpoint clients and brokers connect to (127.0.0.1 only; port 0 picks a free one)",
    )
    parser.add_argument(
        "--kafka-listen",
        metavar="127.0.0.1:PORT",
        help="also serve the Kafka protocol here, for Kafka clients (kafka-python, "
        "confluent-kafka, aiokafka; port 0 picks a free one; default: no Kafka listener)",
    )
    parser.add_argument("--data-dir", help="directory of this broker's partition logs")
    parser.add_argument(
        "--rack",
        metavar="NAME",
        help="this broker's rack (Kafka's broker.rack): replicas of a new partition go to "
        "different racks when every broker names one",
    )
    parser.add_argument(
        "--auto-create-topics",
        action="store_true",
        default=None,
        help="create unknown topics named in a Metadata request (default: off)",
    )
    parser.add_argument(
        "--default-partitions",
        type=int,
        help="partitions of an auto-created topic (default: 1)",
    )
    parser.add_argument(
        "--offsets-topic-partitions",
        type=int,
        help="partitions of __consumer_offsets if this broker creates it (on the first "
        "FindCoordinator; the first creator's count holds) "
        f"(default: {DEFAULT_OFFSETS_PARTITIONS})",
    )
    parser.add_argument(
        "--group-heartbeat-interval-ms",
        type=int,
        help="how often group members heartbeat; a member's session timeout must be longer "
        f"(default: {limits.group_heartbeat_interval_ms}, Kafka's)",
    )
    parser.add_argument(
        "--group-rebalance-timeout-ms",
        type=int,
        help="how long a group member has to confirm that it revoked partitions before it is "
        f"removed (default: {limits.group_rebalance_timeout_ms})",
    )
    parser.add_argument(
        "--zk-session-timeout-ms",
        type=int,
        help=f"ZooKeeper session timeout (default: {limits.zookeeper_session_timeout_ms})",
    )
    parser.add_argument(
        "--leader-imbalance-check-interval-ms",
        type=int,
        help="how often the controller moves leadership back to preferred replicas; 0: never "
        f"(default: {limits.leader_imbalance_check_interval_ms}, Kafka's)",
    )
    parser.add_argument(
        "--leader-imbalance-per-broker-percentage",
        type=int,
        help="a broker may not lead this share of the partitions it prefers before the "
        f"check elects them back (default: {limits.leader_imbalance_per_broker_percent})",
    )
    parser.add_argument("--log-level", help="logging level on stderr (default: INFO)")


def _connect(hosts: str, session_timeout_ms: int) -> KazooClient:
    """A started kazoo client rooted at the connect string's chroot (created if missing)."""
    host_part, slash, chroot = hosts.partition("/")
    client = KazooClient(hosts=hosts, timeout=session_timeout_ms / 1000)
    try:
        if slash and chroot:  # kazoo needs the chroot to exist: make it from the root first
            root = KazooClient(hosts=host_part, timeout=session_timeout_ms / 1000)
            root.start(timeout=limits.zookeeper_connect_timeout_s)
            try:
                root.ensure_path("/" + chroot)
            finally:
                root.stop()
                root.close()
        client.start(timeout=limits.zookeeper_connect_timeout_s)
    except KazooTimeoutError:
        raise BrokerStartError(f"cannot connect to ZooKeeper at {hosts}") from None
    return client


def check_kafka_listen(address: str) -> tuple[str, int]:
    """(host, port) of `--kafka-listen 127.0.0.1:PORT`; BrokerStartError saying why not."""
    host, _, port = address.rpartition(":")
    if host not in ALLOWED_HOSTS or not port.isdigit() or int(port) > 65535:
        raise BrokerStartError(f"--kafka-listen must be 127.0.0.1:PORT, got {address!r}")
    return host, int(port)


def _register(client: KazooClient, broker_id: int, data: bytes, wait_s: float):
    """Register `/brokers/ids/<id>` with `data`; while another session holds it (our own
    previous life after a kill -9, until ZooKeeper expires it) wait for its znode to go, up
    to `wait_s`."""
    deadline = clock.monotonic_s() + wait_s
    while True:
        registration = EphemeralRegistration(client, paths.broker(broker_id), data)
        try:
            registration.start()
            return registration
        except NodeExistsError:
            registration.stop()  # drops its listener; the znode is not ours to delete
            gone = threading.Event()
            remaining_s = deadline - clock.monotonic_s()
            held = client.exists(paths.broker(broker_id), watch=lambda _, gone=gone: gone.set())
            if held is not None and (remaining_s <= 0 or not gone.wait(remaining_s)):
                raise BrokerStartError(
                    f"broker id {broker_id} is registered by another live process"
                ) from None


def run(args: argparse.Namespace) -> int:
    """Run a broker until SIGTERM/SIGINT; 0 on a clean stop, 1 if an actor crash-looped,
    2 if it could not start."""
    try:
        broker_config.resolve(args)
    except broker_config.BrokerConfigError as err:
        print(f"zafka broker: error: {err}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.INFO),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("kazoo").setLevel(logging.WARNING)
    try:
        return _run(args)
    except BrokerStartError as err:
        print(f"zafka broker: error: {err}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    if args.id < 0:
        raise BrokerStartError(f"--id must be >= 0, got {args.id}")
    if args.default_partitions < 1:
        raise BrokerStartError("--default-partitions must be >= 1")
    if not 1 <= args.offsets_topic_partitions <= limits.topic_partitions_max:
        raise BrokerStartError(
            f"--offsets-topic-partitions must be 1..{limits.topic_partitions_max}"
        )
    if args.leader_imbalance_check_interval_ms < 0:
        raise BrokerStartError("--leader-imbalance-check-interval-ms must be >= 0 (0: never)")
    if not 0 <= args.leader_imbalance_per_broker_percentage <= 100:
        raise BrokerStartError("--leader-imbalance-per-broker-percentage must be 0..100")
    if args.group_heartbeat_interval_ms < 1 or args.group_rebalance_timeout_ms < 1:
        raise BrokerStartError(
            "--group-heartbeat-interval-ms and --group-rebalance-timeout-ms must be >= 1"
        )
    check_listen(args.listen)
    kafka_address = check_kafka_listen(args.kafka_listen) if args.kafka_listen else None
    if len(args.rack) > limits.rack_bytes_max or not args.rack.isprintable():
        raise BrokerStartError(f"--rack must be printable, at most {limits.rack_bytes_max} long")
    data_dir = Path(args.data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())

    client = _connect(args.zookeeper, args.zk_session_timeout_ms)
    transport = ZmqTransport(broker_node(args.id))
    registration = worker = controller = kafka = None
    try:
        try:
            endpoint = transport.bind(args.listen)
        except ZafkaError as err:
            raise BrokerStartError(str(err)) from None
        runtime = Runtime(broker_node(args.id), transport)
        worker = ZooKeeperWorker(runtime.post)
        zookeeper = BrokerZooKeeper(
            client,
            args.id,
            args.auto_create_topics,
            args.default_partitions,
            args.offsets_topic_partitions,
        )
        settings = GroupSettings(args.group_heartbeat_interval_ms, args.group_rebalance_timeout_ms)
        context = BrokerContext(zookeeper, worker, data_dir, endpoint, GroupHost(settings))
        context.link = transport.ensure_link
        runtime.spawn(ReplicationActor)  # before the broker: its partitions wake it
        runtime.spawn(lambda: BrokerActor(context))
        controller_worker = ZooKeeperWorker(runtime.post)
        rebalance = ControllerSettings(
            args.leader_imbalance_check_interval_ms, args.leader_imbalance_per_broker_percentage
        )
        controller = ControllerContext(client, controller_worker, transport, args.id, rebalance)
        runtime.spawn(lambda: ControllerActor(controller))
        kafka_endpoint = None
        if kafka_address is not None:
            try:
                kafka = kafka_service.start(runtime, *kafka_address, args.default_partitions)
            except OSError as err:
                raise BrokerStartError(f"--kafka-listen {args.kafka_listen}: {err}") from None
            kafka_endpoint = f"{kafka_address[0]}:{kafka.port}"
        worker.start()
        controller_worker.start()
        wait_s = 2 * args.zk_session_timeout_ms / 1000 + 2
        data = registration_json(endpoint, args.rack or None, kafka_endpoint)
        registration = _register(client, args.id, data, wait_s)
        ready = f"broker {args.id} ready at {endpoint}"
        if kafka_endpoint:
            ready += f" (kafka {kafka_endpoint})"
        runtime.post(lambda: print(ready, flush=True))
        try:
            runtime.run(stop)  # start (hosting partitions), serve, then stop (logs sealed)
        except SupervisionError as err:
            log.error("%s", err)
            return 1
        log.info("broker %s stopped cleanly", args.id)
        return 0
    finally:
        if kafka is not None:
            kafka.stop()
        workers = [worker, controller and controller.worker]
        for each in filter(None, workers):
            if not each.close(limits.zookeeper_worker_stop_s):
                log.warning("a ZooKeeper call was still running at stop")
        if controller is not None and controller.election is not None:
            try:  # out of the running; if it controls, another broker takes over now
                controller.election.stop()
            except Exception:
                log.warning("could not leave the controller election", exc_info=True)
        if registration is not None:
            try:
                registration.stop()
            except Exception:  # the session may be gone: the znode goes with it
                log.warning("could not remove the registration", exc_info=True)
        transport.close()  # already closed by a runtime that ran; closing twice is harmless
        client.stop()
        client.close()
