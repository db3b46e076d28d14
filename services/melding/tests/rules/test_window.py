"""Bounded work: the ledger window after one change does not grow with history."""

from __future__ import annotations

from datetime import date, timedelta

from verzuimhub_melding.rules import (
    ExistingMelding,
    LedgerDay,
    LedgerWindow,
    MeldingKind,
    MeldingStatus,
    Pupil,
    RulesConfig,
    Sector,
    evaluate,
    ledger_window,
)
from verzuimhub_shared.calendar import SchoolCalendar

PUPIL = Pupil(date(2012, 5, 1), Sector.PO, "GM0363")


def _history(calendar: SchoolCalendar, start: date, end: date) -> list[LedgerDay]:
    """Four truant days every seventh lesweek: a melding every few months."""
    days = []
    for day in calendar.lesdagen(start, end):
        week = calendar.lesweek_number(day)
        if week % 7 == 0 and day.weekday() < 4:
            days.append(LedgerDay(day, unauthorised_minutes=240))
        elif day.weekday() == 2:
            days.append(LedgerDay(day, unauthorised_minutes=30, authorised_minutes=60))
    return days


def test_window_does_not_depend_on_history_length(midden: SchoolCalendar) -> None:
    changed = date(2027, 3, 10)
    starts = []
    for first in (date(2026, 9, 1), date(2024, 9, 1), date(2023, 9, 1)):
        ledger = _history(midden, first, changed)
        existing = [
            ExistingMelding(m.kind, m.begindatum, m.einddatum, MeldingStatus.SENT, m.herhaalmelding)
            for m in evaluate(PUPIL, ledger, [], midden).due
        ]
        window = ledger_window(existing, changed, midden, RulesConfig())
        starts.append(window.start)
        assert changed - window.start < timedelta(weeks=16)
    assert len(set(starts)) == 1


def test_without_meldingen_the_window_is_four_lesweken(midden: SchoolCalendar) -> None:
    window = ledger_window([], date(2024, 11, 12), midden, RulesConfig())
    # Four lesweken back from Tuesday 12 Nov, skipping the herfstvakantie: Wednesday 9 Oct.
    assert window == LedgerWindow(date(2024, 10, 9))
    assert midden.window_end(window.start, 4) == date(2024, 11, 12)


def test_anchor_is_the_latest_settled_melding(midden: SchoolCalendar) -> None:
    old = ExistingMelding(MeldingKind.V3, date(2024, 9, 9), date(2024, 9, 12), MeldingStatus.SENT)
    recent = ExistingMelding(
        MeldingKind.V3, date(2024, 11, 4), date(2024, 11, 7), MeldingStatus.CONCEPT
    )
    window = ledger_window([old, recent], date(2024, 11, 12), midden, RulesConfig())
    assert window == LedgerWindow(date(2024, 9, 13), old)


def test_window_cutting_a_run_asks_for_more_history(midden: SchoolCalendar) -> None:
    ledger = [
        LedgerDay(day, unauthorised_minutes=300, all_lessons_missed=True)
        for day in midden.lesdagen(date(2024, 9, 2), date(2024, 10, 18))
    ]
    window = LedgerWindow(date(2024, 9, 23))
    result = evaluate(PUPIL, ledger, [], midden, window=window)
    assert result.needs_history_from is not None
    assert result.needs_history_from < window.start
    full = evaluate(PUPIL, ledger, [], midden)
    wider = LedgerWindow(date(2024, 8, 1))
    assert evaluate(PUPIL, ledger, [], midden, window=wider).due == full.due
