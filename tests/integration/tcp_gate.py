"""A TCP forwarder on 127.0.0.1 that a test can shut (cutting every connection through it
and refusing new ones) and open again: a network fault between one client and a server."""

from __future__ import annotations

import selectors
import socket
import threading

CHUNK_BYTES = 64 * 1024
POLL_S = 0.05  # how often the forwarding thread looks at the gate's state


class TcpGate:
    """Forwards 127.0.0.1:`port` to 127.0.0.1:`target_port` while open."""

    def __init__(self, target_port: int) -> None:
        self._target_port = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._open = threading.Event()
        self._open.set()
        self._stop = threading.Event()
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ)
        self._peers: dict[socket.socket, socket.socket] = {}
        self._cut_done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def shut(self) -> None:
        """Cut every connection (done when this returns) and refuse new ones until `open`."""
        self._cut_done.clear()
        self._open.clear()
        if not self._cut_done.wait(5):
            raise TimeoutError("the gate did not cut its connections within 5 s")

    def open(self) -> None:
        self._open.set()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for sock in list(self._peers):
            sock.close()
        self._listener.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self._open.is_set() and not self._cut_done.is_set():
                self._cut_all()
            for key, _ in self._selector.select(POLL_S):
                if key.fileobj is self._listener:
                    self._accept()
                else:
                    self._forward(key.fileobj)

    def _accept(self) -> None:
        client, _ = self._listener.accept()
        if not self._open.is_set():
            client.close()  # refused: the client sees its connection drop at once
            return
        server = socket.create_connection(("127.0.0.1", self._target_port))
        for a, b in ((client, server), (server, client)):
            self._peers[a] = b
            self._selector.register(a, selectors.EVENT_READ)

    def _forward(self, sock: socket.socket) -> None:
        if sock not in self._peers:
            return  # dropped earlier in this round, with its peer
        try:
            data = sock.recv(CHUNK_BYTES)
        except OSError:
            data = b""
        if not data or not self._open.is_set():
            self._drop(sock)
            return
        try:
            self._peers[sock].sendall(data)
        except OSError:
            self._drop(sock)

    def _drop(self, sock: socket.socket) -> None:
        other = self._peers.pop(sock, None)
        if other is not None:
            self._peers.pop(other, None)
        for s in (sock, other):
            if s is not None:
                self._selector.unregister(s)
                s.close()

    def _cut_all(self) -> None:
        for sock in list(self._peers):
            if sock in self._peers:
                self._drop(sock)
        self._cut_done.set()
