"""The local cluster's ZooKeeper, run one of two ways (`zafka cluster up --zookeeper MODE`).

- `local` (the default): Debian's `zookeeper` package (scripts/setup.sh installs it), its
  QuorumPeerMain started as a child process, recorded by PID and stopped by signals.
- `container`: an image (`--zookeeper-image`, else $ZAFKA_ZK_IMAGE, else
  zafka/zookeeper:local, built by scripts/zk-image.sh; the official `zookeeper` image works
  too) run with the docker CLI, the way the integration tests run it: its entry point
  `zkServer.sh start-foreground CONFIG`, host networking only (no port is published: the
  server binds 127.0.0.1 itself, from the config). The cluster's `zookeeper/` directory is
  bind-mounted at the same path, so config and data are the same files as the local way's
  and outlive `down`; it runs as the calling user, so those files stay theirs. It carries the
  labels zafka.cluster=<cluster dir> and zafka.service=zookeeper and is recorded by its id;
  `down` stops and removes exactly that container (its output is appended to
  zookeeper/zookeeper.log first), and only if its label names this cluster.
- `auto`: local if installed, else a container.

Either way the config is `zookeeper.render_config` (127.0.0.1 only, no admin server) in
<dir>/zookeeper/zoo.cfg, and the server counts as started once it answers `ruok`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import BinaryIO

from zafka import limits, zookeeper
from zafka.cluster_processes import (
    LauncherError,
    ProcessInfo,
    free_port,
    is_running,
    load_state,
    record,
    save_state,
    spawn,
    stop_processes,
)

NAME = "zookeeper"
LOCAL, CONTAINER, AUTO = "local", "container", "auto"
MODES = (LOCAL, CONTAINER, AUTO)
ZOOKEEPER_MAIN = "org.apache.zookeeper.server.quorum.QuorumPeerMain"
# Debian's `zookeeper` package puts its jars in /usr/share/java and its logging config here.
DEFAULT_ZK_CLASSPATH = "/usr/share/java/*:/etc/zookeeper/conf"
CLUSTER_LABEL = "zafka.cluster"
SERVICE_LABEL = "zafka.service"
START_DOCKER = "start it with scripts/docker-engine.sh start"


# --- the local install ------------------------------------------------------------------------


def _classpath() -> str:
    return os.environ.get("ZAFKA_ZK_CLASSPATH", DEFAULT_ZK_CLASSPATH)


def installed_locally() -> bool:
    """Java and ZooKeeper's jars (Debian's package, or $ZAFKA_ZK_CLASSPATH) are here."""
    jar_dir = Path(_classpath().split(":")[0]).parent
    return shutil.which("java") is not None and any(jar_dir.glob("zookeeper*.jar"))


def _local_command(config: Path, log_dir: Path) -> list[str]:
    java = shutil.which("java") or "java"
    return [
        java,
        f"-Dzookeeper.log.dir={log_dir}",
        "-cp",
        _classpath(),
        ZOOKEEPER_MAIN,
        str(config),
    ]


def _run_local(
    root: Path, zk_dir: Path, config: Path, port: int
) -> tuple[ProcessInfo, Callable[[], bool]]:
    """Start the local install's server as a child process; record it."""
    log = zk_dir / "zookeeper.log"
    proc = spawn(_local_command(config, zk_dir), log)
    info = ProcessInfo(NAME, proc.pid, port, str(log), ZOOKEEPER_MAIN)
    record(root, info)
    return info, lambda: proc.poll() is None


# --- the container, through the docker CLI ------------------------------------------------------


