"""A 3-broker cluster for the fault suite: real broker processes on a real ZooKeeper, and the
moves of a fault scenario (kill -9, SIGSTOP / SIGCONT, restart), separate producer and
reader processes, an ISR timeline from a ZooKeeper watch, and the checker's figures. Every
wait is bounded; everything started is stopped by the test's fixtures."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from kazoo.client import KazooClient
from kazoo.exceptions import KazooException

from tests.fault import checker
from tests.integration.broker_helpers import (
    REPO,
    SESSION_TIMEOUT_MS,
    BrokerProcess,
    RawClient,
    wait_until,
)
from zafka.coordination import paths
from zafka.coordination.controller import read_controller
from zafka.coordination.topic_records import LeaderIsr
from zafka.coordination.topics import TopicStore
from zafka.transport.admin import CreateTopicsRequest, NewTopic

TOPIC = "events"
PARTITIONS = 3
SESSION_TIMEOUT_S = SESSION_TIMEOUT_MS / 1000
RECOVERY_BOUND_S = SESSION_TIMEOUT_S + 2  # the bound on a new leader's first ack
STATE_WAIT_S = 30.0  # a broker's death or return written by the controller and the leaders
PROCESS_WAIT_S = 60.0


class FaultCluster:
    def __init__(self, brokers: dict[int, BrokerProcess], zk: KazooClient, tmp: Path) -> None:
        self.brokers = brokers
        self.zk = zk
        self.store = TopicStore(zk)
        self.tmp = tmp
        self.isr: list[tuple[float, int, int]] = []  # (time, partition, ISR size)
        self._lock = threading.Lock()
        self._producers: list[tuple[subprocess.Popen, Path]] = []

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{b.port}" for b in self.brokers.values())

    # --- the topic ----------------------------------------------------------------------------

    def create(self, configs: dict[str, str] | None = None) -> None:
        broker = next(iter(self.brokers.values()))
        client = RawClient(broker.endpoint, f"broker-{broker.broker_id}")
        try:
            topic = NewTopic(TOPIC, PARTITIONS, len(self.brokers), configs or {})
            (result,) = client.call("broker", CreateTopicsRequest((topic,))).results
            assert result.error_code == 0, result
        finally:
            client.close()
        for p in range(PARTITIONS):
            self.zk.DataWatch(paths.partition_state(TOPIC, p), self._watcher(p))

    def _watcher(self, partition: int):
        def seen(data: bytes | None, stat: object) -> None:
            if data:
                state = LeaderIsr.from_json("state", data)
                with self._lock:
                    self.isr.append((time.time(), partition, len(state.isr)))

        return seen

    def state(self, partition: int) -> LeaderIsr:
        return self.store.partition_state(TOPIC, partition)[0]

    def leader(self, partition: int) -> int:
        return self.state(partition).leader

    def wait_in_sync(self, timeout_s: float = STATE_WAIT_S) -> None:
        """Every partition led, with every broker in its ISR."""
        everyone = set(self.brokers)

        def in_sync() -> bool:
            try:
                states = [self.state(p) for p in range(PARTITIONS)]
            except KazooException:  # this test's own session expired with ZooKeeper down
                return False
            return all(s.leader >= 0 and set(s.isr) == everyone for s in states)

        ok = wait_until(in_sync, timeout_s)
        assert ok, f"not all in sync: {[self.state(p) for p in range(PARTITIONS)]}"

    def wait_led_elsewhere(self, partition: int, old: int) -> int:
        ok = wait_until(lambda: self.leader(partition) not in (-1, old), STATE_WAIT_S)
        assert ok, f"partition {partition} still led by {self.leader(partition)}"
        return self.leader(partition)

    # --- faults -------------------------------------------------------------------------------

    def kill(self, broker_id: int) -> float:
        """kill -9; returns when it was sent."""
        at = time.time()
        self.brokers[broker_id].kill()
        return at

    def restart(self, broker_id: int) -> None:
        self.brokers[broker_id].start()

    def pause(self, broker_id: int) -> float:
        at = time.time()
        os.kill(self.brokers[broker_id].pid, signal.SIGSTOP)
        return at

    def resume(self, broker_id: int) -> float:
        os.kill(self.brokers[broker_id].pid, signal.SIGCONT)
        return time.time()

    # --- load and the final read --------------------------------------------------------------

    def start_producers(self, count: int = 2, seconds: float = 20.0, rate: float = 150.0) -> None:
        for i in range(count):
            log = self.tmp / f"producer-{i}.jsonl"
            args = ["--bootstrap", self.bootstrap, "--topic", TOPIC, "--id", f"p{i}"]
            args += ["--partitions", str(PARTITIONS), "--log", str(log)]
            args += ["--rate", str(rate), "--seconds", str(seconds)]
            proc = subprocess.Popen(
                [sys.executable, "-m", "tests.fault.producer", *args],
                cwd=REPO,
                stderr=open(self.tmp / f"producer-{i}.err", "w"),  # noqa: SIM115
            )
            self._producers.append((proc, log))

    def history(self) -> checker.History:
        return checker.read_history(log for _, log in self._producers if log.exists())

    def wait_acked(self, count: int, timeout_s: float = STATE_WAIT_S) -> None:
        """Until the producers have `count` acks between them (the load is running)."""
        ok = wait_until(lambda: len(self.history().acks) >= count, timeout_s)
        assert ok, "the producers got no acks: see producer-*.err and broker-*.log"

    def wait_recovered(self, fault_t: float, hit: list[int], timeout_s: float) -> float | None:
        """Until each partition in `hit` has an ack after `fault_t`; the longest wait."""

        def recovery() -> float | None:
            return checker.check(self.history(), {}, fault_t=fault_t, hit=hit).recovery_s

        wait_until(lambda: recovery() is not None, timeout_s)
        return recovery()

    def wait_producers(self) -> None:
        for proc, _ in self._producers:
            assert proc.wait(PROCESS_WAIT_S) == 0, "a producer failed: see producer-*.err"

    def stop_producers(self) -> None:
        for proc, _ in self._producers:
            if proc.poll() is None:
                proc.kill()
                proc.wait(PROCESS_WAIT_S)

    def controller(self) -> int:
        ok = wait_until(lambda: read_controller(self.zk) in self.brokers, STATE_WAIT_S)
        assert ok, "no controller elected"
        return read_controller(self.zk)

    def under_load(self, seconds: float = 25.0) -> None:
        """Start the producers and wait until their records are acked (before a fault)."""
        self.start_producers(seconds=seconds)
        self.wait_acked(100)

    def acks_between(self, start: float, end: float) -> int:
        return sum(1 for a in self.history().acks if start <= a.t <= end)

    def figures(self, **check_args: object) -> checker.Figures:
        """Wait for the producers, read everything back (in a process of its own), check."""
        self.wait_producers()
        out = self.tmp / "final.jsonl"
        args = ["--bootstrap", self.bootstrap, "--topic", TOPIC, "--out", str(out)]
        done = subprocess.run(
            [sys.executable, "-m", "tests.fault.reader", *args, "--partitions", str(PARTITIONS)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=PROCESS_WAIT_S,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        history = self.history()
        with self._lock:
            isr = list(self.isr)
        figures = checker.check(history, checker.read_final(out), isr=isr, **check_args)
        print(figures.line(), f"sent={history.sent} failed={history.failed}", flush=True)
        print("reader:", json.loads(done.stdout.splitlines()[-1]), flush=True)
        return figures
