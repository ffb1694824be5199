"""The base of every wire message: frozen dataclasses, validated on construction.

A message is a `@dataclass(frozen=True, slots=True)` subclass of `Message`; defining one
registers it under its class name (a duplicate name fails at import). Its field types are
read from the annotations once, when the class is defined, and compiled into checks that run
on every construction; anything unsupported fails at import too. Supported field types:

    int (not bool, int64/uint64 range)   bool   float   str (UTF-8)   bytes (small binary)
    Frame          payload bytes that travel as their own ZeroMQ frame, never in the envelope
    X | None       tuple[X, ...]       dict[str, X]       a nested Message
    TopicPartition (transport/names.py) as a two-item array [topic, partition]

`to_wire` / `from_wire` turn a message into msgpack-able data plus its payload frames and
back; `from_wire` is strict (unknown or missing fields, wrong types, wrong frame count).
Every invalid value raises ZafkaError("INVALID_REQUEST") naming the class and field.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Sequence, Sized
from typing import Annotated, Any, ClassVar, NamedTuple

from zafka import limits
from zafka.errors import ZafkaError
from zafka.transport.names import TopicPartition

Frame = Annotated[bytes | bytearray | memoryview, "payload frame"]
EPOCH_KINDS = ("leader", "group", "controller")
INT_MIN = -(2**63)
INT_MAX = 2**64 - 1  # msgpack carries int64 and uint64

_REGISTRY: dict[str, type[Message]] = {}
_SPECS: dict[type[Message], _Spec] = {}


class Message:
    """Base of every wire message. `EPOCH` names the epoch its envelope carries, if any."""

    __slots__ = ()
    EPOCH: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # dataclass(slots=True) builds a second class with `__slots__`: register that one.
        if "__slots__" in cls.__dict__:
            _register(cls)

    def __post_init__(self) -> None:
        spec = _SPECS.get(type(self))
        if spec is None:
            raise TypeError(f"{type(self).__name__}: use @dataclass(frozen=True, slots=True)")
        for name, check in spec.checks:
            problem = check(getattr(self, name))
            if problem is not None:
                raise ZafkaError("INVALID_REQUEST", f"{spec.name}.{name}{problem}")


def message_types() -> dict[str, type[Message]]:
    """Every registered message class by name (import zafka.transport.codec for all families)."""
    return dict(_REGISTRY)


def to_wire(message: Message) -> tuple[dict[str, object], list[bytes | bytearray | memoryview]]:
    """(body, frames): the non-Frame fields as a msgpack-able map (nested messages as maps)
    and the Frame fields' buffers in declaration order, passed through uncopied."""
    spec = _SPECS.get(type(message))
    if spec is None:
        raise ZafkaError("INVALID_REQUEST", f"not a registered message: {type(message).__name__}")
    return _body(spec, message), [getattr(message, name) for name in spec.frames]


def from_wire(type_name: object, body: object, frames: Sequence[object]) -> Message:
    """The message of type `type_name` from its body map and payload frames, validated."""
    cls = _REGISTRY.get(type_name) if isinstance(type_name, str) else None
    if cls is None:
        raise ZafkaError("INVALID_REQUEST", f"unknown message type {clip(type_name)}")
    spec = _SPECS[cls]
    if len(frames) != len(spec.frames):
        detail = f"{spec.name} takes {len(spec.frames)} payload frames, got {len(frames)}"
        raise ZafkaError("INVALID_REQUEST", detail)
    kwargs = _fields_from_body(spec, body)
    kwargs.update(zip(spec.frames, frames, strict=True))
    return cls(**kwargs)


def clip(value: object, chars: int = 80) -> str:
    """A short description of a value received from a peer, safe to quote in an error
    (containers are named, not printed: they may be huge or thousands of levels deep)."""
    if isinstance(value, str | bytes):
        text = repr(value[:chars])
        return text + "..." if len(value) > chars else text
    if value is None or isinstance(value, bool | float):
        return repr(value)
    if isinstance(value, int) and INT_MIN <= value <= INT_MAX:
        return str(int(value))
    return f"a {type(value).__name__}"


# --- compiled field types -----------------------------------------------------------------


class _Invalid(Exception):
    """A wire value that does not fit its field; carries the problem relative to the field."""


class _Kind(NamedTuple):
    check: Callable[[object], str | None]  # None if the value fits, else the problem
    load: Callable[[object], object] | None  # wire -> value (None: the wire value is the value)
    dump: Callable[[Any], object] | None  # value -> wire (None: the value is its own wire form)
    depth: int  # how deep messages nest inside this type


class _Spec(NamedTuple):
    name: str
    checks: tuple[tuple[str, Callable[[object], str | None]], ...]  # every field
    body: tuple[tuple[str, Callable[[Any], object] | None], ...]  # non-Frame fields, in order
    loads: tuple[tuple[str, Callable[[object], object]], ...]  # fields that need loading
    names: frozenset[str]  # non-Frame field names
    frames: tuple[str, ...]  # Frame field names, in order
    depth: int


