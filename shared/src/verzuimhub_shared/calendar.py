"""School calendars: lesdagen, lesweken and working days, from the ministry's holiday data.

Definitions (written down in ``docs/rules.md``, legal sources there):

- **lesdag**: a Monday to Friday that is not in a school holiday of the calendar's region, not a
  public holiday on which schools close (:func:`school_closed_holidays`) and not one of the
  school's own extra free days.
- **lesweek**: a Monday-to-Sunday week (ISO week) with **at least one lesdag**. A week that is
  partly holiday therefore counts as a whole lesweek; a week without any lesdag is no lesweek
  and is skipped when lesweken are counted.
- **rolling period of n lesweken** from a date: from that date up to (not including) the same
  weekday n lesweken later, skipping weeks that are no lesweek
  (:meth:`SchoolCalendar.window_end`).
- **working day** (for deadlines): Monday to Friday that is not a generally recognised holiday of
  the Algemene termijnenwet art. 3 (school holidays do not matter). See :func:`add_working_days`.

The holiday data has the shape of the ministry's open-data "schoolvakanties" document
(opendata.rijksoverheid.nl): per school year a list of vacations, each with a ``type`` and
``regions`` (``noord``, ``midden``, ``zuid`` or ``heel Nederland``) with ``startdate`` and
``enddate``, the first and last free day.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from functools import cache
from importlib import resources
from itertools import accumulate
from pathlib import Path
from typing import Any

__all__ = [
    "Lesweek",
    "Region",
    "SchoolCalendar",
    "SchoolYearHolidays",
    "Vacation",
    "add_working_days",
    "easter_sunday",
    "is_working_day",
    "load_holidays",
    "public_holidays",
    "region_calendar",
    "school_closed_holidays",
    "shipped_holidays",
    "shipped_school_years",
]

_DATA_PACKAGE = "verzuimhub_shared"
_DATA_DIR = "data/holidays"
_FILE_PREFIX = "schoolvakanties-"

# The calendar precomputes its days between these years (widened to cover its data); dates
# outside raise ValueError rather than silently guessing.
_MIN_YEAR = 2000
_MAX_YEAR = 2050


class Region(StrEnum):
    """The three holiday regions of the national schedule."""

    NOORD = "noord"
    MIDDEN = "midden"
    ZUID = "zuid"


_HEEL_NEDERLAND = "heel nederland"


@dataclass(frozen=True, slots=True)
class Vacation:
    """One vacation for one region (or all regions), first and last free day inclusive."""

    name: str
    region: Region | None  # None: heel Nederland
    startdate: date
    enddate: date

    def applies_to(self, region: Region) -> bool:
        return self.region is None or self.region == region


@dataclass(frozen=True, slots=True)
class SchoolYearHolidays:
    """The vacations of one school year (``"2024-2025"``)."""

    schoolyear: str
    vacations: tuple[Vacation, ...]

    @property
    def first_year(self) -> int:
        return int(self.schoolyear[:4])


@dataclass(frozen=True, slots=True)
class Lesweek:
    """Identity of a lesweek: its Monday, and its running number within the calendar."""

    monday: date
    number: int

    @property
    def iso(self) -> tuple[int, int]:
        year, week, _ = self.monday.isocalendar()
        return (year, week)


# --------------------------------------------------------------------------- public holidays


def easter_sunday(year: int) -> date:
    """Gregorian Easter Sunday (anonymous Gregorian algorithm, Meeus/Jones/Butcher)."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    el = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * el) // 451
    month, day = divmod(h + el - 7 * m + 114, 31)
    return date(year, month, day + 1)


def _koningsdag(year: int) -> date:
    # Koningsdag is 27 April, moved to the 26th when the 27th is a Sunday.
    day = date(year, 4, 27)
    return day - timedelta(days=1) if day.weekday() == 6 else day


