"""Percentages computed from published counts only, so they reveal nothing new."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from verzuimhub_swv_aggregate.disclosure.model import (
    DisclosureConfig,
    PercentageSuppressionReason,
    PublishedCell,
    PublishedPercentage,
)


def publish_percentage(
    part: PublishedCell, whole: PublishedCell, config: DisclosureConfig
) -> PublishedPercentage:
    """`part` as a percentage of `whole`, both as published (suppressed, maybe rounded).

    Suppressed when either count is suppressed (a percentage of a hidden count would give it
    away) or the denominator is below `config.min_denominator`. With rounding the published
    denominator may be up to `rounding_base // 2` above the true one, so the threshold is
    checked against the smallest true value the published one allows.
    """
    if part.value is None or whole.value is None:
        return PublishedPercentage(None, PercentageSuppressionReason.SUPPRESSED_COUNT)
    smallest_true_whole = whole.value
    if config.rounding_base is not None:
        smallest_true_whole -= config.rounding_base // 2
    if smallest_true_whole < config.min_denominator or whole.value == 0:
        return PublishedPercentage(None, PercentageSuppressionReason.SMALL_DENOMINATOR)
    if part.value > whole.value:
        raise ValueError("part exceeds whole")
    exact = Decimal(100 * part.value) / Decimal(whole.value)
    quantum = Decimal(1).scaleb(-config.percentage_decimals)
    return PublishedPercentage(float(exact.quantize(quantum, rounding=ROUND_HALF_UP)))
