"""What `Producer.send` returns: a future per record, completed per batch.

A `concurrent.futures.Future` costs a lock and a condition each, several times an append, so
the producer uses its own: one `BatchResult` per batch (one event, set once by the I/O
thread) and one small `RecordFuture` per record pointing at it. Callbacks run on the
producer's I/O thread: keep them short, and never block on another send's future there.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import NamedTuple

from zafka.errors import ZafkaError

log = logging.getLogger(__name__)

UNKNOWN_OFFSET = -1  # acks=0: the broker does not say where the record landed


class RecordMetadata(NamedTuple):
    """Where a record landed: its partition and offset (-1 with acks=0), and its timestamp."""

    topic: str
    partition: int
    offset: int
    timestamp: int


class BatchResult:
    """The outcome of one batch, shared by the futures of its records."""

    __slots__ = ("_callbacks", "_event", "_lock", "base_offset", "error", "partition", "topic")

    def __init__(self, topic: str, partition: int) -> None:
        self.topic = topic
        self.partition = partition
        self.base_offset = UNKNOWN_OFFSET
        self.error: ZafkaError | None = None
        self._event = threading.Event()
        self._lock = threading.Lock()  # callbacks added vs the outcome being set
        self._callbacks: list[tuple[RecordFuture, Callable[[RecordFuture], object]]] = []

    def done(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout_s: float | None) -> bool:
        return self._event.wait(timeout_s)

    def complete(self, base_offset: int, error: ZafkaError | None) -> None:
        """Set once, by the I/O thread; then the callbacks run, in the order they were added."""
        with self._lock:
            self.base_offset = base_offset
            self.error = error
            self._event.set()
            callbacks, self._callbacks = self._callbacks, []
        for future, fn in callbacks:
            _run_callback(future, fn)

    def add_callback(self, future: RecordFuture, fn: Callable[[RecordFuture], object]) -> None:
        with self._lock:
            if not self._event.is_set():
                self._callbacks.append((future, fn))
                return
        _run_callback(future, fn)


def _run_callback(future: RecordFuture, fn: Callable[[RecordFuture], object]) -> None:
    try:
        fn(future)
    except Exception:
        log.exception("a delivery callback raised")


class RecordFuture:
    """The delivery of one record. `result()` gives its `RecordMetadata` or raises the
    ZafkaError that failed it (after the producer's retries)."""

    __slots__ = ("_batch", "_index", "timestamp")

    def __init__(self, batch: BatchResult, index: int, timestamp: int) -> None:
        self._batch = batch
        self._index = index
        self.timestamp = timestamp

    def done(self) -> bool:
        return self._batch.done()

    def result(self, timeout: float | None = None) -> RecordMetadata:
        """Wait up to `timeout` seconds (None: for ever) for the delivery; REQUEST_TIMED_OUT
        if it is not done by then (the record may still be delivered later)."""
        batch = self._batch
        if not batch.wait(timeout):
            raise ZafkaError("REQUEST_TIMED_OUT", f"not delivered within {timeout} s (yet)")
        if batch.error is not None:
            raise batch.error
        offset = batch.base_offset
        if offset != UNKNOWN_OFFSET:
            offset += self._index
        return RecordMetadata(batch.topic, batch.partition, offset, self.timestamp)

    get = result  # Kafka's name

    def exception(self, timeout: float | None = None) -> ZafkaError | None:
        """The error that failed the delivery, None if it succeeded (waits as `result`)."""
        if not self._batch.wait(timeout):
            raise ZafkaError("REQUEST_TIMED_OUT", f"not delivered within {timeout} s (yet)")
        return self._batch.error

    def add_done_callback(self, fn: Callable[[RecordFuture], object]) -> None:
        """Call `fn(future)` once the delivery is done (at once if it is). It runs on the
        producer's I/O thread; an exception it raises is logged."""
        self._batch.add_callback(self, fn)
