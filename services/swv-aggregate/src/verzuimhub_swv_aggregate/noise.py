"""Optional differential privacy: OpenDP's Laplace mechanism on every count before it is
published (``VZH_SWV_DP_EPSILON``; off when unset).

Each count is a number of distinct pupils (or records), so one pupil changes it by at most
one: sensitivity 1, noise scale 1/ε, integer-valued (OpenDP's discrete Laplace for integer
domains), clamped at 0. The ε is *per published count*, not a budget over all of them: a
pupil appears in several tables and periods. Suppression and rounding then apply to the
noisy counts as usual, and a report is built once per input state (``figures`` caches it),
so asking again returns the same noisy answer instead of a fresh draw to average.

OpenDP is an optional extra (``verzuimhub-swv-aggregate[dp]``) imported only when on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def laplace_counts(epsilon: float) -> Callable[[int], int]:
    if epsilon <= 0:
        raise ValueError("dp_epsilon must be positive")
    import opendp.prelude as dp

    dp.enable_features("contrib")
    measurement: Any = dp.m.make_laplace(
        dp.atom_domain(T=int), dp.absolute_distance(T=int), scale=1.0 / epsilon
    )

    def noisy(count: int) -> int:
        return max(0, int(measurement(int(count))))

    return noisy
