"""A circuit breaker for calls to DUO: pure state, an injectable clock, no I/O.

closed    calls pass; ``failure_threshold`` consecutive failures open the circuit.
open      calls are refused until ``reset_timeout`` seconds have passed since it opened.
half-open up to ``half_open_max_calls`` trial calls pass; a success closes the circuit, a
          failure opens it again for another ``reset_timeout``.

Only failures that say DUO is unwell count (timeouts, broken connections, 5xx, 429); a 4xx
about our own payload means DUO answered, which is a success for the breaker.

Safe for concurrent asyncio tasks: no method awaits, so none is interleaved.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum

__all__ = ["BreakerState", "CircuitBreaker"]


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


class CircuitBreaker:
    def __init__(
        self,
        *,
        failure_threshold: int = 5,
        reset_timeout: float = 30.0,
        half_open_max_calls: int = 1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1 or half_open_max_calls < 1 or reset_timeout < 0:
            raise ValueError("failure_threshold and half_open_max_calls ≥ 1, reset_timeout ≥ 0")
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self.half_open_max_calls = half_open_max_calls
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._reopen_at = 0.0
        self._trials = 0

    @property
    def state(self) -> BreakerState:
        """The current state; an open circuit whose timeout has passed reads as half-open."""
        if self._state is BreakerState.OPEN and self._clock() >= self._reopen_at:
            self._state = BreakerState.HALF_OPEN
            self._trials = 0
        return self._state

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    def retry_after(self) -> float:
        """Seconds until an open circuit lets a trial call through (0 when not open)."""
        if self.state is not BreakerState.OPEN:
            return 0.0
        # The same deadline as ``state`` compares with: waiting exactly this long lets a trial
        # through (no rounding gap between the two).
        return max(0.0, self._reopen_at - self._clock())

    def allow(self) -> bool:
        """Whether a call may go ahead now. In half-open, a True reserves a trial slot that
        the matching ``record_success``/``record_failure`` releases."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and self._trials < self.half_open_max_calls:
            self._trials += 1
            return True
        return False

    def record_success(self) -> None:
        self._failures = 0
        if self._state is BreakerState.HALF_OPEN:
            self._state = BreakerState.CLOSED
            self._trials = 0

    def record_failure(self) -> None:
        state = self.state
        if state is BreakerState.HALF_OPEN:
            self._open()
            return
        self._failures += 1
        if state is BreakerState.CLOSED and self._failures >= self.failure_threshold:
            self._open()

    def release(self) -> None:
        """Give back a half-open trial slot without a verdict (the call was cancelled)."""
        if self._state is BreakerState.HALF_OPEN and self._trials > 0:
            self._trials -= 1

    def _open(self) -> None:
        self._state = BreakerState.OPEN
        self._reopen_at = self._clock() + self.reset_timeout
        self._trials = 0
