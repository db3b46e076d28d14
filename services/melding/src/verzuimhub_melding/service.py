"""Melding's domain operations: the ledger from ingest's feed, the rules, the lifecycle.

Functions flush; the edge (request dependency or worker transaction) commits. DUO is only
reached through the outbox, after commit.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any

import msgspec
import orjson
from pydantic import TypeAdapter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from verzuimhub_melding import repository as repo
from verzuimhub_melding.domain.ledger import Entry, ledger_days, specificatie, vermoedelijke_reden
from verzuimhub_melding.duo.contract import Verzuimmelding, payload
from verzuimhub_melding.models import FEED, DuoOutbox, Leerling, Melding, SchoolBeleid
from verzuimhub_melding.rules import (
    CountingUnit,
    DueMelding,
    Evaluation,
    ExistingMelding,
    LedgerWindow,
    MeldingKind,
    MeldingStatus,
    Pupil,
    RulesConfig,
    Sector,
    evaluate,
    ledger_window,
    melding_key,
)
from verzuimhub_shared import events as ev
from verzuimhub_shared import feed
from verzuimhub_shared.calendar import (
    Region,
    SchoolCalendar,
    SchoolYearHolidays,
    load_holidays,
    region_calendar,
    shipped_holidays,
)
from verzuimhub_shared.crypto import Pseudonymiser, Sealer
from verzuimhub_shared.db import in_turns
from verzuimhub_shared.errors import BadRequest, Conflict, InvalidParam, NotFound
from verzuimhub_shared.ids import new_id
from verzuimhub_shared.logging import get_logger
from verzuimhub_shared.periods import age_band_on, iso_week_label, month_label, school_year_of
from verzuimhub_shared.refdata import RefData

log = get_logger(__name__)

_PUTS = TypeAdapter(list[ev.RegistratieVoorMelding])
_DELS = TypeAdapter(list[ev.RegistratieIngetrokkenVoorMelding])

LINK = "melding-link"
SWV_MELDING = "swv-aggregate:melding"
COMPUTED = {MeldingKind.V3, MeldingKind.V4, MeldingKind.LRV, MeldingKind.RMC, MeldingKind.L}
#: Statuses that mean "the school has sent it": the rules never change these silently.
SENT_STATUSES = {
    "ingediend",
    "geregistreerd",
    "in_behandeling",
    "afgesloten",
    "ter_kennisgeving_aangenomen",
    "ingetrokken",
}


@dataclass
class MeldingContext:
    refdata: RefData
    pseudonymiser: Pseudonymiser
    sealer: Sealer
    rules: RulesConfig
    today: Callable[[], date]
    #: Holidays loaded with `verzuimhub refdata load schoolvakanties` (they replace the
    #: shipped data for the same school year).
    holidays: Sequence[SchoolYearHolidays] = ()
    _calendars: dict[str, SchoolCalendar] = field(default_factory=dict)
    _school_calendars: dict[tuple[str, str], SchoolCalendar] = field(default_factory=dict)
    #: ``ledger_window`` of a pupil without 16-uur meldingen depends only on the calendar
    #: and the changed day: memoised (bounded) so a replay does not redo the calendar walk.
    _fresh_windows: dict[tuple[int, date], LedgerWindow] = field(default_factory=dict)

    def calendar_for(self, brin: str, vestiging: str) -> SchoolCalendar:
        found = self._school_calendars.get((brin, vestiging))
        if found is None:
            found = self._school_calendars[(brin, vestiging)] = self._calendar_for(brin, vestiging)
        return found

    def window_for(
        self, existing: Sequence[ExistingMelding], changed: date, calendar: SchoolCalendar
    ) -> LedgerWindow:
        if any(m.kind.is_16_uur for m in existing):
            return ledger_window(existing, changed, calendar, self.rules)
        key = (id(calendar), changed)
        window = self._fresh_windows.get(key)
        if window is None:
            if len(self._fresh_windows) > 20_000:
                self._fresh_windows.clear()
            window = self._fresh_windows[key] = ledger_window((), changed, calendar, self.rules)
        return window

    def _calendar_for(self, brin: str, vestiging: str) -> SchoolCalendar:
        school = self.refdata.school(brin, vestiging) or next(
            iter(self.refdata.schools_of_brin(brin)), None
        )
        region = school.holiday_region if school else "midden"
        if region not in self._calendars:
            loaded = {h.first_year: h for h in self.holidays}
            years = [h for h in shipped_holidays() if h.first_year not in loaded]
            self._calendars[region] = region_calendar(
                Region(region), holidays=[*years, *loaded.values()]
            )
        return self._calendars[region]

    def swv_of(self, brin: str, vestiging: str, sector: str, woongemeente: str) -> str | None:
        school = self.refdata.school(brin, vestiging)
        if school is not None:
            found = school.swv_for_sector(sector)  # type: ignore[arg-type]
            if found:
                return found
        swv = self.refdata.swv_for_sector(woongemeente, sector)  # type: ignore[arg-type]
        return swv.code if swv else None


def rules_config(v4_gemeenten: Iterable[str], mbo_unit: str) -> RulesConfig:
    return RulesConfig(v4_gemeenten=frozenset(v4_gemeenten), mbo_unit=CountingUnit(mbo_unit))


# --- from ingest's feed to the ledger ------------------------------------------------------


@dataclass(frozen=True)
class IngestBatch:
    """A batch of ingest's events, decoded: the last state per registration in feed order,
    and the link pseudonym of every PGN in it. Pure work, no database: it can be done for
    the next batch while the current one waits on the database (``FeedConsumer(decode=)``).
    """

    final: dict[str, tuple[str, Any]]
    link: dict[str, str]
    #: The position of the batch's last event: the consumer's cursor once it is applied,
    #: and what its ledger rows carry (ADR 0024).
    position: int


_Put = ev.struct_of(ev.RegistratieVoorMelding)
_Gone = ev.struct_of(ev.RegistratieIngetrokkenVoorMelding)


class _Vastgelegd(msgspec.Struct, tag_field="type", tag=ev.REGISTRATIE_VASTGELEGD, gc=False):
    """A feed event of this type, as much of its envelope as melding reads."""

    position: int
    data: _Put  # type: ignore[valid-type]


class _Ingetrokken(msgspec.Struct, tag_field="type", tag=ev.REGISTRATIE_INGETROKKEN, gc=False):
    position: int
    data: _Gone  # type: ignore[valid-type]


_FEED = msgspec.json.Decoder(list[_Vastgelegd | _Ingetrokken])


def decode_ingest_feed(ctx: MeldingContext, content: bytes) -> feed.Page:
    """A response of ingest's feed, decoded for :func:`plan_ingest_events`: straight from
    the bytes into structs of the contract models (``events.struct_of``, ADR 0020), without
    a dict per event in between. msgspec refuses what pydantic would coerce, and a batch
    holding a type melding does not apply (from a newer ingest): such a batch takes the
    general path, which validates with the contract models and skips unknown types. A
    malformed event is refused on either path, with pydantic's error."""
    *_, page = _decoding(ctx, content)
    assert page is not None
    return page


