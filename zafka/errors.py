"""The one error table: every error a broker can reply with, and how clients react to it.

Clients decide from the flags, never by matching names or message strings:

- `retriable`: the same request may succeed later (back off and send it again);
- `refresh_metadata`: the target is not (or no longer) where the request went: look the
  leader up again before retrying (a group coordinator's append to a partition that is not
  led there any more drops the coordinator);
- `refind_coordinator`: a consumer group's coordinator is not (or no longer) reachable
  there: send FindCoordinator again before the next group request;
- `rejoin_group`: the group no longer knows this member (or this epoch of it): its
  partitions are lost, it joins again;
- `halts_position`: a fetch from this position cannot succeed: the consumer stops the
  partition until it resets (auto.offset.reset) or the application seeks.
 Codes are stable on the wire: never renumber one.
Where Kafka has the error, zafka uses Kafka's code; zafka's own codes start at 1001.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ErrorCode:
    code: int
    name: str
    retriable: bool
    refresh_metadata: bool
    message: str
    refind_coordinator: bool = False
    rejoin_group: bool = False
    halts_position: bool = False


_TABLE = (
    ErrorCode(0, "NONE", False, False, "no error"),
    ErrorCode(-1, "UNKNOWN_SERVER_ERROR", False, False, "unexpected server error; see broker log"),
    ErrorCode(
        1,
        "OFFSET_OUT_OF_RANGE",
        False,
        False,
        "offset outside the retained log",
        halts_position=True,
    ),
    ErrorCode(
        2,
        "CORRUPT_MESSAGE",
        False,
        False,
        "batch failed its CRC or size checks",
        halts_position=True,
    ),
    ErrorCode(3, "UNKNOWN_TOPIC_OR_PARTITION", True, True, "no such topic or partition"),
    ErrorCode(6, "NOT_LEADER_OR_FOLLOWER", True, True, "this broker does not lead the partition"),
    ErrorCode(7, "REQUEST_TIMED_OUT", True, False, "request timed out", refind_coordinator=True),
    ErrorCode(10, "MESSAGE_TOO_LARGE", False, False, "batch exceeds the size limit"),
    ErrorCode(11, "STALE_CONTROLLER_EPOCH", False, True, "controller epoch older than current"),
    ErrorCode(12, "OFFSET_METADATA_TOO_LARGE", False, False, "offset metadata is too long"),
    ErrorCode(14, "COORDINATOR_LOAD_IN_PROGRESS", True, False, "coordinator still loading"),
    ErrorCode(
        15,
        "COORDINATOR_NOT_AVAILABLE",
        True,
        True,
        "no coordinator for the group now",
        refind_coordinator=True,
    ),
    ErrorCode(
        16,
        "NOT_COORDINATOR",
        True,
        True,
        "this broker does not coordinate the group",
        refind_coordinator=True,
    ),
    ErrorCode(17, "INVALID_TOPIC", False, False, "invalid topic name"),
    ErrorCode(19, "NOT_ENOUGH_REPLICAS", True, False, "fewer in-sync replicas than required"),
    ErrorCode(24, "INVALID_GROUP_ID", False, False, "invalid group id"),
    ErrorCode(
        25,
        "UNKNOWN_MEMBER_ID",
        False,
        False,
        "the group has no such member; rejoin",
        rejoin_group=True,
    ),
    ErrorCode(26, "INVALID_SESSION_TIMEOUT", False, False, "session timeout out of range"),
    ErrorCode(35, "UNSUPPORTED_VERSION", False, False, "protocol version not supported"),
    ErrorCode(36, "TOPIC_ALREADY_EXISTS", False, False, "topic already exists"),
    ErrorCode(37, "INVALID_PARTITIONS", False, False, "invalid number of partitions"),
    ErrorCode(38, "INVALID_REPLICATION_FACTOR", False, False, "invalid replication factor"),
    ErrorCode(40, "INVALID_CONFIG", False, False, "invalid configuration value"),
    ErrorCode(42, "INVALID_REQUEST", False, False, "malformed or unknown request"),
    ErrorCode(45, "OUT_OF_ORDER_SEQUENCE", False, False, "producer sequence gap"),
    ErrorCode(47, "INVALID_PRODUCER_EPOCH", False, False, "producer epoch is stale (fenced)"),
    ErrorCode(59, "UNKNOWN_PRODUCER_ID", False, False, "the broker has no state for this producer"),
    ErrorCode(68, "NON_EMPTY_GROUP", False, False, "the group has members"),
    ErrorCode(69, "GROUP_ID_NOT_FOUND", False, False, "no such group"),
    ErrorCode(74, "FENCED_LEADER_EPOCH", False, True, "leader epoch older than the current one"),
    ErrorCode(81, "GROUP_MAX_SIZE_REACHED", False, False, "the group has its most members"),
    ErrorCode(82, "FENCED_INSTANCE_ID", False, False, "another member took this instance id"),
    ErrorCode(89, "THROTTLING_QUOTA_EXCEEDED", True, True, "too many topics created; retry later"),
    ErrorCode(95, "INVALID_UPDATE_VERSION", False, True, "state changed since it was read"),
    ErrorCode(
        110,
        "FENCED_MEMBER_EPOCH",
        False,
        False,
        "group member epoch is stale; rejoin",
        rejoin_group=True,
    ),
    # zafka's own codes, above Kafka's range.
    ErrorCode(1001, "BUSY", True, False, "the target's mailbox is full; retry with backoff"),
    ErrorCode(
        1002, "STOPPED", True, True, "the actor stopped before it answered", refind_coordinator=True
    ),
    ErrorCode(1003, "UNKNOWN_ACTOR", True, True, "no such actor on this node"),
    ErrorCode(1004, "BUFFER_FULL", True, False, "producer buffer is full; slow down or flush"),
)

BY_CODE: dict[int, ErrorCode] = {e.code: e for e in _TABLE}
BY_NAME: dict[str, ErrorCode] = {e.name: e for e in _TABLE}


class ZafkaError(Exception):
    """An error with a code from the table; what a broker replies and a client raises."""

    def __init__(self, name: str, detail: str = "") -> None:
        self.error = BY_NAME[name]
        self.detail = detail
        text = f"{self.error.name} ({self.error.code}): {self.error.message}"
        super().__init__(f"{text}: {detail}" if detail else text)

    @property
    def retriable(self) -> bool:
        return self.error.retriable


def from_code(code: int, detail: str = "") -> ZafkaError:
    """The exception for a code received on the wire; unknown codes map to UNKNOWN_SERVER_ERROR."""
    error = BY_CODE.get(code)
    if error is None:
        return ZafkaError("UNKNOWN_SERVER_ERROR", f"unknown error code {code}. {detail}".strip())
    return ZafkaError(error.name, detail)
