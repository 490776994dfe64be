"""Scheduler policy with made-up requests and a fake clock: no model needed."""

from __future__ import annotations

import threading

import pytest

from service.engine.requests import RequestStatus
from service.engine.scheduler import Scheduler, SchedulerConfig
from service.errors import Overloaded, Unavailable
from tests.service.conftest import FakeClock, make_request, make_scheduler


def test_full_queue_refuses_at_once() -> None:
    scheduler = make_scheduler(max_queue_size=2)
    scheduler.submit(make_request())
    scheduler.submit(make_request())
    with pytest.raises(Overloaded, match="queue is full"):
        scheduler.submit(make_request())
    assert scheduler.queue_depth == 2


def test_closed_scheduler_refuses_but_keeps_waiting_work() -> None:
    scheduler = make_scheduler()
    scheduler.submit(make_request())
    scheduler.close()
    with pytest.raises(Unavailable, match="shutting down"):
        scheduler.submit(make_request())
    assert len(scheduler.admit(0).admitted) == 1


def test_admit_fills_only_free_slots_in_arrival_order() -> None:
    scheduler = make_scheduler(max_batch_size=4)
    requests = [make_request(length=n) for n in (5, 2, 7, 1, 3)]
    for request in requests:
        scheduler.submit(request)
    admission = scheduler.admit(num_running=1)
    assert {r.source_length for r in admission.admitted} == {5, 2, 7}
    assert [r.source_length for r in admission.admitted] == [2, 5, 7]  # grouped by length
    assert scheduler.queue_depth == 2


def test_cancelled_and_expired_requests_are_dropped_before_running() -> None:
    clock = FakeClock()
    scheduler = make_scheduler(clock)
    cancelled, expired, kept, expired_later = (
        make_request(),
        make_request(deadline=1.0),
        make_request(),
        make_request(deadline=1.0),
    )
    for request in (cancelled, expired, kept):
        scheduler.submit(request)
    scheduler.submit(expired_later)
    cancelled.cancel()
    clock.now = 2.0
    admission = scheduler.admit(num_running=3)  # one free slot
    assert admission.admitted == (kept,)
    assert dict(admission.dropped) == {
        cancelled: RequestStatus.CANCELLED,
        expired: RequestStatus.EXPIRED,
        expired_later: RequestStatus.EXPIRED,
    }
    assert scheduler.queue_depth == 0


def test_idle_engine_waits_for_the_queue_delay_then_runs() -> None:
    clock = FakeClock()
    scheduler = make_scheduler(clock, max_queue_delay=0.5)
    scheduler.submit(make_request(arrival=0.0))
    clock.now = 0.6
    stop = threading.Event()
    scheduler.wait_for_work(num_running=0, stop=stop, timeout=5.0)  # returns: delay passed
    assert len(scheduler.admit(0).admitted) == 1


def test_full_batch_does_not_wait_for_the_delay() -> None:
    scheduler = make_scheduler(max_batch_size=2, max_queue_delay=60.0)
    scheduler.submit(make_request())
    scheduler.submit(make_request())
    scheduler.wait_for_work(num_running=0, stop=threading.Event(), timeout=60.0)
    assert len(scheduler.admit(0).admitted) == 2


def test_running_batch_never_waits() -> None:
    scheduler = make_scheduler(max_queue_delay=60.0)
    scheduler.wait_for_work(num_running=3, stop=threading.Event(), timeout=60.0)


class _DepthRecorder:
    def __init__(self) -> None:
        self.depths: list[int] = []

    def queue_changed(self, waiting: int) -> None:
        self.depths.append(waiting)


def test_queue_depth_is_reported_on_every_change_even_while_idle() -> None:
    recorder = _DepthRecorder()
    scheduler = Scheduler(
        SchedulerConfig(max_batch_size=2, max_queue_size=8, max_queue_delay=1.0),
        clock=FakeClock(),
        observer=recorder,
    )
    for _ in range(3):
        scheduler.submit(make_request())  # no engine step has run yet
    assert recorder.depths == [1, 2, 3]
    scheduler.admit(num_running=0)
    assert recorder.depths[-1] == 1 == scheduler.queue_depth
    scheduler.drain_waiting()
    assert recorder.depths[-1] == 0


def test_closed_and_empty_scheduler_lets_the_engine_wind_down() -> None:
    scheduler = make_scheduler(clock=FakeClock())
    scheduler.close()
    stop = threading.Event()
    scheduler.wait_for_work(0, stop, timeout=30.0)  # returns at once instead of idling
    assert scheduler.closed


def test_static_batching_admits_nothing_until_the_batch_is_done() -> None:
    scheduler = make_scheduler(max_batch_size=4, continuous=False)
    for _ in range(6):
        scheduler.submit(make_request())
    assert len(scheduler.admit(num_running=0).admitted) == 4
    assert scheduler.admit(num_running=3).admitted == ()  # free slots stay empty
    assert scheduler.queue_depth == 2
    assert len(scheduler.admit(num_running=0).admitted) == 2
