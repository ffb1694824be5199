"""Consumer groups end to end: members are separate processes (group_member_proc.py: join,
poll, process, commit after processing, report every step), against a real broker process
with its group coordinator and a real ZooKeeper; records flow from a Producer meanwhile.

- 1 -> 4 -> 1 members on 12 partitions: the group converges each time (the coordinator's
  DescribeGroup and the processes' own reports agree that every partition has exactly one
  owner, balanced); throughout, no partition is owned by two members at once (the
  processes' ownership intervals, from their callbacks, never overlap) and no member epoch
  goes back; every record is read exactly once (clean handoffs commit first).
- kill -9 of one member of three while records flow: every record is delivered at least
  once to the group, and the dead member's partitions move within its session timeout.
- a member paused (SIGSTOP) past its session timeout, then resumed: its commit is refused
  (FENCED_MEMBER_EPOCH or UNKNOWN_MEMBER_ID), the group's committed offsets do not go back,
  and it joins again.

Every wait is bounded and polls state; nothing sleeps to synchronise."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.broker_helpers import REPO, BrokerProcess, free_port
from tests.integration.clients.helpers import bare_client, call
from zafka.clients import io
from zafka.clients.admin import Admin
from zafka.clients.io import ClientIO
from zafka.clients.producer import Producer
from zafka.errors import BY_NAME, ZafkaError
from zafka.transport.group import (
    DescribeGroupRequest,
    DescribeGroupResponse,
    FindCoordinatorRequest,
    OffsetFetchRequest,
)

pytestmark = pytest.mark.slow

TOPIC = "orders"
PARTITIONS = 12
ALL = set(range(PARTITIONS))
HEARTBEAT_MS = 300
SESSION_MS = 2_000
WAIT_S = 30.0  # the longest any one wait may take (convergence, a process, the broker)
GROUP = "readers"


@pytest.fixture
def group_broker(zk_hosts: str, tmp_path: Path) -> Iterator[BrokerProcess]:
    process = BrokerProcess(
        zk_hosts,
        tmp_path / "data",
        tmp_path / "broker.log",
        free_port(),
        broker_id=1,
        extra_args=(
            "--auto-create-topics",
            "--group-heartbeat-interval-ms",
            str(HEARTBEAT_MS),
            "--offsets-topic-partitions",
            "2",
        ),
    )
    process.start()
    yield process
    if process.alive():
        process.terminate()


@pytest.fixture
def bootstrap(group_broker: BrokerProcess) -> str:
    bootstrap = f"127.0.0.1:{group_broker.port}"
    with Admin(bootstrap, request_timeout_ms=10_000) as admin:
        admin.create_topic(TOPIC, partitions=PARTITIONS)
    return bootstrap


def until(check: Callable[[], bool], what: str, timeout_s: float = WAIT_S) -> float:
    """Poll `check` until it holds (bounded); the time it took."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout_s:
            raise AssertionError(f"not within {timeout_s} s: {what}")
        time.sleep(0.05)  # pacing between looks at the state, not synchronisation
    return time.monotonic() - start


# --- the member processes ---------------------------------------------------------------------


class Member:
    """A group_member_proc.py process and everything it reported."""

    def __init__(
        self, bootstrap: str, log_dir: Path, name: str, session_ms: int = SESSION_MS
    ) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.integration.clients.group_member_proc",
                    bootstrap,
                    GROUP,
                    TOPIC,
                    str(session_ms),
                ],
                cwd=REPO,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
        self.events: list[dict] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()
        self.wait(lambda e: e["event"] == "started", "started")
        self.member_id: str = self.first("started")["member"]

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._lock:
                self.events.append(json.loads(line))

    def snapshot(self) -> list[dict]:
        with self._lock:
            return list(self.events)

    def first(self, event: str) -> dict:
        return next(e for e in self.snapshot() if e["event"] == event)

    def wait(self, match: Callable[[dict], bool], what: str, after: int = 0) -> dict:
        """The first event from index `after` on that `match`es (bounded wait)."""
        found: list[dict] = []

        def seen() -> bool:
            exited = self.proc.poll() is not None
            found[:] = [e for e in self.snapshot()[after:] if match(e)][:1]
            if exited and not found:
                raise AssertionError(f"{self.name} exited before {what}:\n{self.log()}")
            return bool(found)

        until(seen, f"{self.name}: {what}")
        return found[0]

    def log(self) -> str:
        return self.log_path.read_text()[-4000:]

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def owned(self) -> set[int]:
        """What it owns now, by its callbacks."""
        owned: set[int] = set()
        for e in self.snapshot():
            if e["event"] == "assigned":
                owned |= set(e["partitions"])
            elif e["event"] in ("revoked", "lost"):
                owned -= set(e["partitions"])
        return owned

    def records(self) -> list[tuple[int, int, str]]:
        return [tuple(r) for e in self.snapshot() if e["event"] == "records" for r in e["records"]]

    def close(self) -> None:
        """Close the consumer (it leaves the group) and wait for the process to end."""
        self.send("close")
        self.proc.wait(WAIT_S)
        assert self.proc.returncode == 0, self.log()

    def signal(self, sig: int) -> None:
        os.kill(self.proc.pid, sig)


