"""KafkaGateway: the Kafka listener's actor (named `kafka`), on the broker's runtime.

The listener thread posts each decoded Kafka request to `serve`; the handler of its API
(one module per family: metadata.py, produce.py, fetch.py, topics.py) turns it into calls to
the broker's own actors (the broker actor, partition actors), exactly as a native client
would make them, and its answers into the Kafka response, which goes back to the listener
encoded. No produce, fetch or admin logic lives here: only translation.
"""

from __future__ import annotations

import datetime
import logging
import uuid
from collections.abc import Callable
from typing import Any

from zafka import limits
from zafka.actors.kafka.consumer_members import Members
from zafka.actors.runtime.actor import Actor
from zafka.errors import BY_NAME, ZafkaError
from zafka.transport.envelope import Envelope
from zafka.transport.group import FindCoordinatorRequest
from zafka.transport.kafka import wire
from zafka.transport.names import group_actor_name

log = logging.getLogger(__name__)
GATEWAY_ACTOR = "kafka"
Answer = Callable[[int, int, bytes | None], None]
UNKNOWN_SERVER_ERROR = -1
_NOT_COORDINATOR = BY_NAME["NOT_COORDINATOR"].code
_NOT_LEADER = BY_NAME["NOT_LEADER_OR_FOLLOWER"].code

# zafka's own codes (>= 1000) as Kafka clients understand them.
_KAFKA_CODES = {
    "BUSY": "REQUEST_TIMED_OUT",
    "STOPPED": "NOT_LEADER_OR_FOLLOWER",
    "UNKNOWN_ACTOR": "NOT_LEADER_OR_FOLLOWER",
    "BUFFER_FULL": "REQUEST_TIMED_OUT",
}


def kafka_code(result: object) -> int:
    """The Kafka error code of a call's outcome: 0 for a message, the error's code (zafka's
    own mapped to Kafka's) for a ZafkaError."""
    if not isinstance(result, ZafkaError):
        return 0
    return BY_NAME[_KAFKA_CODES.get(result.error.name, result.error.name)].code


def group_code(result: object) -> int:
    """A group call's Kafka error code: no coordinator actor here means this broker does not
    coordinate the group (NOT_COORDINATOR: the client finds the coordinator again)."""
    code = kafka_code(result)
    return _NOT_COORDINATOR if code == _NOT_LEADER else code


def millis(value: object) -> int:
    """A kio duration (a timedelta) in whole milliseconds, at least 0."""
    if isinstance(value, datetime.timedelta):
        return max(0, int(value.total_seconds() * 1000))
    return max(0, int(value))  # type: ignore[call-overload]


class Exchange:
    """One Kafka request being served: its answer goes out once, through `done`."""

    def __init__(self, answer: Answer, connection: int, sequence: int, request: wire.Request):
        self._answer = answer
        self._connection, self._sequence = connection, sequence
        self.request = request
        self.answered = False

    def done(self, body: Any) -> None:
        """Answer with the kio response `body` (None: no answer, as for acks=0)."""
        if self.answered:
            return
        self.answered = True
        frame = None if body is None else wire.encode_response(self.request.correlation_id, body)
        self._answer(self._connection, self._sequence, frame)

    def guarded(self, step: Callable[[], None]) -> None:
        """Run a step of the handler; if it raises, the request gets UNKNOWN_SERVER_ERROR (its
        API's error answer, or a closed connection) and the broker log says why."""
        try:
            step()
        except Exception:
            request = self.request
            log.exception("kafka: API %s v%s failed", request.api_key, request.version)
            if not self.answered:
                self.answered = True
                frame = wire.error_response(
                    request.api_key, request.version, request.correlation_id, UNKNOWN_SERVER_ERROR
                )
                self._answer(self._connection, self._sequence, frame)


Handler = Callable[["KafkaGateway", Exchange], None]


Ticker = Callable[["KafkaGateway", int], bool]  # True: call again in a tick


