from __future__ import annotations

import pytest

from verzuimhub_swv_aggregate.disclosure import (
    DisclosureConfig,
    PercentageSuppressionReason,
    PublishedCell,
    PublishedPercentage,
    SuppressionReason,
    publish_percentage,
)

DEFAULT = DisclosureConfig()


def test_percentage_with_enough_denominator() -> None:
    result = publish_percentage(PublishedCell(25), PublishedCell(200), DEFAULT)
    assert result == PublishedPercentage(12.5)
    assert result.to_json() == {"value": 12.5, "suppressed": False, "reason": None}


@pytest.mark.parametrize(("denominator", "suppressed"), [(99, True), (100, False)])
def test_denominator_boundary(denominator: int, suppressed: bool) -> None:
    result = publish_percentage(PublishedCell(10), PublishedCell(denominator), DEFAULT)
    assert result.suppressed is suppressed
    if suppressed:
        assert result.reason is PercentageSuppressionReason.SMALL_DENOMINATOR


def test_configurable_denominator() -> None:
    config = DisclosureConfig(min_denominator=50)
    assert publish_percentage(PublishedCell(10), PublishedCell(50), config).value == 20.0


def test_rounded_denominator_is_checked_against_its_smallest_true_value() -> None:
    config = DisclosureConfig(rounding_base=5)
    # A published 100 may be a true 98: not enough.
    assert publish_percentage(PublishedCell(10), PublishedCell(100), config).suppressed
    assert not publish_percentage(PublishedCell(10), PublishedCell(105), config).suppressed


@pytest.mark.parametrize(
    ("part", "whole"),
    [
        (PublishedCell.suppressed_for(SuppressionReason.PRIMARY), PublishedCell(500)),
        (PublishedCell(50), PublishedCell.suppressed_for(SuppressionReason.SECONDARY)),
    ],
)
def test_percentage_of_a_hidden_count_is_hidden(part: PublishedCell, whole: PublishedCell) -> None:
    result = publish_percentage(part, whole, DEFAULT)
    assert result == PublishedPercentage(None, PercentageSuppressionReason.SUPPRESSED_COUNT)
    assert result.to_csv() == "x"


def test_rounding_of_the_percentage() -> None:
    assert publish_percentage(PublishedCell(1), PublishedCell(300), DEFAULT).value == 0.3
    config = DisclosureConfig(percentage_decimals=0)
    assert publish_percentage(PublishedCell(1), PublishedCell(200), config).value == 1.0
