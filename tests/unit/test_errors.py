import pytest

from zafka import errors
from zafka.actors.runtime.actor import answer_of
from zafka.transport.client import ListOffsetsResponse
from zafka.transport.envelope import Envelope


def test_codes_and_names_are_unique():
    assert len(errors.BY_CODE) == len(errors._TABLE)
    assert len(errors.BY_NAME) == len(errors._TABLE)


def test_an_exception_carries_its_code_and_flags():
    err = errors.ZafkaError("NOT_LEADER_OR_FOLLOWER", "partition t-0")
    assert err.error.code == 6
    assert err.retriable and err.error.refresh_metadata
    assert "NOT_LEADER_OR_FOLLOWER (6)" in str(err) and "partition t-0" in str(err)


def test_from_code_round_trips_known_codes():
    for code, entry in errors.BY_CODE.items():
        assert errors.from_code(code).error is entry


def test_an_unknown_code_becomes_unknown_server_error():
    err = errors.from_code(9999)
    assert err.error.name == "UNKNOWN_SERVER_ERROR"
    assert "9999" in str(err)


def test_an_unknown_name_is_a_programming_error():
    with pytest.raises(KeyError):
        errors.ZafkaError("NO_SUCH_ERROR")


def flagged(flag: str) -> set[str]:
    return {e.name for e in errors.BY_NAME.values() if getattr(e, flag)}


def test_the_flags_clients_decide_by() -> None:
    assert flagged("refind_coordinator") == {
        "NETWORK_EXCEPTION",
        "REQUEST_TIMED_OUT",
        "COORDINATOR_NOT_AVAILABLE",
        "NOT_COORDINATOR",
        "STOPPED",
    }
    assert flagged("rejoin_group") == {"FENCED_MEMBER_EPOCH", "UNKNOWN_MEMBER_ID"}
    assert flagged("halts_position") == {"OFFSET_OUT_OF_RANGE", "CORRUPT_MESSAGE"}
    # a group coordinator's append that fails with these: the partition is not led there
    assert {"NOT_LEADER_OR_FOLLOWER", "UNKNOWN_ACTOR", "STOPPED"} <= flagged("refresh_metadata")


def test_a_reply_becomes_its_response_or_an_error_with_its_code() -> None:
    ok = ListOffsetsResponse(error_code=0, offset=5, timestamp=-1)
    assert answer_of(Envelope("a", "b", ok, 1)) is ok
    failed = answer_of(Envelope("a", "b", ListOffsetsResponse(16, -1, -1), 1), "group 'g'")
    assert isinstance(failed, errors.ZafkaError) and failed.error.name == "NOT_COORDINATOR"
    assert failed.detail == "group 'g'"
    unnamed = answer_of(Envelope("a", "b", ListOffsetsResponse(7, -1, -1), 1))
    assert isinstance(unnamed, errors.ZafkaError) and unnamed.detail == "ListOffsets"
    timeout = errors.ZafkaError("REQUEST_TIMED_OUT")
    assert answer_of(timeout) is timeout
