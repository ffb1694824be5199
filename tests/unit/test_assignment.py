"""Replica placement (coordination/assignment.py): rack-aware when every broker has a rack,
as Kafka's AdminUtils places them; pure."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest

from zafka.coordination.assignment import assign_rack_aware, place, rack_alternated
from zafka.errors import ZafkaError

RACKS = {0: "a", 1: "a", 2: "b", 3: "b", 4: "c", 5: "c"}


def test_brokers_alternate_racks():
    assert rack_alternated(list(RACKS), RACKS) == [0, 2, 4, 1, 3, 5]
    assert rack_alternated([0, 1, 2], {0: "a", 1: "a", 2: "b"}) == [0, 2, 1]


def test_replicas_of_a_partition_spread_over_racks_and_leaders_over_brokers():
    for start, shift, rf in itertools.product(range(6), range(6), (1, 2, 3, 4, 6)):
        replicas = assign_rack_aware(12, rf, list(RACKS), RACKS, start, shift)
        for r in replicas:
            assert len(set(r)) == rf
            racks = [RACKS[b] for b in r]
            assert len(set(racks)) == min(rf, 3), (r, racks)  # one per rack before a second
        leads = Counter(r[0] for r in replicas)
        assert set(leads.values()) == {2}  # 12 partitions, 6 brokers: two each


def test_uneven_racks_still_place_every_replica_once():
    racks = {0: "a", 1: "a", 2: "a", 3: "b"}
    for start, shift in itertools.product(range(4), range(4)):
        for r in assign_rack_aware(8, 3, list(racks), racks, start, shift):
            assert len(set(r)) == 3 and {"a", "b"} <= {racks[b] for b in r}


def test_place_is_rack_aware_only_when_every_broker_has_a_rack():
    aware = place(6, 3, RACKS)
    assert all(len({RACKS[b] for b in r}) == 3 for r in aware)
    mixed = {**RACKS, 6: None}
    assert all(len(r) == 3 for r in place(7, 3, mixed))  # placed as if there were no racks
    grown = place(3, 2, dict.fromkeys(range(3)), first_partition=3, preferred_first=1)
    assert [r[0] for r in grown] == [1, 2, 0]  # continues from partition 0's leader
    with pytest.raises(ZafkaError) as err:
        place(1, 4, dict.fromkeys(range(3)))
    assert err.value.error.name == "INVALID_REPLICATION_FACTOR"
