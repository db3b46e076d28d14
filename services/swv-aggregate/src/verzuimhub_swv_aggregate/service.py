"""Applying feed events to the rollups: incremental, set-based, exactly once with the cursor.

``apply_ingest_events`` and ``apply_melding_events`` are the :class:`FeedConsumer` handlers.
Each batch is applied in four steps, whatever its size:

1. load the previous state of every registration / melding / vrijstelling the batch touches,
   and of every (pupil, scope, sector, period) those states touch: one query per table;
2. replay the batch in memory in feed order: every change is "take the old state out, put the
   new state in", so a correction or retraction is a delta and never a recomputation;
3. write the state back: what the load did not find is new (only this consumer adds these
   rows, one batch at a time under its cursor's lock) and copied in; what it found is
   updated by key, or deleted when nothing is left of it;
4. add the accumulated deltas to ``rollups`` / ``vrijstelling_stromen`` with one
   ``INSERT … ON CONFLICT DO UPDATE SET value = value + excluded.value``.

The work per event is bounded (two scopes × three periods) and nothing is read that the batch
does not touch. Replaying the feed from position 0 into empty tables rebuilds the same rollups.
Only flushes: the consumer's transaction commits together with its cursor.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from typing import Any, cast

from pydantic import ValidationError
from sqlalchemy import Table, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from verzuimhub_shared import events as ev
from verzuimhub_shared.calendar import SchoolCalendar, region_calendar
from verzuimhub_shared.db import (
    bulk_delete,
    bulk_update,
    by_keys,
    copy_records,
    index_scans_only,
    is_postgresql,
    pg_fetch_lists,
)
from verzuimhub_shared.logging import get_logger
from verzuimhub_shared.refdata import RefData
from verzuimhub_swv_aggregate import repository as repo
from verzuimhub_swv_aggregate.models import (
    Base,
    LeerlingPeriode,
    SwvMelding,
    SwvRegistratie,
    SwvVrijstelling,
)
from verzuimhub_swv_aggregate.periods import KINDS, Period, parse_period

log = get_logger(__name__)

NATIONAL = "NL"

# Rollup metrics (``rollups.metric``) and their categories.
MINUTEN = "minuten"  # category: the event's groep (geoorloofd, ongeoorloofd, luxe, deelname)
LEERLINGEN_GEOORLOOFD = "leerlingen_geoorloofd"  # pupils with any authorised absence
LEERLINGEN_ONGEOORLOOFD = "leerlingen_ongeoorloofd"  # pupils with any unauthorised absence
LEERLINGEN_AFSTAND = "leerlingen_afstandsonderwijs"  # pupils in digital distance education
LEERLINGEN_NIVEAU = "leerlingen_niveau"  # category: tier "1", "2", "3"
MELDINGEN = "meldingen"  # category: the melding's soort

#: A melding counts once the school has sent it, until it is withdrawn. Concepts (not yet
#: confirmed) and ``vervallen`` (no longer due) were never meldingen.
GETELDE_STATUSES = frozenset(
    {"ingediend", "geregistreerd", "in_behandeling", "afgesloten", "ter_kennisgeving_aangenomen"}
)


@dataclass(frozen=True)
class AggregateContext:
    """What applying events needs beyond the events: reference data and tier settings."""

    refdata: RefData
    minutes_per_lesdag: Mapping[str, int]
    tier2_percentage: int = 5
    tier3_percentage: int = 10
    default_region: str = "midden"
    today: Callable[[], date] = date.today
    _regions: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def sectors_in(self, scope: str) -> frozenset[str]:
        """Sectors the reference data has schools for in an SWV region (or nationally)."""
        schools = (
            self.refdata.schools.values()
            if scope == NATIONAL
            else self.refdata.schools_of_swv(scope)
        )
        return frozenset(sector for school in schools for sector in school.sectors)

    def holiday_region(self, swv: str | None) -> str:
        """The holiday region most of the SWV's schools follow (the default when unknown)."""
        if swv is None:
            return self.default_region
        region = self._regions.get(swv)
        if region is None:
            counts: dict[str, int] = defaultdict(int)
            for school in self.refdata.schools_of_swv(swv):
                counts[school.holiday_region] += 1
            region = max(sorted(counts), key=counts.__getitem__) if counts else None
            region = region or self.default_region
            self._regions[swv] = region
        return region

    def scheduled_minutes(self, swv: str | None, sector: str, kind: str, label: str) -> int:
        """Lesdagen of the whole period in the SWV's holiday region × minutes per lesdag."""
        period = _period(label)
        assert period.kind == kind
        lesdagen = _calendar(self.holiday_region(swv)).count_lesdagen(period.start, period.end)
        return lesdagen * self.minutes_per_lesdag.get(sector, 300)

    def tier(self, absent_minutes: int, scheduled_minutes: int) -> str:
        """Attendance tier (RtI/MTSS): share of scheduled time missed, cut-offs configured."""
        if scheduled_minutes <= 0:
            return "3" if absent_minutes > 0 else "1"
        if absent_minutes * 100 >= self.tier3_percentage * scheduled_minutes:
            return "3"
        if absent_minutes * 100 >= self.tier2_percentage * scheduled_minutes:
            return "2"
        return "1"


