"""The state machine of one consumer group, KIP-848 style. Pure: no I/O, threads or clock.

The group coordinator actor is its shell: it feeds requests in, appends the records they
return to the group's partition of `__consumer_offsets`, replies once they are written, and
arms a timer for `next_deadline_ms()` that calls `expire(now_ms)`. Time comes in as `now_ms`.

**Records.** Every handler returns an `Outcome`: the records to append (already applied) and
the answer. The live path changes nothing directly: it encodes each change as a record and
applies it with `replay`, the same function that rebuilds the state when a coordinator loads
the topic (`group_records.py` has the format). If an append fails, the shell must drop this
object and rebuild it by replaying the log. After loading, call `update_topics` (with the
metadata the shell knows) and `start_sessions(now_ms)`: sessions and revocation timers are
in memory only, so every member gets a full session after a coordinator restart.

**Epochs.** The *group epoch* is bumped, and the target assignment recomputed by the group's
assignor at that epoch, whenever the members, their subscriptions or assignor preferences,
or the partition counts of the subscribed topics change. Each member has a *member epoch*:
the target epoch it has reconciled to. Requests carrying an epoch other than the member's
(or its previous one, see `heartbeat_epoch_ok`) are zombies: FENCED_MEMBER_EPOCH; requests
from a member id the group does not have (it left, expired or was replaced): UNKNOWN_MEMBER_ID.
Either way the client drops its partitions as lost and joins again.

**Protocol (what a client does).**
- `join`: member_id "" (the coordinator makes one) or an id of the client's own making (so a
  retried join is not a second member), a subscription, a session timeout, optionally a
  static `instance_id` and an assignor preference. The answer is a `MemberAssignment`.
  Joining means owning nothing: a known member id that joins again is given its partitions
  again. A join with the `instance_id` of a member with another id takes that member's place
  (its assignment and epoch, without a rebalance unless the subscription changed); the old id
  is gone (UNKNOWN_MEMBER_ID). A static member that stops for a restart should not leave.
- `heartbeat` every `heartbeat_interval_ms` with the member epoch and the partitions it owns
  now (all of them, always). The answer's `assignment` is what it must own: it stops (after
  committing) and forgets `owned - assignment`, then heartbeats again at once to confirm; it
  starts `assignment - owned`. Partitions in neither set are never interrupted.
- `leave`: the member is removed at once and its partitions are free.
- A member is removed when no heartbeat came for its session timeout, or when it has not
  confirmed a revocation within `rebalance_timeout_ms`.
- `commit`: see `commit_ok` in `group_reconcile.py`; a commit with member id "" (an admin
  reset, or a consumer with manual assignment) is accepted only while the group has no members.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace

from zafka import limits
from zafka.actors.group import records as rec
from zafka.actors.group.api import (
    GroupDescription,
    MemberAssignment,
    Outcome,
    check_invariant,
    check_join,
    check_subscription,
    describe_group,
)
from zafka.actors.group.assignors import ASSIGNORS, DEFAULT_ASSIGNOR, MemberSubscriptionView
from zafka.actors.group.reconcile import (
    commit_ok,
    confirm_revoked,
    heartbeat_epoch_ok,
    reconcile,
)
from zafka.actors.group.records import CommittedOffset, Member, Record, Subscription
from zafka.limits import group_members_max, offset_metadata_bytes_max
from zafka.transport.names import TopicPartition

TP = TopicPartition


class GroupState:
    """One consumer group. Persisted (rebuilt by `replay`, compared by `==`): `epoch`,
    `assignor`, `partitions` (subscribed topics' partition counts at `epoch`), `members`,
    `target` (member id -> partitions at `epoch`) and `offsets`."""

    def __init__(
        self,
        group_id: str,
        *,
        new_member_id: Callable[[], str] | None = None,
        heartbeat_interval_ms: int = limits.group_heartbeat_interval_ms,
        rebalance_timeout_ms: int = limits.group_rebalance_timeout_ms,
        default_assignor: str = DEFAULT_ASSIGNOR,
    ) -> None:
        self.group_id = group_id
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.rebalance_timeout_ms = rebalance_timeout_ms
        self.default_assignor = default_assignor
        self._new_member_id = new_member_id or (lambda: uuid.uuid4().hex)
        self.epoch = 0
        self.assignor = default_assignor
        self.partitions: dict[str, int] = {}
        self.members: dict[str, Member] = {}
        self.target: dict[str, frozenset[TopicPartition]] = {}
        self.offsets: dict[TopicPartition, CommittedOffset] = {}
        self._owner: dict[TopicPartition, str] = {}  # derived from members by replay
        self.topics: dict[str, int] | None = None  # every known topic (None: not told yet)
        self._session_deadline_ms: dict[str, int] = {}
        self._revoke_deadline_ms: dict[str, int] = {}
        self._out: list[Record] = []

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, GroupState):
            return NotImplemented
        return self._persisted() == other._persisted()

    def _persisted(self) -> tuple[object, ...]:
        fields = (self.epoch, self.assignor, self.partitions, self.members, self.target)
        return (self.group_id, *fields, self.offsets)

    # --- membership --------------------------------------------------------------------------

    def join(
        self,
        now_ms: int,
        subscription: Subscription,
        session_timeout_ms: int,
        *,
        member_id: str = "",
        instance_id: str | None = None,
        assignor: str | None = None,
    ) -> Outcome:
        """A member joins (or joins again) owning nothing; see the module docstring."""
        error = check_join(subscription, session_timeout_ms, assignor, self.heartbeat_interval_ms)
        error = error or self._check_identity(member_id, instance_id)
        if error:
            return Outcome(error=error)
        self._out = []
        old = self.members.get(member_id) or self._by_instance(instance_id)
        settings = {"subscription": subscription, "assignor": assignor}
        settings |= {"session_timeout_ms": session_timeout_ms}
        if old is None:
            new_id = member_id or self._new_member_id()
            member = Member(new_id, instance_id, subscription, assignor, session_timeout_ms)
            self._put_member(member)
            self._rebalance()
        else:
            new_id = member_id or self._new_member_id()  # a new id: a static takeover
            self._replace_member(old, replace(old, member_id=new_id, **settings))
        self._session_deadline_ms[new_id] = now_ms + session_timeout_ms
        return self._answer(now_ms, new_id, owned=())

    def heartbeat(
        self,
        now_ms: int,
        member_id: str,
        member_epoch: int,
        owned: Iterable[TopicPartition],
        subscription: Subscription | None = None,
    ) -> Outcome:
        """A member is alive at `member_epoch` and owns `owned`; `subscription` changes it."""
        member = self.members.get(member_id)
        if member is None:
            return Outcome(error="UNKNOWN_MEMBER_ID")
        owned = frozenset(owned)
        if not heartbeat_epoch_ok(member, member_epoch, owned):
            return Outcome(error="FENCED_MEMBER_EPOCH")
        if subscription is not None and (error := check_subscription(subscription)):
            return Outcome(error=error)
        self._out = []
        self._session_deadline_ms[member_id] = now_ms + member.session_timeout_ms
        if subscription is not None and subscription != member.subscription:
            self._put_member(replace(member, subscription=subscription))
            self._rebalance()
        return self._answer(now_ms, member_id, owned)

    def leave(self, member_id: str) -> Outcome:
        """The member leaves now (any epoch: a fenced member may always leave)."""
        if member_id not in self.members:
            return Outcome(error="UNKNOWN_MEMBER_ID")
        self._out = []
        self._remove(member_id)
        self._rebalance()
        return Outcome(tuple(self._out))

    def expire(self, now_ms: int) -> Outcome:
        """Removes every member whose session or revocation deadline is at or before `now_ms`."""
        deadlines = (self._session_deadline_ms, self._revoke_deadline_ms)
        gone = sorted({m for d in deadlines for m, at in d.items() if at <= now_ms})
        if not gone:
            return Outcome()
        self._out = []
        for member_id in gone:
            self._remove(member_id)
        self._rebalance()
        return Outcome(tuple(self._out), removed=tuple(gone))

    def next_deadline_ms(self) -> int | None:
        """When `expire` has something to do next, if ever."""
        deadlines = [*self._session_deadline_ms.values(), *self._revoke_deadline_ms.values()]
        return min(deadlines, default=None)

    def start_sessions(self, now_ms: int) -> None:
        """After loading: a full session (and revocation time) for every member from now."""
        for member_id, member in self.members.items():
            self._session_deadline_ms.setdefault(member_id, now_ms + member.session_timeout_ms)
            if member.revoking:
                self._revoke_deadline_ms.setdefault(member_id, now_ms + self.rebalance_timeout_ms)

    def update_topics(self, partitions_per_topic: Mapping[str, int]) -> Outcome:
        """Every known topic and its partition count (all of them, authoritative: a missing
        topic is deleted). Bumps the epoch if a subscribed topic appeared, grew or vanished."""
        self.topics = dict(partitions_per_topic)
        self._out = []
        if self._subscribed_partitions() != self.partitions:
            self._rebalance()
        return Outcome(tuple(self._out))

    # --- offsets -----------------------------------------------------------------------------

    def commit(
        self,
        now_ms: int,
        member_id: str,
        member_epoch: int,
        offsets: Iterable[tuple[TopicPartition, int, str]],
    ) -> Outcome:
        """Commits `(partition, offset, metadata)`s, all or none (see `commit_ok`)."""
        offsets = [(TP(*tp), offset, metadata) for tp, offset, metadata in offsets]
        for _, offset, metadata in offsets:
            if offset < 0:
                return Outcome(error="INVALID_REQUEST")
            if len(metadata.encode()) > offset_metadata_bytes_max:
                return Outcome(error="OFFSET_METADATA_TOO_LARGE")
        if member_id == "":  # no member: only while the group has none
            if self.members:
                return Outcome(error="UNKNOWN_MEMBER_ID")
        elif (member := self.members.get(member_id)) is None:
            return Outcome(error="UNKNOWN_MEMBER_ID")
        elif not commit_ok(member, member_epoch, [tp for tp, _, _ in offsets]):
            return Outcome(error="FENCED_MEMBER_EPOCH")
        self._out = []
        for tp, offset, metadata in offsets:
            value = rec.offset_value(CommittedOffset(offset, metadata, now_ms))
            self._emit(rec.offset_key(self.group_id, tp), value)
        return Outcome(tuple(self._out))

    def committed(
        self, partitions: Iterable[TopicPartition] | None = None
    ) -> dict[TopicPartition, CommittedOffset]:
        """Committed offsets of `partitions` (those that have one), or of every partition."""
        if partitions is None:
            return dict(self.offsets)
        return {TP(*tp): self.offsets[tp] for tp in partitions if tp in self.offsets}

    def delete(self) -> Outcome:
        """Deletes the group (offsets included): tombstones for all its keys. Only while it
        has no members (NON_EMPTY_GROUP)."""
        if self.members:
            return Outcome(error="NON_EMPTY_GROUP")
        self._out = []
        for tp in sorted(self.offsets):
            self._emit(rec.offset_key(self.group_id, tp), None)
        self._emit(rec.group_key(self.group_id), None)
        return Outcome(tuple(self._out))

    # --- describing --------------------------------------------------------------------------

    def describe(self) -> GroupDescription:
        """State, epochs, members, their assignments and targets (for the CLI)."""
        return describe_group(self.group_id, self.epoch, self.assignor, self.members, self.target)

    def check_invariant(self) -> None:
        """Raises AssertionError if the invariant (`group_api.check_invariant`) is broken."""
        check_invariant(self.epoch, self.members, self.target, self._owner)

    # --- replay: the only mutator of persisted state -----------------------------------------

    def replay(self, key: bytes, value: bytes | None) -> None:
        """Applies one record of `__consumer_offsets` (RecordError if malformed or another
        group's). Live changes and recovery both go through here."""
        k = rec.decode_key(key)
        if k.group_id != self.group_id:
            raise rec.RecordError(f"record of group {k.group_id!r} replayed into {self.group_id!r}")
        if k.kind == rec.GROUP:
            self.epoch, self.assignor, self.partitions = (
                rec.decode_group(value) if value is not None else (0, self.default_assignor, {})
            )
        elif k.kind == rec.MEMBER:
            assert k.member_id is not None
            self._replay_member(k.member_id, value)
        elif k.kind == rec.TARGET:
            assert k.member_id is not None
            if value is None:
                self.target.pop(k.member_id, None)
            else:
                self.target[k.member_id] = rec.decode_target(value)
        else:
            assert k.tp is not None
            if value is None:
                self.offsets.pop(k.tp, None)
            else:
                self.offsets[k.tp] = rec.decode_offset(value)

    def _replay_member(self, member_id: str, value: bytes | None) -> None:
        old = self.members.pop(member_id, None)
        if old is not None:
            for tp in old.owns():
                if self._owner.get(tp) == member_id:
                    del self._owner[tp]
        if value is None:
            self._session_deadline_ms.pop(member_id, None)
            self._revoke_deadline_ms.pop(member_id, None)
            return
        member = rec.decode_member(member_id, value)
        self.members[member_id] = member
        for tp in member.owns():
            self._owner[tp] = member_id

    # --- steps of the handlers (each change goes through _emit) -------------------------------

    def _emit(self, key: bytes, value: bytes | None) -> None:
        self._out.append(Record(key, value))
        self.replay(key, value)

    def _put_member(self, member: Member) -> None:
        self._emit(rec.member_key(self.group_id, member.member_id), rec.member_value(member))

    def _remove(self, member_id: str) -> None:
        self._emit(rec.member_key(self.group_id, member_id), None)
        self._emit(rec.target_key(self.group_id, member_id), None)

    def _replace_member(self, old: Member, new: Member) -> None:
        """A join of a known member (same id) or a static takeover (new id): it owns nothing
        now, so revocations are over; assigned partitions and epoch are kept."""
        new = replace(new, revoking={})
        if new.member_id != old.member_id:
            target = self.target.get(old.member_id, frozenset())
            self._remove(old.member_id)
            self._emit(rec.target_key(self.group_id, new.member_id), rec.target_value(target))
        if new != old:
            self._put_member(new)
        if (new.subscription, new.assignor) != (old.subscription, old.assignor):
            self._rebalance()

    def _rebalance(self) -> None:
        """Bumps the group epoch and recomputes the target assignment at it."""
        partitions = self._subscribed_partitions()
        assignor = self._chosen_assignor()
        epoch = self.epoch + 1
        self._emit(rec.group_key(self.group_id), rec.group_value(epoch, assignor, partitions))
        known = self._known_topics()
        views = {
            m.member_id: MemberSubscriptionView(
                m.subscription.resolve(known), self.target.get(m.member_id, frozenset())
            )
            for m in self.members.values()
        }
        target = ASSIGNORS[assignor](views, partitions)
        for member_id in sorted(target):
            if self.target.get(member_id) != target[member_id]:
                key = rec.target_key(self.group_id, member_id)
                self._emit(key, rec.target_value(target[member_id]))

    def _answer(self, now_ms: int, member_id: str, owned: frozenset[TopicPartition]) -> Outcome:
        """Confirms revocations, moves the member one step towards its target, answers."""
        member = confirm_revoked(self.members[member_id], owned)
        member = reconcile(
            member,
            self.epoch,
            self.target.get(member_id, frozenset()),
            lambda tp: self._owner.get(tp, member_id) != member_id,
        )
        if member != self.members[member_id]:
            self._put_member(member)
        if not member.revoking:
            self._revoke_deadline_ms.pop(member_id, None)
        elif member_id not in self._revoke_deadline_ms:
            self._revoke_deadline_ms[member_id] = now_ms + self.rebalance_timeout_ms
        answer = MemberAssignment(
            member_id,
            member.epoch,
            self.heartbeat_interval_ms,
            frozenset(member.assigned),
            frozenset(member.revoking),
        )
        return Outcome(tuple(self._out), member=answer)

    # --- helpers -----------------------------------------------------------------------------

    def _known_topics(self) -> Mapping[str, int]:
        return self.partitions if self.topics is None else self.topics

    def _subscribed_partitions(self) -> dict[str, int]:
        known = self._known_topics()
        subscribed: set[str] = set()
        for member in self.members.values():
            subscribed |= member.subscription.resolve(known)
        return {t: known[t] for t in sorted(subscribed) if t in known}

    def _chosen_assignor(self) -> str:
        """The assignor most members prefer (ties: by name), else the group's default."""
        votes = Counter(m.assignor for m in self.members.values() if m.assignor is not None)
        if not votes:
            return self.default_assignor
        return min(votes, key=lambda name: (-votes[name], name))

    def _by_instance(self, instance_id: str | None) -> Member | None:
        if instance_id is None:
            return None
        return next((m for m in self.members.values() if m.instance_id == instance_id), None)

    def _check_identity(self, member_id: str, instance_id: str | None) -> str | None:
        """A known member id must keep its instance id; a new member needs room."""
        known = self.members.get(member_id)
        if known is not None:
            return None if known.instance_id == instance_id else "INVALID_REQUEST"
        static = self._by_instance(instance_id)
        if static is None and len(self.members) >= group_members_max:
            return "GROUP_MAX_SIZE_REACHED"
        return None
