"""Where a follower's log stops agreeing with its leader's: Kafka's truncation by leader
epoch (KIP-101, KIP-279). Pure: the follower's epoch history in, the next step out.

An epoch has one leader, and every replica copies that leader's batches, so wherever two
logs both hold epoch E its history starts at the same offset and agrees up to where the
shorter one's E ends. The follower asks the leader where its latest epoch ends; the leader
answers with the largest epoch it has at or below the one asked, and where that ends. If
the follower holds that epoch too, the logs agree up to the smaller of the two ends: it cuts
there. If it does not, it asks again with its own largest epoch below it, so the epochs asked
only go down and the exchange ends. The high watermark is never used to decide (it may lag
on a follower: KIP-101's lesson).
"""

from __future__ import annotations

from dataclasses import dataclass

from zafka.storage.epochs import UNDEFINED, LeaderEpochCache


@dataclass(frozen=True, slots=True)
class AskEpoch:
    """Ask the leader where epoch `epoch` ends."""

    epoch: int


@dataclass(frozen=True, slots=True)
class TruncateTo:
    """Cut the log at `offset` (a no-op at its end), then fetch from there."""

    offset: int


def first_step(epochs: LeaderEpochCache, log_start: int, log_end: int) -> AskEpoch | TruncateTo:
    """What a replica that has just become follower does first."""
    if log_end == log_start or epochs.latest_epoch == UNDEFINED:
        return TruncateTo(log_end)
    return AskEpoch(epochs.latest_epoch)


def answered(
    epochs: LeaderEpochCache, log_start: int, log_end: int, leader_epoch: int, leader_end: int
) -> AskEpoch | TruncateTo:
    """The leader said its largest epoch at or below the one asked is `leader_epoch`, ending
    at `leader_end` (UNDEFINED, UNDEFINED: it has none, so nothing here is known to agree)."""
    if leader_epoch == UNDEFINED:
        return TruncateTo(log_start)
    mine, my_end = epochs.end_offset_for(leader_epoch, log_end)
    if mine == leader_epoch:
        return TruncateTo(max(min(leader_end, my_end), log_start))
    if mine == UNDEFINED:
        return TruncateTo(log_start)
    return AskEpoch(mine)
