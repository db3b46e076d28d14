"""Ingest's HTTP routes (no ``from __future__ import annotations``: FastAPI reads them)."""

import base64
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import date
from typing import Annotated, Any

from fastapi import Path, Query, Request, Response
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError

from verzuimhub_ingest import repository as repo
from verzuimhub_ingest import schemas as s
from verzuimhub_ingest import service
from verzuimhub_ingest.models import AUDIT, FEED, IDEMPOTENCY, Registratie, Vrijstelling
from verzuimhub_shared import audit, idempotency
from verzuimhub_shared.auth import (
    Principal,
    RegistratiesReader,
    RegistratiesWriter,
    VrijstellingenWriter,
)
from verzuimhub_shared.db import Database, SessionDep
from verzuimhub_shared.errors import (
    BadRequest,
    Forbidden,
    InvalidParam,
    ProblemError,
    ServiceUnavailable,
)
from verzuimhub_shared.feed_api import feed_router
from verzuimhub_shared.group_commit import GroupCommit, GroupCommitBusy, GroupCommitClosed, Work
from verzuimhub_shared.logging import get_logger
from verzuimhub_shared.validation import (
    body_doc,
    json_body,
    json_response,
    service_router,
    validate,
)

router = service_router()
log = get_logger(__name__)

_KEY_DESCRIPTION = "Retries with the same key and payload get the stored answer"
#: The optional ``Idempotency-Key`` header, as the OpenAPI document shows it
#: (``openapi_extra``). The routes read it with ``_idempotency_key``: declared as a FastAPI
#: header parameter, its solving and validation cost every request ~73,000 instructions
#: (callgrind), 5 % of a single registration's work in this service.
_IDEMPOTENCY_KEY_DOC: dict[str, Any] = {
    "parameters": [
        {
            "name": "Idempotency-Key",
            "in": "header",
            "required": False,
            "description": _KEY_DESCRIPTION,
            "schema": {
                "anyOf": [{"type": "string"}, {"type": "null"}],
                "title": "Idempotency-Key",
                "description": _KEY_DESCRIPTION,
            },
        }
    ]
}


def _idempotency_key(request: Request) -> str | None:
    return request.headers.get("idempotency-key")


BrinPath = Annotated[str, Path(pattern=r"^[0-9]{2}[A-Z]{2}$", description="BRIN of the school")]


def _ctx(request: Request) -> service.IngestContext:
    ctx: service.IngestContext = request.app.state.ingest
    return ctx


async def _idempotent(
    request: Request,
    session: SessionDep,
    principal: Principal,
    key: str | None,
    raw: bytes,
    produce: Callable[[], Awaitable[Response]],
) -> Response:
    if key is None:
        return await produce()
    owner = f"{principal.organisation}|{principal.subject}"
    digest = idempotency.request_hash(request.method, request.url.path, raw)
    stored = await idempotency.claim(session, IDEMPOTENCY, owner, key, digest)
    if stored is not None:
        return Response(stored.body, status_code=stored.status_code, media_type="application/json")
    response = await produce()
    await idempotency.complete(
        session,
        IDEMPOTENCY,
        owner,
        key,
        idempotency.StoredResponse(response.status_code, bytes(response.body)),
    )
    return response


# --- registraties ------------------------------------------------------------------------


@router.post(
    "/v1/registraties",
    operation_id="createRegistratie",
    summary="Register one absence (or a correction: a higher versie)",
    tags=["registraties"],
    status_code=201,
    response_model=s.RegistratieBevestiging,
    responses={
        200: {"description": "Identical replay or correction", "model": s.RegistratieBevestiging},
        409: {"description": "Lower or equal versie with another payload"},
        422: {"description": "Idempotency-Key reused with another payload"},
    },
    openapi_extra=body_doc(s.RegistratieIn) | _IDEMPOTENCY_KEY_DOC,
)
async def create_registratie(request: Request, principal: RegistratiesWriter) -> Response:
    idempotency_key = _idempotency_key(request)
    data, raw = await json_body(request)
    if idempotency_key is None:
        # Validated and authorised here; stored in a transaction shared with the other
        # single registrations waiting meanwhile.
        accepted = service.accept_single(_ctx(request), principal, data)
        try:
            outcome = await _registratie_groups(request).submit(accepted)
        except GroupCommitBusy as busy:
            reason = (
                "De dienst stopt"
                if isinstance(busy, GroupCommitClosed)
                else "Te veel registraties wachten op opslag"
            )
            raise ServiceUnavailable(
                f"{reason}; probeer het over 1 s opnieuw", headers={"Retry-After": "1"}
            ) from None
        return _single_answer(outcome)
    # With a key: the key is claimed in the request's own transaction, with its work.
    async with _db(request).transaction() as session:

        async def produce() -> Response:
            [outcome] = await service.submit_registraties(session, _ctx(request), principal, [data])
            return _single_answer(outcome)

        return await _idempotent(request, session, principal, idempotency_key, raw, produce)


