"""Partition log speed, as ratios against raw file I/O measured in the same run.

  append_ratio  PartitionLog.append MB/s (fsync=never)  over  os.write of the same bytes
  read_ratio    PartitionLog.read by offset, sequential  over  os.read of the same files
                (steady state: every batch already CRC-checked since the log was opened)
  read_first_ratio  the same, first pass after opening: each batch is CRC-checked as it is
                first served (see LogSegment.read)
  recovery_s    seconds to open a --log-mib log after a crash, --tail-mib past the
                recovery point (that tail is re-scanned and CRC-checked)
  encode_ratio, decode_ratio and records/s: from batch_bench.py (run here too)

Ratios without a size suffix are the worst over the batch sizes measured.
Batches hold 100-byte JSON-like records with 16-byte keys, zstd level 1. Each figure is the
best of --reps repetitions, the two sides interleaved so load on the machine hits both.
Output: one `name=value` line per figure. Files go to a temporary directory, removed after.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import batch_bench

from zafka.storage import batch as b
from zafka.storage.config import Fsync, LogConfig
from zafka.storage.log import PartitionLog

MIB = 1024 * 1024
FAST = LogConfig(fsync=Fsync.NEVER, segment_ms=10**15, retention_ms=-1)


def make_batches(batch_bytes: int, total_bytes: int) -> list[bytearray]:
    """Distinct batches of about `batch_bytes` (as stored, compressed) until `total_bytes`."""
    records = batch_bench.make_records(50_000)
    trial = len(b.build_batch(records[:5000])) / 5000  # stored bytes per record
    per_batch = max(1, int(min(batch_bytes, b.limits.batch_bytes_max * 0.9) / trial))
    out, size, i = [], 0, 0
    while size < total_bytes:
        start = i % (len(records) - per_batch)
        out.append(bytearray(b.build_batch(records[start : start + per_batch])))
        size += len(out[-1])
        i += per_batch
    return out


def time_append(directory: Path, batches: list[bytearray]) -> float:
    log = PartitionLog.open(directory, FAST)
    start = time.perf_counter()
    for batch in batches:
        log.append(batch, 0)
    elapsed = time.perf_counter() - start
    log.close()
    return elapsed


def time_raw_write(path: Path, batches: list[bytearray]) -> float:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    start = time.perf_counter()
    for batch in batches:
        os.write(fd, batch)
    elapsed = time.perf_counter() - start
    os.close(fd)
    return elapsed


def read_offsets(directory: Path, fetch_bytes: int) -> list[int]:
    """The offsets a sequential consumer fetches from, found by walking the batches once."""
    log = PartitionLog.open(directory, FAST)
    offsets, offset = [], 0
    while offset < log.log_end_offset:
        offsets.append(offset)
        data, position = log.read(offset, fetch_bytes), 0
        while position < len(data):
            header = b.parse_header(data, position)
            position += header.size
        offset = header.last_offset + 1
    log.close()
    return offsets


def time_read(directory: Path, offsets: list[int], fetch_bytes: int) -> tuple[float, float]:
    """(first pass after open: batches CRC-checked as first served, second pass)."""
    log = PartitionLog.open(directory, FAST)
    passes = []
    for _ in range(2):
        start = time.perf_counter()
        total = sum(len(log.read(offset, fetch_bytes)) for offset in offsets)
        passes.append(time.perf_counter() - start)
    log.close()
    assert total == sum(p.stat().st_size for p in directory.glob("*.log")), "short read"
    return passes[0], passes[1]


def time_raw_read(directory: Path, fetch_bytes: int) -> float:
    start = time.perf_counter()
    for path in sorted(directory.glob("*.log")):
        fd = os.open(path, os.O_RDONLY)
        while os.read(fd, fetch_bytes):
            pass
        os.close(fd)
    return time.perf_counter() - start


def append_and_read(work: Path, batch_bytes: int, total_mib: int, reps: int) -> dict:
    batches = make_batches(batch_bytes, total_mib * MIB)
    nbytes = sum(map(len, batches))
    best = dict.fromkeys(("append", "write", "read_first", "read", "raw_read"), 1e9)
    for rep in range(reps):
        log_dir, raw = work / f"log-{rep}", work / f"raw-{rep}"
        sides = [("write", time_raw_write, raw), ("append", time_append, log_dir)]
        for name, measure, path in sides if rep % 2 else reversed(sides):
            os.sync()  # start each side with no dirty pages from the other
            best[name] = min(best[name], measure(path, batches))
        offsets = read_offsets(log_dir, MIB)
        first, steady = time_read(log_dir, offsets, MIB)
        best["read_first"] = min(best["read_first"], first)
        best["read"] = min(best["read"], steady)
        best["raw_read"] = min(best["raw_read"], time_raw_read(log_dir, MIB))
        shutil.rmtree(log_dir)
        raw.unlink()
    return {
        "batch_bytes": nbytes // len(batches),
        "append_mb_per_s": nbytes / best["append"] / 1e6,
        "raw_write_mb_per_s": nbytes / best["write"] / 1e6,
        "append_ratio": best["write"] / best["append"],
        "read_mb_per_s": nbytes / best["read"] / 1e6,
        "raw_read_mb_per_s": nbytes / best["raw_read"] / 1e6,
        "read_ratio": best["raw_read"] / best["read"],
        "read_first_ratio": best["raw_read"] / best["read_first"],
    }


def recovery_seconds(work: Path, log_mib: int, tail_mib: int) -> float:
    directory = work / "recovery"
    batches = make_batches(256 * 1024, 64 * MIB)  # reused: the log stamps fresh offsets
    log = PartitionLog.open(directory, FAST)
    written, i = 0, 0
    while written < (log_mib - tail_mib) * MIB:
        log.append(batches[i % len(batches)], 0)
        written, i = written + len(batches[i % len(batches)]), i + 1
    log.flush()  # the recovery point: everything after it is re-scanned
    while written < log_mib * MIB:
        log.append(batches[i % len(batches)], 0)
        written, i = written + len(batches[i % len(batches)]), i + 1
    end = log.log_end_offset
    for segment in log.segments:  # crash: no seal, no checkpoint
        segment.close()
    start = time.perf_counter()
    reopened = PartitionLog.open(directory, FAST)
    elapsed = time.perf_counter() - start
    assert reopened.log_end_offset == end, "recovery lost data"
    reopened.close()
    shutil.rmtree(directory)
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--total-mib", type=int, default=256, help="bytes appended per rep")
    parser.add_argument("--batch-kib", default="16,256,1024", help="batch sizes to measure")
    parser.add_argument("--reps", type=int, default=5, help="repetitions; the best counts")
    parser.add_argument("--log-mib", type=int, default=1024, help="log size for recovery_s")
    parser.add_argument("--tail-mib", type=int, default=64, help="past the recovery point")
    parser.add_argument("--dir", default=None, help="work directory (default: a temp dir)")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="zafka-bench-", dir=args.dir))
    try:
        results: dict[str, dict] = {}
        for kib in map(int, args.batch_kib.split(",")):
            results[kib] = append_and_read(work, kib * 1024, args.total_mib, args.reps)
            for name, value in results[kib].items():
                print(f"{name}_{kib}KiB={batch_bench.fmt(value)}", flush=True)
        for name in ("append_ratio", "read_ratio", "read_first_ratio"):
            print(f"{name}={batch_bench.fmt(min(r[name] for r in results.values()))}")
        print(f"recovery_s={recovery_seconds(work, args.log_mib, args.tail_mib):.3f}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return batch_bench.main(["--reps", str(max(args.reps, 3))])


if __name__ == "__main__":
    raise SystemExit(main())