@cache
def public_holidays(year: int) -> frozenset[date]:
    """Generally recognised holidays of the Algemene termijnenwet art. 3 lid 1 in ``year``.

    Nieuwjaarsdag, tweede Paasdag, Hemelvaartsdag, tweede Pinksterdag, both Kerstdagen,
    Koningsdag and 5 mei. These are the days (besides weekends) that do not count as working day.
    """
    easter = easter_sunday(year)
    return frozenset(
        {
            date(year, 1, 1),
            easter + timedelta(days=1),
            easter + timedelta(days=39),
            easter + timedelta(days=50),
            date(year, 12, 25),
            date(year, 12, 26),
            _koningsdag(year),
            date(year, 5, 5),
        }
    )


@cache
def school_closed_holidays(year: int) -> frozenset[date]:
    """Public holidays on which schools are closed: no lesdag.

    Schools follow the feestdagen of the cao's: the Algemene termijnenwet list, except that
    Bevrijdingsdag (5 mei) is a free day only in lustrum years (2025, 2030, ...). Other free days
    (Goede Vrijdag, the Friday after Hemelvaart) differ per school: pass them as extra free days.
    """
    days = set(public_holidays(year))
    if year % 5 != 0:
        days.discard(date(year, 5, 5))
    return frozenset(days)


def is_working_day(day: date) -> bool:
    """Monday to Friday and not a holiday of the Algemene termijnenwet (art. 3 lid 1)."""
    return day.weekday() < 5 and day not in public_holidays(day.year)


def add_working_days(day: date, n: int) -> date:
    """The n-th working day after ``day`` (n >= 0; n == 0 returns ``day`` itself).

    Used for the deadline "binnen 5 werkdagen" (Inspectie/DUO on Leerplichtwet art. 21a): the
    deadline of a threshold reached on ``day`` is ``add_working_days(day, 5)``. School holidays do
    not stop the clock: a working day is about the office, not about lessons.
    """
    if n < 0:
        raise ValueError("n must not be negative")
    current = day
    remaining = n
    while remaining:
        current += timedelta(days=1)
        if is_working_day(current):
            remaining -= 1
    return current


# --------------------------------------------------------------------------- loading


def _to_local_date(value: str) -> date:
    """A ministry date value as a Dutch calendar date.

    Accepts ``YYYY-MM-DD``, a naive datetime (taken as Dutch local time) and an aware datetime
    such as the feed's ``2024-10-18T22:00:00.000Z`` (local midnight written in UTC), which is
    converted to Dutch local time (CET/CEST, EU summer-time rule) before taking the date.
    """
    text = value.strip()
    if len(text) == 10:
        return date.fromisoformat(text)
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        return moment.date()
    utc = moment.astimezone(UTC).replace(tzinfo=None)
    return (utc + timedelta(hours=_amsterdam_offset_hours(utc))).date()


def _last_sunday(year: int, month: int) -> date:
    last = date(year, month + 1, 1) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() + 1) % 7)


def _amsterdam_offset_hours(utc: datetime) -> int:
    # EU rule: summer time from the last Sunday of March 01:00 UTC to the last Sunday of
    # October 01:00 UTC. Avoids depending on a tz database being installed.
    start = datetime.combine(_last_sunday(utc.year, 3), datetime.min.time()) + timedelta(hours=1)
    end = datetime.combine(_last_sunday(utc.year, 10), datetime.min.time()) + timedelta(hours=1)
    return 2 if start <= utc < end else 1


def _parse_region(value: str) -> Region | None:
    text = value.strip().lower()
    if text == _HEEL_NEDERLAND:
        return None
    return Region(text)


def _parse_year(block: Mapping[str, Any]) -> SchoolYearHolidays:
    vacations: list[Vacation] = []
    for vacation in block["vacations"]:
        name = str(vacation["type"]).strip()
        for entry in vacation["regions"]:
            start = _to_local_date(entry["startdate"])
            end = _to_local_date(entry["enddate"])
            if end < start:
                raise ValueError(f"{name}: enddate {end} before startdate {start}")
            vacations.append(Vacation(name, _parse_region(entry["region"]), start, end))
    return SchoolYearHolidays(str(block["schoolyear"]).strip(), tuple(vacations))