class KafkaGateway(Actor):
    def __init__(self, answer: Answer, handlers: dict[int, Handler], ticker: Ticker) -> None:
        super().__init__(GATEWAY_ACTOR)
        self._answer = answer
        self._handlers = handlers
        self._ticker = ticker
        self._ticking = False
        self.classic_groups: dict[str, Any] = {}  # group id -> ClassicGroup (groups.py)
        self.consumer_members = Members()  # KIP-848 members (consumer_groups.py)
        self.topic_names: dict[uuid.UUID, str] = {}  # the Kafka topic ids sent, and whose

    def topic_id(self, name: str) -> uuid.UUID:
        """The Kafka topic id of topic `name` (wire.topic_uuid), remembered for requests
        that name the topic by it."""
        topic_id = wire.topic_uuid(name)
        self.topic_names[topic_id] = name
        return topic_id

    def now_ms(self) -> int:
        return self._runtime().now_ms()

    def tick_soon(self) -> None:
        """Run the ticker (classic groups' sessions and deadlines) in a tick."""
        if not self._ticking:
            self._ticking = True
            self.set_timer("tick", limits.kafka_group_tick_ms)

    def on_tick_timeout(self, now_ms: int) -> None:
        self._ticking = False
        if self._ticker(self, now_ms):
            self.tick_soon()

    @property
    def broker(self) -> str:
        """The address of this broker's broker actor."""
        return f"{self._runtime().node}/broker"

    def local(self, actor_name: str) -> str:
        return f"{self._runtime().node}/{actor_name}"

    def serve(self, connection: int, sequence: int, request: wire.Request) -> None:
        """Answer one Kafka request (the runtime's thread: posted by the listener)."""
        exchange = Exchange(self._answer, connection, sequence, request)
        exchange.guarded(lambda: self._handlers[request.api_key](self, exchange))

    def gather(
        self,
        exchange: Exchange,
        calls: list[tuple[str, object]],
        timeout_ms: int,
        then: Callable[[list[object]], None],
        enough: Callable[[object], bool] | None = None,
    ) -> None:
        """Make `calls` (target, message) at once; `then(results)` once all are answered
        (or as soon as one result is `enough`: the others stay None), each result the reply
        message or a ZafkaError, in the order of `calls`. `then` runs once."""
        results: list[object] = [None] * len(calls)
        left = [len(calls)]
        if not calls:
            exchange.guarded(lambda: then(results))
            return

        def answered(index: int, reply: Envelope | ZafkaError) -> None:
            results[index] = reply.message if isinstance(reply, Envelope) else reply
            left[0] -= 1
            complete = left[0] == 0 or (enough is not None and enough(results[index]))
            if complete and left[0] >= 0:
                left[0] = -len(calls)  # later answers find it done
                exchange.guarded(lambda: then(results))

        timeout_ms = min(max(timeout_ms, 1), limits.call_timeout_ms_max)
        for index, (target, message) in enumerate(calls):
            try:
                self.call(target, message, timeout_ms, lambda r, i=index: answered(i, r))
            except ZafkaError as err:
                answered(index, err)

    def to_groups(
        self,
        exchange: Exchange,
        calls: list[tuple[str, object]],
        then: Callable[[list[object]], None],
    ) -> None:
        """Make each (group id, message) call to the group's coordinator actor on this
        broker, as `gather`. An actor not running yet is started the way a native client
        starts it: by asking this broker where the group's coordinator is (it starts the
        actor when that is itself); those calls are made once more."""
        targets = [(self.local(group_actor_name(group)), message) for group, message in calls]
        timeout_ms = limits.kafka_call_timeout_ms

        def first(results: list[object]) -> None:
            again = [i for i, r in enumerate(results) if _absent(r)]
            if not again:
                then(results)
                return
            finds = [(self.broker, FindCoordinatorRequest(calls[i][0])) for i in again]

            def retried(answers: list[object]) -> None:
                for i, answer in zip(again, answers, strict=True):
                    results[i] = answer
                then(results)

            self.gather(
                exchange,
                finds,
                timeout_ms,
                lambda _: self.gather(exchange, [targets[i] for i in again], timeout_ms, retried),
            )

        self.gather(exchange, targets, timeout_ms, first)


def _absent(result: object) -> bool:
    return isinstance(result, ZafkaError) and result.error.name == "UNKNOWN_ACTOR"