@cache
def _period(label: str) -> Period:
    return parse_period(label)


@cache
def _calendar(region: str) -> SchoolCalendar:
    return region_calendar(region)


# --- registrations -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RegState:
    leerling: str
    swv: str | None
    sector: str
    week: str
    maand: str
    schooljaar: str
    minuten: int
    groep: str

    def periods(self) -> tuple[tuple[str, str], ...]:
        return (("week", self.week), ("maand", self.maand), ("schooljaar", self.schooljaar))

    def scopes(self) -> tuple[str, ...]:
        return (self.swv, NATIONAL) if self.swv else (NATIONAL,)


PupilKey = tuple[str, str, str, str, str]  # leerling, scope, sector, period_kind, period
RollupKey = tuple[str, str, str, str, str, str]  # scope, sector, kind, period, metric, category


@dataclass(slots=True)
class PupilPeriod:
    registraties: int = 0
    geoorloofd: int = 0
    ongeoorloofd: int = 0
    deelname: int = 0
    gepland: int = 0
    #: Read from the table (written back by an update), not made by this batch (an insert).
    stored: bool = False

    def flags(self, ctx: AggregateContext) -> Flags:
        """What decides the pupil-count cells this pupil falls in for its scope, sector and
        period (see :func:`_cells`)."""
        if self.registraties <= 0:
            return None
        return (
            ctx.tier(self.geoorloofd + self.ongeoorloofd, self.gepland),
            self.geoorloofd > 0,
            self.ongeoorloofd > 0,
            self.deelname > 0,
        )

    def add(self, reg: RegState, sign: int) -> None:
        self.registraties += sign
        if reg.groep == "geoorloofd":
            self.geoorloofd += sign * reg.minuten
        elif reg.groep in ("ongeoorloofd", "luxe"):
            self.ongeoorloofd += sign * reg.minuten
        elif reg.groep == "deelname":
            self.deelname += sign * reg.minuten


#: A pupil's tier and whether it has authorised, unauthorised and distance-education
#: minutes; None without registrations.
Flags = tuple[str, bool, bool, bool] | None


@cache
def _cells(flags: Flags) -> frozenset[tuple[str, str]]:
    """The pupil-count cells (metric, category) of these flags (a few dozen distinct)."""
    if flags is None:
        return frozenset()
    tier, geoorloofd, ongeoorloofd, afstand = flags
    cells = {(LEERLINGEN_NIVEAU, tier)}
    if geoorloofd:
        cells.add((LEERLINGEN_GEOORLOOFD, ""))
    if ongeoorloofd:
        cells.add((LEERLINGEN_ONGEOORLOOFD, ""))
    if afstand:
        cells.add((LEERLINGEN_AFSTAND, ""))
    return frozenset(cells)


def _reg_state(data: dict[str, Any]) -> RegState:
    parsed = ev.RegistratieVoorSwv.model_validate(data)
    return RegState(
        leerling=parsed.leerling,
        swv=parsed.swv,
        sector=parsed.sector,
        week=parsed.datum_week,
        maand=parsed.maand,
        schooljaar=parsed.schooljaar,
        minuten=parsed.minuten,
        groep=parsed.groep,
    )


