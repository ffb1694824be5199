"""delete_orphans: a returning broker drops the directories of topics deleted meanwhile."""

from __future__ import annotations

from pathlib import Path

from zafka.actors.broker.partition_dirs import delete_orphans


def test_only_directories_of_unknown_topics_go(tmp_path: Path) -> None:
    for name in ("orders-0", "orders-1", "gone-0", "my-topic-2", "old-topic-0", "notes"):
        (tmp_path / name).mkdir()
    (tmp_path / "gone-1").write_text("a file, not a partition")
    deleted = delete_orphans(tmp_path, {"orders", "my-topic"})
    assert deleted == ["gone-0", "old-topic-0"]
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == ["gone-1", "my-topic-2", "notes", "orders-0", "orders-1"]


def test_a_missing_data_dir_deletes_nothing(tmp_path: Path) -> None:
    assert delete_orphans(tmp_path / "absent", set()) == []
