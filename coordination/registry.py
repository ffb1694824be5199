"""Registration of a live process as an ephemeral znode that survives session loss.

An ephemeral znode lives as long as the ZooKeeper session that created it. When the session
expires (LOST), kazoo opens a new session on its own; `EphemeralRegistration` then creates the
znode again under that new session. Listeners run on kazoo's event thread and must not block,
so the re-registration is handed to kazoo's handler to run beside it.
"""

from __future__ import annotations

import threading

from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import NodeExistsError


class EphemeralRegistration:
    """Keeps `path` present with `data` as an ephemeral znode of `client`'s current session."""

    def __init__(self, client: KazooClient, path: str, data: bytes) -> None:
        self._client = client
        self._path = path
        self._data = data
        self._lost = False
        self.registered = threading.Event()  # set while the znode is believed present
        self.sessions_lost = 0  # how many sessions expired under this registration

    def start(self) -> None:
        """Create the znode now (the client must be connected) and watch the session."""
        self._client.add_listener(self._on_state)
        self._register()

    def stop(self) -> None:
        """Stop re-registering and remove the znode if this session still holds it."""
        self._client.remove_listener(self._on_state)
        self.registered.clear()
        if self._client.connected and self._owned_by_this_session():
            self._client.delete(self._path)

    def _register(self) -> None:
        try:
            self._client.create(self._path, self._data, ephemeral=True, makepath=True)
        except NodeExistsError:
            if not self._owned_by_this_session():
                raise  # another live process holds this identity: refuse to share it
        self.registered.set()

    def _owned_by_this_session(self) -> bool:
        stat = self._client.exists(self._path)
        return stat is not None and stat.ephemeralOwner == self._client.client_id[0]

    def _on_state(self, state: str) -> None:
        if state == KazooState.LOST:
            self._lost = True
            self.sessions_lost += 1
            self.registered.clear()
        elif state == KazooState.CONNECTED and self._lost:
            self._lost = False
            self._client.handler.spawn(self._register)
