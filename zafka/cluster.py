"""The local cluster launcher: starts, checks and stops zafka's processes on this machine.

State lives in one directory (default `.zafka/`): each process gets a subdirectory with its
config, data and log, and `cluster.json` records what was started (zafka/cluster_processes.py:
name, PID, port, log, a command-line marker; a ZooKeeper container's id and image) so that
`down` and `status` work from another shell and never signal an unrelated process that
reused a PID. Only 127.0.0.1 is ever bound.

    <dir>/cluster.json                    {"zookeeper": {...}, "broker-1": {...}, ...}
    <dir>/zookeeper/{zoo.cfg,data,zookeeper.log}
    <dir>/broker-<id>/{data,broker.log}   one per broker, ids 1..N

`start_zookeeper` (zafka/cluster_zk.py) starts ZooKeeper from a local install or in a
container and waits until it answers `ruok`.
`start_brokers` starts brokers 1..N (`zafka broker` subprocesses, topic auto-creation on,
each on a free 127.0.0.1 port) and waits, bounded by `limits.broker_start_timeout_s`, until
each has registered in ZooKeeper with its endpoint AND answers a MetadataRequest over ZeroMQ.
`stop_all` stops brokers first (SIGTERM to all, then SIGKILL after
`limits.process_stop_grace_s`), then ZooKeeper (its container stopped and removed through
Docker). Process exits are awaited on pidfds.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from kazoo.client import KazooClient
from kazoo.handlers.threading import KazooTimeoutError

from zafka import clock, cluster_zk, limits, zookeeper
from zafka.cluster_processes import (
    LauncherError,
    ProcessInfo,
    free_port,
    is_running,
    load_state,
    port_is_free,
    record,
    save_state,
    spawn,
    stop_processes,
)
from zafka.cluster_zk import start_zookeeper
from zafka.coordination import paths
from zafka.coordination.brokers import parse_registration
from zafka.coordination.controller import read_controller, read_epoch
from zafka.transport import codec
from zafka.transport.client import MetadataRequest, MetadataResponse
from zafka.transport.envelope import Envelope
from zafka.transport.zmq_transport import ZmqTransport

__all__ = [
    "LauncherError",
    "ProcessInfo",
    "bootstrap",
    "check_broker_count",
    "describe",
    "is_running",
    "probe_broker",
    "start_brokers",
    "start_zookeeper",
    "stop_all",
]

BROKER_PREFIX = "broker-"
_KAZOO_LOG = logging.getLogger("zafka.cluster.kazoo")  # its connection chatter stays quiet
_KAZOO_LOG.setLevel(logging.ERROR)


# --- brokers ----------------------------------------------------------------------------------


def broker_name(broker_id: int) -> str:
    return f"{BROKER_PREFIX}{broker_id}"


def _broker_command(
    broker_id: int, zk_port: int, port: int, data_dir: Path, kafka_port: int
) -> list[str]:
    """`zafka broker ...`; the data dir (absolute, under the cluster dir) is also the
    command-line marker."""
    kafka = ("--kafka-listen", f"127.0.0.1:{kafka_port}") if kafka_port else ()
    return [
        *(sys.executable, "-m", "zafka.cli", "broker", "--id", str(broker_id)),
        *("--zookeeper", f"127.0.0.1:{zk_port}", "--listen", f"tcp://127.0.0.1:{port}"),
        *("--data-dir", str(data_dir), "--auto-create-topics", *kafka),
    ]


def check_broker_count(count: int) -> None:
    if not 1 <= count <= limits.cluster_brokers_max:
        raise LauncherError(f"--brokers must be 1..{limits.cluster_brokers_max}, got {count}")


def start_brokers(
    root: Path, count: int, only: set[int] | None = None, kafka: bool | None = None
) -> list[ProcessInfo]:
    """Start brokers 1..count (those not running yet; of `only`, if given) against the
    cluster's ZooKeeper and wait until each is registered and answers; LauncherError naming
    its log if one is not. `kafka`: give each a Kafka protocol listener (None: as it had
    before; a new broker gets one)."""
    check_broker_count(count)
    state = load_state(root)
    zk = state.get(cluster_zk.NAME)
    if zk is None or not cluster_zk.is_alive(zk):
        raise LauncherError("ZooKeeper is not running: start the cluster with `zafka cluster up`")
    client = KazooClient(hosts=f"127.0.0.1:{zk.port}", logger=_KAZOO_LOG)
    try:
        client.start(timeout=limits.zookeeper_probe_timeout_s)
    except KazooTimeoutError:
        raise LauncherError(f"ZooKeeper at 127.0.0.1:{zk.port} does not answer") from None
    try:
        started = {}  # broker id -> (info, process) of those started now
        for broker_id in range(1, count + 1):
            current = state.get(broker_name(broker_id))
            wanted = only is None or broker_id in only
            if wanted and not (current and is_running(current.pid, current.marker)):
                started[broker_id] = _start_broker(root, zk.port, broker_id, current, kafka)
        deadline = clock.monotonic_s() + limits.broker_start_timeout_s
        for broker_id, (info, proc) in started.items():
            _wait_ready(client, broker_id, info, proc, deadline)
    finally:
        client.stop()
        client.close()
    state = load_state(root)
    return [state[broker_name(broker_id)] for broker_id in range(1, count + 1)]


def _start_broker(
    root: Path, zk_port: int, broker_id: int, previous: ProcessInfo | None, kafka: bool | None
) -> tuple[ProcessInfo, subprocess.Popen[bytes]]:
    name = broker_name(broker_id)
    data_dir = root / name / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    log, port = root / name / "broker.log", _broker_port(name, previous)
    kafka_port = _kafka_port(previous, kafka)
    proc = spawn(_broker_command(broker_id, zk_port, port, data_dir, kafka_port), log)
    info = ProcessInfo(name, proc.pid, port, str(log), str(data_dir), kafka_port=kafka_port)
    record(root, info)
    return info, proc


def _broker_port(name: str, previous: ProcessInfo | None) -> int:
    """The port a broker that ran before had (its clients know that address), else a
    free one. LauncherError if another process took it meanwhile."""
    if previous is None:
        return free_port()
    if not port_is_free(previous.port):
        raise LauncherError(
            f"{name} listened on 127.0.0.1:{previous.port}, where its clients reach it, but "
            "another process holds that port now: stop that process and run `zafka cluster "
            "up` again (or `zafka cluster down` first, to start every broker on a new port)"
        )
    return previous.port


def _kafka_port(previous: ProcessInfo | None, kafka: bool | None) -> int:
    """The Kafka listener port a broker gets: the one it had (Kafka clients know it), a free
    one, or 0 for none."""
    if kafka is False:
        return 0
    if previous is not None and (previous.kafka_port or kafka is None):
        return previous.kafka_port
    return free_port()


def _wait_ready(
    client: KazooClient,
    broker_id: int,
    info: ProcessInfo,
    proc: subprocess.Popen[bytes],
    deadline: float,
) -> None:
    """Registered in ZooKeeper with its endpoint, then answering; else stopped and a
    LauncherError naming its log."""
    problem = _wait_registered(client, broker_id, _endpoint(info), proc, deadline)
    if problem is None:
        problem = _wait_answering(broker_id, info, proc, deadline)
    if problem is not None:
        stop_processes([info])
        raise LauncherError(f"{info.name} did not become ready: {problem}; see its log: {info.log}")


def _endpoint(info: ProcessInfo) -> str:
    return f"tcp://127.0.0.1:{info.port}"


def _wait_registered(
    client: KazooClient,
    broker_id: int,
    endpoint: str,
    proc: subprocess.Popen[bytes],
    deadline: float,
) -> str | None:
    """Wait on ZooKeeper watches until /brokers/ids/<id> holds `endpoint` (an older
    registration, left by a killed broker, holds another one until it expires). None when
    it does, else what went wrong."""
    path = paths.broker(broker_id)
    while True:
        changed = threading.Event()
        stat = client.exists(path, watch=lambda _event, changed=changed: changed.set())
        if stat is not None and _registered_endpoint(client, path) == endpoint:
            return None
        while not changed.wait(limits.broker_watch_slice_s):
            if proc.poll() is not None:
                return f"it exited with code {proc.returncode}"
            if clock.monotonic_s() > deadline:
                return f"not registered in ZooKeeper within {limits.broker_start_timeout_s:.0f}s"


def _registered_endpoint(client: KazooClient, path: str) -> str | None:
    try:
        data, _ = client.get(path)
        return parse_registration(data).endpoint
    except Exception:  # gone meanwhile, or not ours to read: not the registration awaited
        return None


_probe_ids = itertools.count(1)


def probe_broker(broker_id: int, endpoint: str, timeout_s: float) -> bool:
    """True if the broker at `endpoint` answers a MetadataRequest within `timeout_s`."""
    node = f"launcher-{os.getpid()}-{next(_probe_ids)}"
    target = broker_name(broker_id)
    transport = ZmqTransport(node)
    try:
        transport.connect(target, endpoint)
        envelope = Envelope(f"{node}/probe", f"{target}/broker", MetadataRequest(()), 1)
        if not transport.send(target, codec.encode(envelope)):
            return False
        deadline = clock.monotonic_s() + timeout_s
        while (remaining_ms := int((deadline - clock.monotonic_s()) * 1000)) > 0:
            transport.wait(remaining_ms)
            item = transport.recv()
            if item is not None:
                reply = codec.decode(item[1])
                return reply.correlation_id == 1 and isinstance(reply.message, MetadataResponse)
        return False
    finally:
        transport.close()


def _wait_answering(
    broker_id: int, info: ProcessInfo, proc: subprocess.Popen[bytes], deadline: float
) -> str | None:
    """Probe until the broker answers (None), exits or the deadline passes (what happened)."""
    while proc.poll() is None:
        if probe_broker(broker_id, _endpoint(info), limits.broker_probe_timeout_s):
            return None
        if clock.monotonic_s() > deadline:
            return "it registered in ZooKeeper but does not answer a MetadataRequest"
    return f"it exited with code {proc.returncode}"


# --- stopping and status ----------------------------------------------------------------------


def stop_all(root: Path) -> list[tuple[ProcessInfo, bool]]:
    """Stop everything recorded under `root`, brokers before ZooKeeper (they deregister
    through it); returns each with whether it was running. A ZooKeeper container that
    Docker cannot remove now (its engine is down) stays recorded: LauncherError."""
    state = load_state(root)
    brokers = [info for name, info in state.items() if name.startswith(BROKER_PREFIX)]
    others = [info for name, info in state.items() if not name.startswith(BROKER_PREFIX)]
    results = list(zip(brokers, stop_processes(brokers), strict=True))
    left: dict[str, ProcessInfo] = {}
    problem = None
    for info in others:
        try:
            results.append((info, cluster_zk.stop(info)))
        except LauncherError as err:
            left[info.name], problem = info, err
    save_state(root, left)
    if problem is not None:
        done = "the brokers are stopped" if brokers else "no broker was recorded"
        raise LauncherError(f"{done}, but {problem}; then run `zafka cluster down` again")
    return results


def _alive(info: ProcessInfo) -> bool:
    if info.name.startswith(BROKER_PREFIX):
        return is_running(info.pid, info.marker)
    return cluster_zk.is_alive(info)


def _health_probe(info: ProcessInfo) -> Callable[[], bool]:
    if info.name.startswith(BROKER_PREFIX):
        broker_id = int(info.name.removeprefix(BROKER_PREFIX))
        return lambda: probe_broker(broker_id, _endpoint(info), limits.broker_probe_timeout_s)
    return lambda: zookeeper.is_ok(info.port)


def describe(root: Path) -> list[tuple[ProcessInfo, bool, bool]]:
    """Each recorded process with (running, answering its health probe: `ruok` for
    ZooKeeper, a MetadataRequest for a broker)."""
    rows = []
    for info in load_state(root).values():
        running = _alive(info)
        rows.append((info, running, running and _health_probe(info)()))
    return rows


@contextlib.contextmanager
def zookeeper_client(root: Path) -> Iterator[KazooClient | None]:
    """A started kazoo client of the cluster's ZooKeeper (None when it does not answer),
    closed afterwards."""
    zk = load_state(root).get(cluster_zk.NAME)
    if zk is None or not _alive(zk):
        yield None
        return
    client = KazooClient(hosts=f"127.0.0.1:{zk.port}", logger=_KAZOO_LOG)
    try:
        client.start(timeout=limits.zookeeper_probe_timeout_s)
    except KazooTimeoutError:
        yield None
        return
    try:
        yield client
    finally:
        client.stop()
        client.close()


def controller(root: Path) -> tuple[int, int] | None:
    """(the controller's broker id, the controller epoch) as the cluster's ZooKeeper has
    them; None when ZooKeeper does not answer or no broker controls."""
    with zookeeper_client(root) as client:
        controller_id = None if client is None else read_controller(client)
        return None if controller_id is None else (controller_id, read_epoch(client)[0])


def bootstrap(infos: list[ProcessInfo]) -> str:
    """What clients bootstrap from: `127.0.0.1:PORT` of each broker, comma-separated."""
    return ",".join(f"127.0.0.1:{i.port}" for i in infos if i.name.startswith(BROKER_PREFIX))


def kafka_bootstrap(infos: list[ProcessInfo]) -> str:
    """What Kafka clients bootstrap from (`bootstrap.servers`): each broker's Kafka
    listener, comma-separated; "" when none has one."""
    brokers = [i for i in infos if i.name.startswith(BROKER_PREFIX) and i.kafka_port]
    return ",".join(f"127.0.0.1:{i.kafka_port}" for i in brokers)
