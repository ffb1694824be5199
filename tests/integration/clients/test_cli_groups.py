"""`zafka groups ...` as a subprocess against a real broker (its group coordinator, real
ZooKeeper): list, describe (members, assignment, committed offsets, log end, lag), reset
offsets to the earliest, the latest, a time and an offset (with --dry-run and --partition),
delete; a reset or delete refused while a group Consumer is a member, and what the group's
next consumer reads after a reset; unknown groups and an unreachable cluster exit 1 with a
message saying what to do. Every run and wait is bounded."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.integration.broker_helpers import free_port
from tests.integration.clients.cli_helpers import zafka
from tests.integration.clients.helpers import WAIT_S
from zafka.clients.admin import Admin
from zafka.clients.consumer import Consumer, ConsumerRecord
from zafka.clients.producer import Producer

T0 = 1_700_000_000_000  # record timestamps: T0 + 1000 * offset
GROUP_HEADER = "GROUP    TOPIC   PARTITION  CURRENT-OFFSET  NEW-OFFSET"
OFFSETS_HEADER = "TOPIC   PARTITION  CURRENT-OFFSET  LOG-END-OFFSET  LAG  MEMBER-ID"


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "cwd"
    path.mkdir()
    return path


@pytest.fixture
def orders(bootstrap: str) -> None:
    """Topic `orders`: 10 records in partition 0 (timestamps T0 + 1000 * offset), 4 in 1."""
    with Admin(bootstrap, request_timeout_ms=10_000) as admin:
        admin.create_topic("orders", partitions=2)
    produce(bootstrap, {0: range(10), 1: range(4)})


def produce(bootstrap: str, records: dict[int, range]) -> None:
    with Producer(bootstrap) as producer:
        for partition, offsets in records.items():
            for i in offsets:
                producer.send("orders", b"v", partition=partition, timestamp=T0 + 1000 * i)
        producer.flush(WAIT_S)


def groups(*argv: str, cwd: Path, bootstrap: str):
    return zafka("groups", *argv, cwd=cwd, bootstrap=bootstrap)


def offsets_table(stdout: str) -> list[str]:
    """The describe output's partition table (header first), without the member column's
    padding at the end of lines."""
    lines = stdout.splitlines()
    return lines[lines.index(OFFSETS_HEADER) :]


def read(consumer: Consumer, count: int) -> list[ConsumerRecord]:
    """Poll until `count` records came (bounded by WAIT_S)."""
    records: list[ConsumerRecord] = []
    deadline = time.monotonic() + WAIT_S
    while len(records) < count and time.monotonic() < deadline:
        records += consumer.poll(timeout_ms=200)
    assert len(records) == count, records
    return records


def test_reset_describe_list_delete(bootstrap: str, workdir: Path, orders: None) -> None:
    def run(*argv: str):
        return groups(*argv, cwd=workdir, bootstrap=bootstrap)

    assert (run("list").returncode, run("list").stdout) == (0, "")

    dry = run("reset-offsets", "readers", "--topic", "orders", "--to-offset", "3", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines() == [
        GROUP_HEADER,
        "readers  orders  0          -               3",
        "readers  orders  1          -               3",
        "dry run: nothing changed",
    ]
    assert run("list").stdout == ""  # nothing was created

    done = run("reset-offsets", "readers", "--topic", "orders", "--to-earliest")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == (
        "reset the offsets of group readers on 2 partition(s) of orders"
    )
    assert (run("list").returncode, run("list").stdout) == (0, "readers\n")
    assert run("list", "--state").stdout.splitlines() == [
        "GROUP    STATE  COORDINATOR",
        "readers  empty  1",
    ]
    described = run("describe", "readers")
    assert described.returncode == 0, described.stderr
    lines = described.stdout.splitlines()
    assert lines[0].startswith("Group: readers\tState: empty\t")
    assert "Members: 0" in lines[0] and "(no active members)" in lines
    assert offsets_table(described.stdout) == [
        OFFSETS_HEADER,
        "orders  0          0               10              10   -",
        "orders  1          0               4               4    -",
    ]

    latest = run("reset-offsets", "readers", "--topic", "orders", "--to-latest")
    assert latest.returncode == 0, latest.stderr
    assert latest.stdout.splitlines()[:3] == [
        GROUP_HEADER,
        "readers  orders  0          0               10",
        "readers  orders  1          0               4",
    ]
    assert offsets_table(run("describe", "readers").stdout)[1:] == [
        "orders  0          10              10              0    -",
        "orders  1          4               4               0    -",
    ]

    at = "2023-11-14T22:13:24.5Z"  # T0 + 4.5 s: offset 5 in partition 0, past the end of 1
    by_time = run("reset-offsets", "readers", "--topic", "orders", "--to-datetime", at)
    assert by_time.returncode == 0, by_time.stderr
    assert by_time.stdout.splitlines()[1:3] == [
        "readers  orders  0          10              5",
        "readers  orders  1          4               4",
    ]

    one = run(
        "reset-offsets", "readers", "--topic", "orders", "--partition", "0", "--to-offset", "7"
    )
    assert one.returncode == 0, one.stderr
    clamped = run(
        "reset-offsets", "readers", "--topic", "orders", "--partition", "1", "--to-offset", "100"
    )
    assert clamped.returncode == 0, clamped.stderr
    assert "offset 100 is outside the log (0..4); using 4" in clamped.stderr
    assert offsets_table(run("describe", "readers").stdout)[1:] == [
        "orders  0          7               10              3    -",
        "orders  1          4               4               0    -",
    ]

    no_such = run(
        "reset-offsets", "readers", "--topic", "orders", "--partition", "2", "--to-latest"
    )
    assert no_such.returncode == 1
    assert "there is no partition 2" in no_such.stderr

    deleted = run("delete", "readers")
    assert (deleted.returncode, deleted.stdout) == (0, "deleted group readers\n")
    assert run("list").stdout == ""
    gone = run("describe", "readers")
    assert gone.returncode == 1
    assert "cannot describe group 'readers': GROUP_ID_NOT_FOUND (69)" in gone.stderr
    assert "zafka groups list" in gone.stderr
    again = run("delete", "readers")
    assert again.returncode == 1 and "GROUP_ID_NOT_FOUND" in again.stderr
    assert run("delete", "readers", "--if-exists").returncode == 0


def test_active_group_is_described_and_not_reset(
    bootstrap: str, workdir: Path, orders: None
) -> None:
    def run(*argv: str):
        return groups(*argv, cwd=workdir, bootstrap=bootstrap)

    consumer = Consumer(
        bootstrap,
        group_id="readers",
        topics=["orders"],
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    try:
        read(consumer, 14)
        consumer.commit()
        member_id = consumer.member_id
        assert member_id
        produce(bootstrap, {0: range(10, 13)})

        described = run("describe", "readers")
        assert described.returncode == 0, described.stderr
        lines = described.stdout.splitlines()
        assert lines[0].startswith("Group: readers\tState: stable\t")
        assert "Members: 1" in lines[0]
        (row,) = [line for line in lines if line.startswith(member_id)]
        assert row.split()[-2:] == ["orders:0-1", "-"]  # assigned, revoking
        assert offsets_table(described.stdout)[1:] == [
            f"orders  0          10              13              3    {member_id}",
            f"orders  1          4               4               0    {member_id}",
        ]

        refused = run("reset-offsets", "readers", "--topic", "orders", "--to-earliest")
        assert refused.returncode == 1
        assert "group readers has 1 active member" in refused.stderr
        assert "Stop its consumers first" in refused.stderr
        dry = run("reset-offsets", "readers", "--topic", "orders", "--to-earliest", "--dry-run")
        assert dry.returncode == 0 and "would be refused" in dry.stderr
        kept = run("delete", "readers")
        assert kept.returncode == 1 and "NON_EMPTY_GROUP (68)" in kept.stderr
        assert "stop its consumers first" in kept.stderr
        unchanged = offsets_table(run("describe", "readers").stdout)[1]
        assert unchanged.split()[:3] == ["orders", "0", "10"]
    finally:
        consumer.close()

    done = run(
        "reset-offsets", "readers", "--topic", "orders", "--partition", "0", "--to-offset", "11"
    )
    assert done.returncode == 0, done.stderr
    with Consumer(bootstrap, group_id="readers", topics=["orders"]) as successor:
        records = read(successor, 2)  # from the reset offset on, not from the log end
    assert [(r.partition, r.offset) for r in records] == [(0, 11), (0, 12)]


def test_unreachable_cluster_exits_1_with_a_hint(workdir: Path) -> None:
    bootstrap = f"127.0.0.1:{free_port()}"
    done = groups("list", "--request-timeout-ms", "500", cwd=workdir, bootstrap=bootstrap)
    assert done.returncode == 1
    assert "REQUEST_TIMED_OUT" in done.stderr and "zafka cluster up" in done.stderr