async def _apply_registraties(
    session: AsyncSession,
    ops: Sequence[tuple[str, RegState | None]],
    ctx: AggregateContext,
    rollups: dict[RollupKey, int],
) -> None:
    if not ops:
        return
    ids = {rid for rid, _ in ops}
    t = _table(SwvRegistratie)
    current: dict[str, RegState | None] = {}
    for chunk in _chunks(sorted(ids)):
        for row in await by_keys(session, t.c.id, chunk):
            current[row.id] = RegState(
                row.leerling,
                row.swv,
                row.sector,
                row.week,
                row.maand,
                row.schooljaar,
                row.minuten,
                row.groep,
            )
    existed = set(current)

    changes: list[tuple[RegState, int]] = []
    dirty: set[str] = set()
    for rid, new in ops:
        old = current.get(rid)
        if old == new:
            continue  # an identical replay of the same state changes nothing
        dirty.add(rid)
        if old is not None:
            changes.append((old, -1))
        if new is not None:
            changes.append((new, 1))
        current[rid] = new

    # Every (pupil, scope, sector, period) the changes touch, loaded at once.
    wanted: set[PupilKey] = {
        (reg.leerling, scope, reg.sector, kind, label)
        for reg, _ in changes
        for scope in reg.scopes()
        for kind, label in reg.periods()
    }
    pupils = await _load_pupil_periods(session, wanted)

    for reg, sign in changes:
        for scope in reg.scopes():
            for kind, label in reg.periods():
                base = (scope, reg.sector, kind, label)
                rollups[(*base, MINUTEN, reg.groep)] += sign * reg.minuten
                key: PupilKey = (reg.leerling, scope, reg.sector, kind, label)
                state = pupils.get(key)
                if state is None:
                    gepland = ctx.scheduled_minutes(reg.swv, reg.sector, kind, label)
                    state = pupils[key] = PupilPeriod(gepland=gepland)
                before = state.flags(ctx)
                state.add(reg, sign)
                after = state.flags(ctx)
                if after == before:
                    continue  # in the same cells as before (most corrections, most repeats)
                was, now = _cells(before), _cells(after)
                for metric, category in was - now:
                    rollups[(*base, metric, category)] -= 1
                for metric, category in now - was:
                    rollups[(*base, metric, category)] += 1

    await _store_pupil_periods(session, wanted, pupils)
    # As the pupil periods: a registration not found above is not there (only this
    # consumer writes them): copied in; a stored one updated or deleted.
    gone: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    new_rows: list[tuple[Any, ...]] = []
    for rid in sorted(dirty):
        reg_state = current[rid]
        if reg_state is None:
            if rid in existed:
                gone.append({"id": rid})
        elif rid in existed:
            changed.append(
                {"_id": rid, **dict(zip(_REG_COLUMNS, _reg_values(reg_state), strict=True))}
            )
        else:
            new_rows.append((rid, *_reg_values(reg_state)))
    await bulk_delete(session, t, gone)
    await bulk_update(session, t, changed, key="id")
    await copy_records(session, t, ("id", *_REG_COLUMNS), new_rows)


_REG_COLUMNS = ("leerling", "swv", "sector", "week", "maand", "schooljaar", "minuten", "groep")


def _reg_values(state: RegState) -> tuple[Any, ...]:
    """``_REG_COLUMNS``' values, in that order."""
    return (
        state.leerling,
        state.swv,
        state.sector,
        state.week,
        state.maand,
        state.schooljaar,
        state.minuten,
        state.groep,
    )


