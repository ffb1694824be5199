"""A consumer group's rebalance when a member joins: how long until every partition is consumed
again, and whether the partitions that do not move keep flowing meanwhile.

The script starts, on 127.0.0.1 and free ports, with all their files in one temporary
directory, ZooKeeper (the local launcher's `start_zookeeper`, zafka/cluster_zk.py) and one
broker (`zafka broker`, as the launcher starts it, plus `--group-heartbeat-interval-ms 300`),
recorded in the launcher's state file so that `cluster.stop_all` stops them by PID at the end,
also on errors. Then:

1. a topic of 12 partitions, and a producer process (benchmarks/rebalance_procs.py
   `produce`: a Producer, acks=1) sending --rate records/s (default 2000), 100-byte values,
   record i to partition i % 12 (a steady stream on each), the send time
   (time.monotonic_ns) in each value's first 8 bytes;
2. four members of one group, each a process of its own (rebalance_procs.py `member`: a
   Consumer at its defaults, auto-commit on, subscribed to the topic, session timeout
   --session-ms), report their callbacks and a per-partition summary of every poll() as
   JSON lines (times on CLOCK_MONOTONIC, one clock for all processes of the machine). All
   four start at once, and three join;
3. once the three own all 12 partitions (one owner each, by their callbacks) and each
   partition has been consumed by its owner, the stream runs --settle-s (default 2) plus
   --window-s (default 3) seconds steady;
4. the 4th member, started and idle since step 2, joins: T0 is the moment it reports just
   before constructing its Consumer (which finds the coordinator and sends the JoinGroup at
   once);
5. the run goes on until at least W (below) plus --tail-s (default 1) seconds after T0 and
   until every partition is consumed again (bounded by --timeout-s), then everything stops.
   While the windows run, the bench only sleeps (and reads the processes' reports): it looks
   at the figures only after the window during, so both windows see the same load.

Definitions (every time is when a member's poll() returned, or a callback ran):

- final owner of a partition: the member owning it at the end, by the callbacks
  (assigned adds, revoked and lost remove); each partition must have exactly one, and the 4th
  member at least one. Owner before: the member owning it at T0.
- `rebalance_s`: T1 - T0, where T1 is the first moment by which, for every partition, its
  final owner's poll() has handed out a record of it that was sent at or after T0. (A
  partition that does not move reaches this within milliseconds; one that moves only once
  its old owner revoked it and committed, the coordinator gave it to the 4th member, and
  the 4th fetched it.) Target <= 1.0 s with a 300 ms heartbeat.
- `moved_partitions`: partitions whose final owner is not their owner before (the minimum
  is 3: the 4th member's share of 12).
- gap: the time between two consecutive polls that handed out records of a partition (by
  whichever member); a window's gaps are those that overlap it (a gap still open when the run
  ended counts up to that end). W = max(--window-s, rebalance_s); the window "during" is
  [T0, T0 + W] and the equal window "before" [T0 - W, T0]. (A rebalance longer than
  --window-s stretches both; past --settle-s + --window-s the window before would reach the
  group's first convergence: `window_s` shows W.)
- `unaffected_stall_ratio`: the longest gap during, over the partitions that did not move,
  divided by the longest gap before on the same partitions. Target <= 2.0.

Output: `name=value` lines: the three figures above; the longest gaps in ms (`gap_before_ms`
and `gap_during_ms` over the unmoved partitions, `moved_gap_ms` over the moved ones: their
stall); the partitions (`moved`, `unmoved`) and each one's longest gap (`gaps_before_ms` and
`gaps_during_ms` in the order of `unmoved`, `moved_gaps_ms` during, in the order of `moved`);
milestones in ms after T0: `new_joined_ms` (the 4th member's join answered: it has a member
epoch), `old_told_ms` (each time a heartbeat answer took partitions from an old member's
target), `revoked_ms` (the old members' revoked callbacks), `new_told_ms` (the 4th member's
target complete), `new_assigned_ms` (its last assigned callback: committed offsets fetched;
fetching starts after it); `window_s` (W); records: `records_read` (distinct),
`records_missing` (offsets skipped below the highest read), `records_read_again` (read more
than once: at-least-once), `records_sent` (until the producer stopped, after the members:
more than were read); then the inputs (rate, partitions, members,
heartbeat interval, session timeout, settle time). `--events-out FILE` keeps every member's
events as JSON.

Needs ZooKeeper as scripts/setup.sh installs it.

    .venv/bin/python benchmarks/rebalance_bench.py [--rate R] [--window-s S] [--settle-s S]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

try:
    import zafka  # noqa: F401
except ImportError:  # run from a checkout without an install
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

sys.path.insert(0, str(Path(__file__).resolve().parent))
import rebalance_report as report

from zafka import cluster
from zafka.benchrun import ensure_topic
from zafka.cluster_processes import ProcessInfo, free_port, record, spawn

TOPIC = "rebalance-bench"
GROUP = "rebalance-bench"
PARTITIONS = 12
MEMBERS_BEFORE = 3
NEWCOMER = f"m{MEMBERS_BEFORE + 1}"
HEARTBEAT_MS = 300
READY_TIMEOUT_S = 30.0  # broker start, process start, the first convergence
STOP_TIMEOUT_S = 15.0  # a process's close (the producer's flush: 10 s), then each signal
CHECK_S = 0.1  # how often the run looks at what the processes reported
PROCS = Path(__file__).resolve().parent / "rebalance_procs.py"


class SetupError(Exception):
    """Something missing or not starting; the message says what."""


def note(text: str) -> None:
    """Progress on stderr (stdout holds only the figures)."""
    print(f"rebalance_bench.py: {text}", file=sys.stderr, flush=True)


# --- the servers ------------------------------------------------------------------------------


def start_broker(root: Path, zk_port: int) -> str:
    """Broker 1 as the launcher starts it, plus the group heartbeat interval; recorded in the
    launcher's state (so `cluster.stop_all` stops it by PID); waits for its ready line.
    The bootstrap "127.0.0.1:PORT"."""
    name, port = "broker-1", free_port()
    data_dir, log = root / name / "data", root / name / "broker.log"
    data_dir.mkdir(parents=True)
    command = [sys.executable, "-m", "zafka.cli", "broker", "--id", "1"]
    command += ["--zookeeper", f"127.0.0.1:{zk_port}", "--listen", f"tcp://127.0.0.1:{port}"]
    command += ["--data-dir", str(data_dir), "--auto-create-topics"]
    command += ["--group-heartbeat-interval-ms", str(HEARTBEAT_MS)]
    proc = spawn(command, log)
    record(root, ProcessInfo(name, proc.pid, port, str(log), str(data_dir)))
    ready = f"broker 1 ready at tcp://127.0.0.1:{port}"
    deadline = time.monotonic() + READY_TIMEOUT_S
    while ready not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SetupError(f"the broker did not start; see its log: {log}")
        time.sleep(0.05)
    return f"127.0.0.1:{port}"


# --- the member and producer processes --------------------------------------------------------


class Proc:
    """A rebalance_procs.py process (`member` or `produce`) and every event it reported."""

    def __init__(self, name: str, args: list[str], log_dir: Path) -> None:
        self.name = name
        self.log = log_dir / f"{name}.log"
        self.events: list[dict] = []
        self.error: str | None = None
        self._lock = threading.Lock()
        with open(self.log, "w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, str(PROCS), *args],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
            )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            event = json.loads(line)
            with self._lock:
                self.events.append(event)
                if event["e"] == "error":
                    self.error = event["error"]

    def snapshot(self) -> list[dict]:
        with self._lock:
            return list(self.events)

    def first(self, kind: str) -> dict | None:
        with self._lock:
            return next((e for e in self.events if e["e"] == kind), None)

    def check(self) -> None:
        """SetupError if the process ended or reported an error."""
        if self.error is not None or self.proc.poll() is not None:
            detail = self.error or f"exit code {self.proc.returncode}"
            raise SetupError(f"{self.name} failed ({detail}); see {self.log}")

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def close(self) -> None:
        """Ask it to finish (a member closes its consumer, the producer flushes) and exit."""
        with contextlib.suppress(OSError):
            self.send("close")

    def stop(self) -> None:
        """After `close`: wait, then SIGTERM and SIGKILL by its PID if it lingers."""
        for stop in (None, self.proc.terminate, self.proc.kill):
            if stop is not None:
                stop()
            try:
                self.proc.wait(STOP_TIMEOUT_S)
                return
            except subprocess.TimeoutExpired:
                continue


# --- the run ----------------------------------------------------------------------------------


def wait_for(what: str, check, procs: list[Proc], timeout_s: float):
    """Poll `check()` until it returns something (not None); SetupError after `timeout_s`
    or as soon as one of `procs` failed."""
    deadline = time.monotonic() + timeout_s
    while (found := check()) is None:
        for proc in procs:
            proc.check()
        if time.monotonic() > deadline:
            raise SetupError(f"not within {timeout_s:g} s: {what}")
        time.sleep(CHECK_S)
    return found


def pause(seconds: float, procs: list[Proc]) -> None:
    """Sleep, checking that every process still runs; nothing else (the bench stays idle in
    both windows alike)."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        for proc in procs:
            proc.check()
        time.sleep(min(CHECK_S, left))


