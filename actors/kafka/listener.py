"""KafkaListener: the TCP side of the Kafka protocol listener, one thread, no actor.

It accepts Kafka clients on 127.0.0.1:PORT, cuts each connection's bytes into frames (a
size prefix beyond `limits.kafka_request_bytes_max` closes the connection before anything is
allocated, as Kafka does), decodes them (transport/kafka/wire.py) and hands each request to
`submit(connection, sequence, request)`, which posts it to the broker's runtime. Answers come
back through `answer` (thread-safe) in any order and go out in request order, as Kafka
clients require. A request that cannot be parsed closes its connection; one for an API or
version not served gets that API's error answer.

Back pressure: a connection with `limits.kafka_requests_in_flight_max` requests unanswered,
or `limits.kafka_response_bytes_max` bytes waiting to be written, is not read until it
drains (TCP then pushes back on the client).
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import logging
import selectors
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from zafka import limits
from zafka.transport.kafka import wire

log = logging.getLogger(__name__)
RECV_BYTES = 256 * 1024
Submit = Callable[[int, int, wire.Request], None]


@dataclass(eq=False)
class _Connection:
    id: int  # never reused (a file descriptor number is)
    sock: socket.socket
    peer: str
    inbox: bytearray = field(default_factory=bytearray)
    outbox: bytearray = field(default_factory=bytearray)
    next_in: int = 0  # the sequence number the next request gets
    next_out: int = 0  # the sequence number whose answer goes out next
    held: dict[int, bytes | None] = field(default_factory=dict)  # answers out of turn
    close_after: int | None = None  # close once the answers before this one are out

    @property
    def unanswered(self) -> int:
        return self.next_in - self.next_out


class KafkaListener:
    def __init__(self, host: str, port: int, submit: Submit) -> None:
        self._server = socket.create_server((host, port))
        self._server.setblocking(False)
        self.port = self._server.getsockname()[1]
        self._submit = submit
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._server, selectors.EVENT_READ, None)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._connections: dict[int, _Connection] = {}  # by id
        self._ids = itertools.count(1)
        self._answers: collections.deque[tuple[int, int, bytes | None]] = collections.deque()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="kafka-listener", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping = True
        self._wake()
        self._thread.join(timeout=limits.process_stop_grace_s)

    def answer(self, connection: int, sequence: int, frame: bytes | None) -> None:
        """The answer to request `sequence` of `connection` (None: none is sent, as for an
        acks=0 produce). Any thread."""
        self._answers.append((connection, sequence, frame))
        self._wake()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):  # a wake-up is already pending, or we are closing
            self._wake_w.send(b"\0")

    # --- the thread ----------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stopping:
                for key, events in self._selector.select(timeout=1.0):
                    self._ready(key, events)
                self._take_answers()
        finally:
            for connection in list(self._connections.values()):
                self._close(connection)
            self._selector.close()
            self._server.close()
            self._wake_r.close()
            self._wake_w.close()

    def _ready(self, key: selectors.SelectorKey, events: int) -> None:
        if key.fileobj is self._server:
            self._accept()
        elif key.fileobj is self._wake_r:
            with contextlib.suppress(BlockingIOError):
                self._wake_r.recv(4096)
        else:
            connection = key.data
            if events & selectors.EVENT_WRITE:
                self._write(connection)
                self._resume(connection)
            if events & selectors.EVENT_READ and connection.sock.fileno() >= 0:
                self._read(connection)

    def _accept(self) -> None:
        try:
            sock, address = self._server.accept()
        except (BlockingIOError, ConnectionAbortedError):
            return
        if len(self._connections) >= limits.kafka_connections_max:
            open_now = len(self._connections)
            log.warning("kafka listener: %s refused: %d connections open", address, open_now)
            sock.close()
            return
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connection = _Connection(next(self._ids), sock, f"{address[0]}:{address[1]}")
        self._connections[connection.id] = connection
        self._selector.register(sock, selectors.EVENT_READ, connection)

    def _read(self, connection: _Connection) -> None:
        try:
            data = connection.sock.recv(RECV_BYTES)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._close(connection)
            return
        connection.inbox += data
        self._cut_frames(connection)

    def _cut_frames(self, connection: _Connection) -> None:
        """Every whole frame the connection may hand on now; error answers made on the way
        go out in their turn (which may let it go on)."""
        while (cut := self._cut_some(connection)) >= 0:
            self._flush(connection)
            if cut == 0 or connection.sock.fileno() < 0:
                return

    def _cut_some(self, connection: _Connection) -> int:
        """Hand on frames until the inbox holds no whole one or the connection must pause;
        how many (-1: it was closed)."""
        inbox, cut = connection.inbox, 0
        while (
            len(inbox) >= wire.SIZE.size
            and connection.close_after is None
            and connection.unanswered < limits.kafka_requests_in_flight_max
        ):
            try:
                size = wire.frame_size(bytes(inbox[: wire.SIZE.size]))
            except ValueError as err:
                log.info("kafka listener: closing %s: %s", connection.peer, err)
                self._close(connection)
                return -1
            if len(inbox) < wire.SIZE.size + size:
                break
            frame = bytes(inbox[wire.SIZE.size : wire.SIZE.size + size])
            del inbox[: wire.SIZE.size + size]
            self._request(connection, frame)
            cut += 1
        return cut

    def _request(self, connection: _Connection, frame: bytes) -> None:
        sequence = connection.next_in
        connection.next_in += 1
        try:
            request = wire.decode_request(frame)
        except wire.RequestError as err:
            log.info("kafka listener: %s: %s", connection.peer, err)
            if err.answer is None:
                connection.close_after = sequence
            else:
                connection.held[sequence] = err.answer
            return
        log.debug("kafka %s: API %s v%s", connection.peer, request.api_key, request.version)
        self._submit(connection.id, sequence, request)

    def _take_answers(self) -> None:
        touched = set()
        while self._answers:
            connection_id, sequence, frame = self._answers.popleft()
            connection = self._connections.get(connection_id)
            if connection is None:
                continue  # its connection closed: the answer is dropped
            connection.held[sequence] = frame
            touched.add(connection)
        for connection in touched:
            self._flush(connection)
            self._resume(connection)

    def _flush(self, connection: _Connection) -> None:
        while connection.next_out in connection.held:
            frame = connection.held.pop(connection.next_out)
            connection.next_out += 1
            if frame is not None:
                connection.outbox += frame
        if connection.close_after == connection.next_out and not connection.outbox:
            self._close(connection)
            return
        self._write(connection)

    def _write(self, connection: _Connection) -> None:
        if connection.outbox:
            try:
                sent = connection.sock.send(connection.outbox)
            except BlockingIOError:
                sent = 0
            except OSError:
                self._close(connection)
                return
            del connection.outbox[:sent]
        if connection.close_after == connection.next_out and not connection.outbox:
            self._close(connection)
            return
        self._interest(connection)

    def _resume(self, connection: _Connection) -> None:
        """Cut the frames a paused connection left in its inbox, once it may go on."""
        if connection.inbox and connection.sock.fileno() >= 0:
            self._cut_frames(connection)

    def _interest(self, connection: _Connection) -> None:
        if connection.sock.fileno() < 0:
            return
        events = 0
        paused = (
            connection.unanswered >= limits.kafka_requests_in_flight_max
            or len(connection.outbox) >= limits.kafka_response_bytes_max
            or connection.close_after is not None
        )
        if not paused:
            events |= selectors.EVENT_READ
        if connection.outbox:
            events |= selectors.EVENT_WRITE
        key = self._selector.get_map().get(connection.sock)
        if events and key is None:
            self._selector.register(connection.sock, events, connection)
        elif events and key.events != events:
            self._selector.modify(connection.sock, events, connection)
        elif not events and key is not None:
            self._selector.unregister(connection.sock)

    def _close(self, connection: _Connection) -> None:
        if connection.sock.fileno() < 0:
            return
        if self._selector.get_map().get(connection.sock) is not None:
            self._selector.unregister(connection.sock)
        self._connections.pop(connection.id, None)
        connection.sock.close()