async def decode_ingest_feed_in_turns(ctx: MeldingContext, content: bytes) -> feed.Page:
    """:func:`decode_ingest_feed`, giving the event loop a turn between its parts: a page of
    5,000 events took 20–27 ms of CPU in one piece, and the batch being written meanwhile
    (``FeedConsumer(prepare=)``, ADR 0022) could not send its next statement until it was
    done (ADR 0023)."""
    for page in _decoding(ctx, content):
        if page is not None:
            return page
        await asyncio.sleep(0)
    raise AssertionError("the decoding ends with the page")


#: About how many bytes of a page are decoded between two turns (~450 events, ~1 ms).
_PART_BYTES = 256 * 1024


def _decoding(ctx: MeldingContext, content: bytes) -> Iterator[feed.Page | None]:
    """The decoding of a page, in steps: ``None`` after each of its parts
    (``feed.page_parts``) and each :data:`_TURN` pseudonyms, and the page last."""
    envelopes: list[Any] = []
    try:
        for part in feed.page_parts(content, _PART_BYTES):
            envelopes.extend(_FEED.decode(part))
            yield None
    except msgspec.MsgspecError:
        try:  # framed otherwise (not cut between events), or a type or value msgspec refuses
            envelopes = _FEED.decode(content)
        except msgspec.MsgspecError:
            yield _decode_generally(ctx, content)
            return
    final: dict[str, tuple[str, Any]] = {}
    for envelope in envelopes:
        data = envelope.data
        final[data.registratie_id] = ("put" if type(envelope) is _Vastgelegd else "del", data)
    last = envelopes[-1].position if envelopes else 0
    link: dict[str, str] = {}
    pgns, pseudonym = list(_pgns(final)), ctx.pseudonymiser.pseudonym
    for start in range(0, len(pgns), _TURN):
        if start:
            yield None
        for pgn in pgns[start : start + _TURN]:
            link[pgn] = pseudonym(pgn, LINK)
    yield feed.Page(len(envelopes), last, IngestBatch(final, link, last))


