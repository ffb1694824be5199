"""Helpers for the CLI's integration tests: run `zafka ...` as a subprocess (bounded, in a
directory of the test's choosing, with or without $ZAFKA_BOOTSTRAP), and read a partition
back with the client core alone (no Consumer), so produce is checked independently."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.integration.broker_helpers import REPO
from tests.integration.clients.helpers import bare_client, records_in
from zafka.clients.io import CLIENT_ACTOR, ClientActor, ClientIO, result
from zafka.storage.records import Record
from zafka.transport.client import FetchRequest, FetchResponse
from zafka.transport.names import broker_node, partition_actor_name

RUN_TIMEOUT_S = 60.0
READ_TIMEOUT_S = 15.0
BROKER_ID = 1  # the `bootstrap` fixture's broker


def zafka(
    *argv: str,
    cwd: Path,
    bootstrap: str | None = None,
    env_bootstrap: str | None = None,
    stdin: bytes | None = None,
    timeout_s: float = RUN_TIMEOUT_S,
) -> subprocess.CompletedProcess[str]:
    """`python -m zafka.cli *argv` (plus `--bootstrap` if given); text output, bounded."""
    env = {k: v for k, v in os.environ.items() if k != "ZAFKA_BOOTSTRAP"}
    env["PYTHONPATH"] = str(REPO)
    if env_bootstrap is not None:
        env["ZAFKA_BOOTSTRAP"] = env_bootstrap
    args = [sys.executable, "-m", "zafka.cli", *argv]
    if bootstrap is not None:
        args += ["--bootstrap", bootstrap]
    done = subprocess.run(
        args,
        cwd=cwd,
        env=env,
        input=stdin if stdin is not None else b"",
        capture_output=True,
        timeout=timeout_s,
    )
    return subprocess.CompletedProcess(
        done.args,
        done.returncode,
        done.stdout.decode(errors="backslashreplace"),
        done.stderr.decode(errors="backslashreplace"),
    )


def read_partition(bootstrap: str, topic: str, partition: int, count: int) -> list[Record]:
    """The first `count` records of the partition (fewer if they do not arrive within
    READ_TIMEOUT_S), fetched with long polls from the broker's partition actor."""
    target = f"{broker_node(BROKER_ID)}/{partition_actor_name(topic, partition)}"
    records: list[Record] = []
    deadline = time.monotonic() + READ_TIMEOUT_S
    with bare_client(bootstrap, "test-reader") as io:
        # Learn the broker's node name first: fetches go to it, not to the bootstrap link.
        result(io.submit(lambda f: _actor(io).fetch_cluster((), f)), READ_TIMEOUT_S)
        while len(records) < count and time.monotonic() < deadline:
            offset = records[-1].offset + 1 if records else 0
            request = FetchRequest(topic, partition, offset, 1 << 20, 500, 1)
            response: FetchResponse = result(
                io.submit(lambda f, r=request: _actor(io).request(target, r, f)), READ_TIMEOUT_S
            )
            assert response.error_code == 0, response
            records += [r for r in records_in(bytes(response.records)) if r.offset >= offset]
    return records[:count]


def _actor(io: ClientIO) -> ClientActor:
    actor = io.runtime.actor(CLIENT_ACTOR)
    assert isinstance(actor, ClientActor)
    return actor
