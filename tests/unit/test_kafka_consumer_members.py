"""The KIP-848 bookkeeping of the Kafka gateway (actors/kafka/consumer_members.py): what a
member owns when its heartbeat leaves it out, when an assignment is sent, and its bound."""

from __future__ import annotations

import uuid

from zafka import limits
from zafka.actors.kafka.consumer_members import Members
from zafka.transport.group import TopicPartitions
from zafka.transport.kafka import wire

KEY = ("g", "m")
A = (TopicPartitions("t", (0, 1)),)
B = (TopicPartitions("t", (1,)),)


def test_an_unchanged_ownership_is_what_the_member_said_last():
    members = Members()
    assert members.owned_now(KEY, None) == ()  # a new member owns nothing
    assert members.owned_now(KEY, A) == A
    assert members.owned_now(KEY, None) == A
    assert members.owned_now(KEY, B) == B


def test_an_assignment_is_sent_when_it_changed_or_the_whole_is_asked():
    members = Members()
    members.owned_now(KEY, ())
    assert members.changed(KEY, A, full=False)
    assert not members.changed(KEY, A, full=False)
    assert members.changed(KEY, A, full=True)
    assert members.changed(KEY, B, full=False)


def test_a_forgotten_member_starts_over():
    members = Members()
    members.owned_now(KEY, A)
    members.changed(KEY, A, full=False)
    members.forget(KEY)
    assert members.owned_now(KEY, None) == ()
    assert members.changed(KEY, A, full=False)


def test_the_members_remembered_are_bounded_oldest_heard_first(monkeypatch):
    monkeypatch.setattr(limits, "kafka_consumer_members_max", 2)
    members = Members()
    for name in ("a", "b"):
        members.owned_now(("g", name), A)
    members.owned_now(("g", "a"), None)  # heard again: now the latest
    members.owned_now(("g", "c"), B)
    assert set(members.owned) == {("g", "a"), ("g", "c")}


def test_topic_ids_are_stable_per_name_and_distinct():
    assert wire.topic_uuid("orders") == wire.topic_uuid("orders")
    assert wire.topic_uuid("orders") != wire.topic_uuid("orders2")
    assert wire.topic_uuid("orders") != uuid.UUID(int=0)  # Kafka's "no id"
