"""The only place bytes become messages (and messages bytes). See docs/PROTOCOL.md.

A message is one ZeroMQ multipart message: frame 0 is the msgpack header
`[version, type, correlation_id, sender, target, epoch, reply, body]`, then one raw frame per
Frame field of the message, in declaration order. Payload buffers are passed through as they
are, never copied or re-encoded.

`decode` enforces the wire limits before it unpacks anything and turns every malformation
into a DecodeError that carries whatever routing it could read, so the runtime can answer
exactly once (see "Bad input" in docs/PROTOCOL.md).
"""

from __future__ import annotations

import msgpack

from zafka import limits
from zafka.errors import ZafkaError
from zafka.transport import admin, client, control, controller, group, replication
from zafka.transport.envelope import NO_EPOCH, PROTOCOL_VERSION, Envelope, split_address
from zafka.transport.schema import check_str, clip, from_wire, to_wire

# The modules whose messages the codec knows (importing them registers their messages).
FAMILIES = (control, client, admin, group, replication, controller)
HEADER_FIELDS = ("version", "type", "correlation_id", "sender", "target", "epoch", "reply", "body")
CORRELATION_ID_MAX = 2**63 - 1
EPOCH_MAX = 2**31 - 1
_UNPACK_OPTIONS = {
    "use_list": False,
    "raw": False,
    "strict_map_key": True,
    "max_str_len": limits.string_bytes_max,
    "max_bin_len": limits.string_bytes_max,
    "max_array_len": limits.collection_items_max,
    "max_map_len": limits.collection_items_max,
    "max_ext_len": 0,
}
_UNPACK_ERRORS = (ValueError, TypeError, BufferError, msgpack.UnpackException)


class DecodeError(ZafkaError):
    """Input that is not a valid message, with the routing that could be read from it
    (None where it could not: then there is nobody to answer)."""

    def __init__(
        self,
        name: str,
        detail: str = "",
        *,
        correlation_id: int | None = None,
        sender: str | None = None,
        target: str | None = None,
        reply: bool | None = None,
    ) -> None:
        super().__init__(name, detail)
        self.correlation_id = correlation_id
        self.sender = sender
        self.target = target
        self.reply = reply  # the input claimed to be a reply: never answer it


def encode(env: Envelope) -> list[bytes | memoryview]:
    """The frames of `env`: the msgpack header, then its payload frames (uncopied)."""
    _check_version(env.version)
    _check_routing(env.correlation_id, env.sender, env.target, env.reply)
    body, frames = to_wire(env.message)  # type: ignore[arg-type]
    _check_epoch(type(env.message).EPOCH, env.epoch)
    message_type = type(env.message).__name__
    fields = [env.version, message_type, env.correlation_id, env.sender, env.target]
    header = msgpack.packb([*fields, env.epoch, env.reply, body])
    if len(header) > limits.header_bytes_max:
        detail = f"header of {len(header)} bytes > header_bytes_max {limits.header_bytes_max}"
        raise ZafkaError("MESSAGE_TOO_LARGE", detail)
    return [header, *(memoryview(f) if isinstance(f, bytearray) else f for f in frames)]


def decode(frames: object) -> Envelope:
    """The envelope in `frames` (bytes, memoryview or zmq.Frame-like objects with `.buffer`).
    Raises DecodeError, and nothing else, for any input that is not a valid message."""
    buffers = _buffers(frames)
    try:
        header = msgpack.unpackb(buffers[0], **_UNPACK_OPTIONS)
    except _UNPACK_ERRORS as exc:
        detail = f"header is not msgpack: {type(exc).__name__}: {str(exc)[:80]}"
        raise DecodeError("INVALID_REQUEST", detail) from None
    try:
        return _envelope(header, buffers[1:])
    except ZafkaError as err:
        raise DecodeError(err.error.name, err.detail, **_routing(header)) from None