_PUPIL_KEY = ("leerling", "scope", "sector", "period_kind", "period")
_PUPIL_FIGURES = ("registraties", "geoorloofd", "ongeoorloofd", "deelname", "gepland")
#: A stored pupil period's row for ``bulk_update(…, key=_PUPIL_KEY)``.
_UPDATED_BY_KEY = (*("_" + name for name in _PUPIL_KEY), *_PUPIL_FIGURES)
#: PostgreSQL: pupil-period rows by exact key: each key probes the primary key (a LATERAL
#: subquery that ``OFFSET 0`` keeps from being flattened into a join; tests check the plan,
#: see migration 0003). The keys' five columns go as lists of text (``db.pg_fetch_lists``:
#: one string each, which PostgreSQL splits): as a JSON document (``json_to_recordset``),
#: PostgreSQL took 16 ms of a 40 ms load to parse a batch's 6,000 keys (twenty-first
#: session). As a plain join, the planner saw those 6,000 keys and hashed them against a
#: sequential scan of the whole table, every batch.
PUPIL_PERIODS_BY_KEYS = (
    "SELECT p.* FROM unnest({0}, {1}, {2}, {3}, {4}) AS x("
    + ", ".join(_PUPIL_KEY)
    + ") CROSS JOIN LATERAL (SELECT "
    + ", ".join(_PUPIL_KEY + _PUPIL_FIGURES)
    + " FROM leerling_perioden AS q WHERE "
    + " AND ".join(f"q.{c} = x.{c}" for c in _PUPIL_KEY)
    + " OFFSET 0) AS p"
)


def _key_row(key: PupilKey) -> dict[str, Any]:
    leerling, scope, sector, kind, label = key
    return {
        "leerling": leerling,
        "scope": scope,
        "sector": sector,
        "period_kind": kind,
        "period": label,
    }


async def _load_pupil_periods(
    session: AsyncSession, wanted: set[PupilKey]
) -> dict[PupilKey, PupilPeriod]:
    """The wanted rows: on PostgreSQL exactly those (a probe of the primary key per key,
    ``PUPIL_PERIODS_BY_KEYS``); elsewhere by pupil and period (a few more, harmlessly)."""
    pupils: dict[PupilKey, PupilPeriod] = {}
    if not wanted:
        return pupils
    t = _table(LeerlingPeriode)
    rows: Sequence[Sequence[Any]]
    if is_postgresql(session):
        keys = list(wanted)  # any order
        async with index_scans_only(session):
            # Thousands of rows a batch: read around SQLAlchemy's result layer.
            rows = await pg_fetch_lists(
                session, PUPIL_PERIODS_BY_KEYS, list(zip(*keys, strict=True))
            )
    else:
        query: Any = select(*(t.c[c] for c in (*_PUPIL_KEY, *_PUPIL_FIGURES))).where(
            t.c.leerling.in_(sorted({k[0] for k in wanted})),
            t.c.period.in_(sorted({k[4] for k in wanted})),
        )
        rows = (await session.execute(query)).all()
    for leerling, scope, sector, kind, label, *figures in rows:
        registraties, geoorloofd, ongeoorloofd, deelname, gepland = figures
        pupils[(leerling, scope, sector, kind, label)] = PupilPeriod(
            registraties, geoorloofd, ongeoorloofd, deelname, gepland, stored=True
        )
    return pupils


async def _store_pupil_periods(
    session: AsyncSession, wanted: set[PupilKey], pupils: dict[PupilKey, PupilPeriod]
) -> None:
    """Write back exactly the rows the batch touched: new ones copied in, stored ones
    updated, the ones without registrations left deleted (work per batch, not per
    pupil-year). Only this feed's consumer adds these rows, one batch at a time (its
    cursor's lock), so a row the load did not find is not there: a plain insert, not an
    upsert (``INSERT … ON CONFLICT`` cost PostgreSQL ~40 % more for such a batch).
    Retention may delete a stored row of a purged period meanwhile; its update then finds
    nothing, and the period stays purged."""
    t = _table(LeerlingPeriode)
    new: list[tuple[Any, ...]] = []
    changed: list[dict[str, Any]] = []
    gone: list[dict[str, Any]] = []
    for key in sorted(wanted):  # a stable order of row locks
        state = pupils[key]
        if state.registraties > 0:
            figures = (
                state.registraties,
                state.geoorloofd,
                state.ongeoorloofd,
                state.deelname,
                state.gepland,
            )
            if state.stored:
                changed.append(dict(zip(_UPDATED_BY_KEY, (*key, *figures), strict=True)))
            else:
                new.append((*key, *figures))
        elif state.stored:
            gone.append(_key_row(key))
    await bulk_delete(session, t, gone)
    await copy_records(session, t, (*_PUPIL_KEY, *_PUPIL_FIGURES), new)
    await bulk_update(session, t, changed, key=_PUPIL_KEY)


