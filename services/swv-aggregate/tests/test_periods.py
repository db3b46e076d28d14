from __future__ import annotations

from datetime import date

import pytest

from verzuimhub_swv_aggregate.periods import parse_period


@pytest.mark.parametrize(
    ("value", "kind", "start", "end"),
    [
        ("2025-W47", "week", date(2025, 11, 17), date(2025, 11, 23)),
        ("2026-W01", "week", date(2025, 12, 29), date(2026, 1, 4)),
        ("2025-11", "maand", date(2025, 11, 1), date(2025, 11, 30)),
        ("2025-12", "maand", date(2025, 12, 1), date(2025, 12, 31)),
        ("2025-2026", "schooljaar", date(2025, 8, 1), date(2026, 7, 31)),
    ],
)
def test_fixed_periods(value: str, kind: str, start: date, end: date) -> None:
    period = parse_period(value)
    assert (period.kind, period.start, period.end) == (kind, start, end)


@pytest.mark.parametrize(
    "value", ["2025-11-01", "2025-W54", "2025-13", "2025-2027", "1999-2000", "", "2025-W7"]
)
def test_anything_else_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        parse_period(value)


def test_previous_year() -> None:
    assert parse_period("2025-2026").previous_year().label == "2024-2025"
    assert parse_period("2025-11").previous_year().label == "2024-11"
    assert parse_period("2026-W53").previous_year().label == "2025-W52"
