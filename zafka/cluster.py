"""The local cluster launcher: starts, checks and stops zafka's processes on this machine.

State lives in one directory (default `.zafka/`): each process gets a subdirectory with its
config, data and log, and `cluster.json` records what was started (PID, port) so that
`down` and `status` work from another shell. Only 127.0.0.1 is ever bound.
This issue's cluster is ZooKeeper alone; brokers join it when they exist.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from zafka import limits, zookeeper

ZOOKEEPER_MAIN = "org.apache.zookeeper.server.quorum.QuorumPeerMain"
# Debian's `zookeeper` package puts its jars in /usr/share/java and its logging config here.
DEFAULT_ZK_CLASSPATH = "/usr/share/java/*:/etc/zookeeper/conf"


class LauncherError(Exception):
    """Something the user can fix; the message says how."""


@dataclass(frozen=True)
class ProcessInfo:
    name: str
    pid: int
    port: int
    log: str
    marker: str  # a string in its command line, so a reused PID is never signalled


def _state_file(root: Path) -> Path:
    return root / "cluster.json"


def _load_state(root: Path) -> dict[str, ProcessInfo]:
    path = _state_file(root)
    if not path.exists():
        return {}
    raw = json.loads(path.read_text())
    return {name: ProcessInfo(**info) for name, info in raw.items()}


def _save_state(root: Path, state: dict[str, ProcessInfo]) -> None:
    tmp = _state_file(root).with_suffix(".tmp")
    tmp.write_text(json.dumps({n: vars(p) for n, p in state.items()}, indent=2))
    tmp.replace(_state_file(root))


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


def _zookeeper_command(config: Path, log_dir: Path) -> list[str]:
    java = shutil.which("java")
    classpath = os.environ.get("ZAFKA_ZK_CLASSPATH", DEFAULT_ZK_CLASSPATH)
    jar_dir = Path(classpath.split(":")[0]).parent
    if java is None or not any(jar_dir.glob("zookeeper*.jar")):
        raise LauncherError(
            "ZooKeeper is not installed here. Run scripts/setup.sh (it installs Debian's "
            "`zookeeper` package), or set ZAFKA_ZK_CLASSPATH to your ZooKeeper jars."
        )
    return [java, f"-Dzookeeper.log.dir={log_dir}", "-cp", classpath, ZOOKEEPER_MAIN, str(config)]


def start_zookeeper(root: Path, port: int) -> ProcessInfo:
    """Start ZooKeeper on 127.0.0.1:port under `root`, wait until it answers `ruok`."""
    state = _load_state(root)
    current = state.get("zookeeper")
    if current and is_running(current.pid, current.marker):
        return current
    if zookeeper.four_letter_word(port, "srvr"):
        raise LauncherError(
            f"port {port} on 127.0.0.1 is already taken by another server; "
            "stop it or choose another port with --zk-port"
        )
    zk_dir = root / "zookeeper"
    (zk_dir / "data").mkdir(parents=True, exist_ok=True)
    config = zk_dir / "zoo.cfg"
    config.write_text(zookeeper.render_config(client_port=port, data_dir=str(zk_dir / "data")))
    log = zk_dir / "zookeeper.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            _zookeeper_command(config, zk_dir),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # survives this shell; `cluster down` stops it by PID
        )
    info = ProcessInfo("zookeeper", proc.pid, port, str(log), ZOOKEEPER_MAIN)
    state["zookeeper"] = info
    _save_state(root, state)
    ready = zookeeper.wait_until_ok(
        port, limits.zookeeper_start_timeout_s, still_starting=lambda: proc.poll() is None
    )
    if not ready:
        stop_process(info)
        raise LauncherError(f"ZooKeeper did not become ready; see its log: {log}")
    return info


def stop_process(info: ProcessInfo) -> bool:
    """SIGTERM, then SIGKILL after the grace period. Returns False if it was not running."""
    if not is_running(info.pid, info.marker):
        return False
    os.kill(info.pid, signal.SIGTERM)
    deadline = time.monotonic() + limits.process_stop_grace_s
    while time.monotonic() < deadline and is_running(info.pid, info.marker):
        time.sleep(0.05)
    if is_running(info.pid, info.marker):
        os.kill(info.pid, signal.SIGKILL)
    return True


def stop_all(root: Path) -> list[tuple[ProcessInfo, bool]]:
    """Stop every process recorded under `root`; returns each with whether it was running."""
    results = [(info, stop_process(info)) for info in _load_state(root).values()]
    _save_state(root, {})
    return results


def describe(root: Path) -> list[tuple[ProcessInfo, bool, bool]]:
    """Each recorded process with (running, answering its health probe)."""
    return [
        (info, is_running(info.pid, info.marker), zookeeper.is_ok(info.port))
        for info in _load_state(root).values()
    ]
