"""The bounded waiting queue: load shedding, closing, depth reporting."""

from __future__ import annotations

import pytest

from service.engine.queue import RequestQueue
from service.errors import Overloaded, Unavailable
from tests.service.conftest import make_request


def test_full_queue_refuses_at_once() -> None:
    queue = RequestQueue(max_size=2)
    queue.submit(make_request())
    queue.submit(make_request())
    with pytest.raises(Overloaded, match="queue is full"):
        queue.submit(make_request())
    assert len(queue) == 2


def test_closed_queue_refuses_but_keeps_waiting_work() -> None:
    queue = RequestQueue(max_size=8)
    kept = make_request()
    queue.submit(kept)
    queue.close()
    with pytest.raises(Unavailable, match="shutting down"):
        queue.submit(make_request())
    assert queue.snapshot() == [kept] and queue.closed


class _DepthRecorder:
    def __init__(self) -> None:
        self.depths: list[int] = []

    def queue_changed(self, waiting: int) -> None:
        self.depths.append(waiting)


def test_queue_depth_is_reported_on_every_change_even_while_idle() -> None:
    recorder = _DepthRecorder()
    queue = RequestQueue(max_size=8, observer=recorder)
    requests = [make_request(name=str(i)) for i in range(3)]
    for request in requests:
        queue.submit(request)  # no engine step has run yet
    assert recorder.depths == [1, 2, 3]
    queue.remove(requests[:2])
    assert recorder.depths[-1] == 1 == len(queue)
    assert queue.drain() == requests[2:]
    assert recorder.depths[-1] == 0
