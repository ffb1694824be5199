"""Choosing a partition for a record, as a Java Kafka client does (DESIGN §8).

Keyed records: Kafka's murmur2 of the key (transport/murmur2.py), so a key lands on the same
partition as it would with a Java producer; a bounded cache maps recent short keys to their
hash (keys repeat: user ids, order ids): 0.1 µs instead of 1.1 µs. Records without a key stick
to one partition per topic until the accumulator reports that the partition's batch closed
(sent or full), then move to another partition chosen at random among the available ones, a
different one when there is a choice (Kafka's sticky partitioner, KIP-480).

Pure: no I/O, no clock, no threads; randomness comes from the `random.Random` you pass in.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from zafka import limits
from zafka.transport.murmur2 import positive_hash


class Partitioner:
    """Kafka's default partitioning: murmur2 of the key, sticky partitions for null keys.

    `partition` is per-record and thread-safe under the GIL (dict operations only; two threads
    racing on a sticky choice both get a valid partition). Call `batch_closed` (the
    accumulator's `on_batch_closed`) whenever a batch of a partition closes.
    """

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng if rng is not None else random.Random()
        self._hashes: dict[bytes, int] = {}
        self._sticky: dict[str, int] = {}
        self._previous: dict[str, int] = {}

    def partition(
        self,
        topic: str,
        key: bytes | None,
        num_partitions: int,
        available: Sequence[int] | None = None,
    ) -> int:
        """The partition for one record. `available`: partitions with a known leader; null
        keys stick to one of them (any partition when empty or not given). Keyed records ignore
        it, as in Kafka: a key's partition never depends on the cluster's state."""
        if key is None:
            p = self._sticky.get(topic)
            if p is None or p >= num_partitions:
                p = self._choose(topic, num_partitions, available)
            return p
        try:
            h = self._hashes.get(key)
        except TypeError:  # a bytearray key: hashed, never cached (nor is a memoryview)
            return positive_hash(key) % num_partitions
        if h is None:
            h = positive_hash(key)
            if len(key) <= limits.key_hash_cache_key_bytes_max and type(key) is bytes:
                if len(self._hashes) >= limits.key_hash_cache_keys_max:
                    self._hashes.clear()  # O(1) amortized; no bookkeeping on hits
                self._hashes[key] = h
        return h % num_partitions

    def batch_closed(self, topic: str, partition: int) -> None:
        """A batch of `partition` closed (drained to be sent, or full): null keys move on."""
        if self._sticky.get(topic) == partition:
            self._sticky.pop(topic, None)  # no KeyError if another thread got here first
            self._previous[topic] = partition

    def sticky_partition(self, topic: str) -> int | None:
        """The partition null keys of `topic` stick to now, if one is chosen."""
        return self._sticky.get(topic)

    def _choose(self, topic: str, num_partitions: int, available: Sequence[int] | None) -> int:
        candidates: Sequence[int] = range(num_partitions)
        if available:
            fit = [p for p in available if 0 <= p < num_partitions]
            if fit:
                candidates = fit
        previous = self._previous.get(topic)
        p = candidates[self._rng.randrange(len(candidates))]
        if p == previous and len(candidates) > 1:
            i = self._rng.randrange(len(candidates) - 1)  # uniform among the others
            p = candidates[i] if candidates[i] != previous else candidates[-1]
        self._sticky[topic] = p
        return p
