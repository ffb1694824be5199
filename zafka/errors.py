"""The one error table: every error a broker can reply with, and how clients react to it.

Clients decide from the flags (a row's `flags` words), never by matching names or messages:

- `retriable` (`retry`): the same request may succeed later (back off and send it again);
- `refresh_metadata` (`refresh`): the target is not (or no longer) where the request went:
  look the leader up again before retrying (a group coordinator whose append to its
  partition fails so drops the group: it is not coordinated there any more);
- `refind_coordinator` (`refind`): a consumer group's coordinator is not (or no longer)
  reachable there: send FindCoordinator again before the next group request;
- `rejoin_group` (`rejoin`): the group no longer knows this member (or this epoch of it):
  its partitions are lost, it joins again;
- `halts_position` (`halt`): a fetch from this position cannot succeed: the consumer stops
  the partition until it resets (auto.offset.reset) or the application seeks.

Codes are stable on the wire: never renumber one.
Where Kafka has the error, zafka uses Kafka's code; zafka's own codes start at 1001.
"""

from __future__ import annotations

from dataclasses import dataclass

FLAGS = ("retry", "refresh", "refind", "rejoin", "halt")  # the words of ErrorCode.flags


def _flag(word: str) -> property:
    return property(lambda error: word in error.flags.split(), doc=f"`{word}` is a flag of it")


@dataclass(frozen=True)
class ErrorCode:
    """One row of the table; `flags` is the words of the flags it has (see the top)."""

    code: int
    name: str
    flags: str
    message: str

    def __post_init__(self) -> None:
        unknown = set(self.flags.split()) - set(FLAGS)
        if unknown:
            raise ValueError(f"{self.name}: unknown flags {sorted(unknown)}; known: {FLAGS}")

    retriable = _flag("retry")
    refresh_metadata = _flag("refresh")
    refind_coordinator = _flag("refind")
    rejoin_group = _flag("rejoin")
    halts_position = _flag("halt")


_TABLE = (
    ErrorCode(0, "NONE", "", "no error"),
    ErrorCode(-1, "UNKNOWN_SERVER_ERROR", "", "unexpected server error; see broker log"),
    ErrorCode(1, "OFFSET_OUT_OF_RANGE", "halt", "offset outside the retained log"),
    ErrorCode(2, "CORRUPT_MESSAGE", "halt", "batch failed its CRC or size checks"),
    ErrorCode(3, "UNKNOWN_TOPIC_OR_PARTITION", "retry refresh", "no such topic or partition"),
    ErrorCode(
        6, "NOT_LEADER_OR_FOLLOWER", "retry refresh", "this broker does not lead the partition"
    ),
    ErrorCode(7, "REQUEST_TIMED_OUT", "retry refind", "request timed out"),
    ErrorCode(10, "MESSAGE_TOO_LARGE", "", "batch exceeds the size limit"),
    ErrorCode(11, "STALE_CONTROLLER_EPOCH", "refresh", "controller epoch older than current"),
    ErrorCode(12, "OFFSET_METADATA_TOO_LARGE", "", "offset metadata is too long"),
    ErrorCode(
        13,
        "NETWORK_EXCEPTION",
        "retry refresh refind",
        "the link to the broker dropped before it answered",
    ),
    ErrorCode(14, "COORDINATOR_LOAD_IN_PROGRESS", "retry", "coordinator still loading"),
    ErrorCode(
        15, "COORDINATOR_NOT_AVAILABLE", "retry refresh refind", "no coordinator for the group now"
    ),
    ErrorCode(
        16, "NOT_COORDINATOR", "retry refresh refind", "this broker does not coordinate the group"
    ),
    ErrorCode(17, "INVALID_TOPIC", "", "invalid topic name"),
    ErrorCode(19, "NOT_ENOUGH_REPLICAS", "retry", "fewer in-sync replicas than required"),
    ErrorCode(
        20,
        "NOT_ENOUGH_REPLICAS_AFTER_APPEND",
        "retry",
        "appended, but the ISR fell below min.insync.replicas",
    ),
    ErrorCode(24, "INVALID_GROUP_ID", "", "invalid group id"),
    ErrorCode(25, "UNKNOWN_MEMBER_ID", "rejoin", "the group has no such member; rejoin"),
    ErrorCode(26, "INVALID_SESSION_TIMEOUT", "", "session timeout out of range"),
    ErrorCode(35, "UNSUPPORTED_VERSION", "", "protocol version not supported"),
    ErrorCode(36, "TOPIC_ALREADY_EXISTS", "", "topic already exists"),
    ErrorCode(37, "INVALID_PARTITIONS", "", "invalid number of partitions"),
    ErrorCode(38, "INVALID_REPLICATION_FACTOR", "", "invalid replication factor"),
    ErrorCode(39, "INVALID_REPLICA_ASSIGNMENT", "", "invalid replica assignment"),
    ErrorCode(40, "INVALID_CONFIG", "", "invalid configuration value"),
    ErrorCode(41, "NOT_CONTROLLER", "retry refresh", "the sender is not the controller"),
    ErrorCode(42, "INVALID_REQUEST", "", "malformed or unknown request"),
    ErrorCode(45, "OUT_OF_ORDER_SEQUENCE", "", "producer sequence gap"),
    ErrorCode(47, "INVALID_PRODUCER_EPOCH", "", "producer epoch is stale (fenced)"),
    ErrorCode(56, "KAFKA_STORAGE_ERROR", "retry refresh", "the broker could not write its disk"),
    ErrorCode(59, "UNKNOWN_PRODUCER_ID", "", "the broker has no state for this producer"),
    ErrorCode(68, "NON_EMPTY_GROUP", "", "the group has members"),
    ErrorCode(69, "GROUP_ID_NOT_FOUND", "", "no such group"),
    ErrorCode(74, "FENCED_LEADER_EPOCH", "refresh", "leader epoch older than the current one"),
    ErrorCode(
        76, "UNKNOWN_LEADER_EPOCH", "retry refresh", "leader epoch newer than the broker knows"
    ),
    ErrorCode(
        80, "PREFERRED_LEADER_NOT_AVAILABLE", "retry", "the preferred leader is down or out of sync"
    ),
    ErrorCode(81, "GROUP_MAX_SIZE_REACHED", "", "the group has its most members"),
    ErrorCode(82, "FENCED_INSTANCE_ID", "", "another member took this instance id"),
    ErrorCode(84, "ELECTION_NOT_NEEDED", "", "the preferred leader leads already"),
    ErrorCode(
        89, "THROTTLING_QUOTA_EXCEEDED", "retry refresh", "too many topics created; retry later"
    ),
    ErrorCode(95, "INVALID_UPDATE_VERSION", "refresh", "state changed since it was read"),
    ErrorCode(110, "FENCED_MEMBER_EPOCH", "rejoin", "group member epoch is stale; rejoin"),
    # zafka's own codes, above Kafka's range.
    ErrorCode(1001, "BUSY", "retry", "the target's mailbox is full; retry with backoff"),
    ErrorCode(1002, "STOPPED", "retry refresh refind", "the actor stopped before it answered"),
    ErrorCode(1003, "UNKNOWN_ACTOR", "retry refresh", "no such actor on this node"),
    ErrorCode(1004, "BUFFER_FULL", "retry", "producer buffer is full; slow down or flush"),
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