def _decode_generally(ctx: MeldingContext, content: bytes) -> feed.Page:
    page = feed.events_page(content)
    return replace(page, batch=decode_ingest_events(ctx, page.batch))


def decode_ingest_events(ctx: MeldingContext, events: Sequence[dict[str, Any]]) -> IngestBatch:
    """Events of ingest's feed (each with its ``position``) as a batch."""
    final: dict[str, tuple[str, Any]] = {}
    # One validation call per batch (not per event): the per-call overhead dominated.
    kinds = [event.get("type") for event in events]
    puts_in = _PUTS.validate_python(
        [e["data"] for e, k in zip(events, kinds, strict=True) if k == ev.REGISTRATIE_VASTGELEGD]
    )
    dels_in = _DELS.validate_python(
        [e["data"] for e, k in zip(events, kinds, strict=True) if k == ev.REGISTRATIE_INGETROKKEN]
    )
    # The same structs as the one-pass path makes, with pydantic's values.
    next_put: Iterator[Any] = (_Put(**dict(model)) for model in puts_in)
    next_del: Iterator[Any] = (_Gone(**dict(model)) for model in dels_in)
    for kind in kinds:
        if kind == ev.REGISTRATIE_VASTGELEGD:
            reg = next(next_put)
            final[reg.registratie_id] = ("put", reg)
        elif kind == ev.REGISTRATIE_INGETROKKEN:
            gone = next(next_del)
            final[gone.registratie_id] = ("del", gone)
    link = {pgn: ctx.pseudonymiser.pseudonym(pgn, LINK) for pgn in _pgns(final)}
    return IngestBatch(final, link, int(events[-1]["position"]) if events else 0)


def _pgns(final: dict[str, tuple[str, Any]]) -> set[str]:
    return {reg.pgn for op, reg in final.values() if op == "put"}


#: Events worked out (or a page's pseudonyms made) between two turns of the event loop
#: while a batch is planned or decoded ahead: the write beside it sends its next statement
#: as soon as the last one is done.
_TURN = 100


@dataclass(frozen=True)
class IngestPlan:
    """What applying a batch writes (:func:`write_ingest_plan`), read and worked out by
    :func:`plan_ingest_events`; and what melding will know once it is written, for the plan
    of the batch after it (``ledger``: a registration's (version, pupil, date), ``None``
    once withdrawn; ``pupils``: a pupil's id and facts by (link pseudonym, BRIN))."""

    new_pupils: list[tuple[Any, ...]]  # in repo.NEW_PUPIL_COLUMNS order
    pupil_updates: list[dict[str, Any]]
    inserts: list[tuple[Any, ...]]
    updates: list[tuple[Any, ...]]
    deletions: list[str]
    changed: dict[str, date]
    ledger: dict[str, tuple[int, str, date] | None]
    pupils: dict[tuple[str, str], tuple[str, tuple[Any, ...]]]


