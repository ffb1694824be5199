"""The one clock (zafka/clock.py): a fake that moves only when told, and no other module
reading the time itself."""

from __future__ import annotations

import ast

import pytest

from tests.unit.test_import_layers import module_files
from zafka.clock import SYSTEM, FakeClock

READS = {"time", "time_ns", "monotonic", "monotonic_ns", "perf_counter", "perf_counter_ns"}


def test_a_fake_clock_moves_only_when_told() -> None:
    clock = FakeClock(now_ms=5, wall=1_000)
    assert (clock.monotonic_ms(), clock.monotonic_s(), clock.wall_ms(), clock()) == (
        5,
        0.005,
        1_000,
        5,
    )
    clock.advance(20)
    assert (clock.monotonic_ms(), clock.wall_ms()) == (25, 1_020)
    with pytest.raises(ValueError, match="forward"):
        clock.advance(-1)


def test_the_system_clock_is_monotonic_and_in_milliseconds() -> None:
    first = SYSTEM.monotonic_ms()
    assert SYSTEM.monotonic_ms() >= first
    assert SYSTEM.wall_ms() > 1_600_000_000_000  # ms since the epoch, not s


def time_reads(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr in READS:
            if isinstance(node.value, ast.Name) and node.value.id == "time":
                found.append(f"time.{node.attr}")
        elif isinstance(node, ast.ImportFrom) and node.module == "time":
            found += [f"from time import {a.name}" for a in node.names if a.name in READS]
    return found


def test_no_module_but_the_clock_reads_the_time() -> None:
    reads = {
        name: time_reads(path.read_text())
        for name, path in module_files().items()
        if name != "zafka.clock"
    }
    assert {name: found for name, found in reads.items() if found} == {}


def test_a_direct_read_is_found() -> None:
    assert time_reads("import time\nt = time.monotonic()") == ["time.monotonic"]
    assert time_reads("from time import monotonic_ns") == ["from time import monotonic_ns"]
    assert time_reads("time.sleep(1)") == []