def _docker(
    *args: str, timeout_s: float = limits.docker_call_timeout_s, output: BinaryIO | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `docker ARGS` (bounded), its output captured, or written to `output` if given."""
    docker = shutil.which("docker")
    if docker is None:
        raise LauncherError(f"Docker is not installed (no `docker` command): {START_DOCKER}")
    streams = {"stdout": output, "stderr": subprocess.STDOUT} if output else {}
    try:
        return subprocess.run(
            [docker, *args],
            capture_output=output is None,
            text=output is None,
            timeout=timeout_s,
            check=False,
            **streams,
        )
    except subprocess.TimeoutExpired:
        raise LauncherError(
            f"`docker {args[0]}` did not answer within {timeout_s:.0f}s: is Docker running? "
            f"{START_DOCKER}"
        ) from None


def _reason(result: subprocess.CompletedProcess[str]) -> str:
    lines = (result.stderr or result.stdout).strip().splitlines()
    return lines[-1] if lines else f"exit code {result.returncode}"


def check_docker() -> None:
    """LauncherError saying how to start Docker unless its engine answers."""
    result = _docker("version", "--format", "{{.Server.Version}}")
    if result.returncode != 0 or not result.stdout.strip():
        raise LauncherError(f"Docker is not running ({_reason(result)}): {START_DOCKER}")


def check_image(image: str) -> None:
    """LauncherError saying how to get `image` unless Docker has it."""
    if _docker("image", "inspect", "--format", "{{.Id}}", image).returncode == 0:
        return
    if image == zookeeper.DEFAULT_IMAGE:
        how = "build it with scripts/zk-image.sh"
    else:  # scripts/zk-image.sh pulls any other name
        how = f"get it with `{zookeeper.IMAGE_ENV}={image} scripts/zk-image.sh` (it pulls it)"
    raise LauncherError(f"the ZooKeeper image {image} is not in Docker: {how}")


def _inspect(container_id: str) -> dict | None:
    """The container's `docker inspect` record, None if there is none (or Docker is down)."""
    result = _docker("inspect", "--type", "container", container_id)
    try:
        found = json.loads(result.stdout) if result.returncode == 0 else None
    except ValueError:
        return None
    return found[0] if isinstance(found, list) and found else None


def _ours(details: dict | None, info: ProcessInfo) -> bool:
    """It exists and its cluster label is the one recorded (the marker): ours to stop."""
    labels = (details or {}).get("Config", {}).get("Labels") or {}
    return details is not None and labels.get(CLUSTER_LABEL) == info.marker


def _container_running(info: ProcessInfo) -> bool:
    try:
        details = _inspect(info.container)
    except LauncherError:  # no Docker: nothing of it runs
        return False
    return _ours(details, info) and bool(details and details["State"]["Running"])


def _run_container(
    root: Path, zk_dir: Path, config: Path, port: int, image: str
) -> tuple[ProcessInfo, Callable[[], bool]]:
    """Create and start the container (removed again if it does not start); record it."""
    entry_point, *arguments = zookeeper.foreground_command(str(config))
    created = _docker(
        *("create", "--network", "host", "--user", f"{os.getuid()}:{os.getgid()}"),
        *("--label", f"{CLUSTER_LABEL}={root}", "--label", f"{SERVICE_LABEL}={NAME}"),
        *("--volume", f"{zk_dir}:{zk_dir}", "--env", "JMXDISABLE=true"),  # no JMX agent
        *("--entrypoint", entry_point, image, *arguments),
    )
    if created.returncode != 0:
        raise LauncherError(f"Docker could not create a container of {image}: {_reason(created)}")
    log = str(zk_dir / "zookeeper.log")
    info = ProcessInfo(NAME, 0, port, log, str(root), created.stdout.strip(), image)
    record(root, info)  # from now on `down` removes it, whatever happens here
    started = _docker("start", info.container)
    if started.returncode != 0:
        if _docker("rm", "--force", info.container).returncode == 0:
            save_state(root, {n: i for n, i in load_state(root).items() if n != NAME})
        raise LauncherError(
            f"the container of {image} did not start: {_reason(started)} (a ZooKeeper image "
            f"must run `{' '.join(zookeeper.foreground_command('CONFIG'))}`)"
        )
    details = _inspect(info.container) or {}
    info = replace(info, pid=int(details.get("State", {}).get("Pid", 0)))
    record(root, info)
    return info, lambda: _container_running(info)


def _remove_container(info: ProcessInfo) -> bool:
    """Stop (SIGTERM, SIGKILL after the grace period) and remove the recorded container if
    it is ours, its output appended to its log first; whether it was running. LauncherError
    when Docker does not answer (the container is still there: `down` must run again)."""
    check_docker()
    details = _inspect(info.container)
    if not _ours(details, info):
        return False  # removed meanwhile (or, never, someone else's: left alone)
    grace_s = limits.process_stop_grace_s
    _docker(
        "stop",
        "-t",
        str(int(grace_s)),
        info.container,
        timeout_s=grace_s + limits.docker_call_timeout_s,
    )
    with open(info.log, "ab") as log:
        log.write(f"--- output of container {info.container} ({info.image}) ---\n".encode())
        log.flush()
        _docker("logs", info.container, output=log)
    removed = _docker("rm", "--force", info.container)
    if removed.returncode != 0:
        raise LauncherError(f"container {info.container[:12]} not removed: {_reason(removed)}")
    return bool(details and details["State"]["Running"])


# --- either way -------------------------------------------------------------------------------


def mode_of(info: ProcessInfo) -> str:
    return CONTAINER if info.container else LOCAL


def is_alive(info: ProcessInfo) -> bool:
    """Its process runs (local) or its container runs (container)."""
    if info.container:
        return _container_running(info)
    return is_running(info.pid, info.marker)


def stop(info: ProcessInfo) -> bool:
    """Stop it (a container is also removed); whether it was running."""
    if info.container:
        return _remove_container(info)
    return stop_processes([info])[0]


def resolve_mode(mode: str, image: str) -> str:
    """`local` or `container`, checked: LauncherError saying what to do if it cannot run."""
    if mode not in MODES:
        raise LauncherError(f"--zookeeper must be one of {', '.join(MODES)}, got {mode!r}")
    if mode != CONTAINER and installed_locally():
        return LOCAL
    if mode == LOCAL:
        raise LauncherError(
            "ZooKeeper is not installed here. Run scripts/setup.sh (it installs Debian's "
            "`zookeeper` package), or set ZAFKA_ZK_CLASSPATH to your ZooKeeper jars, or run "
            "it in a container: --zookeeper container."
        )
    try:
        check_docker()
        check_image(image)
    except LauncherError as err:
        if mode == AUTO:
            raise LauncherError(
                "ZooKeeper is not installed here (scripts/setup.sh installs it) and cannot "
                f"run in a container: {err}"
            ) from None
        raise
    return CONTAINER


def running(root: Path) -> ProcessInfo | None:
    """The ZooKeeper recorded under `root` if it runs."""
    current = load_state(root).get(NAME)
    return current if current and is_alive(current) else None


def start_zookeeper(
    root: Path, port: int, mode: str | None = None, image: str | None = None
) -> ProcessInfo:
    """Start ZooKeeper on 127.0.0.1:port (0: a free port) under `root` the way `mode` says
    (None: local), wait until it answers `ruok`. One already running for this cluster is
    kept (LauncherError if it runs another way than an explicit local or container)."""
    image = image or zookeeper.image_name()
    current = load_state(root).get(NAME)
    if current and is_alive(current):
        if mode not in (None, AUTO, mode_of(current)):
            raise LauncherError(
                f"this cluster's ZooKeeper already runs ({current.identity()}): stop the "
                f"cluster with `zafka cluster down` first to run it with --zookeeper {mode}"
            )
        return current
    mode = mode or LOCAL
    port = port or free_port()
    if zookeeper.four_letter_word(port, "srvr"):
        raise LauncherError(
            f"port {port} on 127.0.0.1 is already taken by another server; "
            "stop it or choose another port with --zk-port"
        )
    mode = resolve_mode(mode, image)
    if current and current.container:  # an exited container of an earlier run: remove it
        stop(current)
    zk_dir = root / NAME
    (zk_dir / "data").mkdir(parents=True, exist_ok=True)
    config = zk_dir / "zoo.cfg"
    config.write_text(zookeeper.render_config(client_port=port, data_dir=str(zk_dir / "data")))
    if mode == CONTAINER:
        info, still_starting = _run_container(root, zk_dir, config, port, image)
    else:
        info, still_starting = _run_local(root, zk_dir, config, port)
    if not zookeeper.wait_until_ok(port, limits.zookeeper_start_timeout_s, still_starting):
        stop(info)
        raise LauncherError(f"ZooKeeper did not become ready; see its log: {info.log}")
    return info
