"""`zafka bench produce|consume|e2e` as subprocesses against a real broker, with small counts:
the summary lines are there and the counts are right. Every run is bounded."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.integration.broker_helpers import REPO

RUN_TIMEOUT_S = 60.0
LATENCY_LINES = ("_p50_ms", "_p99_ms", "_p999_ms", "_max_ms")


def bench(*argv: str, bootstrap: str, cwd: Path) -> tuple[int, dict[str, str], str]:
    """Run `zafka bench *argv`; (exit code, the summary's name=value pairs, stderr)."""
    env = {k: v for k, v in os.environ.items() if k != "ZAFKA_BOOTSTRAP"}
    env["PYTHONPATH"] = str(REPO)
    done = subprocess.run(
        [sys.executable, "-m", "zafka.cli", "bench", *argv, "--bootstrap", bootstrap],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )
    pairs = dict(line.split("=", 1) for line in done.stdout.splitlines())
    return done.returncode, pairs, done.stderr


def test_produce_then_consume_counts_every_record(bootstrap: str, tmp_path: Path) -> None:
    code, produced, err = bench(
        "produce", "--topic", "perf", "--records", "3000", "--record-size", "50", "--keys",
        "--acks", "1", "--partitions", "2", "--progress",
        bootstrap=bootstrap, cwd=tmp_path,
    )  # fmt: skip
    assert code == 0, err
    assert (produced["topic"], produced["partitions"], produced["acks"]) == ("perf", "2", "1")
    assert (produced["records"], produced["errors"], produced["keys"]) == ("3000", "0", "yes")
    assert float(produced["records_per_s"]) > 0 and float(produced["mb_per_s"]) > 0
    for suffix in LATENCY_LINES:
        assert float(produced["latency" + suffix]) > 0
    assert "3.00k/3.00k" in err  # the progress bar, on stderr

    code, consumed, err = bench("consume", "--topic", "perf", bootstrap=bootstrap, cwd=tmp_path)
    assert code == 0, err
    assert (consumed["records"], consumed["partitions"]) == ("3000", "2")
    assert float(consumed["records_per_s"]) > 0 and float(consumed["mb_per_s"]) > 0

    code, some, err = bench(
        "consume", "--topic", "perf", "--records", "1000", bootstrap=bootstrap, cwd=tmp_path
    )
    assert (code, some["records"]) == (0, "1000"), err


def test_consume_of_a_missing_topic_says_to_produce_first(bootstrap: str, tmp_path: Path) -> None:
    code, _, err = bench("consume", "--topic", "nothing-here", bootstrap=bootstrap, cwd=tmp_path)
    assert code == 1
    assert "UNKNOWN_TOPIC_OR_PARTITION" in err and "zafka bench produce" in err


def test_e2e_receives_what_it_sent(bootstrap: str, tmp_path: Path) -> None:
    code, pairs, err = bench(
        "e2e", "--topic", "e2e", "--records", "400", "--rate", "2000", "--acks", "1",
        bootstrap=bootstrap, cwd=tmp_path,
    )  # fmt: skip
    assert code == 0, err
    assert (pairs["sent"], pairs["received"], pairs["errors"]) == ("400", "400", "0")
    for suffix in LATENCY_LINES:
        assert float(pairs["e2e_latency" + suffix]) > 0
