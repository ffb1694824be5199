"""A real ZooKeeper in a container started through testcontainers, with fault helpers.

The container uses host networking and binds 127.0.0.1 on a free port. The image comes from
ZAFKA_ZK_IMAGE (default `zafka/zookeeper:local`, built by scripts/zk-image.sh from Debian
packages; the official `zookeeper` image works too: both run `zkServer.sh start-foreground`).
"""

from __future__ import annotations

import os
import shlex
import socket

os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")  # no registry for Ryuk's image

from testcontainers.core.container import DockerContainer

from zafka import zookeeper

IMAGE = zookeeper.image_name()
CONFIG_PATH = "/tmp/zafka-zoo.cfg"
# A short tick lets tests use short sessions: the server accepts 2..20 ticks (0.4..4 s).
TICK_MS = 200
READY_TIMEOUT_S = 60.0
DATA_DIR = "/tmp/zafka-zk-data"
# scripts/test.sh removes containers carrying its run id if a test run dies before cleanup.
RUN_ID = os.environ.get("ZAFKA_TEST_RUN_ID", "manual")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ZooKeeperContainer:
    """One ZooKeeper server; `hosts` is its kazoo connect string (without chroot)."""

    def __init__(self, image: str = IMAGE) -> None:
        self.port = free_port()
        config = zookeeper.render_config(client_port=self.port, data_dir=DATA_DIR, tick_ms=TICK_MS)
        serve = shlex.join(zookeeper.foreground_command(CONFIG_PATH))
        script = (
            f"mkdir -p {DATA_DIR} && printf '%s' {shlex.quote(config)} > {CONFIG_PATH}"
            f" && exec {serve}"
        )
        self._container = (
            DockerContainer(image)
            .with_kwargs(network_mode="host", labels={"zafka.test-run": RUN_ID})
            .with_command(["sh", "-c", script])
        )

    @property
    def hosts(self) -> str:
        return f"127.0.0.1:{self.port}"

    def describe(self) -> str:
        container_id = self._container.get_container_id()[:12]
        return f"{self.hosts} in container {container_id} ({IMAGE}, started by testcontainers)"

    def start(self) -> None:
        self._container.start()
        self._wait_ready()

    def remove(self) -> None:
        self._container.stop()

    def stop(self) -> None:
        """Stop the server (its data stays in the container) until `restart`."""
        self._container.get_wrapped_container().stop(timeout=10)

    def restart(self) -> None:
        self._container.get_wrapped_container().start()
        self._wait_ready()

    def pause(self) -> None:
        """Freeze the server: connections stay open but nothing is answered."""
        self._container.get_wrapped_container().pause()

    def unpause(self) -> None:
        self._container.get_wrapped_container().unpause()
        self._wait_ready()

    def _wait_ready(self) -> None:
        if not zookeeper.wait_until_ok(self.port, READY_TIMEOUT_S):
            logs = b"".join(self._container.get_logs()).decode("utf-8", "replace")
            raise RuntimeError(f"ZooKeeper ({IMAGE}) did not answer ruok on {self.hosts}:\n{logs}")