def _single_answer(outcome: service.ItemOutcome) -> Response:
    if outcome.problem is not None:
        raise outcome.problem
    assert outcome.bevestiging is not None
    return json_response(201 if outcome.uitkomst == "aangemaakt" else 200, outcome.bevestiging)


RegistratieGroups = GroupCommit[service.Accepted, service.ItemOutcome]
#: Two groups in flight: one is prepared while the other waits on the database. More made
#: the groups smaller and made them queue on the feed counter (ADR 0010).
GROUP_WRITERS = 2
#: Seconds a writer with nothing to write keeps its connection, in a begun transaction
#: (no lock, no snapshot), for the next request (ADR 0019).
GROUP_LINGER = 0.05


def _registratie_groups(request: Request) -> RegistratieGroups:
    """The app's group commit for single registrations (made on first use, in the app's
    event loop). Each group is one transaction, owned here at the edge."""
    app = request.app
    groups: RegistratieGroups | None = getattr(app.state, "registratie_groups", None)
    if groups is None:
        ctx = _ctx(request)
        db = _db(request)
        metrics = app.state.metrics
        committed = metrics.counter(
            "ingest_registratie_groups_total",
            "Groups of single registrations (POST /v1/registraties without a key) written, "
            "one transaction each (a failed group's items are written again alone).",
        )
        items = metrics.counter(
            "ingest_registratie_group_items_total",
            "Single registrations in those groups (items ÷ groups: the mean group size).",
        )

        @asynccontextmanager
        async def writer_scope() -> AsyncIterator[Work[service.Accepted, service.ItemOutcome]]:
            # A writer's groups one after the other on one connection, each commit beginning
            # the next group's transaction in the same round trip; a writer lingers for the
            # next request before it gives its connection back (ADR 0019).
            async with db.direct_lease() as lease:

                async def work(items: list[service.Accepted]) -> list[service.ItemOutcome]:
                    # No ORM session: every statement goes around SQLAlchemy (ADR 0017). The
                    # writes go with the COMMIT; a registration that a concurrent twin
                    # committed first fails it, and the group runs again: its lookup then
                    # finds that row (ADR 0026). Each run is failed by another twin, of
                    # another of the group's registrations.
                    runs = 0
                    while True:
                        try:
                            async with lease.transaction(begin_next=True) as tx:
                                return await service.store_accepted(tx, ctx, items)
                        except IntegrityError as error:
                            runs += 1
                            if runs > len(items) or not repo.is_twin(error):
                                raise
                            log.info("registratie_group_met_a_twin", size=len(items), runs=runs)

                yield work

        def on_group(size: int) -> None:
            committed.inc()
            items.inc(size)

        groups = RegistratieGroups(
            writer_scope=writer_scope, writers=GROUP_WRITERS, linger=GROUP_LINGER, on_group=on_group
        )
        app.state.registratie_groups = groups
        app.state.on_stop.append(groups.aclose)
    return groups


def _db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


@router.post(
    "/v1/registratie-batches",
    operation_id="createRegistratieBatch",
    summary="Register up to 5,000 absences; every item is answered on its own",
    tags=["registraties"],
    response_model=s.BatchResultaat,
    openapi_extra=body_doc(s.RegistratieBatchIn) | _IDEMPOTENCY_KEY_DOC,
)
async def create_batch(
    request: Request, principal: RegistratiesWriter, session: SessionDep
) -> Response:
    idempotency_key = _idempotency_key(request)
    data, raw = await json_body(request)
    batch = validate(s.RegistratieBatchIn, data)

    async def produce() -> Response:
        outcomes = await service.submit_registraties(
            session, _ctx(request), principal, batch.registraties
        )
        counts = {"aangemaakt": 0, "bijgewerkt": 0, "ongewijzigd": 0, "afgewezen": 0}
        results = []
        for o in outcomes:
            counts[o.uitkomst] += 1
            results.append(_item_result(o))
        return json_response(200, {**counts, "resultaten": results})

    return await _idempotent(request, session, principal, idempotency_key, raw, produce)


def _item_result(outcome: service.ItemOutcome) -> dict[str, Any]:
    result: dict[str, Any] = {"index": outcome.index, "uitkomst": outcome.uitkomst}
    if outcome.bevestiging is not None:
        result["registratie"] = outcome.bevestiging
    if outcome.problem is not None:
        p: ProblemError = outcome.problem
        result["probleem"] = {
            "status": p.status,
            "title": p.title,
            "detail": p.detail,
            "invalidParams": [x.as_dict() for x in p.invalid_params],
        }
    return result


