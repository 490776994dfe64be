"""The batching policy with made-up requests and a fake clock: no model needed."""

from __future__ import annotations

from service.engine.requests import RequestStatus
from tests.service.conftest import FakeClock, make_policy_for_test, make_request


def test_admits_only_into_free_rows_in_arrival_order_grouped_by_length() -> None:
    policy = make_policy_for_test(max_batch_size=4)
    running = make_request(name="running")
    policy.schedule([running])
    assert policy.rows_reserved == 1
    waiting = [make_request(length=n) for n in (5, 2, 7, 1, 3)]
    scheduled = policy.schedule(waiting)
    assert [r.source_length for r in scheduled.admitted] == [2, 5, 7]  # one encoder run, by length
    assert policy.rows_reserved == 4 and policy.free_rows == 0
    assert policy.schedule(waiting[3:]).admitted == ()


def test_a_beam_reserves_all_its_rows_and_finishing_frees_them() -> None:
    policy = make_policy_for_test(max_batch_size=6)
    beam = make_request(beam_size=4, name="beam")
    greedy = make_request(name="greedy")
    assert set(policy.schedule([beam, greedy]).admitted) == {beam, greedy}
    assert policy.rows_reserved == 5 and policy.running_requests == 2
    policy.update([beam])
    assert policy.rows_reserved == 1 and policy.free_rows == 5
    policy.update([beam])  # twice is harmless
    assert policy.rows_reserved == 1


def test_a_large_beam_does_not_block_greedy_requests_behind_it() -> None:
    clock = FakeClock()
    policy = make_policy_for_test(clock, max_batch_size=8, max_bypass_delay=1.0)
    policy.schedule([make_request(name=f"run{i}") for i in range(4)])  # 4 free rows left
    beam = make_request(beam_size=8, name="beam")
    greedy = [make_request(name=f"g{i}") for i in range(3)]
    scheduled = policy.schedule([beam, *greedy])
    assert beam not in scheduled.admitted
    assert set(scheduled.admitted) == set(greedy)  # no head-of-line blocking


def test_a_passed_over_request_is_not_starved() -> None:
    clock = FakeClock()
    policy = make_policy_for_test(clock, max_batch_size=8, max_bypass_delay=0.5)
    first = [make_request(name=f"run{i}") for i in range(4)]
    policy.schedule(first)
    beam = make_request(beam_size=8, name="beam", arrival=0.0)
    clock.now = 0.6  # the beam has waited longer than max_bypass_delay
    late = make_request(name="late", arrival=0.6)
    scheduled = policy.schedule([beam, late])
    assert scheduled.admitted == ()  # rows drain for the beam instead
    policy.update(first)
    assert policy.schedule([beam, late]).admitted == (beam,)


def test_cancelled_and_expired_requests_leave_the_queue_before_running() -> None:
    clock = FakeClock()
    policy = make_policy_for_test(clock, max_batch_size=4)
    policy.schedule([make_request(name=f"run{i}") for i in range(3)])  # one free row
    cancelled, expired, kept, expired_later = (
        make_request(name="c"),
        make_request(deadline=1.0, name="e"),
        make_request(name="k"),
        make_request(deadline=1.0, name="e2"),
    )
    cancelled.cancel()
    clock.now = 2.0
    scheduled = policy.schedule([cancelled, expired, kept, expired_later])
    assert scheduled.admitted == (kept,)
    assert dict(scheduled.dropped) == {
        cancelled: RequestStatus.CANCELLED,
        expired: RequestStatus.EXPIRED,
        expired_later: RequestStatus.EXPIRED,
    }
    assert set(scheduled.taken) == {cancelled, expired, kept, expired_later}


def test_running_requests_that_were_abandoned_are_retired_and_free_their_rows() -> None:
    clock = FakeClock()
    policy = make_policy_for_test(clock, max_batch_size=4)
    running = [make_request(name="a"), make_request(deadline=1.0, name="b"), make_request(name="c")]
    policy.schedule(running)
    running[0].cancel()
    clock.now = 1.5
    scheduled = policy.schedule([])
    assert dict(scheduled.retired) == {
        running[0]: RequestStatus.CANCELLED,
        running[1]: RequestStatus.EXPIRED,
    }
    assert policy.running_requests == 1 and policy.rows_reserved == 1


def test_idle_wait_waits_for_the_queue_delay_unless_the_batch_is_full() -> None:
    policy = make_policy_for_test(max_batch_size=2, max_queue_delay=0.5)
    assert policy.idle_wait([], now=0.0) is None  # nothing to do: sleep until an arrival
    one = [make_request(arrival=0.0)]
    assert policy.idle_wait(one, now=0.1) == 0.4
    assert policy.idle_wait(one, now=0.7) == 0.0
    two = [make_request(arrival=0.0), make_request(arrival=0.0)]
    assert policy.idle_wait(two, now=0.0) == 0.0  # a full first batch runs at once


def test_a_running_batch_never_waits() -> None:
    policy = make_policy_for_test(max_queue_delay=60.0)
    policy.schedule([make_request()])
    assert policy.idle_wait([], now=0.0) == 0.0


def test_static_batching_admits_nothing_until_the_batch_is_done() -> None:
    policy = make_policy_for_test(name="static", max_batch_size=4)
    waiting = [make_request(name=f"w{i}") for i in range(6)]
    first = policy.schedule(waiting).admitted
    assert len(first) == 4
    policy.update(first[:3])
    assert policy.schedule(waiting[4:]).admitted == ()  # free rows stay empty
    policy.update(first[3:])
    assert len(policy.schedule(waiting[4:]).admitted) == 2


def test_clear_forgets_every_running_request() -> None:
    policy = make_policy_for_test(max_batch_size=4)
    admitted = policy.schedule([make_request(name="a"), make_request(name="b")]).admitted
    assert set(policy.clear()) == set(admitted)
    assert policy.rows_reserved == 0 and policy.running_requests == 0