def load_holidays(source: str | Path | bytes | Mapping[str, Any]) -> list[SchoolYearHolidays]:
    """Parse a ministry "schoolvakanties" document.

    ``source`` is a path, JSON text/bytes, or the already decoded document. Both the full
    document (with ``content``: a list of school years) and a single school-year block (with
    ``schoolyear`` and ``vacations``) are accepted.
    """
    document: Any
    if isinstance(source, Mapping):
        document = source
    elif isinstance(source, Path):
        document = json.loads(source.read_text(encoding="utf-8"))
    elif isinstance(source, bytes) or source.lstrip().startswith("{"):
        document = json.loads(source)
    else:
        document = json.loads(Path(source).read_text(encoding="utf-8"))
    blocks = document.get("content", [document])
    return [_parse_year(block) for block in blocks]


def shipped_school_years() -> list[str]:
    """The school years for which holiday data ships with this package."""
    folder = resources.files(_DATA_PACKAGE).joinpath(_DATA_DIR)
    names = [
        entry.name[len(_FILE_PREFIX) : -len(".json")]
        for entry in folder.iterdir()
        if entry.name.startswith(_FILE_PREFIX) and entry.name.endswith(".json")
    ]
    return sorted(names)


@cache
def _shipped(schoolyear: str) -> SchoolYearHolidays:
    resource = resources.files(_DATA_PACKAGE).joinpath(
        _DATA_DIR, f"{_FILE_PREFIX}{schoolyear}.json"
    )
    if not resource.is_file():
        raise KeyError(f"no holiday data shipped for school year {schoolyear}")
    (year,) = load_holidays(resource.read_bytes())
    return year


def shipped_holidays(school_years: Iterable[str] | None = None) -> list[SchoolYearHolidays]:
    """The shipped holiday data, for the given school years (default: all shipped years)."""
    years = shipped_school_years() if school_years is None else list(school_years)
    return [_shipped(year) for year in years]


def region_calendar(
    region: Region | str,
    school_years: Iterable[str] | None = None,
    *,
    extra_free_days: Iterable[date] = (),
    holidays: Sequence[SchoolYearHolidays] | None = None,
) -> SchoolCalendar:
    """The calendar of one holiday region spanning several school years.

    ``holidays`` defaults to the shipped data (all shipped years, or ``school_years``);
    ``extra_free_days`` are the school's own free days on top of the national schedule.
    """
    data = list(holidays) if holidays is not None else shipped_holidays(school_years)
    return SchoolCalendar.from_holidays(Region(region), data, extra_free_days=extra_free_days)


# --------------------------------------------------------------------------- the calendar


