"""ZooKeeperWorker: kazoo's blocking calls on a thread of their own, results handed back.

kazoo's calls are synchronous: a few milliseconds on a healthy ensemble, up to the session
timeout when ZooKeeper is slow or gone. An actor must never wait like that on the runtime's
one thread, so it `submit`s a job (a function doing the ZooKeeper work) and a `done`
callback; the worker runs jobs one at a time, in submission order, and hands each result
(what the job returned, or the exception it raised) to `done` through `post` (the runtime's
thread-safe `Runtime.post`), so `done` runs on the runtime's thread like any handler.

One thread, FIFO: results arrive in the order the jobs ran against ZooKeeper, so an actor
that applies them in arrival order sees ZooKeeper's changes in order. A job must not touch
actor state (it runs on another thread): it gets what it needs as arguments and returns
plain values. At most `limits.zookeeper_jobs_queued_max` jobs wait; beyond, `submit`
raises BUSY. After `close`, queued jobs are dropped (their `done` never runs).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

from zafka import limits
from zafka.errors import ZafkaError

Job = Callable[[], Any]
Done = Callable[[Any], None]  # gets the job's result, or the exception it raised


class ZooKeeperWorker:
    """Runs ZooKeeper jobs on one thread; `post` hands each result back."""

    def __init__(
        self,
        post: Callable[[Callable[[], object]], None],
        queued_max: int = limits.zookeeper_jobs_queued_max,
    ) -> None:
        self._post = post
        self._queued_max = queued_max
        self._jobs: queue.Queue[tuple[Job, Done] | None] = queue.Queue()
        self._closed = threading.Event()
        # A daemon: a job stuck in kazoo must not keep a stopping process alive.
        self._thread = threading.Thread(target=self._run, name="zookeeper-worker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def submit(self, job: Job, done: Done) -> None:
        """Queue `job`; `done(result or exception)` is posted when it has run."""
        if self._closed.is_set():
            raise ZafkaError("STOPPED", "the ZooKeeper worker is closed")
        if self._jobs.qsize() >= self._queued_max:
            raise ZafkaError("BUSY", f"{self._queued_max} ZooKeeper jobs are already queued")
        self._jobs.put((job, done))

    def close(self, timeout_s: float) -> bool:
        """Drop queued jobs and stop the thread; False if a running job outlived `timeout_s`."""
        self._closed.set()
        self._jobs.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def _run(self) -> None:
        while True:
            item = self._jobs.get()
            if item is None or self._closed.is_set():
                return
            job, done = item
            try:
                result = job()
            except Exception as exc:  # handed to `done`, which answers with an error code
                result = exc
            self._post(lambda done=done, result=result: done(result))