# --- vrijstellingen and absoluut verzuim ---------------------------------------------


@dataclass(frozen=True, slots=True)
class VrijState:
    soort: str
    begindatum: date
    einddatum: date | None
    swv_po: str | None
    swv_vo: str | None
    leeftijdsband: str

    def scopes(self) -> tuple[str, ...]:
        return (*tuple(s for s in (self.swv_po, self.swv_vo) if s), NATIONAL)


FlowKey = tuple[str, str, str, date, str]  # scope, soort, leeftijdsband, dag, richting


def _vrij_state(data: dict[str, Any]) -> VrijState:
    parsed = ev.VrijstellingVoorSwv.model_validate(data)
    return VrijState(
        parsed.soort,
        parsed.begindatum,
        parsed.einddatum,
        parsed.swv_po,
        parsed.swv_vo,
        parsed.leeftijdsband,
    )


async def _apply_vrijstellingen(
    session: AsyncSession, ops: Sequence[tuple[str, VrijState | None]], flows: dict[FlowKey, int]
) -> None:
    if not ops:
        return
    t = _table(SwvVrijstelling)
    current: dict[str, VrijState | None] = {}
    for chunk in _chunks(sorted({vid for vid, _ in ops})):
        for row in await session.execute(select(t).where(t.c.id.in_(chunk))):
            current[row.id] = VrijState(
                row.soort, row.begindatum, row.einddatum, row.swv_po, row.swv_vo, row.leeftijdsband
            )
    touched = set(current)
    for vid, new in ops:
        old = current.get(vid)
        if old == new:
            continue
        for state, sign in ((old, -1), (new, 1)):
            if state is None:
                continue
            for scope in state.scopes():
                base = (scope, state.soort, state.leeftijdsband)
                flows[(*base, state.begindatum, "begin")] += sign
                if state.einddatum is not None:
                    flows[(*base, state.einddatum, "einde")] += sign
        current[vid] = new
        touched.add(vid)
    for chunk in _chunks(sorted(touched)):
        await session.execute(delete(t).where(t.c.id.in_(chunk)))
    rows = [
        {
            "id": vid,
            "soort": s.soort,
            "begindatum": s.begindatum,
            "einddatum": s.einddatum,
            "swv_po": s.swv_po,
            "swv_vo": s.swv_vo,
            "leeftijdsband": s.leeftijdsband,
        }
        for vid, s in current.items()
        if s is not None
    ]
    if rows:
        await session.execute(insert(t), rows)


# --- meldingen ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MeldingState:
    soort: str
    sector: str
    swv: str | None
    week: str
    maand: str
    schooljaar: str
    geteld: bool

    def scopes(self) -> tuple[str, ...]:
        return (self.swv, NATIONAL) if self.swv else (NATIONAL,)


def _melding_state(data: dict[str, Any]) -> MeldingState:
    parsed = ev.MeldingVoorSwv.model_validate(data)
    return MeldingState(
        parsed.soort,
        parsed.sector,
        parsed.swv,
        parsed.schoolweek,
        parsed.maand,
        parsed.schooljaar,
        geteld=parsed.status.strip().lower() in GETELDE_STATUSES,
    )


