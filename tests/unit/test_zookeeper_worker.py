"""ZooKeeperWorker: jobs on its own thread, in order, results (or exceptions) handed back
through `post`; bounded queue; close drops what is queued. No ZooKeeper: plain functions."""

from __future__ import annotations

import queue
import threading

import pytest

from zafka.coordination.worker import ZooKeeperWorker
from zafka.errors import ZafkaError

WAIT_S = 5.0


class Posted:
    """Stands in for Runtime.post: collects the posted callables for the test to run."""

    def __init__(self) -> None:
        self.items: queue.Queue = queue.Queue()

    def __call__(self, fn) -> None:
        self.items.put(fn)

    def run_next(self) -> None:
        self.items.get(timeout=WAIT_S)()


@pytest.fixture
def posted():
    return Posted()


@pytest.fixture
def worker(posted):
    worker = ZooKeeperWorker(posted)
    worker.start()
    yield worker
    assert worker.close(WAIT_S)


def test_jobs_run_off_the_callers_thread_in_order_and_results_come_back(worker, posted):
    caller, results = threading.get_ident(), []
    for i in range(5):
        worker.submit(lambda i=i: (i, threading.get_ident()), results.append)
    for _ in range(5):
        posted.run_next()
    assert [i for i, _ in results] == [0, 1, 2, 3, 4]
    assert {thread for _, thread in results} != {caller}


def test_an_exception_is_handed_to_done_not_raised(worker, posted):
    results = []

    def fails():
        raise ZafkaError("INVALID_TOPIC", "bad")

    worker.submit(fails, results.append)
    worker.submit(lambda: "next", results.append)  # the worker lives on
    posted.run_next()
    posted.run_next()
    assert isinstance(results[0], ZafkaError) and results[0].error.name == "INVALID_TOPIC"
    assert results[1] == "next"


def test_a_full_queue_is_busy(posted):
    worker = ZooKeeperWorker(posted, queued_max=2)  # not started: jobs stay queued
    worker.submit(lambda: 1, print)
    worker.submit(lambda: 2, print)
    with pytest.raises(ZafkaError) as err:
        worker.submit(lambda: 3, print)
    assert err.value.error.name == "BUSY"


def test_close_drops_queued_jobs_and_refuses_new_ones(posted):
    gate, started, ran = threading.Event(), threading.Event(), []
    worker = ZooKeeperWorker(posted)
    worker.start()
    worker.submit(lambda: (started.set(), gate.wait(WAIT_S)), ran.append)
    worker.submit(lambda: "queued", ran.append)
    assert started.wait(WAIT_S)
    assert not worker.close(0.01)  # the running job holds it
    gate.set()
    assert worker.close(WAIT_S)
    posted.run_next()  # the job that was running finishes and is handed back
    assert ran == [(None, True)]
    assert posted.items.empty()  # the queued one never ran
    with pytest.raises(ZafkaError) as err:
        worker.submit(lambda: 1, print)
    assert err.value.error.name == "STOPPED"
