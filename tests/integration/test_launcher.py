"""`zafka cluster up|status|down` against Debian's ZooKeeper, or ZooKeeper in a container
(`--zookeeper container`, the image the integration tests use), and real broker processes,
each a separate process started by the launcher. Every wait is bounded; whatever a test
started is stopped by PID or container id, pass or fail."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from kazoo.client import KazooClient

from tests.integration.broker_helpers import COMMAND_TIMEOUT_S, RawClient, wait_until, zafka
from tests.integration.zk_container import free_port
from zafka import cli, cluster, limits, zookeeper
from zafka.cluster_zk import CLUSTER_LABEL
from zafka.transport.client import MetadataRequest, MetadataResponse

pytestmark = pytest.mark.slow

EVENT_TIMEOUT_S = 30.0


def docker(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S
    )


def listening_addresses(port: int) -> set[str]:
    """The local addresses of the sockets listening on `port` (IPv4 and IPv6, hex as in
    /proc/net/tcp*: 0100007F is 127.0.0.1)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.rsplit(":", 1)
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


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


def _bound(sock: socket.socket, port: int) -> bool:
    """Bind `sock` to 127.0.0.1:`port` if the port is free now (its killed owner gone)."""
    try:
        sock.bind(("127.0.0.1", port))
    except OSError:
        return False
    return True


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
        controls = re.compile(r"^controller: broker-[12] \(controller epoch \d+\)$", re.MULTILINE)
        assert wait_until(
            lambda: controls.search(zafka("cluster", "status", "--dir", cluster_dir).stdout),
            EVENT_TIMEOUT_S,
        )

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
        # Where its clients knew it: the same port (and the bootstrap line says so).
        assert recorded(cluster_dir)["broker-2"]["port"] == ports[1]
        assert f"bootstrap: 127.0.0.1:{ports[0]},127.0.0.1:{ports[1]}\n" in restarted.stdout
        assert metadata(ports[1], 2).brokers[1].endpoint == f"tcp://127.0.0.1:{ports[1]}"

        os.kill(recorded(cluster_dir)["broker-2"]["pid"], signal.SIGKILL)
        with socket.socket() as squatter:  # another process takes the port meanwhile
            squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            assert wait_until(lambda: _bound(squatter, ports[1]), EVENT_TIMEOUT_S)
            squatter.listen()
            taken = zafka(
                "cluster", "up", "--dir", cluster_dir, "--zk-port", str(port), "--brokers", "2"
            )
        assert taken.returncode != 0
        assert f"broker-2 listened on 127.0.0.1:{ports[1]}" in taken.stderr
        assert "another process holds that port" in taken.stderr
        back = zafka(  # the port is free again: the broker comes back on it
            "cluster", "up", "--dir", cluster_dir, "--zk-port", str(port), "--brokers", "2"
        )
        assert back.returncode == 0, back.stderr
        assert recorded(cluster_dir)["broker-2"]["port"] == ports[1]
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

        def failing(broker_id, zk_port, broker_port, data_dir, kafka_port):
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


