"""Ages and fixed periods (school year, ISO week, month) every service counts in."""

from __future__ import annotations

import re
from datetime import date

SCHOOL_YEAR_START_MONTH = 8  # 1 August
_SCHOOL_YEAR = re.compile(r"([0-9]{4})-([0-9]{4})")

#: Age bands for statistics: label, lowest age, highest age (None: no upper bound).
AGE_BANDS: tuple[tuple[str, int, int | None], ...] = (
    ("0-3", 0, 3),
    ("4-5", 4, 5),
    ("6-11", 6, 11),
    ("12-15", 12, 15),
    ("16-17", 16, 17),
    ("18-22", 18, 22),
    ("23+", 23, None),
)


def age_on(birth_date: date, on: date) -> int:
    """Age in whole years on ``on``. Someone born on 29 February turns a year older on
    1 March in a common year (the Dutch legal reading)."""
    if on < birth_date:
        raise ValueError("date lies before the birth date")
    before_birthday = (on.month, on.day) < (birth_date.month, birth_date.day)
    return on.year - birth_date.year - before_birthday


def age_band(age: int) -> str:
    """The statistics band of an age: ``'0-3'``, ``'4-5'``, ..., ``'18-22'``, ``'23+'``."""
    if age < 0:
        raise ValueError("age cannot be negative")
    for label, low, high in AGE_BANDS:
        if low <= age and (high is None or age <= high):
            return label
    raise AssertionError("AGE_BANDS covers every age")  # pragma: no cover


def age_band_on(birth_date: date, on: date) -> str:
    return age_band(age_on(birth_date, on))


def school_year_start(day: date) -> date:
    """1 August of the school year ``day`` falls in."""
    year = day.year if day.month >= SCHOOL_YEAR_START_MONTH else day.year - 1
    return date(year, SCHOOL_YEAR_START_MONTH, 1)


def school_year_of(day: date) -> str:
    """``'2025-2026'`` for any day from 1 August 2025 to 31 July 2026."""
    start = school_year_start(day).year
    return f"{start}-{start + 1}"


def school_year_bounds(label: str) -> tuple[date, date]:
    """``'2025-2026'`` → (1 August 2025, 31 July 2026). ValueError for a malformed label."""
    match = _SCHOOL_YEAR.fullmatch(label)
    if match is None or int(match.group(2)) != int(match.group(1)) + 1:
        raise ValueError(f"geen schooljaar: {label!r}")
    first = int(match.group(1))
    return date(first, SCHOOL_YEAR_START_MONTH, 1), date(first + 1, 7, 31)


def iso_week_label(day: date) -> str:
    """ISO 8601 week of ``day``: ``'2025-W47'``. The year is the ISO week-numbering year, so
    29 December 2025 is ``'2026-W01'``."""
    iso = day.isocalendar()
    return f"{iso.year}-W{iso.week:02d}"


def month_label(day: date) -> str:
    """``'2025-11'``."""
    return day.strftime("%Y-%m")
