import pytest

from zafka import errors


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
