"""Broker registrations in ZooKeeper: each live broker's ephemeral `/brokers/ids/<id>` holds

    {"version": 1, "endpoint": "tcp://127.0.0.1:9092", "rack": "r1", "kafka": "127.0.0.1:9093"}

(`rack` only when the broker was started with `--rack`: Kafka's `broker.rack`, used for
rack-aware replica placement; `kafka` only when it has a Kafka protocol listener: the
host:port it advertises to Kafka clients). One reader for every side that needs them.
"""

from __future__ import annotations

import json
import logging
from typing import NamedTuple

from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError

from zafka.coordination import paths

log = logging.getLogger(__name__)
FORMAT_VERSION = 1


class Registration(NamedTuple):
    endpoint: str
    rack: str | None = None
    kafka: str | None = None


def registration_json(endpoint: str, rack: str | None = None, kafka: str | None = None) -> bytes:
    body: dict[str, object] = {"version": FORMAT_VERSION, "endpoint": endpoint}
    if rack is not None:
        body["rack"] = rack
    if kafka is not None:
        body["kafka"] = kafka
    return json.dumps(body).encode()


def parse_registration(data: bytes) -> Registration:
    """The registration in `data`; ValueError if it is not one."""
    try:
        body = json.loads(data)
        endpoint, rack, kafka = body["endpoint"], body.get("rack"), body.get("kafka")
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ValueError("not a broker registration") from None
    optional = (rack, kafka)
    if not isinstance(endpoint, str) or not all(v is None or isinstance(v, str) for v in optional):
        raise ValueError("not a broker registration")
    return Registration(endpoint, rack, kafka)


def registration(client: KazooClient, broker_id: int) -> Registration | None:
    """One broker's registration (None: not registered, or malformed)."""
    try:
        data, _ = client.get(paths.broker(broker_id))
        return parse_registration(data)
    except NoNodeError:
        return None
    except ValueError:
        log.warning("malformed broker registration of %s", broker_id)
        return None


def registrations(client: KazooClient) -> dict[int, Registration]:
    """The registered brokers by id (one that does not parse, or that went away while
    reading, is left out)."""
    try:
        children = client.get_children(paths.BROKER_IDS)
    except NoNodeError:
        return {}
    found = {}
    for child in sorted(children, key=lambda c: (len(c), c)):
        if child.isascii() and child.isdigit():
            registered = registration(client, int(child))
            if registered is not None:
                found[int(child)] = registered
    return found