async def plan_ingest_events(
    session: AsyncSession,
    ctx: MeldingContext,
    batch: IngestBatch,
    ahead: IngestPlan | None = None,
) -> IngestPlan:
    """Read what ``batch`` (decoded by :func:`decode_ingest_feed`) needs (the ledger's
    versions of its registrations, its pupils) and work out its rows; written by
    :func:`write_ingest_plan`. Each ledger row carries the batch's position: the evaluator
    loop marks its pupil for the rules from there (``repo.mark_ledger_changes``); the plan
    marks only what the rows do not show: a registration withdrawn, or moved to a later
    date or another pupil (ADR 0024). ``ahead``: the plan of the batch before it, being
    written while this one is planned (``FeedConsumer(prepare=)``, ADR 0022); what it
    writes is taken as written, whether this session sees it yet or not, and is not read
    again."""
    final, link, position = batch.final, batch.link, batch.position
    puts = [reg for op, reg in final.values() if op == "put"]
    # Most events repeat what melding knows of the pupil: a pupil row is written only when
    # one of these facts changed.
    keys = [(link[r.pgn], r.brin) for r in puts]  # each put's pupil, made once
    wanted = set(keys)
    # What the plan ahead writes is what melding will know: only the rest is read (in a
    # replay, a quarter of a batch's pupils were in the batch before it).
    ids_to_read = final.keys() if ahead is None else final.keys() - ahead.ledger.keys()
    pupils_to_read = wanted if ahead is None else wanted - ahead.pupils.keys()
    stored = await repo.ledger_versions(session, ids_to_read) if ids_to_read else {}
    known = await repo.leerlingen_by_key(session, pupils_to_read) if pupils_to_read else {}
    if ahead is not None:
        for registratie_id in final.keys() & ahead.ledger.keys():
            version = ahead.ledger[registratie_id]
            if version is not None:
                stored[registratie_id] = version
        for key in wanted & ahead.pupils.keys():
            known[key] = ahead.pupils[key]
    changed: dict[str, date] = {}

    def touch(leerling_id: str, day: date) -> None:
        changed[leerling_id] = min(day, changed.get(leerling_id, day))

    now = datetime.now(UTC)
    new_pupils: dict[tuple[str, str], tuple[Any, ...]] = {}
    pupil_updates: dict[str, dict[str, Any]] = {}
    pupils: dict[tuple[str, str], tuple[str, tuple[Any, ...]]] = {}
    ledger: dict[str, tuple[int, str, date] | None] = {}
    inserts: list[tuple[Any, ...]] = []
    updates: list[tuple[Any, ...]] = []
    async for part in in_turns(len(puts), _TURN):  # the batch being written goes on meanwhile
        for reg, key in zip(puts[part], keys[part], strict=True):
            current: tuple[Any, ...] = (  # in repo.PUPIL_FACTS order
                reg.vestiging,
                reg.geboortedatum,
                reg.woongemeente,
                reg.sector,
                reg.startkwalificatie,
            )
            found = known.get(key)
            if found is not None:
                leerling_id, known_facts = found
                if leerling_id in pupil_updates or known_facts != current:
                    pupil_updates[leerling_id] = _facts(current, now) | {"_id": leerling_id}
            elif key in new_pupils:
                made = new_pupils[key]
                leerling_id = made[0]
                if pupils[key][1] != current:
                    new_pupils[key] = (*made[:4], *current, now)
            else:
                leerling_id = new_id()
                new_pupils[key] = (  # in repo.NEW_PUPIL_COLUMNS order
                    leerling_id,
                    key[0],
                    ctx.sealer.seal(reg.pgn, context="pgn"),
                    reg.brin,
                    *current,
                    now,
                )
            pupils[key] = (leerling_id, current)
            row = (  # in repo.LEDGER_COLUMNS order
                reg.registratie_id,
                leerling_id,
                reg.versie,
                reg.datum,
                reg.minuten,
                reg.eenheid,
                reg.aantal_eenheden,
                reg.alle_lessen_gemist,
                reg.soort,
                reg.categorie,
                reg.luxe_verzuim,
                position,
            )
            previous = stored.get(reg.registratie_id)
            if previous is None:
                inserts.append(row)
            elif reg.versie >= previous[0]:
                updates.append(row)
                if previous[1] != leerling_id or previous[2] < reg.datum:
                    touch(previous[1], previous[2])  # the new row shows neither
            else:
                continue
            ledger[reg.registratie_id] = (reg.versie, leerling_id, reg.datum)
    deletions = []
    for op, gone in final.values():
        if op == "del" and gone.registratie_id in stored:
            deletions.append(gone.registratie_id)
            ledger[gone.registratie_id] = None
            _, leerling_id, day = stored[gone.registratie_id]
            touch(leerling_id, day)
    return IngestPlan(
        list(new_pupils.values()),
        list(pupil_updates.values()),
        inserts,
        updates,
        deletions,
        changed,
        ledger,
        pupils,
    )


async def write_ingest_plan(session: AsyncSession, plan: IngestPlan) -> None:
    """Write a batch's plan."""
    await repo.insert_leerlingen(session, plan.new_pupils)
    await repo.update_leerlingen(session, plan.pupil_updates)
    await repo.upsert_ledger(session, plan.inserts, plan.updates)
    await repo.delete_ledger(session, plan.deletions)
    await repo.mark_for_evaluation(session, plan.changed)


#: Feed positions the ledger's marks move on in one transaction at most.
MARK_SPAN = 50_000


async def mark_ledger_changes(session: AsyncSession, feed: str = "ingest") -> bool:
    """Mark the pupils of the ledger's rows the consumer of ``feed`` wrote since the last
    call, for the rules; whether all are marked (see ``repo.mark_ledger_changes``)."""
    return await repo.mark_ledger_changes(session, feed, MARK_SPAN)


