"""Ingest's domain operations. They flush through the repository and append to the feed;
the edge (request dependency) commits."""

from __future__ import annotations

import hashlib
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any, NamedTuple

import orjson
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from verzuimhub_ingest import repository as repo
from verzuimhub_ingest.domain import projections
from verzuimhub_ingest.domain import validation as v
from verzuimhub_ingest.domain.catalogue import Catalogue, Category
from verzuimhub_ingest.models import FEED, Registratie, Vrijstelling
from verzuimhub_ingest.schemas import RegistratieIn
from verzuimhub_shared import events as ev
from verzuimhub_shared import feed
from verzuimhub_shared.auth import Principal
from verzuimhub_shared.crypto import Pseudonymiser, Sealer
from verzuimhub_shared.db import COPY_MIN_ROWS, Tx, in_turns, meanwhile
from verzuimhub_shared.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    InvalidParam,
    NotFound,
    ProblemError,
)
from verzuimhub_shared.ids import new_id
from verzuimhub_shared.periods import age_on
from verzuimhub_shared.refdata import RefData
from verzuimhub_shared.validation import problems_of

_REGISTRATIE = TypeAdapter(RegistratieIn)
_REGISTRATIES = TypeAdapter(list[RegistratieIn])
_TIME = TypeAdapter(time)

#: Pseudonym purposes. Each consumer gets its own, unlinkable to the others.
LINK = "ingest-link"
SWV_LEERLING = "swv-aggregate:leerling"
SWV_REGISTRATIE = "swv-aggregate:registratie"
SWV_VRIJSTELLING = "swv-aggregate:vrijstelling"


@dataclass(frozen=True)
class IngestContext:
    catalogue: Catalogue
    refdata: RefData
    pseudonymiser: Pseudonymiser
    sealer: Sealer
    today: Callable[[], date]

    def validation_context(self) -> dict[str, Any]:
        return {"catalogue": self.catalogue, "refdata": self.refdata, "today": self.today()}


@dataclass(slots=True)
class ItemOutcome:
    index: int
    uitkomst: str  # aangemaakt | bijgewerkt | ongewijzigd | afgewezen
    #: The RegistratieBevestiging as sent (JSON-ready, camelCase); see _confirm.
    bevestiging: dict[str, Any] | None = None
    problem: ProblemError | None = None


