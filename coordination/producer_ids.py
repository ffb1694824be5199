"""Producer ids, unique across brokers and restarts: blocks claimed from one znode.

Kafka's ZooKeeper-era scheme (its `/latest_producer_id_block`): the znode holds the last
block of ids any broker claimed,

    /latest_producer_id_block   {"version": 1, "broker": 3, "block_start": 2000,
                                 "block_end": 2999}

and a broker claims the next block (`block_start` = the previous `block_end` + 1) with a
write checked against the version it read (a create when the znode is missing). A broker
that loses the race reads again and claims the block after the winner's. A claimed block is
never claimed again, so an id is handed out at most once in the cluster's life; ids left in
a block when its broker stops are skipped, never reused.

`next_block` and `ProducerIdPool` are pure; `claim_block` does the ZooKeeper I/O
(synchronous: call it off the runtime's thread). Connection errors from kazoo propagate;
after a ConnectionLoss the write may or may not have happened, which is harmless: the next
claim reads the znode again, and at worst a block is skipped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from kazoo.client import KazooClient
from kazoo.exceptions import BadVersionError, NodeExistsError, NoNodeError

from zafka import limits
from zafka.coordination import paths
from zafka.coordination.topic_records import MalformedZnode
from zafka.errors import ZafkaError

FORMAT_VERSION = 1
PRODUCER_ID_MAX = 2**63 - 1  # an int64 in the batch header; -1 means "no producer id"


@dataclass(frozen=True)
class ProducerIdBlock:
    """Producer ids `start..end` (both included), claimed by broker `broker`."""

    broker: int
    start: int
    end: int

    def __post_init__(self) -> None:
        for name in ("broker", "start", "end"):
            if type(getattr(self, name)) is not int:
                raise ValueError(f"{name} must be an int, got {getattr(self, name)!r}")
        if not (self.broker >= 0 and 0 <= self.start <= self.end <= PRODUCER_ID_MAX):
            raise ValueError(f"not a block: broker {self.broker}, ids {self.start}..{self.end}")

    def to_json(self) -> bytes:
        fields = {"broker": self.broker, "block_start": self.start, "block_end": self.end}
        return json.dumps({"version": FORMAT_VERSION, **fields}, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, path: str, data: bytes) -> ProducerIdBlock:
        try:
            obj = json.loads(data or b"")
        except (ValueError, RecursionError) as e:
            raise MalformedZnode(path, f"not JSON ({type(e).__name__})") from None
        if not isinstance(obj, dict) or obj.get("version") != FORMAT_VERSION:
            raise MalformedZnode(path, f"not a version {FORMAT_VERSION} JSON object")
        try:
            return cls(obj["broker"], obj["block_start"], obj["block_end"])
        except (KeyError, ValueError) as e:
            raise MalformedZnode(path, f"bad block ({type(e).__name__}: {e})") from None


def next_block(previous: ProducerIdBlock | None, broker_id: int, size: int) -> ProducerIdBlock:
    """The block after `previous` (the first one when None), `size` ids, for `broker_id`."""
    if size < 1:
        raise ValueError(f"a block holds at least one id, got {size}")
    start = 0 if previous is None else previous.end + 1
    if start > PRODUCER_ID_MAX - (size - 1):
        raise ZafkaError("UNKNOWN_SERVER_ERROR", "the cluster has used up its producer ids")
    return ProducerIdBlock(broker_id, start, start + size - 1)


def claim_block(
    client: KazooClient,
    broker_id: int,
    size: int = limits.producer_ids_per_block_count,
    attempts_max: int = limits.producer_id_claim_attempts_max,
) -> ProducerIdBlock:
    """Claim the next block of producer ids for `broker_id` in ZooKeeper and return it.

    Each lost race means another broker claimed a block meanwhile; after `attempts_max`
    lost races in a row, UNKNOWN_SERVER_ERROR (the caller may ask again later).
    """
    path = paths.LATEST_PRODUCER_ID_BLOCK
    for _ in range(attempts_max):
        try:
            data, stat = client.get(path)
        except NoNodeError:
            previous, version = None, None
        else:
            previous, version = ProducerIdBlock.from_json(path, data), stat.version
        block = next_block(previous, broker_id, size)
        try:
            if version is None:
                client.create(path, block.to_json(), makepath=True)
            else:
                client.set(path, block.to_json(), version=version)
        except (NodeExistsError, BadVersionError):
            continue  # another broker claimed a block since we read: read again
        return block
    raise ZafkaError(
        "UNKNOWN_SERVER_ERROR", f"no producer id block claimed in {attempts_max} attempts"
    )


class ProducerIdPool:
    """Hands out the ids of the blocks it is given, in order. Pure: no I/O."""

    def __init__(self) -> None:
        self._next = 0
        self._end = -1  # the last id of the current block; nothing to give before a block

    def take(self) -> int | None:
        """The next unused id, or None when a new block must be claimed first."""
        if self._next > self._end:
            return None
        taken, self._next = self._next, self._next + 1
        return taken

    def add_block(self, block: ProducerIdBlock) -> None:
        """Hand out `block`'s ids from now on (what is left of the current one is skipped)."""
        self._next, self._end = block.start, block.end