def _buffers(frames: object) -> list[bytes | bytearray | memoryview]:
    """Plain buffers for every frame, with the frame-count and header-size limits applied."""
    if not isinstance(frames, list | tuple) or not frames:
        raise DecodeError("INVALID_REQUEST", "a message needs at least the header frame")
    count, most = len(frames) - 1, limits.payload_frames_max
    if count > most:
        raise DecodeError("INVALID_REQUEST", f"{count} payload frames > payload_frames_max {most}")
    buffers = [_buffer(frame) for frame in frames]
    size, most = len(buffers[0]), limits.header_bytes_max  # views are 1-D bytes by now
    if size > most:
        raise DecodeError("INVALID_REQUEST", f"header of {size} bytes > header_bytes_max {most}")
    return buffers


def _buffer(frame: object) -> bytes | bytearray | memoryview:
    """The frame's bytes without a copy: bytes-like as they are, zmq.Frame by its `.buffer`."""
    if isinstance(frame, bytes | bytearray):
        return frame
    view = frame if isinstance(frame, memoryview) else getattr(frame, "buffer", None)
    try:
        if isinstance(view, memoryview) and view.c_contiguous:
            return view if view.format == "B" and view.ndim == 1 else view.cast("B")
    except ValueError:
        pass  # a released view
    detail = f"a frame must be a contiguous buffer, got {type(frame).__name__}"
    raise DecodeError("INVALID_REQUEST", detail)


def _envelope(header: object, payload: list[bytes | bytearray | memoryview]) -> Envelope:
    if not isinstance(header, tuple):
        raise ZafkaError("INVALID_REQUEST", f"header must be a msgpack array, got {clip(header)}")
    if header:
        _check_version(header[0])
    if len(header) != len(HEADER_FIELDS):
        detail = f"header must have {len(HEADER_FIELDS)} fields, got {len(header)}"
        raise ZafkaError("INVALID_REQUEST", detail)
    version, type_name, correlation_id, sender, target, epoch, reply, body = header
    _check_routing(correlation_id, sender, target, reply)
    message = from_wire(type_name, body, payload)
    _check_epoch(type(message).EPOCH, epoch)
    return Envelope(sender, target, message, correlation_id, epoch, reply, version)


def _check_version(version: object) -> None:
    if not isinstance(version, int) or isinstance(version, bool):
        raise ZafkaError("INVALID_REQUEST", f"header: version must be an int, got {clip(version)}")
    if version != PROTOCOL_VERSION:
        detail = f"protocol version {clip(version)}; this peer speaks {PROTOCOL_VERSION}"
        raise ZafkaError("UNSUPPORTED_VERSION", detail)


def _check_routing(correlation_id: object, sender: object, target: object, reply: object) -> None:
    problem = None
    if not _int_in(correlation_id, 0, CORRELATION_ID_MAX):
        problem = f"correlation_id must be an int in 0..{CORRELATION_ID_MAX}"
    elif _address(sender) is None:
        problem = "sender must be an address node/actor"
    elif _address(target) is None:
        problem = "target must be an address node/actor"
    elif not isinstance(reply, bool):
        problem = "reply must be a bool"
    elif reply and correlation_id == 0:
        problem = "a reply needs the correlation_id of its call"
    if problem is not None:
        raise ZafkaError("INVALID_REQUEST", f"header: {problem}")


def _check_epoch(kind: str | None, epoch: object) -> None:
    if kind is None and epoch != NO_EPOCH:
        raise ZafkaError("INVALID_REQUEST", f"header: epoch must be {NO_EPOCH} (message has none)")
    if not _int_in(epoch, NO_EPOCH, EPOCH_MAX):
        raise ZafkaError("INVALID_REQUEST", f"header: epoch must be an int in -1..{EPOCH_MAX}")


def _routing(header: object) -> dict[str, object]:
    """What can be read of the routing fields (positions 2, 3, 4 and 6 in every version)."""
    fields = header if isinstance(header, tuple) else ()
    correlation_id, sender, target, reply = (
        fields[i] if len(fields) > i else None for i in (2, 3, 4, 6)
    )
    if not _int_in(correlation_id, 0, CORRELATION_ID_MAX):
        correlation_id = None
    return {
        "correlation_id": correlation_id,
        "sender": _address(sender),
        "target": _address(target),
        "reply": reply if isinstance(reply, bool) else None,
    }


def _int_in(value: object, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _address(value: object) -> str | None:
    if check_str(value) is not None:
        return None
    try:
        split_address(value)  # type: ignore[arg-type]
    except ValueError:
        return None
    return value  # type: ignore[return-value]
