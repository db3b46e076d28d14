"""The melding rules engine: which meldingen one pupil's absence ledger makes due.

Pure: plain data in, plain data out. Every interpretive choice is written down in
``docs/rules.md``; every rule below cites its legal source.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from verzuimhub_melding.rules.config import RulesConfig
from verzuimhub_melding.rules.model import (
    CountingUnit,
    Discrepancy,
    DiscrepancyReason,
    DueMelding,
    Evaluation,
    ExistingMelding,
    LedgerDay,
    LedgerWindow,
    MeldingDag,
    MeldingKind,
    MeldingStatus,
    Pupil,
)
from verzuimhub_melding.rules.scope import (
    birthday,
    in_leerplicht_scope,
    in_rmc_scope,
    in_v4_scope,
    leerplicht_start,
)
from verzuimhub_shared.calendar import SchoolCalendar, add_working_days

__all__ = ["aggregate_ledger", "evaluate", "ledger_window"]

_COMPUTED_KINDS = (MeldingKind.V3, MeldingKind.V4, MeldingKind.LRV, MeldingKind.RMC, MeldingKind.L)


# --------------------------------------------------------------------------- ledger


def aggregate_ledger(entries: Iterable[LedgerDay]) -> dict[date, LedgerDay]:
    """One ledger day per date: minutes and units summed, flags or-ed.

    Registrations may arrive as several entries for one date, in any order; the sum does not
    depend on that order.
    """
    days: dict[date, LedgerDay] = {}
    for entry in entries:
        known = days.get(entry.datum)
        if known is None:
            days[entry.datum] = entry
            continue
        days[entry.datum] = LedgerDay(
            datum=entry.datum,
            authorised_minutes=known.authorised_minutes + entry.authorised_minutes,
            unauthorised_minutes=known.unauthorised_minutes + entry.unauthorised_minutes,
            authorised_units=known.authorised_units + entry.authorised_units,
            unauthorised_units=known.unauthorised_units + entry.unauthorised_units,
            luxe_verzuim=known.luxe_verzuim or entry.luxe_verzuim,
            all_lessons_missed=known.all_lessons_missed or entry.all_lessons_missed,
            distance_minutes=known.distance_minutes + entry.distance_minutes,
        )
    return days


def _has_unauthorised(day: LedgerDay) -> bool:
    return day.unauthorised_minutes > 0 or day.unauthorised_units > 0


def _dag(day: LedgerDay, unit: CountingUnit) -> MeldingDag:
    return MeldingDag(
        datum=day.datum,
        unauthorised_minutes=day.unauthorised_minutes,
        unauthorised_units=day.unauthorised_units,
        counted_minutes=day.unauthorised(unit),
        hele_dag=day.all_lessons_missed,
    )


# --------------------------------------------------------------------------- window


def ledger_window(
    existing: Sequence[ExistingMelding],
    changed: date,
    calendar: SchoolCalendar,
    config: RulesConfig,
) -> LedgerWindow:
    """Which ledger days an evaluation after a change on ``changed`` needs.

    A change on ``changed`` can only touch a 16-uur period whose rolling window of four
    lesweken reaches ``changed``, so every period that began before
    ``calendar.window_start(changed, 4)`` stays as it was. Counting resumes after the latest
    stored 16-uur melding that ended before that date (the anchor); without one it starts at that
    date or at the begindatum of a stored melding that overlaps it. Load the ledger from
    ``window.start`` onward and pass the window to :func:`evaluate`; if the result has
    ``needs_history_from`` (a run or episode reaches back before the window), load from there
    and evaluate again with ``LedgerWindow(needs_history_from, window.anchor)`` — until the
    result has none: a run longer than the step reaches back further still.

    This presumes the stored meldingen were computed by these rules with this configuration;
    after a rules change, evaluate the full history once.
    """
    lookback = calendar.window_start(changed, config.window_lesweken)
    sixteen = sorted(
        (m for m in existing if m.kind.is_16_uur),
        key=lambda m: (m.einddatum, m.begindatum),
    )
    settled = [m for m in sixteen if m.einddatum < lookback]
    if settled:
        anchor = settled[-1]
        return LedgerWindow(start=anchor.einddatum + timedelta(days=1), anchor=anchor)
    open_begins = [m.begindatum for m in sixteen if m.einddatum >= lookback]
    return LedgerWindow(start=min([lookback, *open_begins]))


# --------------------------------------------------------------------------- evaluation


@dataclass(frozen=True)
class _Context:
    pupil: Pupil
    calendar: SchoolCalendar
    config: RulesConfig
    unit: CountingUnit
    days: Mapping[date, LedgerDay]

    def deadline(self, reached: date) -> date:
        # Inspectie/DUO on Leerplichtwet art. 21a: report within 5 working days.
        return add_working_days(reached, self.config.deadline_working_days)

    def counts_for_other_kinds(self, day: LedgerDay) -> bool:
        # One absence, one verzuimsoort: luxe days are reported as L (art. 13a/14) only.
        return self.config.luxe_counts_for_other_kinds or not day.luxe_verzuim


def evaluate(
    pupil: Pupil,
    ledger: Iterable[LedgerDay],
    existing: Sequence[ExistingMelding],
    calendar: SchoolCalendar,
    config: RulesConfig | None = None,
    *,
    window: LedgerWindow | None = None,
) -> Evaluation:
    """The meldingen due for one pupil at one school.

    ``ledger`` holds the pupil's registered absence (any number of entries per date, any order).
    Without ``window`` the whole history is evaluated. With a window from :func:`ledger_window`,
    only ledger days on or after ``window.start`` are used and only meldingen from there on are
    computed and compared; the result equals the full evaluation restricted to those meldingen.
    """
    config = config or RulesConfig()
    start = window.start if window is not None else None
    days = {
        day: entry
        for day, entry in aggregate_ledger(ledger).items()
        if (start is None or day >= start) and calendar.is_lesdag(day)  # holidays never count
    }
    context = _Context(pupil, calendar, config, config.counting_unit(pupil.sector), days)
    active = [m for m in existing if m.kind in _COMPUTED_KINDS]

    start_16 = window.start_16_uur if window is not None else None
    anchor = window.anchor if window is not None else None
    sixteen = _SixteenHours(context, start_16, anchor, active)
    sixteen.run()

    computed: list[DueMelding] = list(sixteen.due)
    discrepancies: list[Discrepancy] = list(sixteen.discrepancies)
    others = _episodes(context) + _runs(context)
    in_scope_existing = [
        m for m in active if not m.kind.is_16_uur and (start is None or m.begindatum >= start)
    ]
    kept, other_discrepancies = _reconcile(others, in_scope_existing)
    computed.extend(kept)
    discrepancies.extend(other_discrepancies)

    def recomputed(melding: ExistingMelding) -> bool:
        since = start_16 if melding.kind.is_16_uur else start
        return since is None or melding.begindatum >= since

    due_keys = {m.key for m in computed}
    in_scope = [m for m in active if recomputed(m)]
    no_longer_due = tuple(
        sorted(
            (m for m in in_scope if m.status is MeldingStatus.CONCEPT and m.key not in due_keys),
            key=lambda m: (m.begindatum, m.kind.value),
        )
    )
    return Evaluation(
        due=tuple(sorted(computed, key=lambda m: (m.begindatum, m.kind.value))),
        no_longer_due=no_longer_due,
        discrepancies=tuple(
            sorted(discrepancies, key=lambda d: (d.sent.begindatum, d.sent.kind.value))
        ),
        needs_history_from=_needs_history(context, start),
    )


def _needs_history(context: _Context, start: date | None) -> date | None:
    """An earlier window start when the window cuts through a luxe episode or an absence run."""
    if start is None:
        return None
    calendar = context.calendar
    first = start if calendar.is_lesdag(start) else calendar.next_lesdag(start)
    day = context.days.get(first)
    if day is None or not _has_unauthorised(day):
        return None
    if day.luxe_verzuim or day.all_lessons_missed:
        weeks = max(context.config.lrv_lesweken, context.config.rmc_lesweken) + 1
        return calendar.window_start(first, weeks)
    return None


# --------------------------------------------------------------------------- 16 uur


@dataclass
class _Period:
    start: int  # index of the first counted day
    end: int  # index of the day the threshold is reached


class _SixteenHours:
    """16 uur in 4 lesweken (Leerplichtwet art. 21a lid 1; mbo: lid 2), with herhaalmeldingen."""

    def __init__(
        self,
        context: _Context,
        start: date | None,
        anchor: ExistingMelding | None,
        existing: Sequence[ExistingMelding],
    ) -> None:
        self.context = context
        pupil = context.pupil
        first = leerplicht_start(pupil.geboortedatum)  # before leerplicht nothing counts
        last = birthday(pupil.geboortedatum, 23)  # from 23 no 16-uur melding can be due
        if start is not None:
            first = max(first, start)
        counted = sorted(
            (day, entry.unauthorised(context.unit))
            for day, entry in context.days.items()
            if first <= day < last
            and context.counts_for_other_kinds(entry)
            and entry.unauthorised(context.unit) > 0
        )
        self.dates = [day for day, _ in counted]
        self.minutes = [minutes for _, minutes in counted]
        self.prefix = [0]
        for minutes in self.minutes:
            self.prefix.append(self.prefix[-1] + minutes)
        sixteen = sorted(
            (m for m in existing if m.kind.is_16_uur),
            key=lambda m: (m.begindatum, m.einddatum),
        )
        self.sent = [
            m
            for m in sixteen
            if m.status is MeldingStatus.SENT and (start is None or m.begindatum >= start)
        ]
        # State after the anchor: counting resumes the day after it; herhaal chain from it.
        self.last_end: date | None = anchor.einddatum if anchor else None
        self.chain = 0
        if anchor is not None:
            before = [m for m in sixteen if m.einddatum <= anchor.einddatum]
            for melding in reversed(before):
                if not melding.herhaalmelding:
                    break
                self.chain += 1
        self.due: list[DueMelding] = []
        self.discrepancies: list[Discrepancy] = []

    # -- primitives

    def _first_after(self, day: date | None) -> int:
        return 0 if day is None else bisect_right(self.dates, day)

    def _find_period(self, first: int) -> _Period | None:
        """Greedy: the first start from ``first`` whose rolling window reaches the threshold."""
        threshold = self.context.config.threshold_minutes
        weeks = self.context.config.window_lesweken
        calendar = self.context.calendar
        n = len(self.dates)
        for index in range(first, n):
            reached = bisect_left(self.prefix, self.prefix[index] + threshold, lo=index + 1)
            if reached > n:
                return None  # not even all remaining time reaches it: no later start will
            if self.dates[reached - 1] <= calendar.window_end(self.dates[index], weeks):
                return _Period(index, reached - 1)
        return None

    def _continuous(self, after: date, through: date) -> bool:
        """Unauthorised absence on every lesdag in ``after`` (exclusive) .. ``through``."""
        lesdagen = self.context.calendar.count_lesdagen(after + timedelta(days=1), through)
        counted = bisect_right(self.dates, through) - bisect_right(self.dates, after)
        return counted == lesdagen

    def _kind(self, einddatum: date) -> MeldingKind | None:
        # Age on the einddatum decides: V3 under 18 (Leerplichtwet art. 21a, mandatory), V4 from
        # 18 only where the woongemeente asks for it.
        pupil, config = self.context.pupil, self.context.config
        if in_leerplicht_scope(pupil, einddatum):
            return MeldingKind.V3
        if in_v4_scope(pupil, einddatum, config):
            return MeldingKind.V4
        return None

    def _melding(self, kind: MeldingKind, first: int, last: int, herhaal: bool) -> DueMelding:
        days = self.context.days
        return DueMelding(
            kind=kind,
            begindatum=self.dates[first],
            einddatum=self.dates[last],
            counted_minutes=self.prefix[last + 1] - self.prefix[first],
            dagen=tuple(_dag(days[day], self.context.unit) for day in self.dates[first : last + 1]),
            herhaalmelding=herhaal,
            deadline=self.context.deadline(self.dates[last]),
        )

    # -- the next melding from a state

    def _next(
        self, restart: date | None, last_end: date | None, chain: int
    ) -> tuple[DueMelding | None, date | None, int]:
        """The next melding after ``restart``, and the state after it (restart = its einddatum).

        Counting restarts the day after a melding's einddatum (DUO/Inspectie on art. 21a).
        Continuous absence after a melding gives a herhaalmelding at most once per 7 calendar
        days and at most 4 times (DUO); periods in between are merged into the next one.
        """
        config = self.context.config
        first = self._first_after(restart)
        while True:
            period = self._find_period(first)
            if period is None:
                return None, restart, chain
            reached = self.dates[period.end]
            kind = self._kind(reached)
            if kind is None:
                # The pupil is out of scope from here on (age only increases): nothing more.
                return None, restart, chain
            if last_end is not None and self._continuous(last_end, reached):
                if chain >= config.herhaal_max:
                    first = period.end + 1  # no more herhaalmeldingen: LRV covers this
                    continue
                if (reached - last_end).days < config.herhaal_spacing_days:
                    first = period.end + 1  # too soon: merged into the next herhaalmelding
                    continue
                begin = self._first_after(last_end)
                return self._melding(kind, begin, period.end, True), reached, chain + 1
            return self._melding(kind, period.start, period.end, False), reached, 0

    def run(self) -> None:
        restart = self.last_end
        last_end = self.last_end
        chain = self.chain
        sent = list(self.sent)
        while True:
            melding, after, next_chain = self._next(restart, last_end, chain)
            if sent and (melding is None or melding.einddatum >= sent[0].begindatum):
                # A sent melding holds its place: counting restarts after it, whatever the
                # ledger says now, and a difference is reported, never silently applied.
                done = sent.pop(0)
                overlapping = (
                    melding
                    if melding is not None and melding.begindatum <= done.einddatum
                    else None
                )
                if overlapping is None or not overlapping.same_period(done):
                    self.discrepancies.append(
                        Discrepancy(
                            sent=done,
                            computed=overlapping,
                            reason=DiscrepancyReason.DIFFERS
                            if overlapping is not None
                            else DiscrepancyReason.NO_LONGER_SUPPORTED,
                        )
                    )
                restart = max(restart, done.einddatum) if restart else done.einddatum
                last_end = done.einddatum
                chain = chain + 1 if done.herhaalmelding else 0
                continue
            if melding is None:
                return
            self.due.append(melding)
            restart, last_end, chain = after, melding.einddatum, next_chain


# --------------------------------------------------------------------------- runs and episodes


def _consecutive_runs(calendar: SchoolCalendar, days: list[date]) -> list[list[date]]:
    """Split sorted lesdagen into runs of consecutive lesdagen (holidays do not break a run)."""
    runs: list[list[date]] = []
    previous = -2
    for day in days:
        number = calendar.lesdag_number(day)
        if number != previous + 1:
            runs.append([])
        runs[-1].append(day)
        previous = number
    return runs


def _episodes(context: _Context) -> list[DueMelding]:
    """Luxe verzuim (Leerplichtwet art. 13a, 14): one melding per episode, regardless of hours."""
    luxe = sorted(
        day
        for day, entry in context.days.items()
        if entry.luxe_verzuim
        and _has_unauthorised(entry)
        and in_leerplicht_scope(context.pupil, day)
    )
    result = []
    for run in _consecutive_runs(context.calendar, luxe):
        dagen = tuple(_dag(context.days[day], context.unit) for day in run)
        result.append(
            DueMelding(
                kind=MeldingKind.L,
                begindatum=run[0],
                einddatum=run[-1],
                counted_minutes=sum(d.counted_minutes for d in dagen),
                dagen=dagen,
                herhaalmelding=False,
                deadline=context.deadline(run[0]),  # due from the first day
            )
        )
    return result


def _runs(context: _Context) -> list[DueMelding]:
    """LRV (Leerplichtwet art. 21a) and RMC (WEB art. 8.1.8a): whole days unauthorised absent."""
    calendar, config, pupil = context.calendar, context.config, context.pupil
    absent = sorted(
        day
        for day, entry in context.days.items()
        if entry.all_lessons_missed
        and _has_unauthorised(entry)
        and context.counts_for_other_kinds(entry)
    )
    result: list[DueMelding] = []

    def melding(kind: MeldingKind, run: list[date], through: date) -> DueMelding:
        covered = run[: bisect_right(run, through)]
        dagen = tuple(_dag(context.days[day], context.unit) for day in covered)
        return DueMelding(
            kind=kind,
            begindatum=covered[0],
            einddatum=covered[-1],
            counted_minutes=sum(d.counted_minutes for d in dagen),
            dagen=dagen,
            herhaalmelding=False,
            deadline=context.deadline(covered[-1]),
        )

    # LRV: unauthorised absence on every lesdag for more than four consecutive lesweken.
    lrv_days = [day for day in absent if in_leerplicht_scope(pupil, day)]
    for run in _consecutive_runs(calendar, lrv_days):
        reached = calendar.next_lesdag(calendar.window_end(run[0], config.lrv_lesweken))
        if run[-1] >= reached:
            result.append(melding(MeldingKind.LRV, run, reached))

    # RMC: 18-23 without startkwalificatie, four consecutive weeks or the board's shorter period.
    weeks = config.rmc_period(pupil.bestuur)
    rmc_days = [day for day in absent if in_rmc_scope(pupil, day)]
    for run in _consecutive_runs(calendar, rmc_days):
        end = calendar.window_end(run[0], weeks)
        reached = end if calendar.is_lesdag(end) else calendar.previous_lesdag(end)
        if run[-1] >= reached:
            result.append(melding(MeldingKind.RMC, run, reached))
    return result


def _reconcile(
    computed: list[DueMelding], existing: Sequence[ExistingMelding]
) -> tuple[list[DueMelding], list[Discrepancy]]:
    """Drop computed meldingen that are already sent; report sent ones the ledger contradicts."""
    kept = list(computed)
    discrepancies: list[Discrepancy] = []
    for sent in sorted(
        (m for m in existing if m.status is MeldingStatus.SENT),
        key=lambda m: (m.begindatum, m.kind.value),
    ):
        same_key = [m for m in kept if m.key == sent.key]
        overlapping = same_key or [
            m
            for m in kept
            if m.kind == sent.kind
            and m.begindatum <= sent.einddatum
            and sent.begindatum <= m.einddatum
        ]
        match = overlapping[0] if overlapping else None
        if match is not None:
            kept.remove(match)
        if match is None or not match.same_period(sent):
            reason = (
                DiscrepancyReason.DIFFERS
                if match is not None
                else DiscrepancyReason.NO_LONGER_SUPPORTED
            )
            discrepancies.append(Discrepancy(sent=sent, computed=match, reason=reason))
    return kept, discrepancies