def test_cluster_up_with_zookeeper_in_a_container(tmp_path):
    """`--zookeeper container`: the image runs with host networking on 127.0.0.1 only,
    records stream through the broker, `down` removes exactly that container (by id) and
    stops the broker (by PID); ZooKeeper's data, bind-mounted, outlives the container."""
    port, cluster_dir = free_port(), str(tmp_path / "cluster")
    up_argv = ["cluster", "up", "--zookeeper", "container", "--dir", cluster_dir]
    up_argv += ["--zk-port", str(port)]
    containers: list[str] = []
    try:
        up = zafka(*up_argv)
        assert up.returncode == 0, up.stdout + up.stderr
        state = recorded(cluster_dir)
        zk, broker = state["zookeeper"], state["broker-1"]
        containers.append(zk["container"])
        assert zk["image"] == zookeeper.image_name()
        short = f"container {zk['container'][:12]} of {zk['image']}"
        assert f"127.0.0.1:{port} answers ruok ({short})" in up.stdout
        details = json.loads(docker("inspect", zk["container"]).stdout)[0]
        assert details["State"]["Running"]
        assert details["HostConfig"]["NetworkMode"] == "host"
        assert not details["HostConfig"]["PortBindings"]
        assert details["Config"]["Labels"][CLUSTER_LABEL] == cluster_dir
        listening = listening_addresses(port)  # 127.0.0.1 only (IPv4, or IPv4-mapped IPv6)
        assert listening and listening <= {"0100007F", "0000000000000000FFFF00000100007F"}
        assert registered_ids(port) == ["1"]

        status = zafka("cluster", "status", "--dir", cluster_dir)
        assert status.returncode == 0, status.stdout
        assert f"zookeeper: ready ({short}, 127.0.0.1:{port})" in status.stdout

        bootstrap = ["--bootstrap", f"127.0.0.1:{broker['port']}"]
        created = zafka("topics", "create", "orders", *bootstrap)
        assert created.returncode == 0, created.stderr
        produced = zafka("produce", "orders", "--key-separator", ":", *bootstrap, stdin="k1:v1\n")
        assert produced.returncode == 0, produced.stderr
        consumed = zafka("consume", "orders", "--print-key", *bootstrap)
        assert consumed.returncode == 0, consumed.stderr
        assert consumed.stdout == "k1\tv1\n"

        down = zafka("cluster", "down", "--dir", cluster_dir)
        assert down.returncode == 0, down.stderr
        assert f"zookeeper: stopped, container removed ({short})" in down.stdout
        assert f"broker-1: stopped (pid {broker['pid']})" in down.stdout
        assert docker("ps", "--all", "--quiet", "--filter", f"id={zk['container']}").stdout == ""
        assert not cluster.is_running(broker["pid"], "")
        assert not zookeeper.is_ok(port)
        assert "output of container" in Path(zk["log"]).read_text()

        # Up again: a new container on the same data; the topic and its record are there.
        again = zafka(*up_argv)
        assert again.returncode == 0, again.stdout + again.stderr
        containers.append(recorded(cluster_dir)["zookeeper"]["container"])
        assert containers[1] != containers[0]
        bootstrap = ["--bootstrap", f"127.0.0.1:{recorded(cluster_dir)['broker-1']['port']}"]
        consumed = zafka("consume", "orders", "--print-key", *bootstrap)
        assert consumed.returncode == 0, consumed.stderr
        assert consumed.stdout == "k1\tv1\n"
    finally:
        state = recorded(cluster_dir) if Path(cluster_dir, "cluster.json").exists() else {}
        pids = [info["pid"] for name, info in state.items() if name != "zookeeper"]
        down = zafka("cluster", "down", "--dir", cluster_dir)
        leftovers = docker("ps", "-aq", "--filter", f"label={CLUSTER_LABEL}={cluster_dir}")
        if leftovers.stdout.split():  # only if `down` failed: this test's containers, by id
            docker("rm", "--force", *leftovers.stdout.split())
    assert down.returncode == 0, down.stderr
    assert leftovers.stdout == ""
    assert not any(cluster.is_running(pid, "") for pid in pids)


def test_container_errors_say_how_to_start_docker_or_get_the_image(tmp_path):
    argv = ["cluster", "up", "--zookeeper", "container", "--dir", str(tmp_path / "c")]
    no_engine = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"}
    up = zafka(*argv, "--zk-port", str(free_port()), env=no_engine)
    assert up.returncode == 2
    assert "Docker is not running" in up.stderr
    assert "start it with scripts/docker-engine.sh start" in up.stderr
    missing = zafka(*argv, "--zk-port", str(free_port()), "--zookeeper-image", "zafka/none:x")
    assert missing.returncode == 2
    assert "the ZooKeeper image zafka/none:x is not in Docker" in missing.stderr
    assert not (tmp_path / "c" / "cluster.json").exists()
