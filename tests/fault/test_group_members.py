"""A consumer group of 3 member processes reading a replicated topic (RF=3) with commits,
one member killed (-9) and another paused past its session: the group goes on, every
record is read by a member at least once, and the committed offsets never go back; at the
end they reach the log end."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time

from tests.fault.cluster import PARTITIONS, PROCESS_WAIT_S, STATE_WAIT_S, TOPIC, FaultCluster
from tests.integration.broker_helpers import REPO, wait_until
from zafka.clients.admin import Admin
from zafka.errors import ZafkaError

GROUP = "readers"
SESSION_MS = 6000


def members(cluster: FaultCluster, count: int, seconds: float) -> list[subprocess.Popen]:
    procs = []
    for i in range(count):
        args = ["--bootstrap", cluster.bootstrap, "--topic", TOPIC, "--group", GROUP]
        args += ["--log", str(cluster.tmp / f"member-{i}.jsonl"), "--seconds", str(seconds)]
        args += ["--session-timeout-ms", str(SESSION_MS)]
        err = open(cluster.tmp / f"member-{i}.err", "w")  # noqa: SIM115
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "tests.fault.member", *args], cwd=REPO, stderr=err
            )
        )
    return procs


def committed(admin: Admin) -> dict[int, int]:
    return {o.partition: o.committed for o in admin.list_group_offsets(GROUP) if o.committed}


def test_a_group_with_a_killed_and_a_paused_member_reads_everything(cluster: FaultCluster):
    cluster.create({"min.insync.replicas": "2"})
    cluster.wait_in_sync()
    cluster.start_producers(count=1, seconds=25, rate=200)
    procs = members(cluster, 3, seconds=60)
    seen: list[dict[int, int]] = []
    try:
        with Admin(cluster.bootstrap) as admin:

            def all_in() -> bool:  # every member joined (so the faults hit members) and reads
                try:
                    joined = len(admin.describe_group(GROUP).members) == 3
                except ZafkaError:  # GROUP_ID_NOT_FOUND until the first member joins
                    return False
                return joined and len(committed(admin)) == PARTITIONS

            assert wait_until(all_in, STATE_WAIT_S)
            procs[0].kill()  # kill -9: its partitions move once its session expires
            os.kill(procs[1].pid, signal.SIGSTOP)
            paused_until = time.monotonic() + SESSION_MS / 1000 + 3
            while time.monotonic() < paused_until:  # the fault itself, sampled meanwhile
                seen.append(committed(admin))
                time.sleep(0.5)
            os.kill(procs[1].pid, signal.SIGCONT)
            cluster.wait_producers()
            ends = _ends(admin)

            def caught_up() -> bool:
                seen.append(committed(admin))
                return seen[-1] == ends

            assert wait_until(caught_up, STATE_WAIT_S), (seen[-1], ends)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(PROCESS_WAIT_S)
    for before, after in itertools.pairwise(seen):
        assert all(after.get(p, 0) >= o for p, o in before.items()), (before, after)
    read = set()
    for i in range(3):
        for line in (cluster.tmp / f"member-{i}.jsonl").read_text().splitlines():
            event = json.loads(line)
            if "offset" in event:
                read.add((event["partition"], event["offset"]))
    missing = [(p, o) for p, end in ends.items() for o in range(end) if (p, o) not in read]
    print(f"group: {len(read)} records read, {len(missing)} missing, commits sampled {len(seen)}")
    assert missing == []


def _ends(admin: Admin) -> dict[int, int]:
    return {o.partition: o.log_end for o in admin.list_group_offsets(GROUP)}
