"""The Producer: `send` records to topics, get a future per record (DESIGN §8).

    from zafka import Producer
    with Producer("127.0.0.1:9092") as producer:
        future = producer.send("orders", b"value", key=b"user-1")
        print(future.result(timeout=10))      # RecordMetadata(topic, partition, offset, ...)

`send` is thread-safe and cheap: it checks the record, picks the partition (Kafka's murmur2
for keys, sticky partitions for null keys) and appends it to the accumulator; the I/O thread
(clients/sender.py) does the rest. A partition with fewer than five requests in flight (one
without idempotence) sends at once; at that limit, records gather into the next batch until
it is full (`batch_bytes`) or `linger_ms` old. So the producer is quick when idle and batches under
load, with no fixed delay. Batches are zstd-compressed on the I/O thread.

Defaults follow Kafka's where they exist: acks=all ("all in-sync replicas": answered
once the high watermark passed the batch), idempotence on, retries until `delivery_timeout_ms`
(120 s), `retry_backoff_ms` 100, `request_timeout_ms` 30 s, `buffer_bytes_max` 32 MiB, and a
full buffer blocks `send` for up to `max_block_ms` (60 s) before raising BUFFER_FULL
(`block=False`: at once). `batch_bytes` is 256 KiB, larger than Kafka's 16 KiB, because a
Python producer pays per request what Java pays per record; it only fills under load.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from zafka import clock, limits
from zafka.clients import io
from zafka.clients.accumulator import RecordAccumulator, record_size
from zafka.clients.delivery import BatchResult, RecordFuture, RecordMetadata
from zafka.clients.io import ClientIO
from zafka.clients.partitioner import Partitioner
from zafka.clients.sender import (
    PLAIN_IN_FLIGHT_REQUESTS,
    SenderActor,
    SenderConfig,
    SendState,
)
from zafka.errors import ZafkaError, from_code

__all__ = ["Producer", "RecordFuture", "RecordMetadata"]

ACKS = {"all": -1, -1: -1, 0: 0, 1: 1, "0": 0, "1": 1, "-1": -1}


def _positive(name: str, value: object, low: int = 1) -> int:
    if type(value) is not int or value < low:
        raise ZafkaError("INVALID_CONFIG", f"{name}={value!r}: expected an int >= {low}")
    return value


class Producer:
    """Sends records to a zafka cluster; see the module docstring. Close it (or use it as a
    context manager) to deliver what is buffered and stop its I/O thread."""

    def __init__(
        self,
        bootstrap_servers: str | Sequence[str],
        *,
        acks: int | str = "all",
        enable_idempotence: bool = True,
        batch_bytes: int = 256 * 1024,
        linger_ms: int = 5,
        buffer_bytes_max: int = 32 * 1024 * 1024,
        block: bool = True,
        max_block_ms: int = 60_000,
        request_timeout_ms: int = limits.request_timeout_ms,
        delivery_timeout_ms: int = 120_000,
        retry_backoff_ms: int = limits.retry_backoff_ms,
    ) -> None:
        if acks not in ACKS:
            raise ZafkaError("INVALID_CONFIG", f"acks={acks!r}: expected 0, 1 or 'all' (-1)")
        if enable_idempotence and ACKS[acks] == 0:
            raise ZafkaError(
                "INVALID_CONFIG", "idempotence needs acks=1 or 'all': set enable_idempotence=False"
            )
        self._max_block_s = _positive("max_block_ms", max_block_ms, 0) / 1000
        self._retry_backoff_s = _positive("retry_backoff_ms", retry_backoff_ms, 0) / 1000
        config = SenderConfig(
            acks=ACKS[acks],
            idempotent=bool(enable_idempotence),
            request_timeout_ms=_positive("request_timeout_ms", request_timeout_ms),
            delivery_timeout_ms=_positive("delivery_timeout_ms", delivery_timeout_ms),
            retry_backoff_ms=_positive("retry_backoff_ms", retry_backoff_ms, 0),
        )
        self._partitioner = Partitioner()
        accumulator = RecordAccumulator(
            batch_bytes,
            linger_ms,
            buffer_bytes_max,
            block,
            on_batch_closed=self._partitioner.batch_closed,
        )
        self._state = state = SendState(accumulator)
        state.max_in_flight_requests = (
            limits.idempotent_in_flight_batches_max
            if enable_idempotence
            else PLAIN_IN_FLIGHT_REQUESTS
        )
        self._block = block
        self._closed = False
        self._io = ClientIO(
            "producer",
            bootstrap_servers,
            lambda bootstrap, transport: SenderActor(bootstrap, transport, config, state),
            on_exit=self._abort,
        )

    # --- sending --------------------------------------------------------------------------

    def send(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None = None,
        headers: Sequence[tuple[str, bytes]] | None = None,
        partition: int | None = None,
        timestamp: int | None = None,
    ) -> RecordFuture:
        """Queue one record; returns its future (`result()` -> RecordMetadata). Thread-safe.

        `value`, `key`: bytes or None; `headers`: (str, bytes or None) pairs; `timestamp`: ms since
        the epoch (default now). Blocks while the buffer is full (up to `max_block_ms`) or
        while the topic's metadata is first fetched."""
        if (value.__class__ is not bytes and value is not None) or (
            key.__class__ is not bytes and key is not None
        ):
            raise TypeError(f"key and value must be bytes or None, not {_types(key, value)}")
        if headers is not None:
            headers = _check_headers(headers)
        if timestamp is None:
            timestamp = clock.wall_ms()
        elif type(timestamp) is not int or timestamp < 0:
            raise TypeError(f"timestamp must be an int of ms since the epoch, not {timestamp!r}")
        state = self._state
        count = state.partition_counts.get(topic)
        if count is None:
            count = self._wait_for_topic(topic)
        if partition is None:
            p = self._partitioner.partition(topic, key, count, state.available.get(topic))
        elif type(partition) is int and 0 <= partition < count:
            p = partition
        else:
            raise ZafkaError(
                "UNKNOWN_TOPIC_OR_PARTITION",
                f"partition {partition!r} of {topic!r}, which has partitions 0..{count - 1}",
            )
        with state.lock:
            try:
                batch_id, index = state.accumulator.append(
                    topic,
                    p,
                    timestamp,
                    key,
                    value,
                    headers,
                    clock.monotonic_ms(),
                    key is None,
                )
            except (TypeError, ZafkaError):  # None: a null key's batch was full; or full
                batch_id, index, p = self._append_slowly(topic, p, timestamp, key, value, headers)
            result = state.results.get(batch_id)
            if result is None:
                result = state.results[batch_id] = BatchResult(topic, p)
            if not state.nudged and (index == 0 or (topic, p) not in state.busy):
                state.nudged = True
                self._io.post(self._nudge)
        return RecordFuture(result, index, timestamp)

    def _append_slowly(
        self, topic: str, p: int, timestamp: int, key: Any, value: Any, headers: Any
    ) -> tuple[int, int, int]:
        """`send`'s append when the quick one did not do: closed, full (wait for room if
        blocking), or a null key's sticky batch full (partition again). Under the lock:
        (batch id, index, partition)."""
        if self._closed:
            raise ZafkaError("STOPPED", "the producer is closed; make a new one")
        accumulator, count = self._state.accumulator, self._state.partition_counts[topic]
        while True:
            try:
                now = clock.monotonic_ms()
                null_key = key is None  # its batch full: partition it again (KIP-480)
                where = accumulator.append(topic, p, timestamp, key, value, headers, now, null_key)
            except ZafkaError as err:
                if err.error.name != "BUFFER_FULL" or not self._block:
                    raise
                self._wait_for_room(record_size(key, value, headers), err)
                continue
            if where is not None:
                return where[0], where[1], p
            p = self._partitioner.partition(topic, None, count, self._state.available.get(topic))

    def _wait_for_room(self, size: int, err: ZafkaError) -> None:
        """Called with the lock held: wait for deliveries to free `size` bytes."""
        state = self._state
        state.changed.wait_for(lambda: state.accumulator.has_room(size), self._max_block_s)
        if not state.accumulator.has_room(size):
            raise err

    def _wait_for_topic(self, topic: str) -> int:
        """Fetch the topic's metadata (creating it, if the broker auto-creates); its count."""
        deadline = clock.monotonic_s() + self._max_block_s
        actor = self._io.actor
        while True:
            remaining = deadline - clock.monotonic_s()
            error = io.result(
                self._io.submit(lambda f: actor.refresh_metadata([topic], f.set_result)),
                max(remaining, 0.001),
            )
            count = self._state.partition_counts.get(topic)
            if count is not None:
                return count
            if error is None:
                error = ZafkaError("UNKNOWN_TOPIC_OR_PARTITION")
                code = actor.metadata.topic_error(topic)
                if code:
                    error = from_code(code, f"topic {topic!r}")
            if not error.retriable or clock.monotonic_s() + self._retry_backoff_s > deadline:
                raise ZafkaError(error.error.name, f"topic {topic!r}: {error}")
            time.sleep(self._retry_backoff_s)  # a backoff between requests, not a sync

    # --- flushing and closing -------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> None:
        """Send everything buffered now (linger or not) and wait until all of it is done.
        REQUEST_TIMED_OUT if that takes longer than `timeout` seconds."""
        state = self._state
        with state.lock:
            state.flushing += 1
        try:
            self._io.post(self._send_ready)
            with state.lock:
                if not state.changed.wait_for(state.idle, timeout):
                    raise ZafkaError("REQUEST_TIMED_OUT", f"flush did not finish in {timeout} s")
        finally:
            with state.lock:
                state.flushing -= 1

    def close(self, timeout: float | None = None) -> None:
        """Deliver what is buffered (up to `timeout` seconds), fail the rest with STOPPED,
        and stop the I/O thread. Idempotent."""
        if self._closed:
            return
        try:
            self.flush(timeout)
        except ZafkaError:
            pass  # what is left fails as the I/O thread ends (_abort)
        finally:
            self._closed = True
            self._io.close()

    def _nudge(self) -> None:  # on the I/O thread: the actor now hosted
        self._io.actor.nudge()  # type: ignore[attr-defined]

    def _send_ready(self) -> None:
        self._io.actor.send_ready()  # type: ignore[attr-defined]

    def _abort(self) -> None:
        """On the I/O thread as it ends (closed, or failed): every batch not delivered fails
        with STOPPED, so no future, flush or blocked send waits for ever."""
        stopped = ZafkaError("STOPPED", "the producer was closed before delivery")
        self._closed = True
        with self._state.lock:
            batches = self._state.accumulator.abort_all(stopped)
        actor: SenderActor = self._io.actor  # type: ignore[assignment]
        for batch in batches:
            actor.finish(batch, -1, stopped)

    def __enter__(self) -> Producer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _types(key: object, value: object) -> str:
    return f"key {type(key).__name__}, value {type(value).__name__} (encode str with .encode())"


def _check_headers(headers: Sequence[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    checked = []
    for item in headers:
        if not (isinstance(item, tuple | list) and len(item) == 2):
            raise TypeError(f"a header is a (str, bytes or None) pair, not {item!r}")
        name, value = item
        if type(name) is not str or not (value is None or type(value) is bytes):
            raise TypeError(f"a header is a (str, bytes or None) pair, not ({name!r}, {value!r})")
        checked.append((name, value))
    return checked
