"""The local cluster launcher's state file and its processes: start one, check it, stop it.

`cluster.json` (in the cluster directory) records what was started, one entry per name:
`ProcessInfo` as JSON. A process is identified by its PID and a marker, a string in its
command line, so that `cluster down` and `status` work from another shell and never signal
an unrelated process that reused the PID. A ZooKeeper run in a container is recorded with its
container id and image instead (zafka/cluster_zk.py stops it through Docker, never by PID).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from zafka import clock, limits


class LauncherError(Exception):
    """Something the user can fix; the message says how."""


@dataclass(frozen=True)
class ProcessInfo:
    name: str
    pid: int  # of a container: its main process as Docker reported it, for information only
    port: int
    log: str
    marker: str  # in its command line (of a container: its zafka.cluster label's value)
    container: str = ""  # a container's id; "" for a process the launcher started itself
    image: str = ""  # a container's image
    kafka_port: int = 0  # a broker's Kafka protocol listener on 127.0.0.1 (0: none)

    def identity(self) -> str:
        """How `up`, `status` and `down` name it: `pid N` or `container ID12 of IMAGE`."""
        if self.container:
            return f"container {self.container[:12]} of {self.image}"
        return f"pid {self.pid}"


def _state_file(root: Path) -> Path:
    return root / "cluster.json"


def load_state(root: Path) -> dict[str, ProcessInfo]:
    path = _state_file(root)
    if not path.exists():
        return {}
    raw = json.loads(path.read_text())
    return {name: ProcessInfo(**info) for name, info in raw.items()}


def _as_json(info: ProcessInfo) -> dict[str, object]:
    """Its fields; a process's entry leaves out the container's (empty) ones."""
    return {
        key: value
        for key, value in vars(info).items()
        if (value != "" and not (key == "kafka_port" and value == 0)) or key == "log"
    }


def save_state(root: Path, state: dict[str, ProcessInfo]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    tmp = _state_file(root).with_suffix(".tmp")
    tmp.write_text(json.dumps({n: _as_json(p) for n, p in state.items()}, indent=2))
    tmp.replace(_state_file(root))


def record(root: Path, info: ProcessInfo) -> None:
    state = load_state(root)
    state[info.name] = info
    save_state(root, state)


def is_running(pid: int, marker: str) -> bool:
    """True if `pid` is a live (not zombie) process whose command line contains `marker`.

    The marker check keeps us from signalling an unrelated process that reused the PID.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode("utf-8", "replace")
    except OSError:
        return False
    state = stat.rsplit(")", 1)[1].split()[0]
    return state != "Z" and marker in cmdline


def spawn(command: list[str], log: Path) -> subprocess.Popen[bytes]:
    """Start `command` in a session of its own (it outlives this shell), output to `log`."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # `cluster down` stops it by PID
        )


def free_port() -> int:
    """A port nothing listens on at 127.0.0.1 now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_is_free(port: int) -> bool:
    """Whether a listener could bind 127.0.0.1:`port` now (as ZeroMQ binds: SO_REUSEADDR,
    so connections of a killed process in TIME_WAIT do not count)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _open(info: ProcessInfo) -> int | None:
    """A pidfd for `info`'s process if it is (still) the one we started, else None."""
    try:
        fd = os.pidfd_open(info.pid)
    except OSError:
        return None
    if not is_running(info.pid, info.marker):  # checked after opening: no PID-reuse race
        os.close(fd)
        return None
    return fd


def _signal(fd: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # already gone
        signal.pidfd_send_signal(fd, signum)


def _exited(fd: int, timeout_s: float) -> bool:
    """Wait up to `timeout_s` for the process behind `fd` to exit."""
    readable, _, _ = select.select([fd], [], [], max(timeout_s, 0.0))
    return bool(readable)


def stop_processes(infos: list[ProcessInfo]) -> list[bool]:
    """SIGTERM to all at once, SIGKILL to those still running after the grace period.
    Returns, for each, whether it was running. Never given a container's entry."""
    assert not any(info.container for info in infos), "containers are stopped through Docker"
    fds = [_open(info) for info in infos]
    for fd in fds:
        if fd is not None:
            _signal(fd, signal.SIGTERM)
    deadline = clock.monotonic_s() + limits.process_stop_grace_s
    try:
        for fd in fds:
            if fd is not None and not _exited(fd, deadline - clock.monotonic_s()):
                _signal(fd, signal.SIGKILL)
                _exited(fd, limits.process_stop_grace_s)
    finally:
        for fd in fds:
            if fd is not None:
                os.close(fd)
    return [fd is not None for fd in fds]