def _cursor(value: str | None) -> tuple[date, str] | None:
    if not value:
        return None
    try:
        day, _, rid = base64.urlsafe_b64decode(value.encode()).decode().partition("|")
        return date.fromisoformat(day), rid
    except ValueError:
        raise BadRequest(
            "Ongeldige cursor", invalid_params=[InvalidParam("cursor", "ongeldig")]
        ) from None


def _registratie(ctx: service.IngestContext, row: Registratie) -> s.Registratie:
    return s.Registratie(
        registratie_id=row.id,
        school_registratie_id=row.school_registratie_id,
        versie=row.versie,
        brin=row.brin,
        vestiging=row.vestiging,
        pgn=service.open_pgn(ctx, row),
        geboortedatum=row.geboortedatum,
        woongemeente=row.woongemeente,
        sector=row.sector,
        datum=row.datum,
        starttijd=row.starttijd,
        minuten=row.minuten,
        eenheid=row.eenheid,
        aantal_eenheden=row.aantal_eenheden,
        alle_lessen_gemist=row.alle_lessen_gemist,
        categorie=row.categorie,
        catalogus_versie=row.catalogus_versie,
        startkwalificatie=row.startkwalificatie,
        notitie=service.open_notitie(ctx, row),
        gewijzigd_op=row.gewijzigd_op,
    )


