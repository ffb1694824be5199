"""The import layers of docs/ARCHITECTURE.md, checked on the source (every import statement,
also those inside functions): a package imports only the packages below it.

    apps (zafka/*.py: CLI, broker main, launcher, bench)     may import anything
    actors.broker                     -> actors.group, actors.partition, and all below
    actors.controller                 -> coordination, actors.runtime, storage, transport, core
    actors.group, actors.replication  -> actors.partition, actors.runtime, storage, transport, core
    actors.kafka (Kafka listener)     -> actors.runtime, storage, transport, core
    actors.partition                  -> actors.runtime, storage, transport, core
    clients (the SDK)                 -> actors.runtime, storage, transport, core
    actors.runtime                    -> transport, core
    coordination (ZooKeeper)          -> storage.config, transport.names, core
    transport.kafka (Kafka's wire)    -> transport, storage (Kafka batches <-> zafka's), core
    transport, storage                -> core
    core (zafka/errors, limits, ...)  -> nothing of zafka
"""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
PACKAGE_DIRS = {  # import package -> folder (pyproject.toml's package-dir)
    "zafka.actors": "actors",
    "zafka.transport": "transport",
    "zafka.coordination": "coordination",
    "zafka.storage": "storage",
    "zafka.clients": "clients",
}
CORE = (
    "zafka.errors",
    "zafka.limits",
    "zafka.version",
    "zafka.clock",
    "zafka.token_bucket",
    "zafka.backoff",
    "zafka.benchstats",
)
BELOW_ACTORS = ("zafka.storage", "zafka.transport", "zafka.actors.runtime", *CORE)

# layer (a module-name prefix) -> (zafka modules it may import, third-party roots it may not)
LAYERS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "zafka.storage": (("zafka.storage", *CORE), ("zmq", "kazoo", "socket")),
    "zafka.transport": (("zafka.transport", *CORE), ("kazoo",)),
    "zafka.transport.kafka": (("zafka.transport", "zafka.storage", *CORE), ("kazoo", "zmq")),
    "zafka.coordination": (
        ("zafka.coordination", "zafka.storage.config", "zafka.transport.names", *CORE),
        ("zmq",),
    ),
    "zafka.actors.runtime": (("zafka.actors.runtime", "zafka.transport", *CORE), ("kazoo",)),
    "zafka.actors.partition": (("zafka.actors.partition", *BELOW_ACTORS), ("kazoo",)),
    "zafka.actors.group": (
        ("zafka.actors.group", "zafka.actors.partition", *BELOW_ACTORS),
        (),
    ),
    "zafka.actors.replication": (
        ("zafka.actors.replication", "zafka.actors.partition", *BELOW_ACTORS),
        ("kazoo",),
    ),
    "zafka.actors.kafka": (("zafka.actors.kafka", *BELOW_ACTORS), ("kazoo",)),
    "zafka.actors.controller": (
        ("zafka.actors.controller", "zafka.coordination", *BELOW_ACTORS),
        (),
    ),
    "zafka.actors.broker": (("zafka.actors", "zafka.coordination", *BELOW_ACTORS), ()),
    "zafka.clients": (
        ("zafka.clients", "zafka.storage", "zafka.transport", "zafka.actors.runtime", *CORE),
        ("kazoo",),
    ),
    "zafka.actors": ((), ()),  # its __init__; the actor families are the layers above
    **{module: (CORE, ()) for module in CORE},
}


def module_files() -> dict[str, pathlib.Path]:
    """Every source module of the `zafka` package by its dotted name."""
    files = {f"zafka.{path.stem}": path for path in (ROOT / "zafka").glob("*.py")}
    for package, folder in PACKAGE_DIRS.items():
        for path in (ROOT / folder).rglob("*.py"):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            files[".".join((package, *parts))] = path
    return {name.removesuffix(".__init__"): path for name, path in files.items()}


def imported_modules(module: str, source: str) -> set[str]:
    """The dotted names `source` imports, relative imports resolved against `module`."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")[: -node.level]
                base = ".".join([*anchor, base] if base else anchor)
            if base == "zafka":  # `from zafka import limits` names modules
                found.update(f"zafka.{alias.name}" for alias in node.names)
            else:
                found.add(base)
    return found


def under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


def layer_of(module: str) -> str | None:
    """The most specific layer `module` belongs to; None for the apps (no rule)."""
    matches = [layer for layer in LAYERS if under(module, (layer,))]
    return max(matches, key=len) if matches else None


def crossings(module: str, source: str) -> list[str]:
    """The imports in `module`'s `source` that its layer does not allow."""
    layer = layer_of(module)
    if layer is None:
        return []
    allowed, banned = LAYERS[layer]
    names = sorted(imported_modules(module, source))
    inside = [name for name in names if under(name, ("zafka",)) and name != "zafka"]
    wrong = [name for name in inside if not under(name, allowed)]
    wrong += [name for name in names if under(name, banned)]
    return [f"{module} imports {name}" for name in wrong]


def test_every_module_has_a_layer_or_is_an_app() -> None:
    apps = [path for name, path in module_files().items() if layer_of(name) is None]
    assert apps and all(path.parent == ROOT / "zafka" for path in apps), apps


@pytest.mark.parametrize("module", sorted(module_files()))
def test_imports_follow_the_layers(module: str) -> None:
    assert crossings(module, module_files()[module].read_text()) == []


@pytest.mark.parametrize(
    ("module", "line"),
    [
        ("zafka.clients.consumer", "from zafka.actors.broker.actor import BrokerActor"),
        ("zafka.clients.io", "    from zafka.coordination.registry import BrokerRegistry"),
        ("zafka.clients.admin", "import kazoo.client"),
        ("zafka.storage.log", "import socket"),
        ("zafka.storage.segment", "from ..transport import codec"),
        ("zafka.coordination.topics", "from zafka.transport.admin import CreateTopicsResponse"),
        ("zafka.transport.codec", "from zafka.clients.producer import Producer"),
        ("zafka.errors", "from zafka import storage"),
    ],
)
def test_a_crossing_import_is_found(module: str, line: str) -> None:
    source = "def f():\n" + line if line.startswith(" ") else line
    assert crossings(module, source) == [f"{module} imports {imported(module, line)}"]


def imported(module: str, line: str) -> str:
    (name,) = imported_modules(module, line.strip())
    return name