@pytest.fixture
def members(bootstrap: str, tmp_path: Path) -> Iterator[Callable[..., Member]]:
    """`members(name, session_ms=...)` starts a member process; every one still running is
    killed after."""
    started: list[Member] = []

    def start(name: str, session_ms: int = SESSION_MS) -> Member:
        member = Member(bootstrap, tmp_path, name, session_ms)
        started.append(member)
        return member

    yield start
    for member in started:
        if member.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                member.signal(signal.SIGCONT)
            member.proc.kill()
            member.proc.wait(WAIT_S)


# --- the test's own view: the coordinator and a producer --------------------------------------


class Coordinator:
    """DescribeGroup and OffsetFetch sent straight to the group's coordinator."""

    def __init__(self, client: ClientIO) -> None:
        self.client = client
        io.result(client.submit(lambda f: client.actor.fetch_cluster(None, f)), WAIT_S)
        found = call(client, f"{client.actor.any_broker()}/broker", FindCoordinatorRequest(GROUP))
        self.target = f"broker-{found.node}/group-{GROUP}"  # type: ignore[attr-defined]
        self.snapshots: list[DescribeGroupResponse] = []

    def describe(self) -> DescribeGroupResponse:
        """The group now (error COORDINATOR_NOT_AVAILABLE while its actor does not answer);
        every answer is checked: no partition in two members."""
        try:
            reply: DescribeGroupResponse = call(  # type: ignore[assignment]
                self.client, self.target, DescribeGroupRequest(GROUP)
            )
        except ZafkaError:  # UNKNOWN_ACTOR, STOPPED, a timeout, a link still down: a restart
            unavailable = BY_NAME["COORDINATOR_NOT_AVAILABLE"].code
            return DescribeGroupResponse(unavailable, GROUP, "", -1, "", ())
        if reply.error_code == 0:
            seen: set[int] = set()
            for m in reply.members:
                mine = {tp.partition for tp in (*m.assignment, *m.revoking)}
                assert not mine & seen, f"a partition owned twice: {reply}"
                seen |= mine
        self.snapshots.append(reply)
        return reply

    def assignment(self) -> dict[str, set[int]]:
        reply = self.describe()
        if reply.error_code != 0:
            return {}
        return {m.member_id: {tp.partition for tp in m.assignment} for m in reply.members}

    def committed(self) -> dict[int, int]:
        reply = call(self.client, self.target, OffsetFetchRequest(GROUP, None))
        return {o.partition: o.offset for o in reply.offsets if o.topic == TOPIC}  # type: ignore[attr-defined]


@pytest.fixture
def coordinator(bootstrap: str) -> Iterator[Coordinator]:
    with bare_client(bootstrap, "observer") as client:
        yield Coordinator(client)


class Flow:
    """A Producer sending `<partition>:<n>` to every partition in turn until stopped."""

    def __init__(self, bootstrap: str, per_s: int = 300) -> None:
        self.producer = Producer(bootstrap, linger_ms=1)
        self.sent: list[str] = []
        self._stop = threading.Event()
        self._per_s = per_s
        self._error: ZafkaError | None = None  # a send that failed ends the flow
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        n = 0
        while not self._stop.wait(1 / self._per_s):
            p = n % PARTITIONS
            value = f"{p}:{n}"
            try:
                self.producer.send(TOPIC, value.encode(), partition=p).result(WAIT_S)
            except ZafkaError as err:  # raised by stop(), in the test's thread
                self._error = err
                return
            self.sent.append(value)
            n += 1

    def stop(self) -> list[str]:
        """Stop sending; what was sent, or the error a send failed with."""
        self._stop.set()
        self._thread.join(WAIT_S)
        self.producer.close()
        if self._error is not None:
            raise self._error
        return self.sent


