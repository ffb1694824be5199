"""ClassicGroup: one consumer group of Kafka's classic protocol (JoinGroup, SyncGroup,
Heartbeat, LeaveGroup), a pure state machine with client-side assignment.

States as Kafka's: EMPTY -> PREPARING (a join or leave started a rebalance; joins wait)
-> COMPLETING (every member rejoined, or the rebalance timeout passed: the joins are
answered, the leader with every member's metadata) -> STABLE (the leader's SyncGroup gave
the assignment; every waiting sync is answered with its part). Heartbeats keep a member;
one silent past its session timeout is removed and the group rebalances. A group's first
rebalance waits `limits.kafka_initial_rebalance_delay_ms` for more members (Kafka's
group.initial.rebalance.delay.ms). Answers go out as `Answer`s to the opaque handles the
shell passed in; time is the shell's (`now_ms`).

Membership lives in the coordinator's memory: after a coordinator move members get
UNKNOWN_MEMBER_ID and rejoin (their committed offsets are in __consumer_offsets and stay).
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from zafka import limits

NONE = 0
ILLEGAL_GENERATION = 22
INCONSISTENT_GROUP_PROTOCOL = 23
UNKNOWN_MEMBER_ID = 25
REBALANCE_IN_PROGRESS = 27

EMPTY, PREPARING, COMPLETING, STABLE = (
    "Empty",
    "PreparingRebalance",
    "CompletingRebalance",
    "Stable",
)


@dataclass
class Member:
    member_id: str
    client_id: str
    protocols: tuple[tuple[str, bytes], ...]  # (name, metadata) in the member's preference
    session_ms: int
    rebalance_ms: int
    seen_ms: int
    assignment: bytes = b""


@dataclass(frozen=True)
class Answer:
    handle: Any
    kind: str  # "join" or "sync"
    code: int
    fields: dict = field(default_factory=dict)


class ClassicGroup:
    def __init__(self, group_id: str, protocol_type: str) -> None:
        self.group_id = group_id
        self.protocol_type = protocol_type
        self.state = EMPTY
        self.generation = 0
        self.protocol: str | None = None
        self.leader: str | None = None
        self.members: dict[str, Member] = {}
        self._joins: dict[str, Any] = {}  # member id -> the handle of its waiting join
        self._syncs: dict[str, Any] = {}
        self._rebalance_due_ms: int | None = None
        self._initial = False  # the rebalance in progress is the group's first: it waits
        self._ids = itertools.count(1)

    # --- requests ---------------------------------------------------------------------------

    def join(
        self,
        handle: Any,
        member_id: str,
        client_id: str,
        protocol_type: str,
        protocols: tuple[tuple[str, bytes], ...],
        session_ms: int,
        rebalance_ms: int,
        now_ms: int,
    ) -> list[Answer]:
        if protocol_type != self.protocol_type or not protocols or not self._shares(protocols):
            return [Answer(handle, "join", INCONSISTENT_GROUP_PROTOCOL, {"member_id": member_id})]
        if member_id and member_id not in self.members:
            return [Answer(handle, "join", UNKNOWN_MEMBER_ID, {"member_id": member_id})]
        if not member_id:
            member_id = f"{client_id or 'member'}-{self.group_id}-{next(self._ids)}"
        known = self.members.get(member_id)
        self.members[member_id] = Member(
            member_id,
            client_id,
            protocols,
            session_ms,
            rebalance_ms,
            now_ms,
            known.assignment if known else b"",
        )
        answers = []
        previous = self._joins.pop(member_id, None)
        if previous is not None:  # a retried join: the older one is answered as superseded
            answers.append(
                Answer(previous, "join", REBALANCE_IN_PROGRESS, {"member_id": member_id})
            )
        self._joins[member_id] = handle
        if self.state != PREPARING or known is None or known.protocols != protocols:
            answers += self._prepare(now_ms)
        return answers + self._maybe_complete()

    def sync(
        self, handle: Any, member_id: str, generation: int, assignments: dict[str, bytes]
    ) -> list[Answer]:
        code = self._check(member_id, generation)
        if code:
            return [Answer(handle, "sync", code)]
        if self.state == STABLE:
            return [Answer(handle, "sync", NONE, self._sync_fields(member_id))]
        self._syncs[member_id] = handle
        if member_id != self.leader:
            return []
        for member in self.members.values():
            member.assignment = assignments.get(member.member_id, b"")
        self.state = STABLE
        waiting, self._syncs = self._syncs, {}
        return [Answer(h, "sync", NONE, self._sync_fields(m)) for m, h in waiting.items()]

    def heartbeat(self, member_id: str, generation: int, now_ms: int) -> int:
        code = self._check(member_id, generation)
        if member_id in self.members:
            self.members[member_id].seen_ms = now_ms
        if code == NONE and self.state == PREPARING:
            return REBALANCE_IN_PROGRESS
        return code

    def can_commit(self, member_id: str, generation: int) -> int:
        """NONE if a commit from this member in this generation may go in (member "" with
        generation -1: a commit from outside the group, only while it is empty)."""
        if not member_id and generation < 0:
            return NONE if not self.members else UNKNOWN_MEMBER_ID
        code = self._check(member_id, generation)
        return REBALANCE_IN_PROGRESS if code == NONE and self.state == PREPARING else code

    def leave(self, member_ids: list[str], now_ms: int) -> tuple[dict[str, int], list[Answer]]:
        codes, answers = {}, []
        for member_id in member_ids:
            if member_id not in self.members:
                codes[member_id] = UNKNOWN_MEMBER_ID
                continue
            codes[member_id] = NONE
            answers += self._remove(member_id)
        if any(code == NONE for code in codes.values()):
            answers += self._prepare(now_ms) + self._maybe_complete()
        return codes, answers

    # --- time -------------------------------------------------------------------------------

    def tick(self, now_ms: int) -> list[Answer]:
        """Remove members past their session; complete a rebalance whose time is up."""
        answers = []
        expired = [
            m.member_id
            for m in self.members.values()
            if m.member_id not in self._joins and now_ms - m.seen_ms > m.session_ms
        ]
        for member_id in expired:
            answers += self._remove(member_id)
        if expired:
            answers += self._prepare(now_ms)
        if self.state == PREPARING and self._rebalance_due_ms is not None:
            if now_ms >= self._rebalance_due_ms:
                for member_id in [m for m in self.members if m not in self._joins]:
                    answers += self._remove(member_id)  # did not rejoin in time
                answers += self._complete()
            else:
                answers += self._maybe_complete()
        return answers

    def next_deadline_ms(self) -> int | None:
        deadlines = [m.seen_ms + m.session_ms for m in self.members.values()]
        if self._rebalance_due_ms is not None:
            deadlines.append(self._rebalance_due_ms)
        return min(deadlines) if deadlines else None

    @property
    def is_dead(self) -> bool:
        return not self.members and self.state == EMPTY

    # --- the machine ------------------------------------------------------------------------

    def _shares(self, protocols: tuple[tuple[str, bytes], ...]) -> bool:
        others = [m for m in self.members.values() if m.protocols != protocols]
        names = {name for name, _ in protocols}
        return all(names & {name for name, _ in m.protocols} for m in others)

    def _check(self, member_id: str, generation: int) -> int:
        if member_id not in self.members:
            return UNKNOWN_MEMBER_ID
        return NONE if generation == self.generation else ILLEGAL_GENERATION

    def _prepare(self, now_ms: int) -> list[Answer]:
        """Start (or restart) a rebalance: waiting syncs learn of it."""
        if not self.members:
            self.state, self._rebalance_due_ms = EMPTY, None
            return []
        answers = [Answer(h, "sync", REBALANCE_IN_PROGRESS) for h in self._syncs.values()]
        self._syncs = {}
        if self.state != PREPARING:
            first = self.generation == 0 or self.state == EMPTY
            wait_ms = max(m.rebalance_ms for m in self.members.values())
            if first:
                wait_ms = min(wait_ms, limits.kafka_initial_rebalance_delay_ms)
            self.state, self._rebalance_due_ms = PREPARING, now_ms + wait_ms
            self._initial = first
        return answers

    def _maybe_complete(self) -> list[Answer]:
        """Complete once every member rejoined (a first rebalance waits out its delay)."""
        everyone = self.state == PREPARING and set(self._joins) == set(self.members)
        return self._complete() if everyone and not self._initial else []

    def _complete(self) -> list[Answer]:
        self._rebalance_due_ms = None
        if not self.members:
            self.state = EMPTY
            return []
        self.generation += 1
        self.state = COMPLETING
        self.protocol = self._chosen()
        if self.leader not in self.members:
            self.leader = next(iter(self.members))
        joins, self._joins = self._joins, {}
        metadata = [(m.member_id, dict(m.protocols)[self.protocol]) for m in self.members.values()]
        answers = []
        for member_id, handle in joins.items():
            fields = {
                "member_id": member_id,
                "generation": self.generation,
                "protocol": self.protocol,
                "leader": self.leader,
                "members": metadata if member_id == self.leader else [],
            }
            answers.append(Answer(handle, "join", NONE, fields))
        return answers

    def _chosen(self) -> str:
        """The protocol every member supports that most members prefer (Kafka's vote)."""
        common = set.intersection(*({n for n, _ in m.protocols} for m in self.members.values()))
        votes = Counter(
            next(name for name, _ in m.protocols if name in common) for m in self.members.values()
        )
        return max(sorted(votes), key=lambda name: votes[name])

    def _remove(self, member_id: str) -> list[Answer]:
        self.members.pop(member_id, None)
        answers = []
        if member_id in self._joins:
            answers.append(
                Answer(
                    self._joins.pop(member_id), "join", UNKNOWN_MEMBER_ID, {"member_id": member_id}
                )
            )
        if member_id in self._syncs:
            answers.append(Answer(self._syncs.pop(member_id), "sync", UNKNOWN_MEMBER_ID))
        if self.leader == member_id:
            self.leader = None
        return answers

    def _sync_fields(self, member_id: str) -> dict:
        return {"assignment": self.members[member_id].assignment, "protocol": self.protocol}