def events(members: list[Proc]) -> report.Events:
    return {m.name: m.snapshot() for m in members}


def run_group(args: argparse.Namespace, bootstrap: str, workdir: Path) -> dict:
    """The stream and the members; what the members reported, T0, when observation ended
    and the producer's counts."""
    session = str(args.session_ms)
    names = [f"m{i + 1}" for i in range(MEMBERS_BEFORE + 1)]
    procs: list[Proc] = []
    try:
        for name in names:
            procs.append(Proc(name, ["member", bootstrap, GROUP, TOPIC, session], workdir))
        members, newcomer = procs[:], procs[-1]
        rate = str(args.rate)
        procs.append(
            Proc("producer", ["produce", bootstrap, TOPIC, str(PARTITIONS), rate], workdir)
        )
        wait_for(
            "processes ready",
            lambda: all(p.first("ready") for p in procs) or None,
            procs,
            READY_TIMEOUT_S,
        )
        for m in members[:MEMBERS_BEFORE]:
            m.send("join")
        note(f"{MEMBERS_BEFORE} members joining, {args.rate:g} records/s")
        wait_for(
            f"the first {MEMBERS_BEFORE} own and consume every partition",
            lambda: report.steady(events(members[:-1]), PARTITIONS) or None,
            procs,
            READY_TIMEOUT_S,
        )
        note(f"steady; the 4th joins in {args.settle_s + args.window_s:g} s")
        pause(args.settle_s + args.window_s, procs)
        newcomer.send("join")
        t0 = wait_for("the 4th member's join", lambda: newcomer.first("joining"), procs, 10)["t"]
        pause(args.window_s + args.tail_s - (time.monotonic() - t0), procs)
        done = wait_for(
            "every partition consumed again after the join",
            lambda: report.consumed_again(events(members), PARTITIONS, t0),
            procs,
            args.timeout_s,
        )
        rebalance_s = max(done.values()) - t0
        pause(t0 + rebalance_s + args.tail_s - time.monotonic(), procs)
        observed_until = time.monotonic()
        reported = events(members)
    finally:
        for p in procs:
            p.close()
        for p in procs:
            p.stop()
    produced = procs[-1].first("done") or {"sent": "?", "errors": 1, "error": "no report"}
    if produced["errors"]:
        raise SetupError(f"{produced['errors']} sends failed: {produced['error']}")
    return {
        "events": reported,
        "t0": t0,
        "observed_until": observed_until,
        "sent": produced["sent"],
    }


