from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from verzuimhub_swv_aggregate.disclosure import (
    CountTable,
    DisclosureConfig,
    SuppressionReason,
    publish_tables,
    round_to_base,
)


@pytest.mark.parametrize(
    ("value", "rounded"),
    [(0, 0), (2, 0), (3, 5), (10, 10), (12, 10), (13, 15), (97, 95), (98, 100)],
)
def test_round_to_base_five(value: int, rounded: int) -> None:
    assert round_to_base(value, 5) == rounded


def test_round_half_up_for_even_base() -> None:
    assert [round_to_base(v, 10) for v in (14, 15, 25)] == [10, 20, 30]


@given(value=st.integers(min_value=0, max_value=10_000), base=st.integers(2, 20))
def test_rounded_value_is_within_the_documented_window(value: int, base: int) -> None:
    r = round_to_base(value, base)
    assert r % base == 0
    assert r - base // 2 <= value <= r + (base - 1) // 2


def test_rounding_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="base"):
        round_to_base(3, 1)
    with pytest.raises(ValueError, match="non-negative"):
        round_to_base(-1, 5)


def test_rounding_applies_after_suppression_to_each_published_cell() -> None:
    table = CountTable.one_way("v", "sector", {"po": 3, "vo": 12, "so": 33, "mbo": 51})
    config = DisclosureConfig(rounding_base=5)
    (published,) = publish_tables([table], config)
    unrounded = publish_tables([table])[0]
    # The pattern is decided on true counts; rounding never changes what is hidden.
    assert [c.reason for c in published.cells.values()] == [
        c.reason for c in unrounded.cells.values()
    ]
    assert published.cell(sector="po").reason is SuppressionReason.PRIMARY
    assert published.cell(sector="mbo").value == 50
    # The total is rounded on its own (99 → 100), not summed from rounded cells.
    assert published.total.value == 100
    assert published.rounding_base == 5
    assert published.to_json()["rounding_base"] == 5
