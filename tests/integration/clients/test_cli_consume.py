"""`zafka consume` (and `zafka produce` before it) as subprocesses against a real broker: a
byte-exact round trip, where reading starts (beginning, offset, timestamp), one or every
partition, key and timestamp printing, max records, follow mode ending with exit 0 on
Ctrl-C, and failures that exit 1 saying why. Every wait is bounded: no sleeps."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.integration.broker_helpers import REPO
from tests.integration.clients.cli_helpers import zafka
from zafka.clients.admin import Admin
from zafka.clients.producer import Producer

LINE_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 15.0


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "cwd"
    path.mkdir()
    return path


def _create(bootstrap: str, topic: str, partitions: int = 1) -> None:
    with Admin(bootstrap, request_timeout_ms=10_000) as admin:
        admin.create_topic(topic, partitions=partitions)


def _send(bootstrap: str, topic: str, records: list[tuple[bytes | None, bytes | None, int]]):
    """Send (key, value, timestamp) records to partition 0 and wait for every delivery."""
    with Producer(bootstrap) as producer:
        futures = [
            producer.send(topic, value, key=key, timestamp=ts, partition=0)
            for key, value, ts in records
        ]
        for future in futures:
            future.result(timeout=LINE_TIMEOUT_S)


def test_produce_then_consume_round_trip_is_byte_exact(bootstrap: str, workdir: Path) -> None:
    lines = [b"plain", b"tab\tinside", b"", "\u00fcnicode \u2603".encode(), b"\xff\xfe raw"]
    (workdir / "in.txt").write_bytes(b"\n".join(lines) + b"\n")
    produced = zafka("produce", "trip", "--file", "in.txt", cwd=workdir, bootstrap=bootstrap)
    assert produced.returncode == 0, produced.stderr

    consumed = subprocess.run(
        [sys.executable, "-m", "zafka.cli", "consume", "trip", "--bootstrap", bootstrap],
        cwd=workdir,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        timeout=60,
    )
    assert consumed.returncode == 0, consumed.stderr
    assert consumed.stdout == (workdir / "in.txt").read_bytes()
    assert consumed.stderr == b"consumed 5 records\n"


def test_every_partition_with_keys(bootstrap: str, workdir: Path) -> None:
    _create(bootstrap, "multi", partitions=3)
    lines = b"".join(b"k%d:v%d\n" % (i, i) for i in range(30))
    produced = zafka(
        "produce", "multi", "--key-separator", ":", cwd=workdir, bootstrap=bootstrap, stdin=lines
    )
    assert produced.returncode == 0, produced.stderr
    consumed = zafka("consume", "multi", "--print-key", cwd=workdir, bootstrap=bootstrap)
    assert consumed.returncode == 0, consumed.stderr
    got = consumed.stdout.splitlines()
    assert sorted(got) == sorted(f"k{i}\tv{i}" for i in range(30))
    one = zafka("consume", "multi", "--partition", "1", cwd=workdir, bootstrap=bootstrap)
    assert one.returncode == 0 and 0 < len(one.stdout.splitlines()) < 30


def test_offset_partition_and_max_records(bootstrap: str, workdir: Path) -> None:
    stdin = b"".join(b"r%d\n" % i for i in range(10))
    assert zafka("produce", "ten", cwd=workdir, bootstrap=bootstrap, stdin=stdin).returncode == 0
    done = zafka(
        "consume", "ten", "--partition", "0", "--offset", "4", "--max-records", "3",
        cwd=workdir, bootstrap=bootstrap,
    )  # fmt: skip
    assert (done.returncode, done.stdout) == (0, "r4\nr5\nr6\n")
    at_end = zafka("consume", "ten", "--offset", "10", cwd=workdir, bootstrap=bootstrap)
    assert (at_end.returncode, at_end.stdout) == (0, "")

    beyond = zafka("consume", "ten", "--offset", "11", cwd=workdir, bootstrap=bootstrap)
    assert beyond.returncode == 1
    assert "offset 11 is outside partition 0 of 'ten', which holds offsets 0..10" in beyond.stderr


def test_from_timestamp_and_printing_timestamps_and_nulls(bootstrap: str, workdir: Path) -> None:
    _create(bootstrap, "timed")
    _send(bootstrap, "timed", [(b"a", b"1", 1000), (b"b", None, 2000), (None, b"3", 3500)])
    for start in ("2000", "1970-01-01T00:00:01.500+00:00", "1970-01-01T00:00:02Z"):
        done = zafka(
            "consume", "timed", "--from-timestamp", start, "--print-timestamp", "--print-key",
            cwd=workdir, bootstrap=bootstrap,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert done.stdout == (
            "1970-01-01T00:00:02.000Z\tb\tnull\n1970-01-01T00:00:03.500Z\tnull\t3\n"
        )
    later = zafka("consume", "timed", "--from-timestamp", "9000", cwd=workdir, bootstrap=bootstrap)
    assert (later.returncode, later.stdout) == (0, "")


def test_an_empty_topic_prints_nothing(bootstrap: str, workdir: Path) -> None:
    _create(bootstrap, "empty", partitions=2)
    done = zafka("consume", "empty", cwd=workdir, bootstrap=bootstrap)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "consumed 0 records\n")


def test_an_unknown_topic_or_partition_fails_and_creates_nothing(
    bootstrap: str, workdir: Path
) -> None:
    missing = zafka("consume", "ghost", cwd=workdir, bootstrap=bootstrap)
    assert missing.returncode == 1
    assert "UNKNOWN_TOPIC_OR_PARTITION (3)" in missing.stderr and "'ghost'" in missing.stderr
    assert "zafka topics list" in missing.stderr
    _create(bootstrap, "single")
    wrong = zafka("consume", "single", "--partition", "3", cwd=workdir, bootstrap=bootstrap)
    assert wrong.returncode == 1 and "has partitions 0..0, not 3" in wrong.stderr
    with Admin(bootstrap, request_timeout_ms=10_000) as admin:
        assert admin.list_topics() == ["single"]  # reading did not auto-create "ghost"


def test_follow_prints_new_records_until_ctrl_c(bootstrap: str, workdir: Path) -> None:
    _create(bootstrap, "live")
    _send(bootstrap, "live", [(None, b"old", 1)])
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "zafka.cli",
            "consume",
            "live",
            "--follow",
            "--from-beginning",
            "--bootstrap",
            bootstrap,
        ],
        cwd=workdir,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout], daemon=True).start()
    try:
        assert lines.get(timeout=LINE_TIMEOUT_S) == "old\n"
        _send(bootstrap, "live", [(None, b"new", 2)])
        assert lines.get(timeout=LINE_TIMEOUT_S) == "new\n"
        assert proc.poll() is None  # still following
        proc.send_signal(signal.SIGINT)
        assert proc.wait(STOP_TIMEOUT_S) == 0
        assert proc.stderr.read() == "consumed 2 records\n"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(STOP_TIMEOUT_S)