def _expected(what: str, value: object) -> str:
    return f": expected {what}, got {type(value).__name__}"


def _check_int(v: object) -> str | None:
    if isinstance(v, int) and not isinstance(v, bool):
        return None if INT_MIN <= v <= INT_MAX else ": int out of the int64/uint64 range"
    return _expected("int", v)


def _check_bool(v: object) -> str | None:
    return None if isinstance(v, bool) else _expected("bool", v)


def _check_float(v: object) -> str | None:
    return None if isinstance(v, float) else _expected("float", v)


def check_str(v: object) -> str | None:
    """None if `v` is a str the wire can carry (UTF-8, <= string_bytes_max), else the problem."""
    if not isinstance(v, str):
        return _expected("str", v)
    if v.isascii():
        size = len(v)
    else:
        try:
            size = len(v.encode())
        except UnicodeEncodeError:
            return ": str is not valid UTF-8 (lone surrogate)"
    if size > limits.string_bytes_max:
        return f": str of {size} bytes > string_bytes_max {limits.string_bytes_max}"
    return None


def _check_bytes(v: object) -> str | None:
    if not isinstance(v, bytes):
        return _expected("bytes", v)
    if len(v) > limits.string_bytes_max:
        return f": {len(v)} bytes > string_bytes_max {limits.string_bytes_max}"
    return None


def _check_frame(v: object) -> str | None:
    if not isinstance(v, bytes | bytearray | memoryview):
        return _expected("bytes, bytearray or memoryview", v)
    size = v.nbytes if isinstance(v, memoryview) else len(v)
    if size > limits.frame_bytes_max:
        return f": frame of {size} bytes > frame_bytes_max {limits.frame_bytes_max}"
    return None


_SCALARS: dict[object, Callable[[object], str | None]] = {
    int: _check_int,
    bool: _check_bool,
    float: _check_float,
    str: check_str,
    bytes: _check_bytes,
}


def _optional(inner: _Kind) -> _Kind:
    def check(v: object) -> str | None:
        return None if v is None else inner.check(v)

    def load(v: object) -> object:
        return None if v is None else inner.load(v)  # type: ignore[misc]

    def dump(v: Any) -> object:
        return None if v is None else inner.dump(v)  # type: ignore[misc]

    return _Kind(check, inner.load and load, inner.dump and dump, inner.depth)


def _too_many(v: Sized) -> str:
    return f": {len(v)} items > collection_items_max {limits.collection_items_max}"


def _sequence(item: _Kind) -> _Kind:
    def check(v: object) -> str | None:
        if not isinstance(v, tuple):
            return _expected("tuple", v)
        if len(v) > limits.collection_items_max:
            return _too_many(v)
        for i, x in enumerate(v):
            problem = item.check(x)
            if problem is not None:
                return f"[{i}]{problem}"
        return None

    def load(v: object) -> object:
        if not isinstance(v, tuple):
            raise _Invalid(_expected("array", v))
        out = []
        for i, x in enumerate(v):
            try:
                out.append(item.load(x))  # type: ignore[misc]
            except _Invalid as err:
                raise _Invalid(f"[{i}]{err}") from None
        return tuple(out)

    def dump(v: tuple[Any, ...]) -> object:
        return tuple(map(item.dump, v))  # type: ignore[arg-type]

    return _Kind(check, item.load and load, item.dump and dump, item.depth)


def _mapping(value: _Kind) -> _Kind:
    def check(v: object) -> str | None:
        if not isinstance(v, dict):
            return _expected("dict", v)
        if len(v) > limits.collection_items_max:
            return _too_many(v)
        for k, x in v.items():
            problem = check_str(k) or value.check(x)
            if problem is not None:
                return f"[{clip(k, 40)}]{problem}"
        return None

    def load(v: object) -> object:
        if not isinstance(v, dict):
            raise _Invalid(_expected("map", v))
        out = {}
        for k, x in v.items():
            try:
                out[k] = value.load(x)  # type: ignore[misc]
            except _Invalid as err:
                raise _Invalid(f"[{clip(k, 40)}]{err}") from None
        return out

    def dump(v: dict[str, Any]) -> object:
        return {k: value.dump(x) for k, x in v.items()}  # type: ignore[misc]

    return _Kind(check, value.load and load, value.dump and dump, value.depth)


def _nested(cls: type[Message]) -> _Kind:
    spec = _SPECS[cls]

    def check(v: object) -> str | None:
        return None if isinstance(v, cls) else _expected(cls.__name__, v)

    def load(v: object) -> object:
        if not isinstance(v, dict):
            raise _Invalid(_expected(f"map ({cls.__name__})", v))
        return cls(**_fields_from_body(spec, v))

    def dump(v: Message) -> object:
        return _body(spec, v)

    return _Kind(check, load, dump, spec.depth + 1)