def payload_hash(item: RegistratieIn) -> str:
    """sha256 of the item as JSON with sorted keys: what identical replays are recognised by.

    The very bytes of ``orjson.dumps(item.model_dump(mode="json"), option=OPT_SORT_KEYS)``
    (stored hashes must keep matching), without the dump: orjson writes every field's value
    as pydantic's JSON mode does (dates as ISO dates, floats, ints, text, booleans, null)
    except a time, which may carry a zone orjson refuses; that one goes through pydantic.
    """
    fields = item.__dict__
    if item.starttijd is not None:
        fields = fields | {"starttijd": _TIME.dump_python(item.starttijd, mode="json")}
    return hashlib.sha256(orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _cross_field_problems(item: RegistratieIn) -> list[InvalidParam]:
    problems = []
    if item.geboortedatum >= item.datum:
        problems.append(InvalidParam("geboortedatum", "ligt niet voor de datum van verzuim"))
    elif age_on(item.geboortedatum, item.datum) >= 16 and item.startkwalificatie is None:
        problems.append(
            InvalidParam("startkwalificatie", "verplicht voor leerlingen van 16 jaar en ouder")
        )
    if item.eenheid == "lesuur" and item.minuten > item.aantal_eenheden * 60:
        problems.append(InvalidParam("minuten", "een lesuur duurt ten hoogste 60 minuten"))
    return problems


def _bad(params: list[InvalidParam]) -> BadRequest:
    return BadRequest(f"{len(params)} ongeldige parameter(s)", invalid_params=params)


def _validated(
    raw_items: Sequence[Any], vctx: dict[str, Any]
) -> list[RegistratieIn | ValidationError]:
    """Each item as a model, or why it is not one.

    The whole batch in one call first: the usual batch is valid throughout, and one call
    saves the per-call overhead of thousands. Only if some item fails is every item
    validated on its own, so that each problem names exactly its own item's fields."""
    options: dict[str, Any] = {"context": vctx, "by_alias": True, "by_name": False}
    try:
        return list(_REGISTRATIES.validate_python(raw_items, **options))
    except ValidationError:
        pass
    results: list[RegistratieIn | ValidationError] = []
    for raw in raw_items:
        try:
            results.append(_REGISTRATIE.validate_python(raw, **options))
        except ValidationError as exc:
            results.append(exc)
    return results


def _accept(
    ctx: IngestContext, principals: Sequence[Principal], raw_items: Sequence[Any]
) -> tuple[list[ItemOutcome], list[tuple[int, RegistratieIn, str]]]:
    """Outcomes for the items refused before any query (invalid, or not their token's BRIN;
    the others hold a placeholder), and the accepted ones with their payload hash."""
    outcomes: list[ItemOutcome] = []
    accepted: list[tuple[int, RegistratieIn, str]] = []
    validated = _validated(raw_items, ctx.validation_context())
    for index, (item, principal) in enumerate(zip(validated, principals, strict=True)):
        if isinstance(item, ValidationError):
            outcomes.append(ItemOutcome(index, "afgewezen", problem=_bad(problems_of(item))))
            continue
        cross = _cross_field_problems(item)
        if cross:
            outcomes.append(ItemOutcome(index, "afgewezen", problem=_bad(cross)))
            continue
        if item.brin not in principal.brins:
            problem = Forbidden(f"Dit token geeft geen toegang tot BRIN {item.brin}")
            outcomes.append(ItemOutcome(index, "afgewezen", problem=problem))
            continue
        accepted.append((index, item, payload_hash(item)))
        outcomes.append(ItemOutcome(index, "afgewezen"))  # placeholder, filled later
    return outcomes, accepted


async def submit_registraties(
    session: Tx, ctx: IngestContext, principal: Principal, raw_items: Sequence[Any]
) -> list[ItemOutcome]:
    """Validate, authorise, store and publish registrations; one outcome per item."""
    return await _submit(session, ctx, [principal] * len(raw_items), raw_items)


@dataclass(frozen=True)
class Accepted:
    """A single registration that passed validation and authorisation, with its payload
    hash: what a group of single registrations stores (:func:`store_accepted`)."""

    item: RegistratieIn
    digest: str


def accept_single(ctx: IngestContext, principal: Principal, raw: Any) -> Accepted:
    """Validate and authorise one registration before it joins a group, so that a group's
    transaction holds only the database's work (ADR 0019); a refusal is raised."""
    outcomes, accepted = _accept(ctx, [principal], [raw])
    if not accepted:
        problem = outcomes[0].problem
        assert problem is not None
        raise problem
    [(_, item, digest)] = accepted
    return Accepted(item, digest)


async def store_accepted(
    session: Tx, ctx: IngestContext, items: Sequence[Accepted]
) -> list[ItemOutcome]:
    """Store and publish single registrations of several requests (each accepted for its
    own caller by :func:`accept_single`) in one transaction: see
    ``verzuimhub_shared.group_commit``. One outcome per item."""
    outcomes = [ItemOutcome(index, "afgewezen") for index in range(len(items))]  # placeholders
    accepted = [(index, a.item, a.digest) for index, a in enumerate(items)]
    return await _store(session, ctx, outcomes, accepted)


async def _submit(
    session: Tx,
    ctx: IngestContext,
    principals: Sequence[Principal],
    raw_items: Sequence[Any],
) -> list[ItemOutcome]:
    outcomes, accepted = _accept(ctx, principals, raw_items)
    return await _store(session, ctx, outcomes, accepted)


async def _store(
    session: Tx,
    ctx: IngestContext,
    outcomes: list[ItemOutcome],
    accepted: list[tuple[int, RegistratieIn, str]],
) -> list[ItemOutcome]:
    """The accepted items stored and published; ``outcomes`` (a placeholder for each
    accepted one) filled in."""
    if not accepted:
        return outcomes

    pseudonymiser = ctx.pseudonymiser
    link = {pgn: pseudonymiser.pseudonym(pgn, LINK) for pgn in {i.pgn for _, i, _ in accepted}}
    now = datetime.now(UTC)
    lookup = repo.lock_and_day_totals(
        session,
        ((i.brin, i.school_registratie_id) for _, i, _ in accepted),
        ((link[i.pgn], i.datum) for _, i, _ in accepted),
    )
    # Fewer items than are copied go in as one statement, which a group of single
    # registrations sends with its COMMIT (ADR 0026): no copy to make the feed rows during.
    # Their rows and feed rows are made, as if each item were new, while PostgreSQL looks
    # them up instead (ADR 0029).
    few = len(accepted) < COPY_MIN_ROWS
    ahead: list[_Ahead] | None = None
    if few:
        (existing, day_rows), ahead = await meanwhile(lookup, _made_ahead(ctx, accepted, link, now))
    else:
        existing, day_rows = await lookup
    minutes_by_id: dict[str, tuple[tuple[str, date], int]] = {
        rid: ((pgn_hash, datum), minuten) for rid, pgn_hash, datum, minuten in day_rows
    }
    # Running minutes per (pupil, day), kept in step with minutes_by_id: one lookup per item
    # instead of a scan of the whole batch (quadratic in the batch size).
    day_totals: dict[tuple[str, date], int] = defaultdict(int)
    for pair_, minutes_ in minutes_by_id.values():
        day_totals[pair_] += minutes_

    catalogue_version = ctx.catalogue.version
    state: dict[tuple[str, str], dict[str, Any]] = {}
    inserts: dict[str, dict[str, Any]] = {}
    updates: dict[str, dict[str, Any]] = {}
    published: list[_Published] = []

    for position, (index, item, digest) in enumerate(accepted):
        made = ahead[position] if ahead is not None else None
        key = (item.brin, item.school_registratie_id)
        current = state.get(key)
        if current is None and key in existing:
            stored = existing[key]
            current = {
                "id": stored.id,
                "versie": stored.versie,
                "payload_hash": stored.payload_hash,
                "catalogus_versie": stored.catalogus_versie,
                "new": False,
            }
        bevestiging_id = current["id"] if current else made.rid if made else new_id()
        if current is not None:
            if item.versie == current["versie"] and digest == current["payload_hash"]:
                outcomes[index] = ItemOutcome(
                    index,
                    "ongewijzigd",
                    _confirm(bevestiging_id, item, current["catalogus_versie"]),
                )
                continue
            if item.versie <= current["versie"]:
                outcomes[index] = ItemOutcome(
                    index,
                    "afgewezen",
                    problem=Conflict(
                        f"Versie {item.versie} is niet hoger dan de vastgelegde versie "
                        f"{current['versie']} en de inhoud verschilt"
                    ),
                )
                continue
        pair = (link[item.pgn], item.datum)
        previous = minutes_by_id.get(bevestiging_id)
        day_total = day_totals[pair]
        if previous is not None and previous[0] == pair:
            day_total -= previous[1]  # a correction replaces its own earlier minutes
        if day_total + item.minuten > v.MINUTES_PER_DAY:
            outcomes[index] = ItemOutcome(
                index,
                "afgewezen",
                problem=_bad(
                    [
                        InvalidParam(
                            "minuten",
                            "het totaal van deze leerling op deze dag wordt meer dan 24 uur",
                        )
                    ]
                ),
            )
            continue
        if previous is not None:
            day_totals[previous[0]] -= previous[1]
        day_totals[pair] += item.minuten
        minutes_by_id[bevestiging_id] = (pair, item.minuten)

        category = ctx.catalogue.get(item.categorie)
        assert category is not None  # validated above
        feed_rows: list[dict[str, Any]] | None = None
        if current is None and made is not None:  # new: what was made ahead holds
            row, feed_rows = made.row, made.feed_rows
        else:
            row = _row(ctx, item, bevestiging_id, digest, link[item.pgn], now)
        if current is None or current.get("new"):
            row["vastgelegd_op"] = now
            inserts[bevestiging_id] = row
            uitkomst = "aangemaakt"
        else:
            updates[bevestiging_id] = row
            uitkomst = "bijgewerkt"
        state[key] = {
            "id": bevestiging_id,
            "versie": item.versie,
            "payload_hash": digest,
            "catalogus_versie": catalogue_version,
            "new": current is None or bool(current.get("new")),
        }
        outcomes[index] = ItemOutcome(
            index, uitkomst, _confirm(bevestiging_id, item, catalogue_version)
        )
        published.append(_Published(index, bevestiging_id, item, category, feed_rows))

    # In a group of single registrations these writes go with the COMMIT, and a row that a
    # concurrent twin committed first fails it (ADR 0026); elsewhere that row is left out.
    insert = repo.insert_registraties(session, list(inserts.values()))
    if few:
        inserted = await insert
        feed_rows_of = await _feed_rows(ctx, published)
    else:  # a batch's feed rows are made while PostgreSQL copies its registrations
        inserted, feed_rows_of = await meanwhile(insert, _feed_rows(ctx, published))
    lost = set(inserts) - inserted
    await repo.update_registraties(session, list(updates.values()))

    rows: list[dict[str, Any]] = []
    for entry, its_rows in zip(published, feed_rows_of, strict=True):
        if entry.rid in lost:
            outcomes[entry.item_index] = ItemOutcome(
                entry.item_index,
                "afgewezen",
                problem=Conflict(
                    "Een gelijktijdig verzoek legde dezelfde registratie vast; probeer opnieuw"
                ),
            )
            continue
        rows.extend(its_rows)
    await feed.append_rows(session, FEED, rows)
    return outcomes


#: Registrations whose feed rows are made between two turns of the event loop: ~1 ms of
#: Python, so that a statement running meanwhile keeps being sent and answered.
_TURN_EVERY = 64


class _Ahead(NamedTuple):
    """An accepted item's id, row and feed rows, made as if it were new."""

    rid: str
    row: dict[str, Any]
    feed_rows: list[dict[str, Any]]


class _Published(NamedTuple):
    item_index: int
    rid: str
    item: RegistratieIn
    category: Category
    feed_rows: list[dict[str, Any]] | None  # made ahead, or None: to be made


async def _made_ahead(
    ctx: IngestContext,
    accepted: Sequence[tuple[int, RegistratieIn, str]],
    link: dict[str, str],
    now: datetime,
) -> list[_Ahead]:
    """Each accepted item's row and feed rows with a new id, as if the item were new. An
    item that turns out to be stored already (a correction, a replay) makes its own again
    with its stored id, or none at all. (A coroutine without a turn of its own: ``meanwhile``
    gives the lookup its turn first, and a group's few items take ~0.3 ms.)"""
    items = []
    for _, item, _ in accepted:
        category = ctx.catalogue.get(item.categorie)
        assert category is not None  # validated
        items.append((new_id(), item, category))
    feed_rows = _feed_rows_of(ctx, _Projector(ctx), items)
    return [
        _Ahead(rid, _row(ctx, item, rid, digest, link[item.pgn], now), its_rows)
        for (rid, item, _), (_, _, digest), its_rows in zip(items, accepted, feed_rows, strict=True)
    ]


async def _feed_rows(
    ctx: IngestContext, published: Sequence[_Published]
) -> list[list[dict[str, Any]]]:
    """Each published registration's feed rows, made and sealed (``feed.rows_of``), or
    those it was given (made ahead)."""
    given = [entry.feed_rows for entry in published if entry.feed_rows is not None]
    if len(given) == len(published):  # all made ahead (a group of new registrations)
        return given
    projector = _Projector(ctx)
    out: list[list[dict[str, Any]]] = []
    async for part in in_turns(len(published), _TURN_EVERY):
        chunk = published[part]
        to_make = [(e.rid, e.item, e.category) for e in chunk if e.feed_rows is None]
        made = iter(_feed_rows_of(ctx, projector, to_make))
        out.extend(e.feed_rows if e.feed_rows is not None else next(made) for e in chunk)
    return out


def _feed_rows_of(
    ctx: IngestContext,
    projector: _Projector,
    items: Sequence[tuple[str, RegistratieIn, Category]],
) -> list[list[dict[str, Any]]]:
    """Each (id, registration, category)'s feed rows: their events made, then made into
    rows and sealed in one ``feed.rows_of``."""
    if not items:
        return []
    events = [projector.events(rid, item, category) for rid, item, category in items]
    rows = iter(
        feed.rows_of([e for its in events for e in its], source=ev.SOURCE_INGEST, sealer=ctx.sealer)
    )
    return [[next(rows) for _ in its] for its in events]


def _confirm(registratie_id: str, item: RegistratieIn, catalogus: str) -> dict[str, Any]:
    """A RegistratieBevestiging as sent, built as a dict (no model per item): the same
    fields in the same order, so the JSON is byte for byte what the model gave."""
    return {
        "registratieId": registratie_id,
        "schoolRegistratieId": item.school_registratie_id,
        "brin": item.brin,
        "versie": item.versie,
        "catalogusVersie": catalogus,
    }


def _row(
    ctx: IngestContext, item: RegistratieIn, rid: str, digest: str, link: str, now: datetime
) -> dict[str, Any]:
    kind = v.pgn_kind(item.pgn) or "bsn"
    return {
        "id": rid,
        "brin": item.brin,
        "school_registratie_id": item.school_registratie_id,
        "versie": item.versie,
        "vestiging": item.vestiging,
        "pgn_hash": link,
        "pgn_sealed": ctx.sealer.seal(item.pgn, context="pgn"),
        "pgn_soort": kind,
        "geboortedatum": item.geboortedatum,
        "woongemeente": item.woongemeente,
        "sector": item.sector,
        "datum": item.datum,
        "starttijd": item.starttijd,
        "minuten": item.minuten,
        "eenheid": item.eenheid,
        "aantal_eenheden": item.aantal_eenheden,
        "alle_lessen_gemist": item.alle_lessen_gemist,
        "categorie": item.categorie,
        "catalogus_versie": ctx.catalogue.version,
        "startkwalificatie": item.startkwalificatie,
        "notitie_sealed": ctx.sealer.seal(item.notitie, context="notitie")
        if item.notitie
        else None,
        "payload_hash": digest,
        "ingetrokken": False,
        "gewijzigd_op": now,
    }


def _swv_of(
    ctx: IngestContext, brin: str, vestiging: str, sector: str, gemeente: str
) -> str | None:
    school = ctx.refdata.school(brin, vestiging)
    if school is not None:
        swv = school.swv_for_sector(sector)  # type: ignore[arg-type]
        if swv:
            return swv
    found = ctx.refdata.swv_for_sector(gemeente, sector)  # type: ignore[arg-type]
    return found.code if found else None


class _Projector:
    """Builds one request's ``registratie.vastgelegd`` events, one per consumer.

    What repeats within the request (a pupil's swv-aggregate pseudonym, a school's SWV) is
    computed once. It lives as long as the request: no pseudonym of a PGN is kept beyond."""

    def __init__(self, ctx: IngestContext) -> None:
        self._ctx = ctx
        self._leerlingen: dict[str, str] = {}
        self._swvs: dict[tuple[str, str, str, str], str | None] = {}

    def events(self, rid: str, item: RegistratieIn, category: Category) -> list[feed.Event]:
        pseudonymiser = self._ctx.pseudonymiser
        leerling = self._leerlingen.get(item.pgn)
        if leerling is None:
            leerling = self._leerlingen[item.pgn] = pseudonymiser.pseudonym(item.pgn, SWV_LEERLING)
        where = (item.brin, item.vestiging, item.sector, item.woongemeente)
        if where in self._swvs:
            swv = self._swvs[where]
        else:
            swv = self._swvs[where] = _swv_of(self._ctx, *where)
        melding = projections.voor_melding(rid, item, category)
        swv_data = projections.voor_swv(
            item,
            category,
            swv=swv,
            leerling=leerling,
            registratie=pseudonymiser.pseudonym(rid, SWV_REGISTRATIE),
        )
        return [
            feed.Event(
                ev.CONSUMER_MELDING, ev.REGISTRATIE_VASTGELEGD, melding, subject=rid, seal=True
            ),
            feed.Event(ev.CONSUMER_SWV, ev.REGISTRATIE_VASTGELEGD, swv_data),
        ]


async def retract_registratie(
    session: AsyncSession, ctx: IngestContext, principal: Principal, brin: str, school_id: str
) -> None:
    principal.require_brin(brin)
    row = await repo.get_registratie(session, brin, school_id)
    if row is None:
        raise NotFound("Deze registratie bestaat niet")
    if row.ingetrokken:
        return  # an identical replay: no new event
    row.ingetrokken = True
    row.notitie_sealed = None  # nothing kept beyond need
    row.gewijzigd_op = datetime.now(UTC)
    await session.flush()
    melding = ev.RegistratieIngetrokkenVoorMelding(
        registratie_id=row.id, versie=row.versie, brin=row.brin
    )
    swv = ev.RegistratieIngetrokkenVoorSwv(
        registratie_id=ctx.pseudonymiser.pseudonym(row.id, SWV_REGISTRATIE)
    )
    await feed.append(
        session,
        FEED,
        [
            feed.Event(
                ev.CONSUMER_MELDING,
                ev.REGISTRATIE_INGETROKKEN,
                melding.model_dump(mode="json", by_alias=True),
                subject=row.id,
                seal=True,
            ),
            feed.Event(
                ev.CONSUMER_SWV,
                ev.REGISTRATIE_INGETROKKEN,
                swv.model_dump(mode="json", by_alias=True),
            ),
        ],
        source=ev.SOURCE_INGEST,
        sealer=ctx.sealer,
    )


def open_pgn(ctx: IngestContext, row: Registratie | Vrijstelling) -> str:
    return ctx.sealer.open(row.pgn_sealed, context="pgn")


def open_notitie(ctx: IngestContext, row: Registratie) -> str | None:
    return ctx.sealer.open(row.notitie_sealed, context="notitie") if row.notitie_sealed else None


# --- vrijstellingen and absoluut verzuim ---------------------------------------------


def _check_period(begindatum: date, einddatum: date | None) -> None:
    if einddatum is not None and einddatum < begindatum:
        raise _bad([InvalidParam("einddatum", "ligt voor de begindatum")])


async def create_vrijstelling(
    session: AsyncSession,
    ctx: IngestContext,
    principal: Principal,
    *,
    soort: str,
    pgn: str,
    geboortedatum: date,
    begindatum: date,
    einddatum: date | None,
) -> Vrijstelling:
    if not principal.gemeente:
        raise Forbidden("Alleen een gemeente legt vrijstellingen vast")
    _check_period(begindatum, einddatum)
    now = datetime.now(UTC)
    row = Vrijstelling(
        id=str(uuid.uuid4()),
        gemeente=principal.gemeente,
        soort=soort,
        pgn_hash=ctx.pseudonymiser.pseudonym(pgn, LINK),
        pgn_sealed=ctx.sealer.seal(pgn, context="pgn"),
        geboortedatum=geboortedatum,
        begindatum=begindatum,
        einddatum=einddatum,
        ingetrokken=False,
        vastgelegd_op=now,
        gewijzigd_op=now,
    )
    session.add(row)
    await session.flush()
    await _publish_vrijstelling(session, ctx, row, pgn)
    return row


async def change_vrijstelling(
    session: AsyncSession,
    ctx: IngestContext,
    principal: Principal,
    vrijstelling_id: str,
    *,
    absoluut: bool,
    einddatum: date | None,
    intrekken: bool = False,
) -> Vrijstelling:
    row = await repo.get_vrijstelling(session, principal.gemeente or "", vrijstelling_id, absoluut)
    if row is None:
        raise NotFound("Deze vrijstelling bestaat niet")  # also for another gemeente's
    if row.ingetrokken:
        if intrekken:
            return row
        raise Conflict("Deze vrijstelling is ingetrokken")
    if intrekken:
        row.ingetrokken = True
    else:
        _check_period(row.begindatum, einddatum)
        if einddatum == row.einddatum:
            return row
        row.einddatum = einddatum
    row.gewijzigd_op = datetime.now(UTC)
    await session.flush()
    await _publish_vrijstelling(session, ctx, row, open_pgn(ctx, row))
    return row


async def _publish_vrijstelling(
    session: AsyncSession, ctx: IngestContext, row: Vrijstelling, pgn: str
) -> None:
    absoluut = row.soort == "absoluut_verzuim"
    sid = ctx.pseudonymiser.pseudonym(row.id, SWV_VRIJSTELLING)
    if row.ingetrokken:
        data = ev.VrijstellingIngetrokkenVoorSwv(vrijstelling_id=sid)
        kind = ev.ABSOLUUT_VERZUIM_INGETROKKEN if absoluut else ev.VRIJSTELLING_INGETROKKEN
    else:
        po = ctx.refdata.swv_for_gemeente(row.gemeente, "po")
        vo = ctx.refdata.swv_for_gemeente(row.gemeente, "vo")
        data = projections.vrijstelling_voor_swv(  # type: ignore[assignment]
            vrijstelling=sid,
            leerling=ctx.pseudonymiser.pseudonym(pgn, SWV_LEERLING),
            soort=row.soort,
            geboortedatum=row.geboortedatum,
            begindatum=row.begindatum,
            einddatum=row.einddatum,
            swv_po=po.code if po else None,
            swv_vo=vo.code if vo else None,
        )
        kind = ev.ABSOLUUT_VERZUIM_VASTGELEGD if absoluut else ev.VRIJSTELLING_VASTGELEGD
    event = feed.Event(
        ev.CONSUMER_SWV, kind, data.model_dump(mode="json", by_alias=True), subject=row.id
    )
    await feed.append(session, FEED, [event], source=ev.SOURCE_INGEST)


__all__ = [
    "Accepted",
    "IngestContext",
    "ItemOutcome",
    "accept_single",
    "store_accepted",
    "submit_registraties",
]
