"""Primary suppression: thresholds, zeros, structural zeros."""

from __future__ import annotations

import pytest

from verzuimhub_swv_aggregate.disclosure import (
    CountTable,
    DisclosureConfig,
    PublishedCell,
    SuppressionReason,
    publish_tables,
)

PRIMARY = PublishedCell.suppressed_for(SuppressionReason.PRIMARY)
SECONDARY = PublishedCell.suppressed_for(SuppressionReason.SECONDARY)


@pytest.mark.parametrize(
    ("count", "expected"),
    [(9, PRIMARY), (10, PublishedCell(10)), (1, PRIMARY), (0, PRIMARY)],
)
def test_boundary_at_default_threshold(count: int, expected: PublishedCell) -> None:
    # Two large, unequal companions so the small cell never needs secondary help to stay hidden.
    table = CountTable.one_way("v", "sector", {"po": count, "vo": 40, "so": 55, "mbo": 70})
    (published,) = publish_tables([table])
    assert published.cell(sector="po") == expected


@pytest.mark.parametrize(("count", "suppressed"), [(4, True), (5, False)])
def test_boundary_follows_configured_threshold(count: int, suppressed: bool) -> None:
    table = CountTable.one_way("v", "sector", {"po": count, "vo": 40, "so": 55, "mbo": 70})
    (published,) = publish_tables([table], DisclosureConfig(threshold=5, protection=3))
    assert published.cell(sector="po").suppressed is suppressed


def test_zero_is_suppressed_like_any_small_count() -> None:
    table = CountTable.one_way("v", "sector", {"po": 0, "vo": 40, "so": 55, "mbo": 70})
    (published,) = publish_tables([table])
    assert published.cell(sector="po") == PRIMARY
    assert published.cell(sector="po").to_json() == {
        "value": None,
        "suppressed": True,
        "reason": "primary",
    }


def test_structural_zero_is_published_as_zero() -> None:
    table = CountTable.two_way(
        "v",
        "sector",
        "leeftijd",
        ["po", "mbo"],
        ["4-11", "18+"],
        {("po", "4-11"): 50, ("po", "18+"): 0, ("mbo", "4-11"): 0, ("mbo", "18+"): 30},
        structural_zeros=frozenset({("po", "18+"), ("mbo", "4-11")}),
    )
    (published,) = publish_tables([table])
    assert published.cell(sector="po", leeftijd="18+") == PublishedCell(0)
    assert all(not cell.suppressed for cell in published.cells.values())


def test_structural_zero_must_be_zero() -> None:
    with pytest.raises(ValueError, match="structural zero"):
        CountTable.one_way("v", "sector", {"po": 3}, structural_zeros=frozenset({"po"}))


def test_small_margins_are_suppressed_too() -> None:
    table = CountTable.one_way("v", "sector", {"po": 2, "vo": 3})
    (published,) = publish_tables([table])
    assert published.total == PRIMARY
    assert published.cell(sector="po") == PRIMARY


def test_nothing_small_means_nothing_hidden() -> None:
    table = CountTable.one_way("v", "sector", {"po": 10, "vo": 11})
    (published,) = publish_tables([table])
    assert [c.value for c in published.cells.values()] == [10, 11, 21]