def _facts(current: tuple[Any, ...], now: datetime) -> dict[str, Any]:
    return dict(zip(repo.PUPIL_FACTS, current, strict=True), gewijzigd_op=now)


async def evaluate_pending(session: AsyncSession, ctx: MeldingContext, limit: int = 500) -> int:
    """Evaluate up to ``limit`` marked pupils, each once however many events touched it, and
    clear their marks in the same transaction (SKIP LOCKED: replicas share the work)."""
    marked = await repo.take_marked(session, limit)
    if marked:
        await evaluate_leerlingen(session, ctx, marked)
    return len(marked)


def _existing(meldingen: Iterable[Melding]) -> list[ExistingMelding]:
    out = []
    for m in meldingen:
        kind = MeldingKind(m.soort)
        if kind not in COMPUTED or m.status == "vervallen":
            continue
        status = MeldingStatus.CONCEPT if m.status == "concept" else MeldingStatus.SENT
        out.append(ExistingMelding(kind, m.begindatum, m.einddatum, status, m.herhaalmelding))
    return out


def _pupil(row: Leerling) -> Pupil:
    return Pupil(
        geboortedatum=row.geboortedatum,
        sector=Sector(row.sector),
        woongemeente=row.woongemeente,
        startkwalificatie=bool(row.startkwalificatie),
    )


async def evaluate_leerlingen(
    session: AsyncSession, ctx: MeldingContext, changed: dict[str, date]
) -> None:
    """Re-evaluate only these pupils, each over only its recent ledger (bounded work)."""
    if not changed:
        return
    ids = sorted(changed)
    pupils = await repo.leerlingen(session, ids)
    meldingen: dict[str, list[Melding]] = defaultdict(list)
    for m in await repo.meldingen_of(session, ids):
        meldingen[m.leerling_id].append(m)
    windows: dict[str, LedgerWindow] = {}
    calendars: dict[str, SchoolCalendar] = {}
    existing_of: dict[str, list[ExistingMelding]] = {}
    for leerling_id in ids:
        row = pupils[leerling_id]
        calendar = calendars[leerling_id] = ctx.calendar_for(row.brin, row.vestiging)
        existing = existing_of[leerling_id] = _existing(meldingen[leerling_id])
        windows[leerling_id] = ctx.window_for(existing, changed[leerling_id], calendar)
    since = min(w.start for w in windows.values())
    entries: dict[str, list[Entry]] = defaultdict(list)
    for leerling_id, entry in await repo.ledger_entries(session, ids, since):
        # One query for the whole batch from the earliest window; keep only each pupil's
        # own window (bounded work per pupil, not per batch).
        if entry.datum >= windows[leerling_id].start:
            entries[leerling_id].append(entry)
    to_publish: list[tuple[Melding, Leerling]] = []
    for leerling_id in ids:
        row = pupils[leerling_id]
        calendar = calendars[leerling_id]
        existing = existing_of[leerling_id]
        window = windows[leerling_id]
        own = entries[leerling_id]
        if not existing and not any(e.soort == "ongeoorloofd" for e in own):
            # No unauthorised absence in reach and nothing to reconcile: the rules cannot
            # make anything due (authorised absence never does; a tested property).
            continue
        result = evaluate(
            _pupil(row), ledger_days(own), existing, calendar, ctx.rules, window=window
        )
        while result.needs_history_from is not None:
            # The window cut through a run of absence (or a luxe episode): evaluate again
            # from earlier, as often as it takes to reach the run's first day (each step
            # goes back five lesweken; a run longer than that needs several).
            window = LedgerWindow(result.needs_history_from, window.anchor)
            own = [e for _, e in await repo.ledger_entries(session, [leerling_id], window.start)]
            result = evaluate(
                _pupil(row), ledger_days(own), existing, calendar, ctx.rules, window=window
            )
        if result.due or result.no_longer_due or result.discrepancies:
            changed_meldingen = _reconcile(session, ctx, row, meldingen[leerling_id], result, own)
            to_publish.extend((m, row) for m in changed_meldingen)
    # One flush and one feed append for the whole batch, not one per pupil.
    await session.flush()
    await _publish_pairs(session, ctx, to_publish)


