"""What users import from the package root."""

from __future__ import annotations

import subprocess
import sys

import pytest

import zafka


def test_the_clients_come_from_the_package_root() -> None:
    from zafka import Admin, Consumer, Producer, ZafkaError
    from zafka.clients.admin import Admin as AdminClass
    from zafka.clients.consumer import Consumer as ConsumerClass
    from zafka.clients.producer import Producer as ProducerClass
    from zafka.errors import ZafkaError as ErrorClass

    assert (Admin, Consumer, Producer, ZafkaError) == (
        AdminClass,
        ConsumerClass,
        ProducerClass,
        ErrorClass,
    )
    assert set(zafka.__all__) >= {"Admin", "Consumer", "Producer", "__version__"}


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError):
        zafka.NoSuchThing  # noqa: B018


def test_importing_zafka_does_not_load_the_clients() -> None:
    code = "import sys, zafka; print('zafka.clients.producer' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