def figures(args: argparse.Namespace, run: dict) -> list[tuple[str, object]]:
    """The measured figures, then the inputs."""
    try:
        measured = report.figures(
            run["events"], PARTITIONS, NEWCOMER, run["t0"], run["observed_until"], args.window_s
        )
    except report.ReportError as err:
        raise SetupError(str(err)) from None
    return [
        *measured,
        ("records_sent", run["sent"]),
        ("rate", args.rate),
        ("partitions", PARTITIONS),
        ("members", f"{MEMBERS_BEFORE}+1"),
        ("heartbeat_interval_ms", HEARTBEAT_MS),
        ("session_timeout_ms", args.session_ms),
        ("settle_s", args.settle_s),
    ]


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds: every process started gets stopped


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("--rate", type=float, default=2000.0, help="records/s into the topic (default: 2000)")
    add("--window-s", type=float, default=3.0, help="the windows compared (default: 3)")
    add("--settle-s", type=float, default=2.0, help="steady time before them (default: 2)")
    add("--tail-s", type=float, default=1.0, help="observed after the window (default: 1)")
    add("--session-ms", type=int, default=10_000, help="members' session timeout (default: 10000)")
    add(
        "--timeout-s",
        type=float,
        default=30.0,
        help="the longest the rebalance may take (default: 30)",
    )
    add("--events-out", metavar="FILE", help="write every member's reported events there (JSON)")
    args = parser.parse_args(argv)
    if min(args.rate, args.window_s, args.settle_s, args.tail_s, args.timeout_s) <= 0:
        parser.error("--rate, --window-s, --settle-s, --tail-s and --timeout-s must be positive")
    if args.session_ms <= HEARTBEAT_MS:
        parser.error(f"--session-ms must be longer than the heartbeat interval ({HEARTBEAT_MS})")
    return args


def measure(args: argparse.Namespace, workdir: Path) -> list[tuple[str, object]]:
    """ZooKeeper, the broker, the group; stopped by PID whatever happens."""
    try:
        zookeeper = cluster.start_zookeeper(workdir, free_port())
        bootstrap = start_broker(workdir, zookeeper.port)
        ensure_topic(bootstrap, TOPIC, PARTITIONS)
        run = run_group(args, bootstrap, workdir)
        if args.events_out:
            Path(args.events_out).write_text(json.dumps(run))
    except cluster.LauncherError as err:
        raise SetupError(str(err)) from None
    finally:
        cluster.stop_all(workdir)  # the broker, then ZooKeeper, by the PIDs recorded
    return figures(args, run)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    workdir = Path(tempfile.mkdtemp(prefix="zafka-rebalance-"))
    try:
        results = measure(args, workdir)
    except BaseException as err:
        note(f"failed; the processes' files and logs are in {workdir}")
        if isinstance(err, SetupError):
            note(str(err))
            return 2
        raise
    shutil.rmtree(workdir, ignore_errors=True)
    for name, value in results:
        print(f"{name}={value}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
