"""Helpers for the client integration tests: a bare client actor on the test's broker (no
Producer or Consumer) that creates topics and speaks the raw protocol, so what a client did
is set up and checked independently of it; and the records of a fetched byte range."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from zafka.clients import io
from zafka.clients.io import ClientActor, ClientIO
from zafka.storage.batch import parse_header
from zafka.storage.records import Record, read_records
from zafka.transport.admin import CreateTopicsRequest, NewTopic

WAIT_S = 15.0  # the longest any single wait of a client test may take
REQUEST_TIMEOUT_MS = 10_000


@contextmanager
def bare_client(bootstrap: str, kind: str) -> Iterator[ClientIO]:
    """A `ClientIO` with a plain `ClientActor` (node `<kind>-<hex>`), closed on exit."""
    client = ClientIO(kind, bootstrap, lambda b, t: ClientActor(b, t, REQUEST_TIMEOUT_MS))
    try:
        yield client
    finally:
        client.close()


def call(client: ClientIO, target: str, message: object) -> object:
    """Send `message` to `target` (e.g. `*/broker`); its reply, within WAIT_S."""
    return io.result(client.submit(lambda f: client.actor.request(target, message, f)), WAIT_S)


def create(client: ClientIO, topic: str, partitions: int = 1) -> None:
    """Create `topic` (replication factor 1); it must not exist."""
    reply = call(client, "*/broker", CreateTopicsRequest((NewTopic(topic, partitions, 1, {}),)))
    assert reply.results[0].error_code == 0, reply


def records_in(data: bytes) -> list[Record]:
    """Every record of the whole batches in `data` (a fetch response's bytes), in order."""
    records, position = [], 0
    while position < len(data):
        size = parse_header(data, position).size
        records += read_records(data[position : position + size])
        position += size
    return records