def converged(coordinator: Coordinator, group: list[Member]) -> Callable[[], bool]:
    """Every partition has exactly one owner, balanced, at the coordinator (stable) and in
    the processes' own reports alike."""

    def check() -> bool:
        reply = coordinator.describe()
        if reply.error_code != 0 or reply.state != "stable":
            return False
        assignment = {m.member_id: {tp.partition for tp in m.assignment} for m in reply.members}
        if set(assignment) != {m.member_id for m in group}:
            return False
        sizes = sorted(len(ps) for ps in assignment.values())
        if sum(sizes) != PARTITIONS or sizes[-1] - sizes[0] > 1:
            return False
        return all(m.owned() == assignment[m.member_id] for m in group)

    return check


def ownership_intervals(group: list[Member]) -> dict[int, list[tuple[float, float, str, int]]]:
    """Per partition: (from, to, member, epoch) from each process's callbacks."""
    intervals: dict[int, list[tuple[float, float, str, int]]] = {p: [] for p in ALL}
    for member in group:
        since: dict[int, tuple[float, int]] = {}
        for e in member.snapshot():
            if e["event"] == "assigned":
                for p in e["partitions"]:
                    since[p] = (e["t"], e["epoch"])
            elif e["event"] in ("revoked", "lost"):
                for p in e["partitions"]:
                    start, epoch = since.pop(p)
                    intervals[p].append((start, e["t"], member.name, epoch))
        for p, (start, epoch) in since.items():
            intervals[p].append((start, float("inf"), member.name, epoch))
    return intervals


def check_one_owner_at_a_time(group: list[Member]) -> None:
    for p, spans in ownership_intervals(group).items():
        spans.sort()
        for (_, end, who, epoch), (start, _, next_who, next_epoch) in itertools.pairwise(spans):
            assert end <= start, f"partition {p}: {who} until {end}, {next_who} from {start}"
            assert epoch <= next_epoch, f"partition {p}: epoch {epoch} then {next_epoch}"


def delivered(group: list[Member]) -> Counter[str]:
    return Counter(value for m in group for _, _, value in m.records())


# --- the tests --------------------------------------------------------------------------------


def test_members_join_and_leave_one_by_one_and_the_group_converges_each_time(
    bootstrap: str, members: Callable[..., Member], coordinator: Coordinator
) -> None:
    flow = Flow(bootstrap)
    group: list[Member] = []
    everyone: list[Member] = []
    for n in range(1, 5):
        member = members(f"member-{n}")
        group.append(member)
        everyone.append(member)
        until(converged(coordinator, group), f"{n} members converged")
    for n in range(3, 0, -1):
        group.pop(0).close()
        until(converged(coordinator, group), f"{n} members converged")
    sent = flow.stop()
    until(lambda: set(delivered(everyone)) >= set(sent), "every record read")
    counts = delivered(everyone)
    assert counts == Counter(sent), "some record read twice or never"
    check_one_owner_at_a_time(everyone)
    assert not any(e["event"] == "lost" for m in everyone for e in m.snapshot())
    group[0].close()
    until(lambda: coordinator.describe().members == (), "the last member left")


def test_a_member_killed_mid_stream_loses_no_record_and_its_partitions_move_in_a_session(
    bootstrap: str, members: Callable[..., Member], coordinator: Coordinator
) -> None:
    flow = Flow(bootstrap)
    group = [members(f"member-{n}") for n in range(1, 4)]
    until(converged(coordinator, group), "3 members converged")
    victim, survivors = group[0], group[1:]
    until(lambda: all(m.records() for m in group), "every member reads")
    orphaned = victim.owned()
    marks = [len(m.snapshot()) for m in survivors]
    victim.signal(signal.SIGKILL)
    killed_at = time.monotonic()
    victim.proc.wait(WAIT_S)
    until(converged(coordinator, survivors), "2 survivors converged")
    taken_at = {
        p: e["t"]
        for m, mark in zip(survivors, marks, strict=True)
        for e in m.snapshot()[mark:]
        if e["event"] == "assigned"
        for p in e["partitions"]
    }
    assert set(taken_at) >= orphaned
    moved_s = max(taken_at[p] for p in orphaned) - killed_at
    # The coordinator removes it once its session ran out (SESSION_MS after its last
    # heartbeat), and each survivor gets its share at its next heartbeat.
    assert moved_s <= (SESSION_MS + 3 * HEARTBEAT_MS) / 1000 + 1.0, moved_s
    sent = flow.stop()
    until(lambda: set(delivered(group)) >= set(sent), "every record delivered at least once")
    check_one_owner_at_a_time(survivors)
    for member in survivors:
        member.close()


