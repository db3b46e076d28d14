"""Rounding of published counts to a base (e.g. 5), applied after suppression."""

from __future__ import annotations


def round_to_base(value: int, base: int) -> int:
    """The nearest multiple of `base`, halves rounded up (12 → 10, 13 → 15 for base 5).

    An attacker who sees a rounded value r knows the true value lies in
    [r - base // 2, r + (base - 1) // 2].
    """
    if base < 2:
        raise ValueError("base must be at least 2")
    if value < 0:
        raise ValueError("counts are non-negative")
    return (value + base // 2) // base * base
