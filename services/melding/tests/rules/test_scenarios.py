"""Table-driven scenarios with hand-computed expectations.

Calendar: region midden, school year 2024-2025 (herfst 19-27 Oct 2024, kerst 21 Dec 2024 -
5 Jan 2025, voorjaar 22 Feb - 2 Mar 2025, mei 26 Apr - 4 May 2025; 5 May 2025 is a lustrum
Bevrijdingsdag). Monday 2 September 2024 starts a lesweek. "none" is a calendar without
school holidays.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import pytest

from verzuimhub_melding.rules import (
    CountingUnit,
    DiscrepancyReason,
    ExistingMelding,
    LedgerDay,
    MeldingKind,
    MeldingStatus,
    Pupil,
    RulesConfig,
    Sector,
    evaluate,
)
from verzuimhub_shared.calendar import SchoolCalendar, region_calendar

D = date
CALENDARS = {"midden": region_calendar("midden"), "none": SchoolCalendar()}
V3, V4, LRV, RMC, L = (
    MeldingKind.V3,
    MeldingKind.V4,
    MeldingKind.LRV,
    MeldingKind.RMC,
    MeldingKind.L,
)
CONCEPT, SENT = MeldingStatus.CONCEPT, MeldingStatus.SENT
CHILD = D(2012, 5, 1)  # 12 in 2024: leerplichtig


def u(
    day: date, minutes: int = 0, *, units: int = 0, auth: int = 0, whole: bool = False
) -> LedgerDay:
    """Unauthorised absence (and optionally authorised minutes) on one day."""
    return LedgerDay(
        day,
        unauthorised_minutes=minutes,
        unauthorised_units=units,
        authorised_minutes=auth,
        all_lessons_missed=whole,
    )


def a(day: date, minutes: int) -> LedgerDay:
    return LedgerDay(day, authorised_minutes=minutes)


def luxe(day: date, minutes: int = 300) -> LedgerDay:
    return LedgerDay(day, unauthorised_minutes=minutes, luxe_verzuim=True, all_lessons_missed=True)


def every_lesdag(
    start: date, end: date, minutes: int = 300, *, whole: bool = True
) -> list[LedgerDay]:
    calendar = CALENDARS["midden"]
    return [u(day, minutes, whole=whole) for day in calendar.lesdagen(start, end)]


def weekdays(start: date, end: date) -> list[date]:
    days = []
    day = start
    while day <= end:
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    return days


Expected = tuple[MeldingKind, date, date, int, bool]  # kind, begin, eind, counted minutes, herhaal


@dataclass(frozen=True)
class Scenario:
    name: str
    ledger: list[LedgerDay]
    expected: list[Expected]
    sector: Sector = Sector.PO
    geboortedatum: date = CHILD
    startkwalificatie: bool = False
    woongemeente: str = "GM0363"
    bestuur: str | None = None
    existing: list[ExistingMelding] = field(default_factory=list)
    config: RulesConfig = field(default_factory=RulesConfig)
    calendar: str = "midden"
    no_longer_due: list[str] = field(default_factory=list)
    discrepancies: list[tuple[str, DiscrepancyReason]] = field(default_factory=list)


SCENARIOS = [
    # -- the threshold itself
    Scenario(
        "po exactly 16 hours in one week",
        [u(d, 240) for d in weekdays(D(2024, 9, 9), D(2024, 9, 12))],
        [(V3, D(2024, 9, 9), D(2024, 9, 12), 960, False)],
    ),
    Scenario(
        "po 15 hours 59 minutes is not enough",
        [u(d, 240) for d in weekdays(D(2024, 9, 9), D(2024, 9, 11))] + [u(D(2024, 9, 12), 239)],
        [],
    ),
    Scenario(
        "threshold reached inside a day: einddatum that day, all its hours counted",
        [u(d, 300) for d in weekdays(D(2024, 9, 9), D(2024, 9, 13))],
        [(V3, D(2024, 9, 9), D(2024, 9, 12), 1200, False)],
    ),
    Scenario(
        "16 hours on the last day of four lesweken",
        [
            u(D(2024, 9, 9), 240),
            u(D(2024, 9, 16), 240),
            u(D(2024, 9, 23), 240),
            u(D(2024, 10, 4), 240),
        ],
        [(V3, D(2024, 9, 9), D(2024, 10, 4), 960, False)],
    ),
    Scenario(
        "16 hours one week too late: window slides, never reached",
        [
            u(D(2024, 9, 9), 240),
            u(D(2024, 9, 16), 240),
            u(D(2024, 9, 23), 240),
            u(D(2024, 10, 7), 240),
        ],
        [],
    ),
    Scenario(
        "window starting Wednesday ends Tuesday four lesweken later",
        [u(D(2024, 9, 11), 480), u(D(2024, 10, 8), 480)],
        [(V3, D(2024, 9, 11), D(2024, 10, 8), 960, False)],
    ),
    Scenario(
        "window starting Wednesday does not reach the fifth Wednesday",
        [u(D(2024, 9, 11), 480), u(D(2024, 10, 9), 480)],
        [],
    ),
    Scenario(
        "four lesweken reach past the herfstvakantie",
        [
            u(D(2024, 10, 7), 240),
            u(D(2024, 10, 14), 240),
            u(D(2024, 10, 28), 240),
            u(D(2024, 11, 4), 240),
        ],
        [(V3, D(2024, 10, 7), D(2024, 11, 4), 960, False)],
    ),
    Scenario(
        "the same dates without the holiday span five weeks: no melding",
        [
            u(D(2024, 10, 7), 240),
            u(D(2024, 10, 14), 240),
            u(D(2024, 10, 28), 240),
            u(D(2024, 11, 4), 240),
        ],
        [],
        calendar="none",
    ),
    Scenario(
        "period across the kerstvakantie",
        [u(d, 150) for d in weekdays(D(2024, 12, 16), D(2024, 12, 20))]
        + [u(D(2025, 1, 6), 120), u(D(2025, 1, 7), 120)],
        [(V3, D(2024, 12, 16), D(2025, 1, 7), 990, False)],
    ),
    Scenario(
        "period across the start of a school year (zomervakantie 2024)",
        [
            u(D(2024, 7, 8), 240),
            u(D(2024, 7, 12), 240),
            u(D(2024, 8, 26), 240),
            u(D(2024, 8, 27), 240),
        ],
        [(V3, D(2024, 7, 8), D(2024, 8, 27), 960, False)],
    ),
    Scenario(
        "absence registered in a holiday never counts",
        [u(d, 300) for d in weekdays(D(2024, 10, 21), D(2024, 10, 25))],
        [],
    ),
    Scenario(
        "absence registered on a weekend or a closed public holiday never counts",
        [
            u(D(2024, 9, 14), 480),
            u(D(2024, 9, 15), 480),
            u(D(2025, 4, 21), 480),
            u(D(2025, 4, 22), 240),
        ],
        [],
    ),
    # -- restart after a melding
    Scenario(
        "counting restarts the day after the einddatum; surplus does not carry",
        [u(d, 300) for d in weekdays(D(2024, 9, 9), D(2024, 9, 12))]
        + [u(d, 240) for d in weekdays(D(2024, 9, 17), D(2024, 9, 19))],
        [(V3, D(2024, 9, 9), D(2024, 9, 12), 1200, False)],
    ),
    Scenario(
        "a second 16 hours after a present day is a new melding",
        [u(d, 240) for d in weekdays(D(2024, 9, 9), D(2024, 9, 12))]
        + [u(d, 240) for d in weekdays(D(2024, 9, 16), D(2024, 9, 19))],
        [
            (V3, D(2024, 9, 9), D(2024, 9, 12), 960, False),
            (V3, D(2024, 9, 16), D(2024, 9, 19), 960, False),
        ],
    ),
    Scenario(
        "restart after a sent melding: counting resumes after its einddatum",
        [u(d, 240) for d in weekdays(D(2024, 9, 9), D(2024, 9, 12))]
        + [u(d, 240) for d in weekdays(D(2024, 9, 16), D(2024, 9, 19))],
        [(V3, D(2024, 9, 16), D(2024, 9, 19), 960, False)],
        existing=[ExistingMelding(V3, D(2024, 9, 9), D(2024, 9, 12), SENT)],
    ),
    # -- mixed authorised and unauthorised
    Scenario(
        "only the unauthorised part of mixed days counts",
        [u(d, 120, auth=240) for d in weekdays(D(2024, 9, 9), D(2024, 9, 18))],
        [(V3, D(2024, 9, 9), D(2024, 9, 18), 960, False)],
    ),
    Scenario(
        "authorised absence alone never makes a melding due",
        [a(d, 330) for d in weekdays(D(2024, 9, 2), D(2024, 10, 18))],
        [],
    ),
    Scenario(
        "authorised days between unauthorised ones neither count nor break the window",
        [
            u(D(2024, 9, 9), 480),
            a(D(2024, 9, 10), 330),
            a(D(2024, 9, 11), 330),
            u(D(2024, 9, 12), 480),
        ],
        [(V3, D(2024, 9, 9), D(2024, 9, 12), 960, False)],
    ),
    Scenario(
        "distance education is participation, never absence",
        [LedgerDay(d, distance_minutes=330) for d in weekdays(D(2024, 9, 2), D(2024, 10, 18))],
        [],
    ),
    # -- units
    Scenario(
        "vo: 16 lesuren of 45 minutes (12 clock hours) reach 16 hours",
        [u(d, 180, units=4) for d in weekdays(D(2024, 9, 9), D(2024, 9, 12))],
        [(V3, D(2024, 9, 9), D(2024, 9, 12), 960, False)],
        sector=Sector.VO,
    ),
    Scenario(
        "vo: 15 lesuren of 50 minutes stay below",
        [u(d, 250, units=5) for d in weekdays(D(2024, 9, 9), D(2024, 9, 11))],
        [],
        sector=Sector.VO,
    ),
    Scenario(
        "vo: 16 lesuren of 50 minutes reach 16 hours",
        [u(d, 200, units=4) for d in weekdays(D(2024, 9, 9), D(2024, 9, 12))],
        [(V3, D(2024, 9, 9), D(2024, 9, 12), 960, False)],
        sector=Sector.VSO,
    ),
    Scenario(
        "po counts clock hours: 16 lessons of 45 minutes are only 12 hours",
        [u(d, 180, units=4) for d in weekdays(D(2024, 9, 9), D(2024, 9, 12))],
        [],
        sector=Sector.SBO,
    ),
    Scenario(
        "mbo counting in lesuren by configuration",
        [u(d, 180, units=4) for d in weekdays(D(2024, 9, 9), D(2024, 9, 12))],
        [(V3, D(2024, 9, 9), D(2024, 9, 12), 960, False)],
        sector=Sector.MBO,
        geboortedatum=D(2007, 1, 1),
        config=RulesConfig(mbo_unit=CountingUnit.LESUUR),
    ),
    Scenario(
        "mbo counting clock hours by default",
        [u(d, 180, units=4) for d in weekdays(D(2024, 9, 9), D(2024, 9, 12))],
        [],
        sector=Sector.MBO,
        geboortedatum=D(2007, 1, 1),
    ),
    # -- age
    Scenario(
        "18th birthday inside the period, gemeente does not ask for 18+: nothing",
        [u(d, 240) for d in weekdays(D(2024, 9, 9), D(2024, 9, 12))],
        [],
        sector=Sector.MBO,
        geboortedatum=D(2006, 9, 11),
    ),
    Scenario(
        "18th birthday inside the period, gemeente asks for 18+: V4 (age on einddatum)",
        [u(d, 240) for d in weekdays(D(2024, 9, 9), D(2024, 9, 12))],
        [(V4, D(2024, 9, 9), D(2024, 9, 12), 960, False)],
        sector=Sector.MBO,
        geboortedatum=D(2006, 9, 11),
        config=RulesConfig(v4_gemeenten=frozenset({"GM0363"})),
    ),
    Scenario(
        "18th birthday the day after the einddatum: V3",
        [u(d, 240) for d in weekdays(D(2024, 9, 9), D(2024, 9, 12))],
        [(V3, D(2024, 9, 9), D(2024, 9, 12), 960, False)],
        sector=Sector.MBO,
        geboortedatum=D(2006, 9, 13),
    ),
    Scenario(
        "not yet leerplichtig (4 years old): nothing",
        [u(d, 240) for d in weekdays(D(2024, 9, 9), D(2024, 9, 12))],
        [],
        geboortedatum=D(2020, 3, 15),
    ),
    Scenario(
        "17 with a startkwalificatie: no longer kwalificatieplichtig",
        every_lesdag(D(2024, 9, 2), D(2024, 10, 18)),
        [],
        sector=Sector.MBO,
        geboortedatum=D(2007, 3, 1),
        startkwalificatie=True,
    ),
    # -- LRV and RMC
    Scenario(
        "LRV and 16 uur (with herhaalmeldingen) both due",
        every_lesdag(D(2024, 9, 2), D(2024, 9, 30)),
        [
            (LRV, D(2024, 9, 2), D(2024, 9, 30), 21 * 300, False),
            (V3, D(2024, 9, 2), D(2024, 9, 5), 1200, False),
            (V3, D(2024, 9, 6), D(2024, 9, 17), 2400, True),
            (V3, D(2024, 9, 18), D(2024, 9, 27), 2400, True),
        ],
    ),
    Scenario(
        "whole-day absence for exactly four lesweken is not yet LRV",
        every_lesdag(D(2024, 9, 2), D(2024, 9, 27), minutes=45),
        [],
    ),
    Scenario(
        "LRV run reaches past a holiday",
        every_lesdag(D(2024, 9, 30), D(2024, 11, 4), minutes=30),
        [
            (LRV, D(2024, 9, 30), D(2024, 11, 4), 21 * 30, False),
        ],
    ),
    Scenario(
        "partial days for five weeks are no LRV",
        every_lesdag(D(2024, 9, 2), D(2024, 10, 4), minutes=30, whole=False),
        [],
    ),
    Scenario(
        "RMC after four lesweken for an 19-year-old without startkwalificatie",
        every_lesdag(D(2024, 9, 2), D(2024, 9, 27), minutes=30),
        [(RMC, D(2024, 9, 2), D(2024, 9, 27), 20 * 30, False)],
        sector=Sector.MBO,
        geboortedatum=D(2005, 1, 1),
    ),
    Scenario(
        "RMC three weeks and four days: not yet",
        every_lesdag(D(2024, 9, 2), D(2024, 9, 26), minutes=30),
        [],
        sector=Sector.MBO,
        geboortedatum=D(2005, 1, 1),
    ),
    Scenario(
        "RMC period shortened to two lesweken by the school board",
        every_lesdag(D(2024, 9, 2), D(2024, 9, 20), minutes=30),
        [(RMC, D(2024, 9, 2), D(2024, 9, 13), 10 * 30, False)],
        sector=Sector.MBO,
        geboortedatum=D(2005, 1, 1),
        bestuur="ROC-1",
        config=RulesConfig(rmc_lesweken_per_bestuur={"ROC-1": 2}),
    ),
    Scenario(
        "no RMC with a startkwalificatie",
        every_lesdag(D(2024, 9, 2), D(2024, 10, 4), minutes=30),
        [],
        sector=Sector.MBO,
        geboortedatum=D(2005, 1, 1),
        startkwalificatie=True,
    ),
    Scenario(
        "no RMC from 23",
        every_lesdag(D(2024, 9, 2), D(2024, 10, 4), minutes=30),
        [],
        sector=Sector.MBO,
        geboortedatum=D(2001, 1, 1),
    ),
    # -- luxe verzuim
    Scenario(
        "luxe verzuim the two days before the herfstvakantie",
        [luxe(D(2024, 10, 17)), luxe(D(2024, 10, 18))],
        [(L, D(2024, 10, 17), D(2024, 10, 18), 600, False)],
    ),
    Scenario(
        "luxe verzuim before and after a holiday is one episode",
        [luxe(D(2024, 10, 17)), luxe(D(2024, 10, 18)), luxe(D(2024, 10, 28))],
        [(L, D(2024, 10, 17), D(2024, 10, 28), 900, False)],
    ),
    Scenario(
        "luxe verzuim of one hour is still a melding",
        [luxe(D(2024, 12, 20), 60)],
        [(L, D(2024, 12, 20), D(2024, 12, 20), 60, False)],
    ),
    Scenario(
        "two luxe episodes with a lesdag between",
        [luxe(D(2024, 10, 16)), luxe(D(2024, 10, 18))],
        [
            (L, D(2024, 10, 16), D(2024, 10, 16), 300, False),
            (L, D(2024, 10, 18), D(2024, 10, 18), 300, False),
        ],
    ),
    Scenario(
        "three weeks of luxe verzuim: only L by default",
        [luxe(d) for d in weekdays(D(2024, 9, 2), D(2024, 9, 20))],
        [(L, D(2024, 9, 2), D(2024, 9, 20), 15 * 300, False)],
    ),
    Scenario(
        "luxe verzuim also counts for 16 uur when configured",
        [luxe(d) for d in weekdays(D(2024, 9, 2), D(2024, 9, 6))],
        [
            (L, D(2024, 9, 2), D(2024, 9, 6), 1500, False),
            (V3, D(2024, 9, 2), D(2024, 9, 5), 1200, False),
        ],
        config=RulesConfig(luxe_counts_for_other_kinds=True),
    ),
    # -- herhaalmeldingen
    Scenario(
        "herhaalmelding spacing and the limit of four",
        every_lesdag(D(2024, 9, 2), D(2024, 11, 15)),
        [
            (LRV, D(2024, 9, 2), D(2024, 9, 30), 21 * 300, False),
            (V3, D(2024, 9, 2), D(2024, 9, 5), 1200, False),
            (V3, D(2024, 9, 6), D(2024, 9, 17), 2400, True),
            (V3, D(2024, 9, 18), D(2024, 9, 27), 2400, True),
            (V3, D(2024, 9, 30), D(2024, 10, 9), 2400, True),
            (V3, D(2024, 10, 10), D(2024, 10, 28), 2400, True),
        ],
    ),
    Scenario(
        "absence stopping within 7 days of a melding: no herhaalmelding, later absence anew",
        every_lesdag(D(2024, 9, 2), D(2024, 9, 11)) + every_lesdag(D(2024, 9, 16), D(2024, 9, 19)),
        [
            (V3, D(2024, 9, 2), D(2024, 9, 5), 1200, False),
            (V3, D(2024, 9, 16), D(2024, 9, 19), 1200, False),
        ],
    ),
    Scenario(
        "a present day after a melding: the next 16 hours are an ordinary melding",
        every_lesdag(D(2024, 9, 2), D(2024, 9, 10)) + every_lesdag(D(2024, 9, 12), D(2024, 9, 17)),
        [
            (V3, D(2024, 9, 2), D(2024, 9, 5), 1200, False),
            (V3, D(2024, 9, 6), D(2024, 9, 12), 1200, False),
        ],
    ),
    Scenario(
        "herhaalmelding limit is configuration",
        every_lesdag(D(2024, 9, 2), D(2024, 9, 20)),
        [(V3, D(2024, 9, 2), D(2024, 9, 5), 1200, False)],
        config=RulesConfig(herhaal_max=0),
    ),
    # -- corrections and stored meldingen
    Scenario(
        "a correction makes a due concept disappear",
        [
            u(D(2024, 9, 9), 240),
            a(D(2024, 9, 10), 240),
            u(D(2024, 9, 11), 240),
            u(D(2024, 9, 12), 240),
        ],
        [],
        existing=[ExistingMelding(V3, D(2024, 9, 9), D(2024, 9, 12), CONCEPT)],
        no_longer_due=["V3:2024-09-09"],
    ),
    Scenario(
        "a correction under a sent melding is reported, not applied",
        [
            u(D(2024, 9, 9), 240),
            a(D(2024, 9, 10), 240),
            u(D(2024, 9, 11), 240),
            u(D(2024, 9, 12), 240),
        ],
        [],
        existing=[ExistingMelding(V3, D(2024, 9, 9), D(2024, 9, 12), SENT)],
        discrepancies=[("V3:2024-09-09", DiscrepancyReason.NO_LONGER_SUPPORTED)],
    ),
    Scenario(
        "a sent melding that matches is not due again",
        [u(d, 240) for d in weekdays(D(2024, 9, 9), D(2024, 9, 12))],
        [],
        existing=[ExistingMelding(V3, D(2024, 9, 9), D(2024, 9, 12), SENT)],
    ),
    Scenario(
        "a sent melding with another einddatum differs",
        [u(d, 240) for d in weekdays(D(2024, 9, 9), D(2024, 9, 12))],
        [],
        existing=[ExistingMelding(V3, D(2024, 9, 9), D(2024, 9, 13), SENT)],
        discrepancies=[("V3:2024-09-09", DiscrepancyReason.DIFFERS)],
    ),
    Scenario(
        "a matching concept stays due (same key)",
        [u(d, 240) for d in weekdays(D(2024, 9, 9), D(2024, 9, 12))],
        [(V3, D(2024, 9, 9), D(2024, 9, 12), 960, False)],
        existing=[ExistingMelding(V3, D(2024, 9, 9), D(2024, 9, 12), CONCEPT)],
    ),
    Scenario(
        "a sent luxe melding whose episode grew is reported as differing",
        [luxe(D(2024, 10, 17)), luxe(D(2024, 10, 18)), luxe(D(2024, 10, 28))],
        [],
        existing=[ExistingMelding(L, D(2024, 10, 17), D(2024, 10, 18), SENT)],
        discrepancies=[("L:2024-10-17", DiscrepancyReason.DIFFERS)],
    ),
    Scenario(
        "an overig melding is never computed nor withdrawn",
        [],
        [],
        existing=[ExistingMelding(MeldingKind.O, D(2024, 9, 9), D(2024, 9, 12), CONCEPT)],
    ),
]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_scenario(scenario: Scenario) -> None:
    pupil = Pupil(
        geboortedatum=scenario.geboortedatum,
        sector=scenario.sector,
        woongemeente=scenario.woongemeente,
        startkwalificatie=scenario.startkwalificatie,
        bestuur=scenario.bestuur,
    )
    result = evaluate(
        pupil, scenario.ledger, scenario.existing, CALENDARS[scenario.calendar], scenario.config
    )
    got = sorted(
        (m.kind, m.begindatum, m.einddatum, m.counted_minutes, m.herhaalmelding) for m in result.due
    )
    assert got == sorted(scenario.expected)
    assert [m.key for m in result.no_longer_due] == scenario.no_longer_due
    assert [(d.sent.key, d.reason) for d in result.discrepancies] == scenario.discrepancies
    assert result.needs_history_from is None


def test_scenario_count() -> None:
    assert len(SCENARIOS) >= 30


def _pupil(sector: Sector = Sector.PO) -> Pupil:
    return Pupil(CHILD, sector, "GM0363")


def test_deadline_is_five_working_days_after_the_einddatum() -> None:
    # Reached Thursday 17 April 2025; Goede Vrijdag is a working day, 2e Paasdag is not.
    ledger = [u(d, 240) for d in weekdays(D(2025, 4, 14), D(2025, 4, 17))]
    (melding,) = evaluate(_pupil(), ledger, [], CALENDARS["midden"]).due
    assert melding.einddatum == D(2025, 4, 17)
    assert melding.deadline == D(2025, 4, 25)


def test_luxe_deadline_runs_from_the_first_day() -> None:
    (melding,) = evaluate(
        _pupil(), [luxe(D(2024, 10, 17)), luxe(D(2024, 10, 18))], [], CALENDARS["midden"]
    ).due
    assert melding.deadline == D(2024, 10, 24)


def test_day_specification_and_hours() -> None:
    ledger = [u(D(2024, 9, 9), 100, units=2), u(D(2024, 9, 10), 45), u(D(2024, 9, 11), 815)]
    (melding,) = evaluate(_pupil(), ledger, [], CALENDARS["midden"]).due
    assert [(d.datum, d.counted_minutes) for d in melding.dagen] == [
        (D(2024, 9, 9), 100),
        (D(2024, 9, 10), 45),
        (D(2024, 9, 11), 815),
    ]
    assert melding.dagen[0].unauthorised_units == 2
    assert str(melding.uren) == "16.00"
    assert melding.key == "V3:2024-09-09"


def test_several_entries_on_one_day_are_summed() -> None:
    ledger = [u(D(2024, 9, 9), 480), u(D(2024, 9, 9), 240), u(D(2024, 9, 10), 240)]
    (melding,) = evaluate(_pupil(), ledger, [], CALENDARS["midden"]).due
    assert (melding.begindatum, melding.einddatum, melding.counted_minutes) == (
        D(2024, 9, 9),
        D(2024, 9, 10),
        960,
    )


def test_school_free_day_is_no_lesdag() -> None:
    calendar = CALENDARS["midden"].with_extra_free_days([D(2024, 9, 12)])
    ledger = [u(d, 240) for d in weekdays(D(2024, 9, 9), D(2024, 9, 12))]
    assert evaluate(_pupil(), ledger, [], calendar).due == ()


def test_result_is_deterministic_and_sorted() -> None:
    ledger = [*every_lesdag(D(2024, 9, 2), D(2024, 10, 4)), luxe(D(2024, 10, 16))]
    first = evaluate(_pupil(), ledger, [], CALENDARS["midden"])
    second = evaluate(_pupil(), list(reversed(ledger)), [], CALENDARS["midden"])
    assert first == second
    assert [m.begindatum for m in first.due] == sorted(m.begindatum for m in first.due)
