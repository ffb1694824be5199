"""compose/docker-compose.yml as a user runs it: ZooKeeper and three brokers in containers
(host networking, loopback only, the images of scripts/zk-image.sh and
scripts/broker-image.sh), up; a replicated topic created, records produced and consumed
through them with the `zafka` command line; down, volumes and all. Every wait is bounded;
the project is taken down pass or fail."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.integration.broker_helpers import wait_until, zafka
from tests.integration.zk_container import RUN_ID, free_port

pytestmark = pytest.mark.integration

COMPOSE_FILE = "compose/docker-compose.yml"
UP_TIMEOUT_S = 120.0  # four containers started and healthy on a busy 2-core machine
RECORDS = 300


def compose(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker-compose", "-f", COMPOSE_FILE, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=UP_TIMEOUT_S,
    )


@pytest.fixture
def cluster():
    built = subprocess.run(  # this checkout's broker (a no-op when the image is current)
        ["bash", "scripts/broker-image.sh"], capture_output=True, text=True, timeout=600
    )
    assert built.returncode == 0, built.stderr
    ports = {f"ZAFKA_BROKER_{b}_PORT": str(free_port()) for b in (1, 2, 3)}
    env = {
        **os.environ,
        **ports,
        "ZAFKA_ZK_PORT": str(free_port()),
        "ZAFKA_TEST_RUN_ID": RUN_ID,
        "COMPOSE_PROJECT_NAME": f"zafka-compose-{os.getpid()}",
    }
    try:
        up = compose(env, "up", "-d")
        assert up.returncode == 0, up.stderr
        yield ",".join(f"127.0.0.1:{port}" for port in ports.values()), env
    finally:
        down = compose(env, "down", "-v", "--timeout", "10")
        assert down.returncode == 0, down.stderr


def brokers_answering(bootstrap: str) -> bool:
    described = zafka("topics", "list", "--bootstrap", bootstrap, "--request-timeout-ms", "2000")
    return described.returncode == 0


@pytest.mark.timeout(900)  # an image build, four containers up, records through, down
def test_compose_runs_a_three_broker_cluster_that_stores_and_serves_records(cluster):
    bootstrap, env = cluster
    for endpoint in bootstrap.split(","):
        assert wait_until(lambda e=endpoint: brokers_answering(e), UP_TIMEOUT_S), endpoint
    ps = compose(env, "ps")
    assert ps.stdout.count("Up") == 4, ps.stdout
    created = zafka(
        "topics", "create", "events", "--partitions", "3", "--replication-factor", "3",
        "--bootstrap", bootstrap,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    lines = "".join(f"key-{i % 7}:value-{i}\n" for i in range(RECORDS))
    produced = zafka(
        "produce", "events", "--key-separator", ":", "--bootstrap", bootstrap, stdin=lines
    )
    assert produced.returncode == 0, produced.stderr
    consumed = zafka("consume", "events", "--bootstrap", bootstrap)
    assert consumed.returncode == 0, consumed.stderr
    assert sorted(consumed.stdout.split()) == sorted(f"value-{i}" for i in range(RECORDS))
    described = zafka("topics", "describe", "events", "--bootstrap", bootstrap).stdout
    leaders = {line.split("Leader: ")[1].split("\t")[0] for line in described.splitlines()[1:]}
    assert leaders == {"1", "2", "3"}  # one partition led by each broker
