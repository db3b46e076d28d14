"""Per-caller rate limiting: a token bucket per caller key, in the memory of one process.

Why in memory and not in the database: the limit protects the process (its workers, its
connection pool) from one noisy client; it has to cost nothing on the hot path and keep
working when the database is the thing under pressure. The price: with N replicas behind a
load balancer a caller can reach N × the configured rate. Size ``rate_limit_per_minute``
for one replica's share, or put a shared limiter (gateway) in front for a global quota.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """``allow(key)`` → 0 when the request may pass, else seconds until it may (≥ 1)."""

    def __init__(
        self,
        per_minute: int,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 50_000,
    ) -> None:
        self.rate = per_minute / 60.0
        self.capacity = float(max(1, burst))
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def allow(self, key: str) -> int:
        if not self.enabled:
            return 0
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(self.capacity, now)
            if len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)  # the longest-unseen caller
        else:
            self._buckets.move_to_end(key)
            bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0
        return max(1, math.ceil((1.0 - bucket.tokens) / self.rate))

    def reset(self) -> None:
        self._buckets.clear()
