"""A client's I/O: one background thread running an actor runtime, and the client actor.

Every Producer, Consumer and Admin owns one `ClientIO`: a `Runtime` on its own node
(`<kind>-<random hex>`) with a `ZmqTransport`, hosting one `ClientActor` that does all of
the client's networking. User threads never touch sockets: they hand work to the I/O thread
with `ClientIO.submit` (through the thread-safe `Runtime.post`, which wakes the loop at
once) and get a `concurrent.futures.Future` back.

The client actor bootstraps from an endpoint it knows only by address: it connects to it
under the node name `*` and asks `*/broker` for metadata; the answer names every broker
(`broker-<id>`) with its endpoint, and from then on requests go to the broker that leads
the partition, `broker-<id>/<topic>-<partition>`, or to any broker's `broker` actor. A
failed metadata request moves on to the next bootstrap server.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import Future, InvalidStateError
from typing import Any, TypeVar

from zafka import limits
from zafka.actors.runtime.actor import Actor, answer_of
from zafka.actors.runtime.loop import Runtime
from zafka.clients.metadata import ClusterMetadata, parse_bootstrap
from zafka.errors import ZafkaError
from zafka.transport.client import MetadataRequest, MetadataResponse
from zafka.transport.envelope import ANY_NODE, Envelope
from zafka.transport.names import broker_node
from zafka.transport.zmq_transport import ZmqTransport

log = logging.getLogger(__name__)

CLIENT_ACTOR = "client"
T = TypeVar("T")
MetadataCallback = Callable[[ZafkaError | None], None]


class ClientActor(Actor):
    """The client's one actor: metadata, links to brokers, and calls for user threads.
    Producer and Consumer subclass it with their own work."""

    def __init__(self, bootstrap: list[str], transport: ZmqTransport, request_timeout_ms: int):
        super().__init__(CLIENT_ACTOR)
        self.metadata = ClusterMetadata()
        self.request_timeout_ms = request_timeout_ms
        self._transport = transport
        self._bootstrap = itertools.cycle(bootstrap)
        self._bootstrap_endpoint = ""
        self._linked: dict[int, str] = {}  # broker id -> endpoint we connected to
        self._topics: set[str] = set()  # topics this client asks metadata for
        self._waiting: list[MetadataCallback] = []  # callers of the refresh in flight
        self._refreshing = False
        self._next_broker = itertools.count()
        self._failures = 0  # metadata requests failed in a row
        self._backoffs: list[tuple[int, Callable[[], None]]] = []  # (due ms, what): `later`

    def on_start(self) -> None:
        self._next_bootstrap()

    def _next_bootstrap(self) -> None:
        """Forget the brokers we knew; ask the next bootstrap server. (Never a bootstrap link
        and a broker link at once: two connections with one routing id to one broker would
        take the id from each other at every reconnect, losing replies.)"""
        for broker_id in self._linked:
            self._transport.disconnect(broker_node(broker_id))
        self._linked.clear()
        self.metadata.brokers = {}  # unlinked: no leader or coordinator known until metadata
        self._bootstrap_endpoint = next(self._bootstrap)
        self._transport.connect(ANY_NODE, self._bootstrap_endpoint)

    # --- metadata -------------------------------------------------------------------------

    def any_broker(self) -> str:
        """A node to send cluster-wide requests to: a known broker, else the bootstrap link."""
        ids = sorted(self._linked)
        if not ids:
            return ANY_NODE
        return broker_node(ids[next(self._next_broker) % len(ids)])

    def refresh_metadata(self, topics: Iterable[str], done: MetadataCallback) -> None:
        """Ask for metadata of `topics` and of every topic asked before; `done(None)` once
        the answer is in, `done(error)` if there was none. Refreshes in flight are shared."""
        self._topics.update(topics)
        self._waiting.append(done)
        if self._refreshing:
            return
        self._refreshing = True
        target = f"{self.any_broker()}/broker"
        request = MetadataRequest(topics=tuple(sorted(self._topics)))
        try:
            self.call(target, request, self.request_timeout_ms, self._on_metadata_reply)
        except ZafkaError as err:  # BUSY, or a request that cannot be encoded
            self._on_metadata_reply(err)

    def _on_metadata_reply(self, reply: Envelope | ZafkaError) -> None:
        self._refreshing = False
        waiting, self._waiting = self._waiting, []
        response = answer_of(reply, "metadata")
        error = response if isinstance(response, ZafkaError) else None
        if error is None:
            self._failures = 0
            self.metadata.update(response)
            self._link_brokers()
            self.on_metadata_updated()
        else:
            log.info("%s: metadata request failed: %s", self.address, error)
            self._failures += 1
            if self._failures >= len(self._linked):  # each known broker failed: start over
                self._failures = 0
                self._next_bootstrap()
        for done in waiting:
            done(error)

    def on_metadata_updated(self) -> None:
        """A refresh brought new metadata: subclasses react (e.g. retry what waited)."""

    def _link_brokers(self) -> None:
        """Links to the brokers of the last metadata answer, and to no other."""
        for broker_id in [b for b in self._linked if b not in self.metadata.brokers]:
            self._transport.disconnect(broker_node(broker_id))
            del self._linked[broker_id]
        for broker_id, endpoint in self.metadata.brokers.items():
            if self._linked.get(broker_id) != endpoint:
                self._transport.connect(broker_node(broker_id), endpoint)
                self._linked[broker_id] = endpoint
        # Drop the bootstrap link (see _next_bootstrap), once no reply is due on it.
        awaited = any(target.startswith(f"{ANY_NODE}/") for _, target in self._pending.values())
        if self._linked and not awaited:
            self._transport.disconnect(ANY_NODE)

    def later(self, delay_ms: int, fn: Callable[[], None]) -> None:
        """Run `fn` on this thread in `delay_ms` (a retry's backoff)."""
        self._backoffs.append((self._runtime().now_ms() + delay_ms, fn))
        self._arm_later()

    def _arm_later(self) -> None:
        if self._backoffs:
            due = min(d for d, _ in self._backoffs)
            self.set_timer("later", max(due - self._runtime().now_ms(), 0))

    def on_later_timeout(self, now_ms: int) -> None:
        due = [fn for d, fn in self._backoffs if d <= now_ms]
        self._backoffs = [(d, fn) for d, fn in self._backoffs if d > now_ms]
        for fn in due:
            fn()
        self._arm_later()

    def fetch_cluster(self, topics: tuple[str, ...] | None, future: Future) -> None:
        """Answer `future` with a MetadataResponse for `topics` (None: every topic)."""
        target = f"{self.any_broker()}/broker"

        def on_reply(reply: Envelope | ZafkaError) -> None:
            response = answer_of(reply, "metadata")
            if isinstance(response, ZafkaError):
                future.set_exception(response)
                return
            assert isinstance(response, MetadataResponse)
            self.metadata.update(response, complete=topics is None)
            self._link_brokers()
            future.set_result(response)

        self.call(target, MetadataRequest(topics=topics), self.request_timeout_ms, on_reply)

    def request(
        self, target: str, message: object, future: Future, timeout_ms: int = 0, context: str = ""
    ) -> None:
        """Call `target`; `future` gets the response message, or the ZafkaError of the call
        or of the response's error code (`context`: what was asked, for its detail)."""

        def on_reply(reply: Envelope | ZafkaError) -> None:
            response = answer_of(reply, context)
            if isinstance(response, ZafkaError):
                future.set_exception(response)
            else:
                future.set_result(response)

        self.call(target, message, timeout_ms or self.request_timeout_ms, on_reply)


class ClientIO:
    """The I/O thread of one client (see the module docstring). `make_actor(bootstrap,
    transport)` builds the client actor; it is spawned before the thread starts. `on_exit()`
    runs on the I/O thread when it ends (closed, or failed), after its runtime stopped."""

    def __init__(
        self,
        kind: str,
        bootstrap_servers: str | Iterable[str],
        make_actor: Callable[[list[str], ZmqTransport], ClientActor],
        on_exit: Callable[[], object] | None = None,
    ) -> None:
        bootstrap = parse_bootstrap(bootstrap_servers)
        self.node = f"{kind}-{uuid.uuid4().hex[:12]}"
        self.transport = ZmqTransport(self.node)
        self.runtime = Runtime(self.node, self.transport)
        self.runtime.spawn(lambda: make_actor(bootstrap, self.transport))
        self._on_exit = on_exit
        self._submitted: set[Future] = set()  # submitted, not done: failed if the thread ends
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=self.node, daemon=True)
        self._thread.start()

    @property
    def actor(self) -> ClientActor:
        """The client actor now hosted (a restart after a crash replaces the instance)."""
        return self.runtime.actor(CLIENT_ACTOR)  # type: ignore[return-value]

    def _run(self) -> None:
        try:
            self.runtime.run(self._stop)
        except Exception:
            log.exception("%s: the client's I/O thread failed", self.node)
        finally:
            self._stop.set()
            self._fail_submitted()
            if self._on_exit is not None:
                self._on_exit()

    def _fail_submitted(self) -> None:
        """Work handed over that will never run now: STOPPED, not a wait for a timeout."""
        for future in list(self._submitted):
            with contextlib.suppress(InvalidStateError):  # done meanwhile
                future.set_exception(ZafkaError("STOPPED", f"{self.node} is closed"))

    @property
    def closed(self) -> bool:
        return self._stop.is_set()

    def submit(self, fn: Callable[[Future], Any]) -> Future:
        """Run `fn(future)` on the I/O thread; `fn` completes `future` (now or later).
        If `fn` raises, the future gets the exception. Once the thread ends (`close`), work
        not run yet gets STOPPED."""
        future: Future = Future()
        if self.closed:
            future.set_exception(ZafkaError("STOPPED", f"{self.node} is closed"))
            return future
        self._submitted.add(future)
        future.add_done_callback(self._submitted.discard)

        def run() -> None:
            try:
                fn(future)
            except BaseException as err:  # handed to the user's thread, never lost
                if not future.done():
                    future.set_exception(err)

        self.runtime.post(run)
        if self._stop.is_set():  # the thread may have ended before it could see this
            self._fail_submitted()
        return future

    def post(self, fn: Callable[[], Any]) -> None:
        """Run `fn()` on the I/O thread, with no result (a nudge: "there is work")."""
        self.runtime.post(fn)

    def close(self, timeout_s: float = limits.client_close_timeout_s) -> None:
        """Stop the I/O thread: calls still pending fail with STOPPED. Idempotent."""
        self._stop.set()
        self.transport.wake()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout_s)


def result(future: Future[T], timeout_s: float | None) -> T:
    """`future.result(timeout_s)`, with a timeout raised as REQUEST_TIMED_OUT from the table."""
    try:
        return future.result(timeout_s)
    except TimeoutError:
        raise ZafkaError("REQUEST_TIMED_OUT", f"no answer within {timeout_s} s") from None
