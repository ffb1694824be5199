"""`zafka topics ...` as a subprocess against a real broker: output, exit codes, error
messages that say what to do, and where the bootstrap address comes from. Each command runs
in an empty directory (no launcher state) unless the test writes one; every run is bounded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.broker_helpers import free_port
from tests.integration.clients.cli_helpers import zafka


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "cwd"
    path.mkdir()
    return path


def test_create_list_describe_delete(bootstrap: str, workdir: Path) -> None:
    done = zafka(
        "topics", "create", "orders", "--partitions", "2", "--config", "retention.ms=60000",
        cwd=workdir, bootstrap=bootstrap,
    )  # fmt: skip
    assert (done.returncode, done.stdout) == (
        0,
        "created topic orders (2 partitions, replication factor 1)\n",
    )
    assert zafka("topics", "create", "audit", cwd=workdir, bootstrap=bootstrap).returncode == 0

    listed = zafka("topics", "list", cwd=workdir, bootstrap=bootstrap)
    assert (listed.returncode, listed.stdout) == (0, "audit\norders\n")

    described = zafka("topics", "describe", "orders", cwd=workdir, bootstrap=bootstrap)
    assert described.returncode == 0, described.stderr
    assert described.stdout.splitlines() == [
        "Topic: orders\tPartitions: 2\tReplicationFactor: 1\tConfigs: retention.ms=60000",
        "\tPartition: 0\tLeader: 1\tLeaderEpoch: 0\tReplicas: 1\tIsr: 1",
        "\tPartition: 1\tLeader: 1\tLeaderEpoch: 0\tReplicas: 1\tIsr: 1",
    ]

    deleted = zafka("topics", "delete", "orders", "audit", cwd=workdir, bootstrap=bootstrap)
    assert (deleted.returncode, deleted.stdout) == (
        0,
        "deleted topic orders\ndeleted topic audit\n",
    )
    assert zafka("topics", "list", cwd=workdir, bootstrap=bootstrap).stdout == ""


def test_failures_exit_1_and_say_what_to_do(bootstrap: str, workdir: Path) -> None:
    assert zafka("topics", "create", "once", cwd=workdir, bootstrap=bootstrap).returncode == 0

    again = zafka("topics", "create", "once", cwd=workdir, bootstrap=bootstrap)
    assert again.returncode == 1
    assert "TOPIC_ALREADY_EXISTS (36)" in again.stderr and "--if-not-exists" in again.stderr
    tolerant = zafka(
        "topics", "create", "once", "--if-not-exists", cwd=workdir, bootstrap=bootstrap
    )
    assert (tolerant.returncode, tolerant.stdout) == (0, "topic once exists already\n")

    bad = zafka("topics", "create", "no/slash", cwd=workdir, bootstrap=bootstrap)
    assert bad.returncode == 1
    assert "INVALID_TOPIC (17)" in bad.stderr and "may contain only" in bad.stderr

    config = zafka(
        "topics", "create", "cfg", "--config", "retention.ms=soon", cwd=workdir, bootstrap=bootstrap
    )
    assert config.returncode == 1 and "INVALID_CONFIG (40)" in config.stderr

    mixed = zafka("topics", "describe", "once", "ghost", cwd=workdir, bootstrap=bootstrap)
    assert mixed.returncode == 1
    assert mixed.stdout.startswith("Topic: once\t")
    assert "'ghost'" in mixed.stderr and "UNKNOWN_TOPIC_OR_PARTITION (3)" in mixed.stderr
    assert "zafka topics list" in mixed.stderr

    gone = zafka("topics", "delete", "ghost", cwd=workdir, bootstrap=bootstrap)
    assert gone.returncode == 1 and "UNKNOWN_TOPIC_OR_PARTITION" in gone.stderr
    tolerant = zafka("topics", "delete", "ghost", "--if-exists", cwd=workdir, bootstrap=bootstrap)
    assert (tolerant.returncode, tolerant.stdout) == (0, "topic ghost does not exist\n")

    assert zafka("topics", "list", cwd=workdir, bootstrap=bootstrap).stdout == "once\n"


def test_bootstrap_from_the_environment_and_the_launcher_state(
    bootstrap: str, workdir: Path
) -> None:
    assert zafka("topics", "create", "t", cwd=workdir, env_bootstrap=bootstrap).returncode == 0
    state = workdir / ".zafka" / "cluster.json"
    state.parent.mkdir()
    port = int(bootstrap.rsplit(":", 1)[1])
    state.write_text(json.dumps({"broker-1": {"name": "broker-1", "pid": 1, "port": port}}))
    listed = zafka("topics", "list", cwd=workdir)
    assert (listed.returncode, listed.stdout) == (0, "t\n")


def test_no_broker_is_a_bounded_failure_with_advice(workdir: Path) -> None:
    address = f"127.0.0.1:{free_port()}"
    failed = zafka(
        "topics", "list", "--request-timeout-ms", "300", cwd=workdir, env_bootstrap=address
    )
    assert failed.returncode == 1
    assert "REQUEST_TIMED_OUT" in failed.stderr
    assert f"{address} came from $ZAFKA_BOOTSTRAP" in failed.stderr
    assert "zafka cluster up" in failed.stderr and "--bootstrap" in failed.stderr


def test_a_malformed_bootstrap_address_is_explained(workdir: Path) -> None:
    failed = zafka("topics", "list", cwd=workdir, bootstrap="localhost")
    assert failed.returncode == 1
    assert "INVALID_CONFIG" in failed.stderr and "HOST:PORT" in failed.stderr
