"""Every actor's dispatch table is checked: each message type it accepts has a handler, and
each handler (a method taking an envelope) has a message type in the table."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import pkgutil
from pathlib import Path

import pytest

import zafka
from zafka.actors.runtime.actor import Actor

NOT_HANDLERS = {"on_message"}  # the dispatcher itself


BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def load_benchmarks_with_actors() -> None:
    """Import the benchmark scripts that define actors (their main() does not run)."""
    for path in sorted(BENCHMARKS.glob("*.py")):
        if "(Actor)" not in path.read_text():
            continue
        spec = importlib.util.spec_from_file_location(f"bench_{path.stem}", path)
        assert spec is not None and spec.loader is not None
        spec.loader.exec_module(importlib.util.module_from_spec(spec))


def source_actor_classes() -> list[type[Actor]]:
    for module in pkgutil.walk_packages(zafka.__path__, "zafka."):
        importlib.import_module(module.name)
    load_benchmarks_with_actors()
    found, todo = [], [Actor]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo += cls.__subclasses__()
    ours = ("zafka.", "bench_")
    return sorted({c for c in found if c.__module__.startswith(ours)}, key=str)


def envelope_methods(cls: type[Actor]) -> set[str]:
    """The methods of `cls` shaped as handlers: `on_<something>(self, envelope)`."""
    names = set()
    for name, fn in inspect.getmembers(cls, inspect.isfunction):
        params = list(inspect.signature(fn).parameters)
        shaped = name.startswith("on_") and params == ["self", "envelope"]
        if shaped and name not in NOT_HANDLERS:
            names.add(name)
    return names


ACTORS = source_actor_classes()


def test_the_broker_and_client_actors_are_all_found() -> None:
    names = {cls.__name__ for cls in ACTORS}
    assert {"BrokerActor", "PartitionActor", "GroupCoordinatorActor", "OffsetsLoader"} <= names
    assert {"ClientActor", "SenderActor", "FetcherActor", "GroupMemberActor"} <= names
    assert {"Sink", "Ponger"} <= names  # the benchmarks' actors too


@pytest.mark.parametrize("cls", ACTORS, ids=lambda cls: cls.__name__)
def test_every_accepted_type_has_a_handler(cls: type[Actor]) -> None:
    for kind, name in cls.dispatch_table.items():
        assert isinstance(kind, type), kind
        assert callable(getattr(cls, name, None)), f"{cls.__name__}: {kind.__name__} -> {name}"


@pytest.mark.parametrize("cls", ACTORS, ids=lambda cls: cls.__name__)
def test_every_handler_has_a_message_type(cls: type[Actor]) -> None:
    unlisted = envelope_methods(cls) - set(cls.dispatch_table.values())
    assert unlisted == set(), f"{cls.__name__} handlers missing from HANDLERS: {unlisted}"


def test_a_handler_left_out_of_the_table_is_found() -> None:
    class Forgetful(Actor):
        def on_ping(self, envelope: object) -> None: ...

        def on_fetch_request(self, envelope: object) -> None: ...

    assert envelope_methods(Forgetful) - set(Forgetful.dispatch_table.values()) == {
        "on_fetch_request"
    }
