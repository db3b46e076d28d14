"""Invariants of the rules engine, checked with hypothesis over random ledgers."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import date, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from verzuimhub_melding.rules import (
    Evaluation,
    ExistingMelding,
    LedgerDay,
    LedgerWindow,
    MeldingStatus,
    Pupil,
    RulesConfig,
    Sector,
    evaluate,
    ledger_window,
)
from verzuimhub_shared.calendar import SchoolCalendar, region_calendar

CALENDAR = region_calendar("midden")
FIRST = date(2024, 9, 2)
SPAN = 150  # days: herfst and kerst inside
PUPIL = Pupil(date(2012, 5, 1), Sector.PO, "GM0363")
VO_PUPIL = Pupil(date(2012, 5, 1), Sector.VO, "GM0363")
TURNING_18 = Pupil(date(2006, 11, 15), Sector.MBO, "GM0363")  # V3 -> V4/RMC inside the range
RELAXED = RulesConfig(herhaal_spacing_days=0, herhaal_max=10**6)

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

minutes = st.sampled_from([0, 0, 30, 60, 120, 240, 300, 360])
entry = st.builds(
    lambda offset, unauthorised, units, authorised, luxe, whole: LedgerDay(
        FIRST + timedelta(days=offset),
        unauthorised_minutes=unauthorised,
        unauthorised_units=units,
        authorised_minutes=authorised,
        luxe_verzuim=luxe and unauthorised > 0,
        all_lessons_missed=whole,
    ),
    st.integers(0, SPAN),
    minutes,
    st.integers(0, 6),
    st.sampled_from([0, 0, 60, 300]),
    st.sampled_from([False, False, False, True]),
    st.booleans(),
)


@st.composite
def ledgers(draw: st.DrawFn) -> list[LedgerDay]:
    """Scattered entries plus a few blocks of whole-day absence (so LRV and herhaal occur)."""
    days = draw(st.lists(entry, max_size=40))
    for _ in range(draw(st.integers(0, 2))):
        start = draw(st.integers(0, SPAN))
        length = draw(st.integers(1, 45))
        per_day = draw(st.sampled_from([60, 240, 300]))
        luxe = draw(st.booleans()) and draw(st.booleans())
        for offset in range(start, min(start + length, SPAN + 1)):
            days.append(
                LedgerDay(
                    FIRST + timedelta(days=offset),
                    unauthorised_minutes=per_day,
                    unauthorised_units=per_day // 60,
                    luxe_verzuim=luxe,
                    all_lessons_missed=True,
                )
            )
    return days


def _kinds(result: Evaluation) -> set[str]:
    return {"16" if m.kind.is_16_uur else m.kind.value for m in result.due}


def _first_16_end(result: Evaluation) -> date | None:
    ends = [m.einddatum for m in result.due if m.kind.is_16_uur]
    return min(ends) if ends else None


def _add_unauthorised(
    ledger: list[LedgerDay], extra: list[tuple[int, int, bool]]
) -> list[LedgerDay]:
    added = [
        LedgerDay(FIRST + timedelta(days=offset), unauthorised_minutes=m, all_lessons_missed=w)
        for offset, m, w in extra
    ]
    return ledger + added


extra_absence = st.lists(
    st.tuples(st.integers(0, SPAN), st.sampled_from([30, 120, 300]), st.booleans()),
    min_size=1,
    max_size=15,
)


@SETTINGS
@given(ledger=ledgers(), extra=extra_absence)
def test_adding_unauthorised_absence_never_removes_a_due_melding(
    ledger: list[LedgerDay], extra: list[tuple[int, int, bool]]
) -> None:
    before = evaluate(PUPIL, ledger, [], CALENDAR)
    after = evaluate(PUPIL, _add_unauthorised(ledger, extra), [], CALENDAR)
    assert _kinds(before) <= _kinds(after)
    first_before, first_after = _first_16_end(before), _first_16_end(after)
    if first_before is not None:
        assert first_after is not None
        assert first_after <= first_before
    # Without the herhaal throttle, the number of 16-uur meldingen never drops either.
    relaxed_before = evaluate(PUPIL, ledger, [], CALENDAR, RELAXED)
    relaxed_after = evaluate(PUPIL, _add_unauthorised(ledger, extra), [], CALENDAR, RELAXED)
    count = sum(m.kind.is_16_uur for m in relaxed_before.due)
    assert sum(m.kind.is_16_uur for m in relaxed_after.due) >= count


@SETTINGS
@given(
    ledger=ledgers(),
    extra=st.lists(
        st.tuples(st.integers(0, SPAN), st.sampled_from([30, 300, 600]), st.booleans()),
        max_size=30,
    ),
)
def test_authorised_absence_and_distance_education_never_create_a_melding(
    ledger: list[LedgerDay], extra: list[tuple[int, int, bool]]
) -> None:
    more = [
        LedgerDay(
            FIRST + timedelta(days=offset),
            authorised_minutes=m,
            authorised_units=m // 60,
            distance_minutes=0 if distance else m,
        )
        for offset, m, distance in extra
    ]
    for pupil in (PUPIL, VO_PUPIL):
        assert evaluate(pupil, ledger + more, [], CALENDAR) == evaluate(pupil, ledger, [], CALENDAR)


def _free_days(calendar: SchoolCalendar) -> list[date]:
    days = [FIRST + timedelta(days=offset) for offset in range(SPAN + 1)]
    return [day for day in days if not calendar.is_lesdag(day)]


@SETTINGS
@given(ledger=ledgers(), data=st.data())
def test_holiday_and_weekend_dates_never_count(
    ledger: list[LedgerDay], data: st.DataObject
) -> None:
    free = _free_days(CALENDAR)
    chosen = data.draw(st.lists(st.sampled_from(free), max_size=25))
    noise = [
        LedgerDay(day, unauthorised_minutes=480, unauthorised_units=8, luxe_verzuim=i % 2 == 0)
        for i, day in enumerate(chosen)
    ]
    assert evaluate(PUPIL, ledger + noise, [], CALENDAR) == evaluate(PUPIL, ledger, [], CALENDAR)


@SETTINGS
@given(ledger=ledgers(), seed=st.integers(0, 10**6))
def test_result_does_not_depend_on_arrival_order(ledger: list[LedgerDay], seed: int) -> None:
    rng = random.Random(seed)
    # Split every entry into two registrations and shuffle them all.
    split: list[LedgerDay] = []
    for day in ledger:
        half = day.unauthorised_minutes // 2
        split.append(replace(day, unauthorised_minutes=half))
        split.append(
            replace(
                day,
                unauthorised_minutes=day.unauthorised_minutes - half,
                unauthorised_units=0,
                authorised_minutes=0,
            )
        )
    rng.shuffle(split)
    for pupil in (PUPIL, VO_PUPIL):
        assert evaluate(pupil, split, [], CALENDAR) == evaluate(pupil, ledger, [], CALENDAR)


def _restricted(result: Evaluation, window: LedgerWindow) -> tuple:
    def since(kind_is_16: bool) -> date:
        return window.start_16_uur if kind_is_16 else window.start

    return (
        tuple(m for m in result.due if m.begindatum >= since(m.kind.is_16_uur)),
        tuple(m for m in result.no_longer_due if m.begindatum >= since(m.kind.is_16_uur)),
        tuple(d for d in result.discrepancies if d.sent.begindatum >= since(d.sent.kind.is_16_uur)),
    )


def _windowed(
    pupil: Pupil,
    ledger: list[LedgerDay],
    existing: list[ExistingMelding],
    changed: date,
    config: RulesConfig,
) -> tuple[Evaluation, LedgerWindow]:
    """What the service does: load the window, evaluate, widen while asked to."""
    window = ledger_window(existing, changed, CALENDAR, config)
    earliest = min((day.datum for day in ledger), default=window.start)
    while True:
        loaded = [day for day in ledger if day.datum >= window.start]
        result = evaluate(pupil, loaded, existing, CALENDAR, config, window=window)
        if result.needs_history_from is None or earliest >= window.start:
            return result, window
        window = LedgerWindow(result.needs_history_from, window.anchor)


@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    ledger=ledgers(),
    change=st.tuples(st.integers(0, SPAN), st.sampled_from([0, 60, 300]), st.booleans()),
    sent_before=st.integers(0, SPAN),
    relaxed=st.booleans(),
    pupil=st.sampled_from([PUPIL, VO_PUPIL, TURNING_18]),
    v4=st.booleans(),
)
def test_windowed_evaluation_equals_full_evaluation(
    ledger: list[LedgerDay],
    change: tuple[int, int, bool],
    sent_before: int,
    relaxed: bool,
    pupil: Pupil,
    v4: bool,
) -> None:
    config = replace(
        RELAXED if relaxed else RulesConfig(),
        v4_gemeenten=frozenset({"GM0363"}) if v4 else frozenset(),
    )
    # The stored meldingen are what the rules said before the change; the older ones were sent.
    cut = FIRST + timedelta(days=sent_before)
    existing = [
        ExistingMelding(
            m.kind,
            m.begindatum,
            m.einddatum,
            MeldingStatus.SENT if m.einddatum < cut else MeldingStatus.CONCEPT,
            m.herhaalmelding,
        )
        for m in evaluate(pupil, ledger, [], CALENDAR, config).due
    ]
    offset, new_minutes, whole = change
    changed = FIRST + timedelta(days=offset)
    # A registration on ``changed`` is replaced (a correction) by new minutes.
    new_ledger = [day for day in ledger if day.datum != changed]
    new_ledger.append(
        LedgerDay(
            changed,
            unauthorised_minutes=new_minutes,
            unauthorised_units=new_minutes // 60,
            all_lessons_missed=whole and new_minutes > 0,
        )
    )
    full = evaluate(pupil, new_ledger, existing, CALENDAR, config)
    windowed, window = _windowed(pupil, new_ledger, existing, changed, config)
    assert _restricted(windowed, window) == _restricted(full, window)
    assert windowed.needs_history_from is None or min(d.datum for d in new_ledger) >= window.start
