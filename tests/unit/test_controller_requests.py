"""The controller's request queue format (coordination/controller_requests.py): what is
written parses back; anything else is refused (None), never raised."""

from __future__ import annotations

import json

import pytest

from zafka.coordination import paths
from zafka.coordination.controller_requests import (
    ELECT_PREFERRED,
    ISR_CHANGED,
    PARTITIONS_ADDED,
    ControllerRequest,
    elect_preferred_json,
    isr_changed_json,
    parse,
    partitions_added_json,
)


def test_each_kind_round_trips() -> None:
    tps = [("orders", 0), ("logs", 3)]
    assert parse("request-1", elect_preferred_json(tps)) == ControllerRequest(
        "request-1", ELECT_PREFERRED, partitions=(("orders", 0), ("logs", 3))
    )
    assert parse("request-2", isr_changed_json(tps)).kind == ISR_CHANGED
    assert parse("request-3", partitions_added_json("orders")) == ControllerRequest(
        "request-3", PARTITIONS_ADDED, topic="orders"
    )


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not json",
        b"[1]",
        b'{"kind": "elect_preferred", "partitions": []}',  # no version
        json.dumps({"version": 2, "kind": "partitions_added", "topic": "t"}).encode(),
        json.dumps({"version": 1, "kind": "reboot"}).encode(),
        json.dumps({"version": 1, "kind": "partitions_added", "topic": 5}).encode(),
        json.dumps({"version": 1, "kind": "elect_preferred", "partitions": "all"}).encode(),
        json.dumps({"version": 1, "kind": "elect_preferred", "partitions": [["t"]]}).encode(),
        json.dumps({"version": 1, "kind": "isr_changed", "partitions": [["t", -1]]}).encode(),
        json.dumps({"version": 1, "kind": "isr_changed", "partitions": [["t", True]]}).encode(),
        json.dumps({"version": 1, "kind": "isr_changed", "partitions": [[1, 0]]}).encode(),
        b"[" * 100_000,
    ],
)
def test_anything_else_is_not_a_request(data: bytes) -> None:
    assert parse("request-9", data) is None


def test_request_paths_are_only_queue_children() -> None:
    assert paths.controller_request("request-0000000042").endswith("/request-0000000042")
    for bad in ("request-1/../../controller", "other", ""):
        with pytest.raises(ValueError):
            paths.controller_request(bad)