def _check_topic_partition(v: object) -> str | None:
    if not isinstance(v, TopicPartition):
        return _expected("TopicPartition", v)
    problem = check_str(v.topic)
    if problem is not None:
        return f".topic{problem}"
    if not isinstance(v.partition, int) or isinstance(v.partition, bool) or v.partition < 0:
        return f".partition: expected an int >= 0, got {clip(v.partition)}"
    return None


def _load_topic_partition(v: object) -> object:
    if not isinstance(v, tuple) or len(v) != 2:
        raise _Invalid(_expected("[topic, partition]", v))
    tp = TopicPartition(*v)
    problem = _check_topic_partition(tp)
    if problem is not None:
        raise _Invalid(problem)
    return tp


_TOPIC_PARTITION = _Kind(_check_topic_partition, _load_topic_partition, tuple, 0)


def _compile(tp: object, where: str) -> _Kind:
    """The checks for one annotation; TypeError (at import) if it is not supported."""
    scalar = _SCALARS.get(tp)
    if scalar is not None:
        return _Kind(scalar, None, None, 0)
    if tp is TopicPartition:
        return _TOPIC_PARTITION
    if isinstance(tp, type) and issubclass(tp, Message) and tp in _SPECS:
        if _SPECS[tp].frames:
            raise TypeError(f"{where}: {tp.__name__} has Frame fields and cannot be nested")
        return _nested(tp)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType) and len(args) == 2 and type(None) in args:
        return _optional(_compile(args[0] if args[1] is type(None) else args[1], where))
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return _sequence(_compile(args[0], where))
    if origin is dict and args and args[0] is str:
        return _mapping(_compile(args[1], where))
    raise TypeError(f"{where}: unsupported field type {tp!r}")


# --- registration -------------------------------------------------------------------------


def _register(cls: type[Message]) -> None:
    name = cls.__name__
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or "__dataclass_fields__" not in cls.__dict__:
        raise TypeError(f"{name}: a Message must be @dataclass(frozen=True, slots=True)")
    if name in _REGISTRY:
        raise TypeError(f"duplicate message type {name} ({_REGISTRY[name].__module__})")
    if cls.EPOCH is not None and cls.EPOCH not in EPOCH_KINDS:
        raise TypeError(f"{name}.EPOCH must be None or one of {EPOCH_KINDS}")
    spec = _compile_spec(cls)
    if spec.depth > limits.nesting_depth_max:
        detail = f"nests messages {spec.depth} deep > nesting_depth_max {limits.nesting_depth_max}"
        raise TypeError(f"{name} {detail}")
    _SPECS[cls] = spec
    _REGISTRY[name] = cls


def _compile_spec(cls: type[Message]) -> _Spec:
    hints = typing.get_type_hints(cls, include_extras=True)
    checks, body, loads, frames, depth = [], [], [], [], 0
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        where, tp = f"{cls.__name__}.{field.name}", hints[field.name]
        if not field.init:
            raise TypeError(f"{where}: every message field must be an __init__ argument")
        if tp == Frame:
            checks.append((field.name, _check_frame))
            frames.append(field.name)
            continue
        kind = _compile(tp, where)
        checks.append((field.name, kind.check))
        body.append((field.name, kind.dump))
        if kind.load is not None:
            loads.append((field.name, kind.load))
        depth = max(depth, kind.depth)
    if len(frames) > limits.payload_frames_max:
        raise TypeError(f"{cls.__name__}: more Frame fields than payload_frames_max")
    names = frozenset(name for name, _ in body)
    return _Spec(
        cls.__name__, tuple(checks), tuple(body), tuple(loads), names, tuple(frames), depth
    )


# --- wire form ----------------------------------------------------------------------------


def _body(spec: _Spec, message: Message) -> dict[str, object]:
    out = {}
    for name, dump in spec.body:
        value = getattr(message, name)
        out[name] = value if dump is None else dump(value)
    return out


def _fields_from_body(spec: _Spec, body: object) -> dict[str, object]:
    """Constructor arguments from a body map: exactly the declared fields, nested maps loaded."""
    if not isinstance(body, dict):
        raise ZafkaError("INVALID_REQUEST", f"{spec.name}: body{_expected('map', body)}")
    if body.keys() != spec.names:
        unknown = ", ".join(clip(k, 40) for k in list(body.keys() - spec.names)[:5])
        missing = ", ".join(sorted(spec.names - body.keys()))
        detail = f"{spec.name}: unknown fields [{unknown}], missing fields [{missing}]"
        raise ZafkaError("INVALID_REQUEST", detail)
    kwargs = dict(body)
    for name, load in spec.loads:
        try:
            kwargs[name] = load(kwargs[name])
        except _Invalid as err:
            raise ZafkaError("INVALID_REQUEST", f"{spec.name}.{name}{err}") from None
    return kwargs
