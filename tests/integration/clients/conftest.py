"""A real broker process for client tests: `bootstrap` is its "127.0.0.1:PORT", with
topic auto-creation on, registered in this test's ZooKeeper chroot. Every wait is bounded."""

from __future__ import annotations

import queue
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
SESSION_TIMEOUT_MS = 2000  # the test ZooKeeper allows 0.4-4 s
REPO = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_broker(
    zk_hosts: str, directory: Path, broker_id: int = 1, port: int = 0
) -> subprocess.Popen[str]:
    """A `zafka broker` subprocess, once it printed its ready line (stderr to broker.log);
    on `port`, or a free one."""
    port = port or free_port()
    args = [sys.executable, "-m", "zafka.cli", "broker", "--id", str(broker_id)]
    args += ["--zookeeper", zk_hosts, "--listen", f"tcp://127.0.0.1:{port}"]
    args += ["--data-dir", str(directory / "data"), "--auto-create-topics"]
    args += ["--zk-session-timeout-ms", str(SESSION_TIMEOUT_MS)]
    log_path = directory / "broker.log"
    with open(log_path, "a") as log:
        proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=log, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout], daemon=True).start()
    try:
        line = lines.get(timeout=READY_TIMEOUT_S)
    except queue.Empty:
        line = ""
    if "ready at" not in line:
        proc.kill()
        proc.wait(STOP_TIMEOUT_S)
        raise AssertionError(f"broker not ready ({line!r}); log:\n{log_path.read_text()[-4000:]}")
    proc.port = port  # type: ignore[attr-defined]
    return proc


def stop_broker(proc: subprocess.Popen[str]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(STOP_TIMEOUT_S)
    return proc.returncode


@pytest.fixture
def broker(zk_hosts: str, tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    proc = start_broker(zk_hosts, tmp_path)
    yield proc
    stop_broker(proc)


@pytest.fixture
def bootstrap(broker: subprocess.Popen[str]) -> str:
    return f"127.0.0.1:{broker.port}"  # type: ignore[attr-defined]