def _reconcile(
    session: AsyncSession,
    ctx: MeldingContext,
    pupil: Leerling,
    meldingen: list[Melding],
    result: Evaluation,
    entries: list[Entry],
) -> list[Melding]:
    """Bring the pupil's meldingen in line with the evaluation; returns the changed ones
    (new ones are added to the session; the caller flushes and publishes)."""
    now = datetime.now(UTC)
    by_key = {melding_key(MeldingKind(m.soort), m.begindatum): m for m in meldingen}
    changed: list[Melding] = []
    for due in result.due:
        m = by_key.get(due.key)
        fields = _due_fields(due, entries)
        if m is None:
            m = Melding(
                id=str(uuid.uuid4()),
                leerling_id=pupil.id,
                brin=pupil.brin,
                vestiging=pupil.vestiging,
                woongemeente=pupil.woongemeente,
                sector=pupil.sector,
                soort=due.kind.value,
                begindatum=due.begindatum,
                status="concept",
                aangemaakt_op=now,
                gewijzigd_op=now,
                **fields,
            )
            session.add(m)
            meldingen.append(m)
            by_key[due.key] = m
            changed.append(m)
            log.info("melding_due", melding_id=m.id, soort=m.soort, brin=m.brin)
        elif m.status in ("concept", "vervallen"):
            revived = m.status == "vervallen"
            different = any(getattr(m, k) != v for k, v in fields.items())
            if different or revived:
                for k, v in fields.items():
                    setattr(m, k, v)
                m.status = "concept"
                m.woongemeente = pupil.woongemeente
                m.gewijzigd_op = now
                changed.append(m)
    for gone in result.no_longer_due:
        m = by_key.get(gone.key)
        if m is not None and m.status == "concept":
            m.status = "vervallen"
            m.gewijzigd_op = now
            changed.append(m)
            log.info("melding_no_longer_due", melding_id=m.id, soort=m.soort)
    for discrepancy in result.discrepancies:
        m = by_key.get(discrepancy.sent.key)
        if m is not None and m.discrepantie != discrepancy.reason.value:
            m.discrepantie = discrepancy.reason.value
            log.warning("melding_discrepancy", melding_id=m.id, reason=m.discrepantie)
    return changed


def _due_fields(due: DueMelding, entries: list[Entry]) -> dict[str, Any]:
    return {
        "einddatum": due.einddatum,
        "getelde_minuten": due.counted_minutes,
        "herhaalmelding": due.herhaalmelding,
        "deadline": due.deadline,
        "dagen": specificatie(entries, due.begindatum, due.einddatum),
        "vermoedelijke_reden": vermoedelijke_reden(entries, due.begindatum, due.einddatum),
        "alle_lessen_verzuimd": bool(due.dagen) and all(d.hele_dag for d in due.dagen),
    }


async def publish(
    session: AsyncSession, ctx: MeldingContext, meldingen: Sequence[Melding], pupil: Leerling
) -> None:
    """melding's own feed to swv-aggregate: no identity, its own pseudonymous id."""
    await _publish_pairs(session, ctx, [(m, pupil) for m in meldingen])


async def _publish_pairs(
    session: AsyncSession, ctx: MeldingContext, changed: Sequence[tuple[Melding, Any]]
) -> None:
    events = []
    for m, pupil in changed:
        data = ev.MeldingVoorSwv(
            melding_id=ctx.pseudonymiser.pseudonym(m.id, SWV_MELDING),
            soort=m.soort,
            status=m.status,
            sector=m.sector,
            swv=ctx.swv_of(m.brin, m.vestiging, m.sector, m.woongemeente),
            schoolweek=iso_week_label(m.einddatum),
            maand=month_label(m.einddatum),
            schooljaar=school_year_of(m.einddatum),
            leeftijdsband=age_band_on(pupil.geboortedatum, m.einddatum),
        )
        events.append(
            feed.Event(
                ev.CONSUMER_SWV, ev.MELDING_GEWIJZIGD, data.model_dump(mode="json", by_alias=True)
            )
        )
    await feed.append(session, FEED, events, source=ev.SOURCE_MELDING)


# --- the DUO payload and the outbox ------------------------------------------------------


