"""Secondary suppression on hand-checked tables, and linked tables."""

from __future__ import annotations

import pytest

from verzuimhub_swv_aggregate.disclosure import (
    CountTable,
    PublishedTable,
    SuppressionReason,
    publish_tables,
)

P, S = SuppressionReason.PRIMARY, SuppressionReason.SECONDARY


def reasons(table: PublishedTable) -> dict[str, SuppressionReason | None]:
    return {
        "/".join(c for _, c in cats) or "total": cell.reason for cats, cell in table.cells.items()
    }


def test_one_way_hides_the_next_smallest_cell() -> None:
    # po = 1 alone would be total - (vo + so + mbo). Hiding vo (12) too is not enough: the
    # reader knows vo >= 10, so po = 13 - vo <= 3; so (30) is hidden as well.
    table = CountTable.one_way("v", "sector", {"po": 1, "vo": 12, "so": 30, "mbo": 50})
    (published,) = publish_tables([table])
    assert reasons(published) == {"po": P, "vo": S, "so": S, "mbo": None, "total": None}
    assert published.cell(sector="mbo").value == 50
    assert published.total.value == 93


def test_one_way_small_merged_category_is_not_left_exact() -> None:
    # po + vo = 8 is visible as total - mbo - so, so it is a count below 10 of the merged
    # category po∪vo: not allowed; the smallest visible cell is hidden.
    table = CountTable.one_way("v", "sector", {"po": 3, "vo": 5, "so": 40, "mbo": 50})
    (published,) = publish_tables([table])
    assert reasons(published) == {"po": P, "vo": P, "so": S, "mbo": None, "total": None}


def test_one_way_pinned_pair_gets_the_total_hidden() -> None:
    # 9 + 8 = 17 = total: each is at least 17 - 9 = 8, too narrow; the total must go.
    table = CountTable.one_way("v", "sector", {"po": 9, "vo": 8})
    (published,) = publish_tables([table])
    assert reasons(published) == {"po": P, "vo": P, "total": S}


def test_two_way_hides_a_rectangle() -> None:
    table = CountTable.two_way(
        "v",
        "tier",
        "sector",
        ["1", "2", "3"],
        ["po", "vo", "so"],
        {
            ("1", "po"): 120, ("1", "vo"): 150, ("1", "so"): 40,
            ("2", "po"): 30, ("2", "vo"): 45, ("2", "so"): 12,
            ("3", "po"): 2, ("3", "vo"): 25, ("3", "so"): 14,
        },
    )  # fmt: skip
    (published,) = publish_tables([table])
    assert published.cell(tier="3", sector="po").reason is P
    hidden = {k for k, r in reasons(published).items() if r is not None}
    # Row 3 and column po each need a second hidden cell, and those meet in a fourth:
    # 3/so (14, smallest in row 3) and 2/po (30, smallest in column po), then 2/so.
    assert hidden == {"po/3", "so/3", "po/2", "so/2"}
    # Every margin stays visible.
    assert all(not cell.suppressed for cats, cell in published.cells.items() if len(cats) < 2)


def test_suppressed_margin_is_not_left_derivable_from_the_other_margin() -> None:
    # Row t2 is small (total 7): its margin is primary. Grand total minus the other row
    # margin would give it back, so another row margin is hidden as well.
    table = CountTable.two_way(
        "v",
        "tier",
        "sector",
        ["t1", "t2", "t3"],
        ["po", "vo"],
        {
            ("t1", "po"): 40, ("t1", "vo"): 50,
            ("t2", "po"): 3, ("t2", "vo"): 4,
            ("t3", "po"): 20, ("t3", "vo"): 25,
        },
    )  # fmt: skip
    (published,) = publish_tables([table])
    row_margins = [published.cell(tier=t) for t in ("t1", "t2", "t3")]
    assert row_margins[1].reason is P
    assert sum(m.suppressed for m in row_margins) >= 2


def test_linked_tables_share_the_status_of_shared_cells() -> None:
    by_tier_sector = CountTable.two_way(
        "v",
        "tier",
        "sector",
        ["1", "2"],
        ["po", "vo"],
        {("1", "po"): 30, ("1", "vo"): 40, ("2", "po"): 4, ("2", "vo"): 60},
    )
    by_sector = CountTable.one_way("v", "sector", {"po": 34, "vo": 100})
    by_tier = CountTable.one_way("v", "tier", {"1": 70, "2": 64})
    published = publish_tables([by_tier_sector, by_sector, by_tier])
    two_way, sectors, tiers = published
    for cats, cell in sectors.cells.items():
        assert two_way.cells[cats] == cell
    for cats, cell in tiers.cells.items():
        assert two_way.cells[cats] == cell


def test_linked_tables_must_agree() -> None:
    a = CountTable.one_way("v", "sector", {"po": 30, "vo": 40})
    b = CountTable.one_way("v", "leeftijd", {"4-11": 30, "12-17": 41})
    with pytest.raises(ValueError, match="disagree"):
        publish_tables([a, b])


def test_different_populations_are_independent() -> None:
    a = CountTable.one_way("meldingen", "sector", {"po": 30, "vo": 40})
    b = CountTable.one_way("vrijstellingen_5a", "sector", {"po": 30, "vo": 41})
    assert all(not c.suppressed for t in publish_tables([a, b]) for c in t.cells.values())


def test_deterministic() -> None:
    table = CountTable.one_way("v", "s", {"a": 1, "b": 20, "c": 20, "d": 20, "e": 3})
    first = publish_tables([table])
    assert all(publish_tables([table]) == first for _ in range(5))
