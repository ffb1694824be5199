"""The README's main command, `./scripts/run.sh`, run for real: Debian's ZooKeeper and a broker
process started by the launcher in a temporary cluster directory on a free port, the demo
topic created, five records produced and consumed back from offset 0, and the stop command it
prints stopping everything. The set-up step (apt, pip) is skipped: the checkout's .venv is
already installed when tests run. Every run is bounded in time; whatever the script started
is stopped by PID at the end, pass or fail."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.integration.zk_container import free_port
from zafka import cluster, zookeeper

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "run.sh"
RUN_TIMEOUT_S = 100.0
DEMO = (
    "user-1\tsigned up\n"
    "user-2\tsigned up\n"
    "user-1\tadded a book to the cart\n"
    "user-2\tadded a pen to the cart\n"
    "user-1\tchecked out\n"
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(4 * RUN_TIMEOUT_S),
    pytest.mark.skipif(
        not (REPO / ".venv" / "bin" / "zafka").exists(),
        reason="run.sh uses the checkout's .venv (scripts/setup.sh makes it)",
    ),
]


def run_main(cluster_dir: Path, zk_port: int, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ZAFKA_SKIP_SETUP": "1"}
    env.pop("ZAFKA_BOOTSTRAP", None)
    command = ["bash", str(SCRIPT), "--dir", str(cluster_dir), "--zk-port", str(zk_port)]
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S
    )


def recorded_pids(cluster_dir: Path) -> list[int]:
    try:
        state = json.loads((cluster_dir / "cluster.json").read_text())
    except FileNotFoundError:
        return []
    return [info["pid"] for info in state.values()]


def test_run_sh_streams_records_through_the_cluster_and_says_how_to_stop_it(tmp_path):
    cluster_dir, port = tmp_path / "cluster", free_port()
    pids: list[int] = []
    try:
        first = run_main(cluster_dir, port, cwd=REPO)
        pids = recorded_pids(cluster_dir)
        assert first.returncode == 0, first.stdout + first.stderr
        assert f"127.0.0.1:{port} answers ruok" in first.stdout
        assert "created topic zafka-demo" in first.stdout
        assert "produced 5 records to zafka-demo" in first.stderr
        assert DEMO in first.stdout and first.stdout.count("user-1\tsigned up") == 1
        assert "consumed 5 records" in first.stderr
        *_, said, stop = first.stdout.splitlines()
        assert said.endswith("Stop it with:")
        assert stop == f"    .venv/bin/zafka cluster down --dir {cluster_dir}"

        # Again, from another directory: the cluster and the topic are kept, the topic's
        # records (a log) are those of both runs, and the stop command says where to run it.
        again = run_main(cluster_dir, port, cwd=tmp_path)
        assert again.returncode == 0, again.stdout + again.stderr
        assert recorded_pids(cluster_dir) == pids  # the same processes
        assert "topic zafka-demo exists already" in again.stdout
        assert DEMO + DEMO in again.stdout
        assert "consumed 10 records" in again.stderr
        stop = again.stdout.splitlines()[-1].strip()
        assert stop == f"cd {REPO} && .venv/bin/zafka cluster down --dir {cluster_dir}"

        down = subprocess.run(
            stop, shell=True, cwd=tmp_path, capture_output=True, text=True, timeout=60
        )
        assert down.returncode == 0, down.stderr
        for name in ("broker-1", "zookeeper"):
            assert f"{name}: stopped" in down.stdout
    finally:
        pids = pids or recorded_pids(cluster_dir)
        cluster.stop_all(cluster_dir)  # by PID: a no-op once the printed command did it
    assert len(pids) == 2
    assert not any(cluster.is_running(pid, "") for pid in pids)
    assert not zookeeper.is_ok(port)
