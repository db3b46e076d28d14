"""The circuit breaker's transitions, driven by a fake clock."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from verzuimhub_melding.duo.breaker import BreakerState, CircuitBreaker


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def breaker(clock: FakeClock, **kwargs: float) -> CircuitBreaker:
    options: dict[str, float] = {"failure_threshold": 3, "reset_timeout": 30.0} | kwargs
    return CircuitBreaker(
        failure_threshold=int(options["failure_threshold"]),
        reset_timeout=options["reset_timeout"],
        half_open_max_calls=int(options.get("half_open_max_calls", 1)),
        clock=clock,
    )


def test_it_starts_closed_and_lets_calls_through() -> None:
    b = breaker(FakeClock())
    assert b.state is BreakerState.CLOSED
    assert all(b.allow() for _ in range(10))
    assert b.retry_after() == 0.0


def test_it_opens_after_n_consecutive_failures() -> None:
    b = breaker(FakeClock())
    b.record_failure()
    b.record_failure()
    assert b.state is BreakerState.CLOSED
    b.record_failure()
    assert b.state is BreakerState.OPEN
    assert not b.allow()


def test_a_success_resets_the_count() -> None:
    b = breaker(FakeClock())
    for _ in range(5):
        b.record_failure()
        b.record_failure()
        b.record_success()
    assert b.state is BreakerState.CLOSED
    assert b.consecutive_failures == 0


def test_open_turns_half_open_after_the_reset_timeout() -> None:
    clock = FakeClock()
    b = breaker(clock)
    for _ in range(3):
        b.record_failure()
    clock.advance(10)
    assert b.state is BreakerState.OPEN
    assert b.retry_after() == pytest.approx(20.0)
    assert not b.allow()
    clock.advance(20)
    assert b.state is BreakerState.HALF_OPEN
    assert b.retry_after() == 0.0


def test_half_open_lets_one_trial_through_and_a_success_closes() -> None:
    clock = FakeClock()
    b = breaker(clock)
    for _ in range(3):
        b.record_failure()
    clock.advance(30)
    assert b.allow()
    assert not b.allow()  # the one trial is in flight
    b.record_success()
    assert b.state is BreakerState.CLOSED
    assert b.allow()


def test_a_failed_trial_opens_again_for_a_full_timeout() -> None:
    clock = FakeClock()
    b = breaker(clock)
    for _ in range(3):
        b.record_failure()
    clock.advance(31)
    assert b.allow()
    b.record_failure()
    assert b.state is BreakerState.OPEN
    assert b.retry_after() == pytest.approx(30.0)
    clock.advance(29.9)
    assert not b.allow()
    clock.advance(0.1)
    assert b.allow()


def test_half_open_trial_slots_are_limited_and_released() -> None:
    clock = FakeClock()
    b = breaker(clock, half_open_max_calls=2)
    for _ in range(3):
        b.record_failure()
    clock.advance(30)
    assert b.allow()
    assert b.allow()
    assert not b.allow()
    b.release()  # a cancelled trial gives its slot back without a verdict
    assert b.state is BreakerState.HALF_OPEN
    assert b.allow()


def test_failures_while_open_do_not_extend_the_timeout() -> None:
    clock = FakeClock()
    b = breaker(clock)
    for _ in range(3):
        b.record_failure()
    clock.advance(20)
    b.record_failure()  # a call that was in flight when the circuit opened
    clock.advance(10)
    assert b.state is BreakerState.HALF_OPEN


@pytest.mark.parametrize(
    "kwargs",
    [{"failure_threshold": 0}, {"half_open_max_calls": 0}, {"reset_timeout": -1}],
)
def test_nonsense_settings_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="≥"):
        CircuitBreaker(**kwargs)


@given(
    st.lists(
        st.one_of(st.just("success"), st.just("failure"), st.just("allow"), st.floats(0, 40)),
        max_size=60,
    )
)
def test_invariants_hold_for_any_sequence(events: list[str | float]) -> None:
    clock = FakeClock()
    b = breaker(clock)
    for event in events:
        if event == "success":
            b.record_success()
        elif event == "failure":
            b.record_failure()
        elif event == "allow":
            before = b.state
            allowed = b.allow()
            if before is BreakerState.CLOSED:
                assert allowed
            if before is BreakerState.OPEN:
                assert not allowed
        else:
            assert isinstance(event, float)
            clock.advance(event)
        state = b.state
        assert (b.retry_after() > 0) == (state is BreakerState.OPEN)
        if state is BreakerState.CLOSED:
            assert b.consecutive_failures < b.failure_threshold
        if state is BreakerState.OPEN:
            assert not b.allow()
