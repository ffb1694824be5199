"""`zafka cluster restart [--rolling]` on a local cluster (Debian's ZooKeeper, real broker
processes): every broker comes back on its port with a new process; a rolling restart goes
one broker at a time, the controller last, while an SDK producer keeps sending, and every
record it sent is stored once. Whatever a test started is stopped, pass or fail."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path
from subprocess import PIPE

import pytest

from tests.integration.broker_helpers import REPO, zafka
from tests.integration.zk_container import free_port
from zafka.clients.producer import Producer

pytestmark = pytest.mark.slow

RESTART_TIMEOUT_S = 240.0  # two brokers, each waited for until it answers and settles
SEND_EVERY_S = 0.01  # the producer's pace while the restart runs (load, not a wait)
RECORDS_MAX = 5_000
DELIVERY_S = 120.0


def recorded(cluster_dir: str) -> dict[str, dict]:
    return json.loads((Path(cluster_dir) / "cluster.json").read_text())


def brokers_of(cluster_dir: str) -> dict[str, tuple[int, int]]:
    """broker name -> (pid, port)."""
    state = recorded(cluster_dir)
    return {n: (i["pid"], i["port"]) for n, i in state.items() if n.startswith("broker-")}


def rolling_restart(cluster_dir: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "zafka.cli", "cluster", "restart", "--rolling"]
    return subprocess.Popen(
        [*command, "--dir", cluster_dir], cwd=REPO, stdout=PIPE, stderr=PIPE, text=True
    )


def test_restarts_bring_every_broker_back_and_a_rolling_one_keeps_producers_going(tmp_path):
    cluster_dir = str(tmp_path / "cluster")
    zk_port = str(free_port())
    up = zafka("cluster", "up", "--dir", cluster_dir, "--zk-port", zk_port, "--brokers", "2")
    try:
        assert up.returncode == 0, up.stderr
        bootstrap = re.search(r"^bootstrap: (\S+)$", up.stdout, re.MULTILINE).group(1)
        created = zafka("topics", "create", "orders", "--partitions", "2", "--bootstrap", bootstrap)
        assert created.returncode == 0, created.stderr
        status = zafka("cluster", "status", "--dir", cluster_dir).stdout
        controller = re.search(r"^controller: (broker-\d)", status, re.MULTILINE)
        before = brokers_of(cluster_dir)

        with Producer(bootstrap, linger_ms=1) as producer:
            rolling = rolling_restart(cluster_dir)
            sent = []
            while rolling.poll() is None and len(sent) < RECORDS_MAX:
                n = len(sent)
                sent.append(producer.send("orders", b"r-%d" % n, partition=n % 2))
                time.sleep(SEND_EVERY_S)
            out, err = rolling.communicate(timeout=RESTART_TIMEOUT_S)
            stored = [(n % 2, f.result(DELIVERY_S).offset) for n, f in enumerate(sent)]
        assert rolling.returncode == 0, err
        assert len(set(stored)) == len(sent) > 0  # every send got an offset of its own
        order = re.findall(r"^restarting (broker-\d) \.\.\.$", out, re.MULTILINE)
        assert sorted(order) == ["broker-1", "broker-2"]
        if controller is not None:
            assert order[-1] == controller.group(1), out  # the controller goes last
        after = brokers_of(cluster_dir)
        for name, (pid, port) in before.items():
            assert after[name][1] == port and after[name][0] != pid  # a new process, same port
        consumed = zafka("consume", "orders", "--bootstrap", bootstrap)
        assert consumed.returncode == 0, consumed.stderr
        assert sorted(consumed.stdout.split()) == sorted(f"r-{i}" for i in range(len(sent)))

        at_once = zafka("cluster", "restart", "--dir", cluster_dir)
        assert at_once.returncode == 0, at_once.stderr
        assert "stopping 2 brokers" in at_once.stdout
        assert all(brokers_of(cluster_dir)[n][0] != after[n][0] for n in after)
    finally:
        down = zafka("cluster", "down", "--dir", cluster_dir)
    assert down.returncode == 0, down.stderr
