from zafka import limits

UNITS = ("_s", "_ms", "_bytes_max", "_bytes", "_max", "_count")


def test_every_limit_is_named_with_its_unit_last_and_is_positive():
    names = [n for n in vars(limits) if not n.startswith("_")]
    assert names
    for name in names:
        assert name.endswith(UNITS), f"{name} does not end with a unit"
        assert getattr(limits, name) > 0
