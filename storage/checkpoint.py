"""Small state files written atomically: write a temp file, fsync it, rename, fsync the dir.

Each file holds a version line, the payload lines and a CRC line, so a torn or garbled
checkpoint is detected (and the caller falls back to rebuilding what it described).

`durable=False` leaves out both fsyncs, for hints that may come back older (or garbled, then
missing) after a power loss: the high watermark (an older one only holds consumers back until
the followers fetch again; Kafka checkpoints it every 5 s) and the recovery point between its
durable writes (storage/log.py: an older one makes recovery scan more, and cut at a damaged
batch it would otherwise have kept). They are written every second per partition with data,
on the broker's one thread, where two fsyncs each cost p99 latency.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path

VERSION = "zafka-checkpoint-1"


def write_lines(path: Path, lines: list[str], durable: bool = True) -> None:
    body = "\n".join([VERSION, *lines])
    text = f"{body}\ncrc {zlib.crc32(body.encode()):08x}\n"
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, text.encode())
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    if durable:
        fsync_directory(path.parent)


def fsync_directory(directory: Path) -> None:
    """Make the directory's entries (files created, renamed or removed in it) durable."""
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def read_lines(path: Path) -> list[str] | None:
    """The payload lines, or None when the file is missing, torn or garbled."""
    try:
        text = path.read_bytes().decode()
    except (OSError, UnicodeDecodeError):
        return None
    body, sep, crc_line = text.rstrip("\n").rpartition("\ncrc ")
    if not sep or crc_line != f"{zlib.crc32(body.encode()):08x}":
        return None
    version, *lines = body.split("\n")
    return lines if version == VERSION else None


def write_offset(path: Path, offset: int, durable: bool = True) -> None:
    write_lines(path, [str(offset)], durable)


def read_offset(path: Path) -> int | None:
    lines = read_lines(path)
    if lines is None or len(lines) != 1 or not lines[0].isdigit():
        return None
    return int(lines[0])
