"""`zafka produce` as a subprocess against a real broker (topics auto-created): lines from
stdin and from a file become records with keys, headers and partitions as asked; failures
exit 1 saying what happened. Records are read back with the client core, not the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.broker_helpers import free_port
from tests.integration.clients.cli_helpers import read_partition, zafka
from zafka.clients.admin import Admin


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "cwd"
    path.mkdir()
    return path


def test_stdin_lines_with_keys_and_headers(bootstrap: str, workdir: Path) -> None:
    done = zafka(
        "produce", "lines", "--key-separator", ":", "--header", "source=cli", "--header", "v=1",
        cwd=workdir, bootstrap=bootstrap, stdin=b"k1:hello\nk2:wor:ld\r\n:no key part\nk4:",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr == "produced 4 records to lines\n"
    records = read_partition(bootstrap, "lines", 0, 4)
    assert [(r.offset, r.key, r.value) for r in records] == [
        (0, b"k1", b"hello"),
        (1, b"k2", b"wor:ld"),
        (2, b"", b"no key part"),
        (3, b"k4", b""),
    ]
    assert all(r.headers == (("source", b"cli"), ("v", b"1")) for r in records)


def test_a_file_with_a_progress_bar(bootstrap: str, workdir: Path) -> None:
    lines = [f"record {i}".encode() for i in range(500)]
    (workdir / "in.txt").write_bytes(b"\n".join(lines) + b"\n")
    done = zafka(
        "produce", "from-file", "--file", "in.txt", "--progress", "--acks", "1",
        cwd=workdir, bootstrap=bootstrap,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "100%" in done.stderr  # tqdm's bar, on stderr
    assert done.stderr.rstrip().endswith("produced 500 records to from-file")
    records = read_partition(bootstrap, "from-file", 0, 500)
    assert [r.value for r in records] == lines
    assert all(r.key is None and not r.headers for r in records)


def test_partition_and_acks_0(bootstrap: str, workdir: Path) -> None:
    with Admin(bootstrap, request_timeout_ms=10_000) as admin:
        admin.create_topic("two", partitions=2)
    done = zafka(
        "produce", "two", "--partition", "1", "--acks", "0",
        cwd=workdir, bootstrap=bootstrap, stdin=b"a\nb\nc\n",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr == "sent 3 records to two (acks=0: not confirmed)\n"
    assert [r.value for r in read_partition(bootstrap, "two", 1, 3)] == [b"a", b"b", b"c"]


def test_a_line_without_the_separator_stops_there(bootstrap: str, workdir: Path) -> None:
    done = zafka(
        "produce", "strict", "--key-separator", "\t",
        cwd=workdir, bootstrap=bootstrap, stdin=b"k\tv\nno tab here\nk\tnever sent\n",
    )  # fmt: skip
    assert done.returncode == 1
    assert "line 2 has no key separator '\\t'" in done.stderr
    assert [(r.key, r.value) for r in read_partition(bootstrap, "strict", 0, 1)] == [(b"k", b"v")]


def test_an_unknown_partition_fails_with_advice(bootstrap: str, workdir: Path) -> None:
    done = zafka(
        "produce", "one", "--partition", "5", cwd=workdir, bootstrap=bootstrap, stdin=b"x\n"
    )
    assert done.returncode == 1
    assert "UNKNOWN_TOPIC_OR_PARTITION (3)" in done.stderr
    assert "partitions 0..0" in done.stderr


def test_a_missing_file_is_a_clear_error(workdir: Path) -> None:
    done = zafka("produce", "t", "--file", "nope.txt", cwd=workdir, bootstrap="127.0.0.1:1")
    assert done.returncode == 1
    assert "cannot read nope.txt: No such file or directory" in done.stderr


def test_no_broker_fails_within_the_timeout(workdir: Path) -> None:
    address = f"127.0.0.1:{free_port()}"
    done = zafka(
        "produce", "t", "--request-timeout-ms", "500",
        cwd=workdir, bootstrap=address, stdin=b"x\n",
    )  # fmt: skip
    assert done.returncode == 1
    assert "REQUEST_TIMED_OUT" in done.stderr and "zafka cluster up" in done.stderr
