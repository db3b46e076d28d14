"""The school calendar: lesdagen, lesweken, rolling periods, working days, holiday data."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from verzuimhub_shared.calendar import (
    Region,
    SchoolCalendar,
    add_working_days,
    easter_sunday,
    is_working_day,
    load_holidays,
    public_holidays,
    region_calendar,
    school_closed_holidays,
    shipped_holidays,
    shipped_school_years,
)

D = date
MIDDEN = region_calendar("midden")
NOORD = region_calendar(Region.NOORD)
ZUID = region_calendar(Region.ZUID)


# -- shipped data


def test_shipped_years() -> None:
    years = shipped_school_years()
    assert {"2024-2025", "2025-2026", "2026-2027"} <= set(years)


@pytest.mark.parametrize("year", ["2023-2024", "2024-2025", "2025-2026", "2026-2027"])
def test_shipped_year_has_the_five_vacations_for_every_region(year: str) -> None:
    (holidays,) = shipped_holidays([year])
    names = {v.name for v in holidays.vacations}
    assert names == {
        "Herfstvakantie",
        "Kerstvakantie",
        "Voorjaarsvakantie",
        "Meivakantie",
        "Zomervakantie",
    }
    for region in Region:
        mine = [v for v in holidays.vacations if v.applies_to(region)]
        assert len(mine) == 5
        for vacation in mine:
            assert vacation.startdate.weekday() == 5  # Saturday
            assert vacation.enddate.weekday() == 6  # Sunday
        summer = next(v for v in mine if v.name == "Zomervakantie")
        assert (summer.enddate - summer.startdate).days + 1 == 44  # six weeks


def test_shipped_dates_convert_from_utc_to_dutch_dates() -> None:
    (holidays,) = shipped_holidays(["2024-2025"])
    herfst_noord = next(
        v for v in holidays.vacations if v.name == "Herfstvakantie" and v.region is Region.NOORD
    )
    assert (herfst_noord.startdate, herfst_noord.enddate) == (D(2024, 10, 26), D(2024, 11, 3))
    kerst = next(v for v in holidays.vacations if v.name == "Kerstvakantie")
    assert kerst.region is None
    assert (kerst.startdate, kerst.enddate) == (D(2024, 12, 21), D(2025, 1, 5))


def test_load_holidays_accepts_path_text_bytes_and_mapping(tmp_path: Path) -> None:
    document = {
        "content": [
            {
                "schoolyear": "2030-2031 ",
                "vacations": [
                    {
                        "type": "Herfstvakantie ",
                        "regions": [
                            {
                                "region": "heel Nederland",
                                "startdate": "2030-10-12",
                                "enddate": "2030-10-20T00:00:00",
                            },
                            {
                                "region": "Zuid",
                                "startdate": "2030-10-18T22:00:00.000Z",
                                "enddate": "2030-10-26T22:00:00.000Z",
                            },
                        ],
                    }
                ],
            }
        ]
    }
    text = json.dumps(document)
    path = tmp_path / "vakanties.json"
    path.write_text(text)
    results = [
        load_holidays(document),
        load_holidays(text),
        load_holidays(text.encode()),
        load_holidays(path),
        load_holidays(str(path)),
        load_holidays(document["content"][0]),
    ]
    for (year,) in results:
        assert year.schoolyear == "2030-2031"
        assert year.vacations[0].name == "Herfstvakantie"
        assert year.vacations[0].region is None
        assert (year.vacations[0].startdate, year.vacations[0].enddate) == (
            D(2030, 10, 12),
            D(2030, 10, 20),
        )
        assert year.vacations[1].region is Region.ZUID
        assert (year.vacations[1].startdate, year.vacations[1].enddate) == (
            D(2030, 10, 19),
            D(2030, 10, 27),
        )


def test_load_holidays_refuses_an_end_before_the_start() -> None:
    block = {
        "schoolyear": "2030-2031",
        "vacations": [
            {
                "type": "x",
                "regions": [
                    {"region": "noord", "startdate": "2030-10-20", "enddate": "2030-10-12"}
                ],
            }
        ],
    }
    with pytest.raises(ValueError, match="before"):
        load_holidays(block)


def test_unknown_school_year_is_an_error() -> None:
    with pytest.raises(KeyError):
        shipped_holidays(["1999-2000"])


# -- lesdagen


@pytest.mark.parametrize(
    ("calendar", "day", "lesdag"),
    [
        (MIDDEN, D(2024, 10, 18), True),  # Friday before herfst
        (MIDDEN, D(2024, 10, 21), False),  # herfst midden
        (NOORD, D(2024, 10, 21), True),  # noord still at school
        (NOORD, D(2024, 10, 28), False),  # herfst noord
        (MIDDEN, D(2024, 9, 14), False),  # Saturday
        (MIDDEN, D(2024, 12, 23), False),  # kerst, heel Nederland
        (MIDDEN, D(2025, 1, 6), True),
        (MIDDEN, D(2025, 4, 21), False),  # tweede Paasdag
        (MIDDEN, D(2025, 5, 5), False),  # Bevrijdingsdag in a lustrum year
        (MIDDEN, D(2026, 5, 5), True),  # Bevrijdingsdag otherwise a lesdag
        (MIDDEN, D(2025, 5, 29), False),  # Hemelvaartsdag
        (MIDDEN, D(2025, 6, 9), False),  # tweede Pinksterdag
        (MIDDEN, D(2025, 4, 18), True),  # Goede Vrijdag: the school decides
        (ZUID, D(2025, 7, 7), False),  # zomer zuid
        (MIDDEN, D(2025, 7, 7), True),
        (MIDDEN, D(2025, 9, 1), True),  # first day of 2025-2026 in midden
    ],
)
def test_is_lesdag(calendar: SchoolCalendar, day: date, lesdag: bool) -> None:
    assert calendar.is_lesdag(day) is lesdag


@pytest.mark.parametrize("calendar", [MIDDEN, NOORD, ZUID, SchoolCalendar([], [D(2051, 3, 6)])])
def test_every_day_of_the_range_is_a_lesdag_by_the_definition(calendar: SchoolCalendar) -> None:
    """The precomputed arrays (built by offsets and ordinals) against the definition, day by
    day over the whole range: a weekday, not a free day, not a public holiday schools close
    on; and the count of lesdagen before each day."""
    day, count = calendar.first_day, 0
    while day <= calendar.last_day:
        expected = (
            day.weekday() < 5
            and not calendar.is_free_day(day)
            and day not in school_closed_holidays(day.year)
        )
        assert calendar.is_lesdag(day) is expected, day
        if expected:
            assert calendar.lesdag_number(day) == count, day
        count += expected
        day += timedelta(days=1)


def test_extra_free_days() -> None:
    calendar = MIDDEN.with_extra_free_days([D(2025, 4, 18), D(2025, 5, 30)])
    assert not calendar.is_lesdag(D(2025, 4, 18))
    assert not calendar.is_lesdag(D(2025, 5, 30))
    assert calendar.is_free_day(D(2025, 5, 30))
    assert MIDDEN.is_lesdag(D(2025, 5, 30))
    built = region_calendar("midden", extra_free_days=[D(2025, 5, 30)])
    assert not built.is_lesdag(D(2025, 5, 30))


def test_counting_and_listing_lesdagen() -> None:
    # 14 Oct .. 1 Nov 2024 in midden: a lesweek, the herfstvakantie, a lesweek
    days = list(MIDDEN.lesdagen(D(2024, 10, 14), D(2024, 11, 1)))
    assert len(days) == MIDDEN.count_lesdagen(D(2024, 10, 14), D(2024, 11, 1)) == 10
    assert days[4:6] == [D(2024, 10, 18), D(2024, 10, 28)]
    assert MIDDEN.lesdag_number(D(2024, 10, 28)) == MIDDEN.lesdag_number(D(2024, 10, 18)) + 1
    assert MIDDEN.next_lesdag(D(2024, 10, 18)) == D(2024, 10, 28)
    assert MIDDEN.previous_lesdag(D(2024, 10, 28)) == D(2024, 10, 18)
    assert MIDDEN.count_lesdagen(D(2024, 10, 2), D(2024, 10, 1)) == 0
    assert list(MIDDEN.lesdagen(D(2024, 10, 2), D(2024, 10, 1))) == []


def test_coverage_and_range() -> None:
    assert MIDDEN.covers(D(2024, 3, 1))
    assert not MIDDEN.covers(D(2035, 3, 1))
    assert not SchoolCalendar().covers(D(2024, 3, 1))
    assert SchoolCalendar().is_lesdag(D(2035, 3, 1))  # outside the data: only weekends etc.
    with pytest.raises(ValueError, match="outside"):
        MIDDEN.is_lesdag(D(1990, 1, 1))


# -- lesweken


def test_a_week_with_one_lesdag_is_a_lesweek_a_holiday_week_is_not() -> None:
    calendar = SchoolCalendar(
        [(D(2024, 10, 19), D(2024, 10, 27))],
        [D(2024, 10, 29), D(2024, 10, 30), D(2024, 10, 31), D(2024, 11, 1)],
    )
    assert calendar.lesweek(D(2024, 10, 23)) is None
    assert not calendar.is_lesweek(D(2024, 10, 21))
    partly = calendar.lesweek(D(2024, 10, 30))  # only Monday 28 Oct is a lesdag
    assert partly is not None
    assert partly.monday == D(2024, 10, 28)
    assert partly.iso == (2024, 44)
    before = calendar.lesweek(D(2024, 10, 18))
    assert before is not None
    assert partly.number == before.number + 1
    assert calendar.lesweek_monday(partly.number) == D(2024, 10, 28)
    assert calendar.lesweek(D(2024, 11, 3)) == partly  # its Sunday belongs to it


@pytest.mark.parametrize(
    ("start", "weeks", "end"),
    [
        (D(2024, 9, 2), 4, D(2024, 9, 29)),  # Monday: up to the Sunday before week 5
        (D(2024, 9, 11), 4, D(2024, 10, 8)),  # Wednesday: up to the Tuesday of week 5
        (D(2024, 9, 13), 1, D(2024, 9, 19)),
        (D(2024, 10, 7), 4, D(2024, 11, 10)),  # reaches past the herfstvakantie
        (D(2024, 10, 16), 2, D(2024, 11, 5)),  # Wednesday, holiday week skipped
        (D(2024, 12, 16), 2, D(2025, 1, 12)),  # across kerst: two weeks skipped
        (D(2024, 10, 22), 1, D(2024, 11, 3)),  # start in a holiday: from the next lesweek
        (D(2025, 7, 14), 4, D(2025, 9, 21)),  # across the zomervakantie
    ],
)
def test_window_end(start: date, weeks: int, end: date) -> None:
    assert MIDDEN.window_end(start, weeks) == end
    assert MIDDEN.lesweken_span(start, weeks) == (start, end)


def test_window_end_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        MIDDEN.window_end(D(2024, 9, 2), 0)


@settings(max_examples=200, deadline=None)
@given(
    offset=st.integers(0, 3 * 365),
    weeks=st.integers(1, 6),
)
def test_window_properties(offset: int, weeks: int) -> None:
    start = D(2024, 1, 1) + timedelta(days=offset)
    end = MIDDEN.window_end(start, weeks)
    # monotone in the start, and exactly ``weeks`` lesweken long
    assert MIDDEN.window_end(start + timedelta(days=1), weeks) >= end
    # exactly ``weeks`` lesweken: the day after the end starts the lesweek ``weeks`` further
    assert MIDDEN.lesweek_number(end + timedelta(days=1)) - MIDDEN.lesweek_number(start) == weeks
    # window_start is the inverse bound
    back = MIDDEN.window_start(end, weeks)
    assert back <= start
    assert MIDDEN.window_end(back, weeks) >= end
    assert MIDDEN.window_end(back - timedelta(days=1), weeks) < end


# -- working days and holidays


def test_easter() -> None:
    assert [easter_sunday(y) for y in (2024, 2025, 2026, 2027)] == [
        D(2024, 3, 31),
        D(2025, 4, 20),
        D(2026, 4, 5),
        D(2027, 3, 28),
    ]


def test_public_holidays_2025() -> None:
    assert public_holidays(2025) == {
        D(2025, 1, 1),
        D(2025, 4, 21),
        D(2025, 4, 26),  # Koningsdag
        D(2025, 5, 5),
        D(2025, 5, 29),
        D(2025, 6, 9),
        D(2025, 12, 25),
        D(2025, 12, 26),
    }
    assert D(2025, 5, 5) in school_closed_holidays(2025)
    assert D(2026, 5, 5) not in school_closed_holidays(2026)
    assert D(2014, 4, 26) in public_holidays(2014)  # 27 April 2014 was a Sunday


@pytest.mark.parametrize(
    ("start", "n", "expected"),
    [
        (D(2024, 9, 12), 5, D(2024, 9, 19)),  # Thursday
        (D(2024, 9, 13), 5, D(2024, 9, 20)),  # Friday
        (D(2024, 9, 14), 5, D(2024, 9, 20)),  # Saturday
        (D(2025, 4, 17), 5, D(2025, 4, 25)),  # over Easter Monday; Goede Vrijdag counts
        (D(2024, 12, 20), 5, D(2024, 12, 31)),  # over both Kerstdagen
        (D(2024, 12, 24), 5, D(2025, 1, 3)),  # over Kerstdagen and Nieuwjaarsdag
        (D(2024, 10, 18), 5, D(2024, 10, 25)),  # school holidays do not stop the clock
        (D(2024, 9, 12), 0, D(2024, 9, 12)),
    ],
)
def test_add_working_days(start: date, n: int, expected: date) -> None:
    assert add_working_days(start, n) == expected


def test_working_day() -> None:
    assert is_working_day(D(2024, 10, 21))
    assert not is_working_day(D(2026, 5, 5))  # 5 mei is in the Algemene termijnenwet
    assert not is_working_day(D(2024, 9, 14))
    with pytest.raises(ValueError, match="negative"):
        add_working_days(D(2024, 9, 12), -1)
