"""Config and input validation; JSON and CSV shapes of published tables."""

from __future__ import annotations

import json

import pytest

from verzuimhub_swv_aggregate.disclosure import (
    SUPPRESSED_MARKER,
    TOTAL_LABEL,
    CountTable,
    DisclosureConfig,
    PublishedCell,
    SuppressionReason,
    publish_tables,
)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"threshold": 2},
        {"protection": 0},
        {"threshold": 10, "protection": 9},
        {"min_denominator": 0},
        {"rounding_base": 1},
        {"percentage_decimals": 4},
    ],
)
def test_config_refuses_nonsense(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="must be"):
        DisclosureConfig(**kwargs)


def test_default_policy() -> None:
    config = DisclosureConfig()
    assert (config.threshold, config.protection, config.min_denominator) == (10, 5, 100)
    assert config.rounding_base is None


@pytest.mark.parametrize(
    ("counts", "message"),
    [
        ({"po": -1}, "non-negative"),
        ({"po": True}, "non-negative"),
        ({TOTAL_LABEL: 3}, "reserved"),
        ({}, "at least one category"),
    ],
)
def test_count_table_refuses_bad_input(counts: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CountTable.one_way("v", "sector", counts)


def test_two_way_needs_every_cell() -> None:
    with pytest.raises(ValueError, match="every combination"):
        CountTable.two_way("v", "a", "b", ["1", "2"], ["x"], {("1", "x"): 3})


def test_published_cell_is_a_value_or_a_reason() -> None:
    with pytest.raises(ValueError, match="either"):
        PublishedCell(None)
    with pytest.raises(ValueError, match="either"):
        PublishedCell(3, SuppressionReason.PRIMARY)


@pytest.fixture
def published_two_way() -> CountTable:
    return CountTable.two_way(
        "meldingen",
        "tier",
        "sector",
        ["2", "3"],
        ["po", "vo"],
        {("2", "po"): 30, ("2", "vo"): 45, ("3", "po"): 20, ("3", "vo"): 3},
    )


def test_json_shape(published_two_way: CountTable) -> None:
    (table,) = publish_tables([published_two_way])
    data = table.to_json()
    assert json.loads(json.dumps(data)) == data
    assert data["dimensions"] == ["tier", "sector"]
    assert data["categories"] == {"tier": ["2", "3"], "sector": ["po", "vo"]}
    assert data["threshold"] == 10
    assert data["cells"][3] == {
        "categories": {"sector": "vo", "tier": "3"},
        "value": None,
        "suppressed": True,
        "reason": "primary",
    }
    assert data["cells"][-1] == {
        "categories": {},
        "value": 98,
        "suppressed": False,
        "reason": None,
    }
    assert len(data["cells"]) == 4 + 2 + 2 + 1


def test_csv_rows(published_two_way: CountTable) -> None:
    (table,) = publish_tables([published_two_way])
    rows = table.csv_rows()
    assert table.csv_header() == ["tier", "sector", "value", "suppression"]
    assert rows[3] == ["3", "vo", SUPPRESSED_MARKER, "primary"]
    assert rows[-1] == [TOTAL_LABEL, TOTAL_LABEL, "98", ""]
    assert ["2", TOTAL_LABEL, "75", ""] in rows
    # A secondary cell shows the same marker, with its own reason.
    assert any(r[2] == SUPPRESSED_MARKER and r[3] == "secondary" for r in rows)


def test_cell_lookup(published_two_way: CountTable) -> None:
    (table,) = publish_tables([published_two_way])
    assert table.cell(tier="2") == PublishedCell(75)
    assert table.cell() == table.total
    with pytest.raises(KeyError):
        table.cell(leeftijd="12")