async def _apply_meldingen(
    session: AsyncSession,
    ops: Sequence[tuple[str, MeldingState]],
    rollups: dict[RollupKey, int],
) -> None:
    if not ops:
        return
    t = _table(SwvMelding)
    current: dict[str, MeldingState] = {}
    for chunk in _chunks(sorted({mid for mid, _ in ops})):
        for row in await session.execute(select(t).where(t.c.id.in_(chunk))):
            current[row.id] = MeldingState(
                row.soort, row.sector, row.swv, row.week, row.maand, row.schooljaar, row.geteld
            )
    touched = set(current)
    for mid, new in ops:
        old = current.get(mid)
        for state, sign in ((old, -1), (new, 1)):
            if state is None or not state.geteld:
                continue
            for scope in state.scopes():
                for kind, label in zip(
                    KINDS, (state.week, state.maand, state.schooljaar), strict=True
                ):
                    rollups[(scope, state.sector, kind, label, MELDINGEN, state.soort)] += sign
        current[mid] = new
        touched.add(mid)
    for chunk in _chunks(sorted(touched)):
        await session.execute(delete(t).where(t.c.id.in_(chunk)))
    await session.execute(
        insert(t),
        [
            {
                "id": mid,
                "soort": s.soort,
                "sector": s.sector,
                "swv": s.swv,
                "week": s.week,
                "maand": s.maand,
                "schooljaar": s.schooljaar,
                "geteld": s.geteld,
            }
            for mid, s in current.items()
        ],
    )


# --- the handlers ------------------------------------------------------------------------


async def apply_ingest_events(
    session: AsyncSession, events: list[dict[str, Any]], ctx: AggregateContext
) -> None:
    """Apply a batch of ingest's swv-aggregate projection (the FeedConsumer handler)."""
    reg_ops: list[tuple[str, RegState | None]] = []
    vrij_ops: list[tuple[str, VrijState | None]] = []
    for event in events:
        kind, data = event.get("type"), event.get("data") or {}
        try:
            if kind == ev.REGISTRATIE_VASTGELEGD:
                reg_ops.append((data["registratieId"], _reg_state(data)))
            elif kind == ev.REGISTRATIE_INGETROKKEN:
                parsed = ev.RegistratieIngetrokkenVoorSwv.model_validate(data)
                reg_ops.append((parsed.registratie_id, None))
            elif kind in (ev.VRIJSTELLING_VASTGELEGD, ev.ABSOLUUT_VERZUIM_VASTGELEGD):
                vrij_ops.append((data["vrijstellingId"], _vrij_state(data)))
            elif kind in (ev.VRIJSTELLING_INGETROKKEN, ev.ABSOLUUT_VERZUIM_INGETROKKEN):
                gone = ev.VrijstellingIngetrokkenVoorSwv.model_validate(data)
                vrij_ops.append((gone.vrijstelling_id, None))
            else:
                log.warning("feed_event_ignored", feed="ingest", type=kind)
        except (KeyError, ValidationError):
            # A malformed event must not stop the feed forever; it is logged (without data).
            log.error(
                "feed_event_invalid", feed="ingest", type=kind, position=event.get("position")
            )
    rollups: dict[RollupKey, int] = defaultdict(int)
    flows: dict[FlowKey, int] = defaultdict(int)
    await _apply_registraties(session, reg_ops, ctx, rollups)
    await _apply_vrijstellingen(session, vrij_ops, flows)
    await repo.add_rollups(session, rollups)
    await repo.add_flows(session, flows)


async def apply_melding_events(
    session: AsyncSession, events: list[dict[str, Any]], ctx: AggregateContext
) -> None:
    """Apply a batch of melding's feed for swv-aggregate (the FeedConsumer handler)."""
    del ctx  # meldingen need no reference data
    ops: list[tuple[str, MeldingState]] = []
    for event in events:
        kind, data = event.get("type"), event.get("data") or {}
        if kind != ev.MELDING_GEWIJZIGD:
            log.warning("feed_event_ignored", feed="melding", type=kind)
            continue
        try:
            ops.append((data["meldingId"], _melding_state(data)))
        except (KeyError, ValidationError):
            log.error("feed_event_invalid", feed="melding", position=event.get("position"))
    rollups: dict[RollupKey, int] = defaultdict(int)
    await _apply_meldingen(session, ops, rollups)
    await repo.add_rollups(session, rollups)


def _table(model: type[Base]) -> Table:
    return cast(Table, model.__table__)


def _chunks(items: Sequence[str], size: int = 500) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


__all__ = [
    "NATIONAL",
    "AggregateContext",
    "apply_ingest_events",
    "apply_melding_events",
]