def duo_payload(
    ctx: MeldingContext, m: Melding, pupil: Leerling, bevestiging: dict[str, Any]
) -> Verzuimmelding:
    """Exactly the legal fields (Besluit register onderwijsdeelnemers art. 13, 14)."""
    dagen = [
        {"datum": d["datum"], "uren": round(d["minuten"] / 60, 2), "geoorloofd": d["geoorloofd"]}
        for d in m.dagen
        if d["minuten"] > 0
    ]
    return Verzuimmelding.model_validate(
        {
            "meldingId": m.id,
            "woongemeente": m.woongemeente,
            "leerling": {
                "pgn": ctx.sealer.open(pupil.pgn_sealed, context="pgn"),
                "geboortedatum": pupil.geboortedatum.isoformat(),
            },
            "startkwalificatie": bool(pupil.startkwalificatie),
            "begindatum": m.begindatum.isoformat(),
            "einddatum": m.einddatum.isoformat(),
            "verzuimsoort": m.soort,
            "vermoedelijkeReden": m.vermoedelijke_reden,
            "alleLessenVerzuimd": m.alle_lessen_verzuimd,
            "ondernomenActie": bevestiging["ondernomenActie"],
            "gemeentelijkeActie": bevestiging["gemeentelijkeActie"],
            "leslocatie": bevestiging.get("leslocatie")
            or {"brin": m.brin, "vestigingsnummer": m.vestiging},
            "contactpersoon": bevestiging["contactpersoon"],
            "telefoonLeerlingOfOuder": bevestiging.get("telefoonLeerlingOfOuder"),
            "verzuimdagen": dagen,
        }
    )


def queue(
    session: AsyncSession, ctx: MeldingContext, m: Melding, actie: str, body: dict[str, Any]
) -> None:
    now = datetime.now(UTC)
    session.add(
        DuoOutbox(
            melding_id=m.id,
            actie=actie,
            payload_sealed=ctx.sealer.seal(orjson.dumps(body).decode(), context="duo"),
            state="pending",
            attempts=0,
            next_attempt_at=now,
            aangemaakt_op=now,
        )
    )


def sealed_json(ctx: MeldingContext, value: dict[str, Any], context: str) -> str:
    return ctx.sealer.seal(orjson.dumps(value).decode(), context=context)


def open_json(ctx: MeldingContext, sealed: str | None, context: str) -> dict[str, Any]:
    if not sealed:
        return {}
    data: dict[str, Any] = orjson.loads(ctx.sealer.open(sealed, context=context))
    return data


# --- the lifecycle -------------------------------------------------------------------------


async def school_melding(
    session: AsyncSession, principal_brins: frozenset[str], melding_id: str
) -> Melding:
    m = await repo.melding(session, melding_id)
    if m is None or m.brin not in principal_brins:
        raise NotFound("Deze melding bestaat niet")
    return m


async def confirm(
    session: AsyncSession, ctx: MeldingContext, m: Melding, bevestiging: dict[str, Any]
) -> Melding:
    """The school confirms a concept: it becomes ``ingediend`` and is queued for DUO."""
    if m.status != "concept":
        if (
            m.status != "vervallen"
            and open_json(ctx, m.bevestiging_sealed, "bevestiging") == bevestiging
        ):
            return m  # an identical replay
        raise Conflict(f"Een melding met status {m.status} kan niet bevestigd worden")
    pupil = (await repo.leerlingen(session, [m.leerling_id]))[m.leerling_id]
    body = payload(duo_payload(ctx, m, pupil, bevestiging))
    m.bevestiging_sealed = sealed_json(ctx, bevestiging, "bevestiging")
    m.status = "ingediend"
    m.gewijzigd_op = datetime.now(UTC)
    queue(session, ctx, m, "indienen", body)
    await session.flush()
    await publish(session, ctx, [m], pupil)
    log.info("melding_confirmed", melding_id=m.id, soort=m.soort)
    return m


async def withdraw(session: AsyncSession, ctx: MeldingContext, m: Melding, reden: str) -> Melding:
    """The school withdraws a melding; if DUO has (or will have) it, DUO is told too."""
    if m.status == "ingetrokken":
        return m
    if m.status in ("vervallen", "afgesloten", "ter_kennisgeving_aangenomen"):
        raise Conflict(f"Een melding met status {m.status} kan niet ingetrokken worden")
    was = m.status
    m.status = "ingetrokken"
    m.intrekkingsreden = reden
    m.gewijzigd_op = datetime.now(UTC)
    if was != "concept":
        pending = (
            await session.execute(
                select(DuoOutbox)
                .where(
                    DuoOutbox.melding_id == m.id,
                    DuoOutbox.actie == "indienen",
                    DuoOutbox.state == "pending",
                    DuoOutbox.attempts == 0,
                    DuoOutbox.leased_until.is_(None),
                )
                .with_for_update(skip_locked=True)
            )
        ).scalar_one_or_none()
        if pending is not None:
            pending.state = "geannuleerd"  # never left: nothing to withdraw at DUO
        else:
            queue(session, ctx, m, "intrekken", {"reden": reden})
    await session.flush()
    pupil = (await repo.leerlingen(session, [m.leerling_id]))[m.leerling_id]
    await publish(session, ctx, [m], pupil)
    log.info("melding_withdrawn", melding_id=m.id)
    return m