@router.get(
    "/v1/scholen/{brin}/registraties",
    operation_id="listRegistraties",
    summary="The school's own registrations, by date, cursor-paged (for reconciliation)",
    tags=["registraties"],
    response_model=s.RegistratiePagina,
)
async def list_registraties(
    request: Request,
    brin: BrinPath,
    principal: RegistratiesReader,
    session: SessionDep,
    vanaf: Annotated[date | None, Query(description="From this date (inclusive)")] = None,
    tot: Annotated[date | None, Query(description="Up to this date (exclusive)")] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    principal.require_brin(brin)
    ctx = _ctx(request)
    rows = await repo.list_registraties(session, brin, vanaf, tot, _cursor(cursor), limit + 1)
    page = rows[:limit]
    volgende = None
    if len(rows) > limit:
        last = page[-1]
        volgende = base64.urlsafe_b64encode(f"{last.datum}|{last.id}".encode()).decode()
    await audit.record(
        session,
        AUDIT,
        principal,
        action="lezen",
        record_type="registratie",
        record_ids=[r.id for r in page],
        purpose="afstemming schooladministratie",
    )
    return json_response(
        200,
        s.RegistratiePagina(registraties=[_registratie(ctx, r) for r in page], volgende=volgende),
    )


@router.get(
    "/v1/scholen/{brin}/registraties/{schoolRegistratieId}",
    operation_id="getRegistratie",
    summary="One of the school's own registrations",
    tags=["registraties"],
    response_model=s.Registratie,
    responses={404: {"description": "Unknown or retracted"}},
)
async def get_registratie(
    request: Request,
    brin: BrinPath,
    school_registratie_id: Annotated[str, Path(alias="schoolRegistratieId", max_length=64)],
    principal: RegistratiesReader,
    session: SessionDep,
) -> Response:
    principal.require_brin(brin)
    row = await repo.get_registratie(session, brin, school_registratie_id)
    if row is None or row.ingetrokken:
        from verzuimhub_shared.errors import NotFound

        raise NotFound("Deze registratie bestaat niet")
    await audit.record(
        session,
        AUDIT,
        principal,
        action="lezen",
        record_type="registratie",
        record_ids=[row.id],
        purpose="afstemming schooladministratie",
    )
    return json_response(200, _registratie(_ctx(request), row))


@router.delete(
    "/v1/scholen/{brin}/registraties/{schoolRegistratieId}",
    operation_id="retractRegistratie",
    summary="Retract a registration (a feed event); retracting again changes nothing",
    tags=["registraties"],
    status_code=204,
    responses={404: {"description": "Unknown registration"}},
)
async def retract_registratie(
    request: Request,
    brin: BrinPath,
    school_registratie_id: Annotated[str, Path(alias="schoolRegistratieId", max_length=64)],
    principal: RegistratiesWriter,
    session: SessionDep,
) -> Response:
    await service.retract_registratie(
        session, _ctx(request), principal, brin, school_registratie_id
    )
    return Response(status_code=204)


@router.get(
    "/v1/categorieen",
    operation_id="getCatalogus",
    summary="The category catalogue registrations are validated against",
    tags=["registraties"],
    response_model=s.Catalogus,
)
async def get_catalogus(request: Request, _: RegistratiesReader) -> s.Catalogus:
    catalogue = _ctx(request).catalogue
    return s.Catalogus(
        versie=catalogue.version,
        categorieen=[
            s.Categorie(
                code=c.code,
                label=c.label,
                geoorloofd=c.authorised,
                deelname=c.participation,
                duo_verzuimsoort=c.duo_verzuimsoort,
                groep=c.group,
            )
            for c in catalogue.active()
        ],
    )


# --- vrijstellingen and absoluut verzuim -------------------------------------------------


def _vrijstelling(row: Vrijstelling) -> s.Vrijstelling:
    return s.Vrijstelling(
        id=row.id,
        soort=row.soort,
        gemeente=row.gemeente,
        geboortedatum=row.geboortedatum,
        begindatum=row.begindatum,
        einddatum=row.einddatum,
        ingetrokken=row.ingetrokken,
        gewijzigd_op=row.gewijzigd_op,
    )


def _gemeente(principal: Principal) -> str:
    if not principal.gemeente:
        raise Forbidden("Dit token hoort bij geen gemeente")
    return principal.gemeente


def _period_routes(collection: str, name: str, model: type[BaseModel], absoluut: bool) -> None:
    tag = collection

    @router.post(
        f"/v1/{collection}",
        operation_id=f"create{name}",
        summary=f"Record a {collection} entry (only the recording gemeente may change it)",
        tags=[tag],
        status_code=201,
        response_model=s.Vrijstelling,
        responses={422: {"description": "Idempotency-Key reused with another payload"}},
        openapi_extra=body_doc(model) | _IDEMPOTENCY_KEY_DOC,
    )
    async def create(
        request: Request, principal: VrijstellingenWriter, session: SessionDep
    ) -> Response:
        idempotency_key = _idempotency_key(request)
        _gemeente(principal)
        data, raw = await json_body(request)
        item: Any = validate(model, data)

        async def produce() -> Response:
            row = await service.create_vrijstelling(
                session,
                _ctx(request),
                principal,
                soort="absoluut_verzuim" if absoluut else item.soort,
                pgn=item.pgn,
                geboortedatum=item.geboortedatum,
                begindatum=item.begindatum,
                einddatum=item.einddatum,
            )
            return json_response(201, _vrijstelling(row))

        return await _idempotent(request, session, principal, idempotency_key, raw, produce)

    @router.get(
        f"/v1/{collection}",
        operation_id=f"list{name}",
        summary=f"The gemeente's own {collection} entries",
        tags=[tag],
        response_model=s.VrijstellingPagina,
    )
    async def list_(
        principal: VrijstellingenWriter,
        session: SessionDep,
        cursor: Annotated[str | None, Query(max_length=64)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> Response:
        rows = await repo.list_vrijstellingen(
            session, _gemeente(principal), absoluut, cursor, limit + 1
        )
        page = rows[:limit]
        volgende = page[-1].id if len(rows) > limit else None
        return json_response(
            200, s.VrijstellingPagina(items=[_vrijstelling(r) for r in page], volgende=volgende)
        )

    @router.patch(
        f"/v1/{collection}/{{id}}",
        operation_id=f"change{name}",
        summary="Extend or end: set a new einddatum",
        tags=[tag],
        response_model=s.Vrijstelling,
        responses={404: {"description": "Unknown, or recorded by another gemeente"}},
        openapi_extra=body_doc(s.PeriodeWijziging),
    )
    async def change(
        request: Request,
        id: Annotated[str, Path(max_length=36)],
        principal: VrijstellingenWriter,
        session: SessionDep,
    ) -> Response:
        _gemeente(principal)
        data, _ = await json_body(request)
        change = validate(s.PeriodeWijziging, data)
        row = await service.change_vrijstelling(
            session, _ctx(request), principal, id, absoluut=absoluut, einddatum=change.einddatum
        )
        return json_response(200, _vrijstelling(row))

    @router.delete(
        f"/v1/{collection}/{{id}}",
        operation_id=f"withdraw{name}",
        summary="Withdraw (a feed event); withdrawing again changes nothing",
        tags=[tag],
        status_code=204,
        responses={404: {"description": "Unknown, or recorded by another gemeente"}},
    )
    async def withdraw(
        request: Request,
        id: Annotated[str, Path(max_length=36)],
        principal: VrijstellingenWriter,
        session: SessionDep,
    ) -> Response:
        _gemeente(principal)
        await service.change_vrijstelling(
            session,
            _ctx(request),
            principal,
            id,
            absoluut=absoluut,
            einddatum=None,
            intrekken=True,
        )
        return Response(status_code=204)


_period_routes("vrijstellingen", "Vrijstelling", s.VrijstellingIn, absoluut=False)
_period_routes("absoluut-verzuim", "AbsoluutVerzuim", s.AbsoluutVerzuimIn, absoluut=True)

routers = [router, feed_router(FEED, sealer_attr="sealer")]
OPENAPI_MODELS: list[type[BaseModel]] = [
    s.RegistratieIn,
    s.RegistratieBatchIn,
    s.VrijstellingIn,
    s.AbsoluutVerzuimIn,
    s.PeriodeWijziging,
]
