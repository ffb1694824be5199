"""Real broker processes with a Kafka protocol listener (`--kafka-listen`), in this test's
ZooKeeper chroot; `kafka_bootstrap` is what a Kafka client's bootstrap.servers takes and
`bootstrap` what zafka's own clients take. Every wait is bounded."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.broker_helpers import BrokerProcess, free_port


@dataclass
class KafkaBroker:
    process: BrokerProcess
    kafka_port: int

    @property
    def kafka_bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.process.port}"


@contextlib.contextmanager
def kafka_brokers(zk_hosts: str, tmp_path: Path, ids: tuple[int, ...]) -> Iterator[list]:
    """Brokers `ids`, each with its own Kafka listener port, started in order and killed at
    the end, pass or fail."""
    brokers = []
    for b in ids:
        data_dir, log = tmp_path / f"data-{b}", tmp_path / f"broker-{b}.log"
        kafka_port = free_port()
        args = ("--auto-create-topics", "--kafka-listen", f"127.0.0.1:{kafka_port}")
        process = BrokerProcess(zk_hosts, data_dir, log, free_port(), b, args)
        brokers.append(KafkaBroker(process, kafka_port))
    try:
        for broker in brokers:
            broker.process.start()
        yield brokers
    finally:
        for broker in brokers:
            broker.process.kill()


@pytest.fixture
def kafka_broker(zk_hosts: str, tmp_path: Path) -> Iterator[KafkaBroker]:
    with kafka_brokers(zk_hosts, tmp_path, (1,)) as (broker,):
        yield broker