async def file_overig(
    session: AsyncSession,
    ctx: MeldingContext,
    brin: str,
    *,
    pgn: str,
    vestiging: str,
    begindatum: date,
    einddatum: date,
    bevestiging: dict[str, Any],
) -> Melding:
    """An overig-verzuim melding the school files itself, about a pupil the hub knows."""
    if einddatum < begindatum:
        raise BadRequest(
            "einddatum ligt voor begindatum",
            invalid_params=[InvalidParam("einddatum", "ligt voor begindatum")],
        )
    key = (ctx.pseudonymiser.pseudonym(pgn, LINK), brin)
    known = await repo.leerlingen_by_key(session, [key])
    if key not in known:
        raise NotFound("Van deze leerling is op deze school geen verzuim geregistreerd")
    leerling_id = known[key][0]
    pupil = (await repo.leerlingen(session, [leerling_id]))[leerling_id]
    entries = [e for _, e in await repo.ledger_entries(session, [pupil.id], begindatum)]
    dagen = specificatie(entries, begindatum, einddatum)
    if not dagen:
        raise BadRequest(
            "Geen geregistreerd verzuim in deze periode",
            invalid_params=[InvalidParam("begindatum", "geen verzuim in de periode")],
        )
    now = datetime.now(UTC)
    m = Melding(
        id=str(uuid.uuid4()),
        leerling_id=pupil.id,
        brin=brin,
        vestiging=vestiging,
        woongemeente=pupil.woongemeente,
        sector=pupil.sector,
        soort=MeldingKind.O.value,
        begindatum=begindatum,
        einddatum=einddatum,
        getelde_minuten=sum(int(str(d["minuten"])) for d in dagen if not d["geoorloofd"]),
        herhaalmelding=False,
        deadline=None,
        status="concept",
        dagen=dagen,
        vermoedelijke_reden=vermoedelijke_reden(entries, begindatum, einddatum),
        alle_lessen_verzuimd=False,
        aangemaakt_op=now,
        gewijzigd_op=now,
    )
    session.add(m)
    await session.flush()
    return await confirm(session, ctx, m, bevestiging)


async def set_gemeente_status(
    session: AsyncSession,
    ctx: MeldingContext,
    m: Melding,
    status: str,
    reden: str | None,
    opmerking: str | None,
) -> Melding:
    if m.status not in ("ingediend", "geregistreerd", "in_behandeling"):
        raise Conflict(f"Een melding met status {m.status} kan niet meer wijzigen")
    if status == "afgesloten" and not reden:
        raise BadRequest(
            "Afsluiten vraagt een reden",
            invalid_params=[InvalidParam("reden", "verplicht bij afgesloten")],
        )
    m.status = status
    m.afsluitreden = reden
    m.opmerking_sealed = ctx.sealer.seal(opmerking, context="opmerking") if opmerking else None
    m.gewijzigd_op = datetime.now(UTC)
    await session.flush()
    pupil = (await repo.leerlingen(session, [m.leerling_id]))[m.leerling_id]
    await publish(session, ctx, [m], pupil)
    return m


def loaded_holidays(refdata_dir: Any) -> list[SchoolYearHolidays]:
    """School holidays installed with ``verzuimhub refdata load schoolvakanties``."""
    if refdata_dir is None:
        return []
    folder = refdata_dir / "schoolvakanties"
    if not folder.is_dir():
        return []
    return [year for path in sorted(folder.glob("*.json")) for year in load_holidays(path)]


async def set_beleid(session: AsyncSession, ctx: MeldingContext, brin: str, policy: Any) -> None:
    row = await repo.beleid(session, brin)
    if row is None:
        row = SchoolBeleid(brin=brin)
        session.add(row)
    row.automatisch_doorsturen = policy.automatisch_doorsturen
    standaard = policy.standaard_bevestiging
    row.standaard_bevestiging_sealed = (
        sealed_json(
            ctx, standaard.model_dump(mode="json", by_alias=True, exclude_none=True), "beleid"
        )
        if standaard is not None
        else None
    )
    await session.flush()
    log.info("school_policy_set", brin=brin, automatisch=policy.automatisch_doorsturen)