class SchoolCalendar:
    """Lesdagen and lesweken of one school (one region, plus its own free days).

    All queries are O(1) or O(log n) over arrays precomputed at construction for the years
    2000-2050 (widened to the data). ``covers`` tells whether a date lies within the school years
    the holiday data describes; outside them only weekends, public holidays and the extra free
    days are free.
    """

    __slots__ = (
        "_base",
        "_coverage",
        "_free",
        "_last",
        "_lesdag",
        "_lesdag_before",
        "_lesweek_before",
        "_lesweek_weeks",
        "region",
    )

    def __init__(
        self,
        free_periods: Iterable[tuple[date, date]] = (),
        extra_free_days: Iterable[date] = (),
        *,
        region: Region | None = None,
        coverage: tuple[date, date] | None = None,
    ) -> None:
        self.region = region
        free: set[date] = set(extra_free_days)
        for start, end in free_periods:
            day = start
            while day <= end:
                free.add(day)
                day += timedelta(days=1)
        self._free = frozenset(free)
        self._coverage = coverage
        years = [d.year for d in free] + ([coverage[0].year, coverage[1].year] if coverage else [])
        first_year = min([_MIN_YEAR, *years])
        last_year = max([_MAX_YEAR, *years])
        first = date(first_year, 1, 1)
        self._base = first - timedelta(days=first.weekday())  # a Monday
        last = date(last_year, 12, 31)
        self._last = last + timedelta(days=6 - last.weekday())  # a Sunday
        total = (self._last - self._base).days + 1
        # Free weekdays as offsets from the base (a Monday: an offset's weekday is offset % 7),
        # the public holidays collected once per year. Built for three regions when melding
        # first evaluates; walking the ~18,600 days one by one took ~40 ms a region.
        base = self._base.toordinal()
        closed = set(self._free)
        for year in range(self._base.year, self._last.year + 1):
            closed.update(school_closed_holidays(year))
        off = {day.toordinal() - base for day in closed}
        lesdag = bytes(offset % 7 < 5 and offset not in off for offset in range(total))
        lesdag_before = [0, *accumulate(lesdag)]
        self._lesdag = lesdag
        self._lesdag_before = lesdag_before
        weeks = total // 7
        lesweek_before = [0] * (weeks + 1)
        lesweek_weeks: list[int] = []
        for week in range(weeks):
            lesweek_before[week] = len(lesweek_weeks)
            if lesdag_before[7 * week + 7] > lesdag_before[7 * week]:
                lesweek_weeks.append(week)
        lesweek_before[weeks] = len(lesweek_weeks)
        self._lesweek_before = lesweek_before
        self._lesweek_weeks = lesweek_weeks

    @classmethod
    def from_holidays(
        cls,
        region: Region,
        holidays: Iterable[SchoolYearHolidays],
        *,
        extra_free_days: Iterable[date] = (),
    ) -> SchoolCalendar:
        years = list(holidays)
        periods = [
            (vacation.startdate, vacation.enddate)
            for year in years
            for vacation in year.vacations
            if vacation.applies_to(region)
        ]
        coverage = None
        if years:
            first = min(year.first_year for year in years)
            last = max(year.first_year for year in years) + 1
            ends = [end for _, end in periods] or [date(last, 7, 31)]
            coverage = (date(first, 8, 1), max(date(last, 7, 31), *ends))
        return cls(periods, extra_free_days, region=region, coverage=coverage)

    def with_extra_free_days(self, days: Iterable[date]) -> SchoolCalendar:
        """A copy of this calendar with more free days (a school's own free days)."""
        return SchoolCalendar(
            [], self._free | frozenset(days), region=self.region, coverage=self._coverage
        )

    # -- helpers

    def _offset(self, day: date) -> int:
        offset = (day - self._base).days
        if offset < 0 or day > self._last:
            raise ValueError(f"{day} is outside the calendar range {self._base}..{self._last}")
        return offset

    def _day(self, offset: int) -> date:
        return self._base + timedelta(days=offset)

    # -- days

    @property
    def first_day(self) -> date:
        return self._base

    @property
    def last_day(self) -> date:
        return self._last

    def covers(self, day: date) -> bool:
        """Whether ``day`` lies within the school years of the holiday data."""
        return self._coverage is not None and self._coverage[0] <= day <= self._coverage[1]

    def is_free_day(self, day: date) -> bool:
        """A school holiday or extra free day of this calendar (weekends not included)."""
        return day in self._free

    def is_lesdag(self, day: date) -> bool:
        return bool(self._lesdag[self._offset(day)])

    def lesdag_number(self, day: date) -> int:
        """Number of lesdagen before ``day``: consecutive lesdagen have consecutive numbers."""
        return self._lesdag_before[self._offset(day)]

    def count_lesdagen(self, start: date, end: date) -> int:
        """Number of lesdagen in ``start..end`` inclusive (0 when end < start)."""
        if end < start:
            return 0
        return self._lesdag_before[self._offset(end) + 1] - self._lesdag_before[self._offset(start)]

    def lesdagen(self, start: date, end: date) -> Iterator[date]:
        """The lesdagen in ``start..end`` inclusive, in order."""
        if end < start:
            return
        first, last = self._offset(start), self._offset(end)
        for offset in range(first, last + 1):
            if self._lesdag[offset]:
                yield self._day(offset)

    def next_lesdag(self, day: date) -> date:
        """The first lesdag after ``day``."""
        offset = self._offset(day) + 1
        while offset < len(self._lesdag) and not self._lesdag[offset]:
            offset += 1
        return self._day(offset)

    def previous_lesdag(self, day: date) -> date:
        """The last lesdag before ``day``."""
        offset = self._offset(day) - 1
        while offset >= 0 and not self._lesdag[offset]:
            offset -= 1
        return self._day(offset)

    # -- weeks

    def is_lesweek(self, day: date) -> bool:
        """Whether the Monday-to-Sunday week containing ``day`` has at least one lesdag."""
        week = self._offset(day) // 7
        return self._lesweek_before[week + 1] > self._lesweek_before[week]

    def lesweek(self, day: date) -> Lesweek | None:
        """The lesweek containing ``day`` (also on its weekend); None in a week without lesdag."""
        week = self._offset(day) // 7
        if not self._lesweek_before[week + 1] > self._lesweek_before[week]:
            return None
        return Lesweek(self._day(7 * week), self._lesweek_before[week])

    def lesweek_number(self, day: date) -> int:
        """Number of lesweken before the week of ``day``: the number of its lesweek, if any."""
        return self._lesweek_before[self._offset(day) // 7]

    def lesweek_monday(self, number: int) -> date:
        """The Monday of the lesweek with the given number."""
        if not 0 <= number < len(self._lesweek_weeks):
            raise ValueError(f"lesweek {number} is outside the calendar range")
        return self._day(7 * self._lesweek_weeks[number])

    def window_end(self, start: date, n: int) -> date:
        """Last day of the rolling period of ``n`` lesweken that begins on ``start``.

        The period runs from ``start`` up to, not including, the same weekday in the lesweek
        that comes ``n`` lesweken after the lesweek of ``start``; weeks without lesdag are skipped
        (so a period reaches past a holiday). A start in a week without lesdag counts as the
        Monday of the next lesweek. Example: from Wednesday in lesweek k, the period ends on the
        Tuesday of lesweek k + n; from a Monday it ends on the Sunday before lesweek k + n.
        """
        if n < 1:
            raise ValueError("n must be at least 1")
        offset = self._offset(start)
        week, weekday = divmod(offset, 7)
        if not self._lesweek_before[week + 1] > self._lesweek_before[week]:
            weekday = 0
        target = self._lesweek_before[week] + n
        if target >= len(self._lesweek_weeks):
            raise ValueError(f"{n} lesweken from {start} reach past the calendar range")
        return self._day(7 * self._lesweek_weeks[target] + weekday - 1)

    def lesweken_span(self, start: date, n: int) -> tuple[date, date]:
        """The date range (inclusive) of the rolling period of ``n`` lesweken from ``start``."""
        return (start, self.window_end(start, n))

    def window_start(self, end: date, n: int) -> date:
        """The earliest date whose rolling period of ``n`` lesweken reaches ``end``.

        Every period that begins before the returned date ends before ``end``: a change on ``end``
        cannot affect such a period.
        """
        hi = end  # window_end(end, n) >= end always
        lo = end - timedelta(days=7)
        while lo > self._base and self.window_end(lo, n) >= end:
            lo -= timedelta(days=7 * n)
        lo = max(lo, self._base)
        if self.window_end(lo, n) >= end:
            return lo
        # invariant: window_end(lo) < end <= window_end(hi); window_end is non-decreasing
        lo_ord, hi_ord = lo.toordinal(), hi.toordinal()
        while hi_ord - lo_ord > 1:
            mid = (lo_ord + hi_ord) // 2
            if self.window_end(date.fromordinal(mid), n) >= end:
                hi_ord = mid
            else:
                lo_ord = mid
        return date.fromordinal(hi_ord)
