"""Incremental reconciliation of one member towards the target assignment (KIP-848's idea). Pure.

The coordinator never takes a partition from one member and gives it to another in one step:

1. A member whose assignment holds partitions outside its target is told to **revoke** them:
   they move from `assigned` to `revoking`; its member epoch does not change (so it can still
   commit them: a member commits before it revokes). It keeps everything else.
2. It confirms by a heartbeat whose owned partitions no longer list them (`confirm_revoked`);
   only then are they free. Partitions may be confirmed a few at a time.
3. A member with nothing left to revoke moves to the target epoch and is **given** the
   partitions of its target that no other member owns (assigned or revoking); the others it
   gets at a later heartbeat, once their previous owner has released them.

Partitions that stay with their member are never revoked, paused or re-given. Partitions of a
deleted topic are revoked like any other (so a topic re-created at once is never consumed by
two members).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import replace

from zafka.actors.group.records import Member
from zafka.transport.names import TopicPartition


def heartbeat_epoch_ok(
    member: Member, member_epoch: int, owned: Collection[TopicPartition]
) -> bool:
    """Whether a heartbeat at `member_epoch` reporting `owned` comes from the member as it is.

    The current epoch is accepted. The previous one too, if everything it reports owning is
    still the member's in the coordinator's view: the answer that moved the member on was
    lost, and the next answer will repeat it. Anything else is a zombie (FENCED_MEMBER_EPOCH).
    """
    if member_epoch == member.epoch:
        return True
    if member_epoch == member.previous_epoch:
        mine = member.owns()
        return all(tp in mine for tp in owned)
    return False


def confirm_revoked(member: Member, owned: Collection[TopicPartition]) -> Member:
    """The member with every revoking partition that `owned` no longer lists released."""
    if not member.revoking:
        return member
    still = {tp: e for tp, e in member.revoking.items() if tp in owned}
    if len(still) == len(member.revoking):
        return member
    return replace(member, revoking=still)


def reconcile(
    member: Member,
    target_epoch: int,
    target: Collection[TopicPartition],
    owned_by_other: Callable[[TopicPartition], bool],
) -> Member:
    """The member's next step towards `target` at `target_epoch` (see the module docstring).

    `owned_by_other(tp)`: another member owns tp (assigned or revoking). Returns `member`
    itself when nothing changes."""
    if member.revoking:  # wait for the confirmation before anything else
        return member
    assigned = member.assigned
    keep = {tp: e for tp, e in assigned.items() if tp in target}
    if len(keep) < len(assigned):  # revoke what left the target; the epoch stays
        drop = {tp: e for tp, e in assigned.items() if tp not in keep}
        return _changed(member, assigned=keep, revoking=drop)
    gained = {tp: target_epoch for tp in target if tp not in keep and not owned_by_other(tp)}
    if member.epoch == target_epoch:
        return _changed(member, assigned={**keep, **gained}, revoking={})
    return _changed(
        member,
        epoch=target_epoch,
        previous_epoch=member.epoch,
        assigned={**keep, **gained},
        revoking={},
    )


def commit_ok(member: Member, member_epoch: int, partitions: Collection[TopicPartition]) -> bool:
    """Whether the member may commit offsets of `partitions` at `member_epoch`.

    Each partition must be owned by the member now (assigned or revoking) and have been given
    to it at `member_epoch` or before: the member has owned it without a break since an epoch
    it knew. So a commit sent just before an answer moved the member to a newer epoch is
    accepted, while a commit for a partition the member lost (even if it got it back later)
    is refused. An epoch above the member's own is always refused."""
    if member_epoch > member.epoch:
        return False
    for tp in partitions:
        given = member.assigned.get(tp, member.revoking.get(tp))
        if given is None or given > member_epoch:
            return False
    return True


def _changed(member: Member, **changes: object) -> Member:
    """`member` with `changes`, or `member` itself when they change nothing."""
    if all(getattr(member, name) == value for name, value in changes.items()):
        return member
    return replace(member, **changes)  # type: ignore[arg-type]