def test_a_paused_member_has_its_commit_refused_and_joins_again(
    bootstrap: str, members: Callable[..., Member], coordinator: Coordinator
) -> None:
    flow = Flow(bootstrap)
    paused, other = members("paused"), members("other")
    until(converged(coordinator, [paused, other]), "2 members converged")
    paused.send("hold")
    held = paused.wait(lambda e: e["event"] == "holding", "holding records")["offsets"]
    mark = len(paused.snapshot())
    epoch = max(e["epoch"] for e in paused.snapshot() if e["event"] == "assigned")
    paused.signal(signal.SIGSTOP)
    stopped_at = time.monotonic()
    until(lambda: coordinator.assignment() == {other.member_id: ALL}, "its session expired")
    assert time.monotonic() - stopped_at >= SESSION_MS / 1000 - 0.5
    until(lambda: other.owned() == ALL, "the other member owns everything")
    # The other member reads on and commits past what the paused one holds.
    held_partitions = {int(p): o for p, o in held.items()}

    def moved_on() -> bool:
        committed = coordinator.committed()
        return all(committed.get(p, -1) > o for p, o in held_partitions.items())

    until(moved_on, "the other member committed past the held records")
    before = coordinator.committed()
    paused.signal(signal.SIGCONT)
    paused.send("commit")
    failed = paused.wait(lambda e: e["event"].startswith("commit"), "the commit's outcome", mark)
    assert failed["event"] == "commit_failed", failed
    assert failed["error"] in ("FENCED_MEMBER_EPOCH", "UNKNOWN_MEMBER_ID"), failed
    assert BY_NAME[failed["error"]].code in (110, 25)
    after = coordinator.committed()
    assert all(after[p] >= before[p] for p in held_partitions), (before, after)
    lost = paused.wait(lambda e: e["event"] == "lost", "its partitions lost", mark)
    assert set(lost["partitions"]) >= set(held_partitions)
    rejoined = paused.wait(lambda e: e["event"] == "assigned", "assigned again", mark)
    assert rejoined["epoch"] > epoch
    until(converged(coordinator, [paused, other]), "2 members converged again")
    sent = flow.stop()
    until(lambda: set(delivered([paused, other])) >= set(sent), "every record read")
    for member in (paused, other):
        member.close()


def test_members_keep_their_partitions_across_a_broker_restart(
    bootstrap: str,
    group_broker: BrokerProcess,
    members: Callable[..., Member],
    coordinator: Coordinator,
) -> None:
    """The broker (and with it the group's coordinator) restarts within the members'
    session: the group's state is replayed, so nobody loses a partition or rejoins, and
    consumption goes on from the committed offsets."""
    flow = Flow(bootstrap)
    group = [members(f"member-{n}", session_ms=20_000) for n in (1, 2)]
    until(converged(coordinator, group), "2 members converged")
    before = {m.member_id: (m.member_epoch, m.assignment) for m in coordinator.describe().members}
    sent = flow.stop()
    until(lambda: set(delivered(group)) >= set(sent), "every record read")
    owned = [m.owned() for m in group]
    assert group_broker.terminate() == 0
    group_broker.start()
    flow = Flow(bootstrap)
    until(lambda: len(flow.sent) >= 10 * PARTITIONS, "records produced after the restart")
    sent += flow.stop()
    until(lambda: set(delivered(group)) >= set(sent), "every record read after the restart")
    assert [m.owned() for m in group] == owned
    for member in group:
        events = [e["event"] for e in member.snapshot()]
        assert "lost" not in events and events.count("assigned") == 1, events
    # The observer's own link to the restarted broker may still be down (NETWORK_EXCEPTION,
    # retriable) while the members' links are up: its answer is awaited, as a client retries.
    until(lambda: coordinator.describe().error_code == 0, "the coordinator answers the observer")
    reply = coordinator.snapshots[-1]
    after = {m.member_id: (m.member_epoch, m.assignment) for m in reply.members}
    assert after == before, reply
    for member in group:
        member.close()
