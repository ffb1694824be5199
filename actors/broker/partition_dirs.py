"""Where a broker keeps its partitions: `<data dir>/<topic>-<p>`, each with a `topic_id` file
naming the incarnation of the topic it holds (data left by a deleted topic of the same name
is removed, never served as the new topic's)."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from zafka.transport.names import check_topic_name, partition_actor_name

log = logging.getLogger(__name__)

TOPIC_ID_FILE = "topic_id"  # in each partition directory: which incarnation of the topic


def partition_dir(data_dir: Path, topic: str, partition: int) -> Path:
    return data_dir / partition_actor_name(check_topic_name(topic), partition)


def delete_partition_dirs(data_dir: Path, topic: str) -> None:
    """Delete `<data dir>/<topic>-<p>` for every p; nothing outside the data dir."""
    root = data_dir.resolve()
    prefix = f"{check_topic_name(topic)}-"
    for path in root.iterdir():
        suffix = path.name[len(prefix) :]
        if path.name.startswith(prefix) and suffix.isascii() and suffix.isdigit():
            _remove(root, path)


def delete_partition_dir(data_dir: Path, topic: str, partition: int) -> None:
    """Delete one partition's directory (a replica moved away), if it is there."""
    _remove(data_dir.resolve(), partition_dir(data_dir.resolve(), topic, partition))


def _remove(root: Path, path: Path) -> None:
    """Delete directory `path`, a direct child of `root`; never a link or anything else."""
    if path.is_dir() and not path.is_symlink() and path.resolve().parent == root:
        shutil.rmtree(path)


def delete_orphans(data_dir: Path, topics: set[str]) -> list[str]:
    """Delete the partition directories of topics not in `topics` (deleted while this broker
    was down); returns their names. Call it only before hosting anything."""
    root = data_dir.resolve()
    deleted: list[str] = []
    if not root.is_dir():
        return deleted
    for path in sorted(root.iterdir()):
        topic, _, partition = path.name.rpartition("-")
        owned = topic and partition.isascii() and partition.isdigit()
        if owned and topic not in topics and path.is_dir() and not path.is_symlink():
            log.warning("removing %s: its topic was deleted while this broker was down", path)
            shutil.rmtree(path)
            deleted.append(path.name)
    return deleted


def claim(directory: Path, topic_id: str) -> None:
    """Make `directory` belong to topic incarnation `topic_id`: data of another one (a topic
    of the same name deleted while this broker was down) is removed first."""
    marker = directory / TOPIC_ID_FILE
    try:
        owner = marker.read_text().strip()
    except FileNotFoundError:
        owner = None
    except OSError:
        owner = ""
    if owner is not None and owner != topic_id:
        log.warning("removing %s: it holds another incarnation of the topic", directory)
        shutil.rmtree(directory)
    if owner != topic_id:
        directory.mkdir(parents=True, exist_ok=True)
        marker.write_text(topic_id + "\n")
