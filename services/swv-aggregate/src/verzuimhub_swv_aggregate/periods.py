"""The fixed periods figures are kept and published for: school week, month, school year.

Pure functions, no I/O. Free date ranges do not exist here on purpose: overlapping custom
periods would let differences of published figures single out a pupil (docs/disclosure.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

PeriodKind = Literal["week", "maand", "schooljaar"]
KINDS: tuple[PeriodKind, ...] = ("week", "maand", "schooljaar")

_WEEK = re.compile(r"([0-9]{4})-W([0-9]{2})")
_MONTH = re.compile(r"([0-9]{4})-([0-9]{2})")
_SCHOOL_YEAR = re.compile(r"([0-9]{4})-([0-9]{4})")
_MIN_YEAR, _MAX_YEAR = 2000, 2099


@dataclass(frozen=True, slots=True)
class Period:
    kind: PeriodKind
    label: str
    start: date
    end: date  # inclusive

    def previous_year(self) -> Period:
        """The same period one year earlier (year-on-year comparison)."""
        if self.kind == "schooljaar":
            first = self.start.year - 1
            return parse_period(f"{first}-{first + 1}")
        if self.kind == "maand":
            return parse_period(f"{self.start.year - 1}-{self.start.month:02d}")
        year, week, _ = self.start.isocalendar()
        last_week = date(year - 1, 12, 28).isocalendar().week
        return parse_period(f"{year - 1}-W{min(week, last_week):02d}")


def parse_period(value: str) -> Period:
    """``2025-W47`` (ISO week), ``2025-11`` (month) or ``2025-2026`` (school year, 1 August to
    31 July). ValueError for anything else."""
    text = value.strip()
    if match := _WEEK.fullmatch(text):
        year, week = int(match.group(1)), int(match.group(2))
        _check_year(year)
        if not 1 <= week <= date(year, 12, 28).isocalendar().week:
            raise ValueError(f"{year} has no ISO week {week}")
        monday = date.fromisocalendar(year, week, 1)
        return Period("week", text, monday, monday + timedelta(days=6))
    if match := _SCHOOL_YEAR.fullmatch(text):
        first, second = int(match.group(1)), int(match.group(2))
        _check_year(first)
        if second != first + 1:
            raise ValueError("a school year is two consecutive years, e.g. 2025-2026")
        return Period("schooljaar", text, date(first, 8, 1), date(second, 7, 31))
    if match := _MONTH.fullmatch(text):
        year, month = int(match.group(1)), int(match.group(2))
        _check_year(year)
        if not 1 <= month <= 12:
            raise ValueError("a month is 01 to 12")
        following = date(year + month // 12, month % 12 + 1, 1)
        return Period("maand", text, date(year, month, 1), following - timedelta(days=1))
    raise ValueError(
        "expected a school week (2025-W47), month (2025-11) or school year (2025-2026)"
    )


def _check_year(year: int) -> None:
    if not _MIN_YEAR <= year <= _MAX_YEAR:
        raise ValueError(f"year {year} is outside {_MIN_YEAR}..{_MAX_YEAR}")


def week_label(day: date) -> str:
    iso = day.isocalendar()
    return f"{iso.year}-W{iso.week:02d}"


def school_year_label(day: date) -> str:
    first = day.year if day.month >= 8 else day.year - 1
    return f"{first}-{first + 1}"
