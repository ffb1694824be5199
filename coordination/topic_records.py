"""What the topic znodes hold, as values: a partition's state (`LeaderIsr`) and a topic's
assignment and configs (`TopicInfo`), each to and from its JSON (coordination/topics.py
shows the layout; `TopicStore` reads and writes them). Pure. Data that does not parse
raises `MalformedZnode` (a ZafkaError), never anything else.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from zafka.coordination import paths
from zafka.errors import ZafkaError
from zafka.storage.config import LogConfig, topic_config_defaults
from zafka.transport.names import check_topic_name

FORMAT_VERSION = 1
STALE_VERSION_ERROR = "INVALID_UPDATE_VERSION"  # a stale state write gets Kafka's code (95)


class MalformedZnode(ZafkaError):
    """A znode zafka cannot read (not JSON, wrong version or shape): UNKNOWN_SERVER_ERROR."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__("UNKNOWN_SERVER_ERROR", f"malformed znode {path}: {problem}")
        self.path = path


def _check_ids(ids: object, what: str) -> tuple[int, ...]:
    """`ids` as a tuple of distinct broker ids (ints >= 0); ValueError naming `what` if not."""
    if not isinstance(ids, list | tuple) or not all(type(i) is int and i >= 0 for i in ids):
        raise ValueError(f"{what} must be a list of broker ids (ints >= 0), got {ids!r}")
    if len(set(ids)) != len(ids):
        raise ValueError(f"{what} has a broker twice: {ids!r}")
    return tuple(ids)


@dataclass(frozen=True)
class LeaderIsr:
    """Who leads a partition, in which leader epoch, and which replicas are in sync."""

    leader: int  # broker id; -1 = no leader
    leader_epoch: int
    isr: tuple[int, ...]
    controller_epoch: int = 0  # epoch of the controller that wrote this state

    def __post_init__(self) -> None:
        object.__setattr__(self, "isr", _check_ids(self.isr, "isr"))
        for name in ("leader", "leader_epoch", "controller_epoch"):
            value = getattr(self, name)
            if type(value) is not int or value < (-1 if name == "leader" else 0):
                raise ValueError(f"{name} must be an int >= {-1 if name == 'leader' else 0}")

    def to_json(self) -> bytes:
        return _dump(
            {
                "leader": self.leader,
                "leader_epoch": self.leader_epoch,
                "isr": list(self.isr),
                "controller_epoch": self.controller_epoch,
            }
        )

    @classmethod
    def from_json(cls, path: str, data: bytes) -> LeaderIsr:
        fields = _load(path, data, ("leader", "leader_epoch", "isr", "controller_epoch"))
        try:
            return cls(**fields)
        except ValueError as e:
            raise MalformedZnode(path, str(e)) from None


@dataclass(frozen=True)
class TopicInfo:
    """A topic as stored: its replicas per partition and its config overrides."""

    name: str
    topic_id: str  # new for every creation: tells a re-created topic from the old one
    replicas: tuple[tuple[int, ...], ...]  # index = partition id; the first is preferred leader
    configs: tuple[tuple[str, str], ...] = ()  # (Kafka key, value) overrides, sorted by key

    def __post_init__(self) -> None:
        check_topic_name(self.name)
        if not self.replicas:
            raise ValueError("a topic has at least one partition")
        replicas = tuple(
            _check_ids(r, f"partition {p} replicas") for p, r in enumerate(self.replicas)
        )
        if not all(replicas):
            raise ValueError("every partition has at least one replica")
        object.__setattr__(self, "replicas", replicas)
        configs = dict(self.configs)
        LogConfig.from_topic_configs(configs)  # INVALID_CONFIG if any key or value is bad
        object.__setattr__(self, "configs", tuple(sorted(configs.items())))

    @property
    def partitions(self) -> int:
        return len(self.replicas)

    @property
    def replication_factor(self) -> int:
        return len(self.replicas[0])

    @property
    def log_config(self) -> LogConfig:
        return LogConfig.from_topic_configs(dict(self.configs))

    @property
    def max_message_bytes(self) -> int:
        """The largest batch the broker accepts for this topic (`max.message.bytes`)."""
        return int(self._config("max.message.bytes"))

    @property
    def min_insync_replicas(self) -> int:
        """How many replicas must be in sync for acks=all (`min.insync.replicas`)."""
        return int(self._config("min.insync.replicas"))

    @property
    def unclean_leader_election(self) -> bool:
        """Whether a replica out of sync may lead when no in-sync one is live (data loss)."""
        return self._config("unclean.leader.election.enable") == "true"

    def _config(self, key: str) -> str:
        return dict(self.configs).get(key, topic_config_defaults()[key])

    def assignment_json(self) -> bytes:
        partitions = {str(p): list(r) for p, r in enumerate(self.replicas)}
        return _dump({"topic_id": self.topic_id, "partitions": partitions})

    def config_json(self) -> bytes:
        return _dump({"config": dict(self.configs)})

    @classmethod
    def from_json(cls, name: str, assignment: bytes, config: bytes | None) -> TopicInfo:
        """Decode the two znodes of topic `name`; a missing config znode means no overrides."""
        topic_path, config_path = paths.topic(name), paths.topic_config(name)
        fields = _load(topic_path, assignment, ("topic_id", "partitions"))
        by_id = fields["partitions"]
        if not isinstance(by_id, dict) or set(by_id) != {str(p) for p in range(len(by_id))}:
            raise MalformedZnode(topic_path, "partitions must map ids 0..n-1 to replica lists")
        configs = {} if config is None else _load(config_path, config, ("config",))["config"]
        if not isinstance(configs, dict) or not all(isinstance(v, str) for v in configs.values()):
            raise MalformedZnode(config_path, "config must map keys to string values")
        if not isinstance(fields["topic_id"], str):
            raise MalformedZnode(topic_path, "topic_id must be a string")
        replicas = tuple(by_id[str(p)] for p in range(len(by_id)))
        try:
            return cls(name, fields["topic_id"], replicas, tuple(configs.items()))
        except ValueError as e:
            raise MalformedZnode(topic_path, str(e)) from None
        except ZafkaError as e:  # INVALID_CONFIG
            raise MalformedZnode(config_path, e.detail) from None


def _dump(fields: dict[str, Any]) -> bytes:
    return json.dumps({"version": FORMAT_VERSION, **fields}, separators=(",", ":")).encode()


def _load(path: str, data: bytes | None, keys: Sequence[str]) -> dict[str, Any]:
    """The fields `keys` of the JSON object in `data`; MalformedZnode if anything is off."""
    try:
        obj = json.loads(data or b"")
    except (ValueError, RecursionError) as e:  # UnicodeDecodeError is a ValueError
        raise MalformedZnode(path, f"not JSON ({type(e).__name__})") from None
    if not isinstance(obj, dict):
        raise MalformedZnode(path, "not a JSON object")
    if obj.get("version") != FORMAT_VERSION:
        raise MalformedZnode(path, f"version {obj.get('version')!r}, expected {FORMAT_VERSION}")
    missing = [key for key in keys if key not in obj]
    if missing:
        raise MalformedZnode(path, f"missing {', '.join(missing)}")
    return {key: obj[key] for key in keys}
