"""Running a standalone ZooKeeper server: its config file, how an image runs it, its probe.

Used by the local cluster launcher (both ways: a local install and a container) and by the
integration tests' container, so all run ZooKeeper the same way. Kafka clients never talk to
ZooKeeper; brokers do.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping

from zafka import clock, limits

IMAGE_ENV = "ZAFKA_ZK_IMAGE"
# Built from Debian packages by scripts/zk-image.sh (no registry needed). The official
# `zookeeper` image works the same way: both run `zkServer.sh start-foreground CONFIG_FILE`.
DEFAULT_IMAGE = "zafka/zookeeper:local"


def image_name(env: Mapping[str, str] = os.environ) -> str:
    """The ZooKeeper image to run: $ZAFKA_ZK_IMAGE, else zafka/zookeeper:local."""
    return env.get(IMAGE_ENV) or DEFAULT_IMAGE


def foreground_command(config_path: str) -> list[str]:
    """What a ZooKeeper image runs to serve `config_path` in the foreground (its main
    process): the official image's entry point, which scripts/zk-image.sh's image copies."""
    return ["zkServer.sh", "start-foreground", config_path]


def render_config(*, client_port: int, data_dir: str, tick_ms: int = 2000) -> str:
    """A standalone zoo.cfg bound to 127.0.0.1 only, with `ruok` and `srvr` allowed.

    Session timeouts are bounded by the server to [2, 20] x tick_ms.
    """
    return "\n".join(
        [
            f"tickTime={tick_ms}",
            f"dataDir={data_dir}",
            f"clientPort={client_port}",
            "clientPortAddress=127.0.0.1",
            "admin.enableServer=false",
            "4lw.commands.whitelist=ruok,srvr",
            "maxClientCnxns=0",
            "",
        ]
    )


def four_letter_word(port: int, word: str, host: str = "127.0.0.1") -> str:
    """Send a four-letter command (`ruok`, `srvr`) and return the reply ('' if unreachable)."""
    try:
        with socket.create_connection((host, port), timeout=limits.zookeeper_probe_timeout_s) as s:
            s.sendall(word.encode("ascii"))
            chunks: list[bytes] = []
            received = 0
            while received < limits.four_letter_reply_bytes_max:
                chunk = s.recv(4096)
                if not chunk:
                    break
                chunks.append(chunk)
                received += len(chunk)
    except OSError:
        return ""
    return b"".join(chunks).decode("utf-8", "replace")


def is_ok(port: int, host: str = "127.0.0.1") -> bool:
    """True when the server at host:port answers `ruok` with `imok`."""
    return four_letter_word(port, "ruok", host) == "imok"


def wait_until_ok(port: int, timeout_s: float, still_starting=lambda: True) -> bool:
    """Poll `ruok` until it answers (True) or `timeout_s` passes or `still_starting()` is False.

    ZooKeeper announces readiness only by answering, so polling it is the event we can await.
    """
    deadline = clock.monotonic_s() + timeout_s
    while clock.monotonic_s() < deadline and still_starting():
        if is_ok(port):
            return True
        time.sleep(0.1)
    return is_ok(port)
