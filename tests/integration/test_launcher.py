"""`zafka cluster up|status|down` against Debian's ZooKeeper and real broker processes, each
a separate process started by the launcher. Every wait is bounded."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from kazoo.client import KazooClient

from tests.integration.broker_helpers import RawClient
from tests.integration.zk_container import free_port
from zafka import cli, cluster, limits, zookeeper
from zafka.transport.client import MetadataRequest, MetadataResponse

pytestmark = pytest.mark.slow

COMMAND_TIMEOUT_S = 120.0
EVENT_TIMEOUT_S = 30.0


def zafka(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "zafka.cli", *args],
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
    )


def recorded(cluster_dir: str) -> dict[str, dict]:
    return json.loads((Path(cluster_dir) / "cluster.json").read_text())


def metadata(port: int, broker_id: int) -> MetadataResponse:
    client = RawClient(f"tcp://127.0.0.1:{port}", broker_node=f"broker-{broker_id}")
    try:
        reply = client.call("broker", MetadataRequest(None))
    finally:
        client.close()
    assert isinstance(reply, MetadataResponse), reply
    return reply


def registered_ids(zk_port: int) -> list[str]:
    client = KazooClient(hosts=f"127.0.0.1:{zk_port}")
    client.start(timeout=EVENT_TIMEOUT_S)
    try:
        return sorted(client.get_children("/brokers/ids"))
    finally:
        client.stop()
        client.close()


def test_cluster_up_status_down_with_two_brokers(tmp_path):
    port = free_port()
    cluster_dir = str(tmp_path / "cluster")
    up = zafka("cluster", "up", "--dir", cluster_dir, "--zk-port", str(port), "--brokers", "2")
    try:
        assert up.returncode == 0, up.stderr
        assert f"127.0.0.1:{port} answers ruok" in up.stdout
        assert f"cluster down --dir {cluster_dir}" in up.stdout  # it says how to stop it
        state = recorded(cluster_dir)
        ports = [state[f"broker-{i}"]["port"] for i in (1, 2)]
        assert f"bootstrap: 127.0.0.1:{ports[0]},127.0.0.1:{ports[1]}\n" in up.stdout
        for i in (1, 2):  # each its own data dir and log, under the cluster dir
            assert state[f"broker-{i}"]["log"] == f"{cluster_dir}/broker-{i}/broker.log"
            assert f"broker {i} ready at" in Path(state[f"broker-{i}"]["log"]).read_text()
            assert (Path(cluster_dir) / f"broker-{i}" / "data").is_dir()
        assert registered_ids(port) == ["1", "2"]
        for i, broker_port in enumerate(ports, start=1):
            brokers = metadata(broker_port, i).brokers
            assert [(b.id, b.endpoint) for b in brokers] == [
                (1, f"tcp://127.0.0.1:{ports[0]}"),
                (2, f"tcp://127.0.0.1:{ports[1]}"),
            ]

        again = zafka(
            "cluster", "up", "--dir", cluster_dir, "--zk-port", str(port), "--brokers", "2"
        )
        assert again.returncode == 0, again.stderr
        assert recorded(cluster_dir) == state  # idempotent: the same processes

        status = zafka("cluster", "status", "--dir", cluster_dir)
        assert status.returncode == 0
        for name in ("zookeeper", "broker-1", "broker-2"):
            assert re.search(rf"^{name}: ready \(pid \d+", status.stdout, re.MULTILINE), name

        other = zafka("cluster", "up", "--dir", str(tmp_path / "other"), "--zk-port", str(port))
        assert other.returncode == 2 and "already taken" in other.stderr

        os.kill(state["broker-2"]["pid"], signal.SIGKILL)
        status = zafka("cluster", "status", "--dir", cluster_dir)
        assert status.returncode == 1 and "broker-2: stopped" in status.stdout
        # up starts it again; it waits for the dead one's registration to expire first.
        restarted = zafka(
            "cluster", "up", "--dir", cluster_dir, "--zk-port", str(port), "--brokers", "2"
        )
        assert restarted.returncode == 0, restarted.stderr
        assert recorded(cluster_dir)["broker-2"]["pid"] != state["broker-2"]["pid"]
        assert recorded(cluster_dir)["broker-1"] == state["broker-1"]
    finally:
        pids = [info["pid"] for info in recorded(cluster_dir).values()]
        down = zafka("cluster", "down", "--dir", cluster_dir)
    assert down.returncode == 0
    for name in ("broker-1", "broker-2", "zookeeper"):
        assert f"{name}: stopped" in down.stdout
    assert down.stdout.index("broker-1") < down.stdout.index("zookeeper")  # brokers first
    assert not any(cluster.is_running(pid, "") for pid in pids)
    assert not zookeeper.is_ok(port)
    assert "stopped cleanly" in (Path(cluster_dir) / "broker-1" / "broker.log").read_text()
    status = zafka("cluster", "status", "--dir", cluster_dir)
    assert status.returncode == 1


def test_a_broker_that_does_not_start_is_reported_with_its_log(tmp_path, monkeypatch):
    root, port = tmp_path / "cluster", free_port()
    cluster.start_zookeeper(root, port)
    try:

        def failing(broker_id, zk_port, broker_port, data_dir):
            code = "import sys; print('broker boom', file=sys.stderr); sys.exit(3)"
            return [sys.executable, "-c", code, str(data_dir)]

        monkeypatch.setattr(cluster, "_broker_command", failing)
        with pytest.raises(cluster.LauncherError) as err:
            cluster.start_brokers(root, 1)
        log = root / "broker-1" / "broker.log"
        assert "broker-1 did not become ready: it exited with code 3" in str(err.value)
        assert f"see its log: {log}" in str(err.value)
        assert "broker boom" in log.read_text()
    finally:
        stopped = cluster.stop_all(root)
    assert [info.name for info, _ in stopped] == ["broker-1", "zookeeper"]
    assert not zookeeper.is_ok(port)


def test_a_broker_count_outside_1_to_the_maximum_starts_nothing(tmp_path, capsys):
    for count in ("0", "-1", str(limits.cluster_brokers_max + 1)):
        argv = ["cluster", "up", "--dir", str(tmp_path), "--brokers", count]
        assert cli.main(argv) == 2
        assert f"--brokers must be 1..{limits.cluster_brokers_max}" in capsys.readouterr().err
    assert not (tmp_path / "cluster.json").exists()  # not even ZooKeeper was started
