"""Melding's HTTP routes: the school's and the gemeente's (no future annotations here)."""

from datetime import timedelta
from typing import Annotated, Any

from fastapi import Path, Query, Request, Response
from pydantic import BaseModel

from verzuimhub_melding import repository as repo
from verzuimhub_melding import schemas as s
from verzuimhub_melding import service
from verzuimhub_melding.domain.ledger import ledger_days
from verzuimhub_melding.models import AUDIT, CURSORS, FEED, Leerling, Melding
from verzuimhub_melding.rules import Sector, attendance_tier
from verzuimhub_shared import audit
from verzuimhub_shared.auth import GemeenteMeldingen, Principal, SchoolMeldingen
from verzuimhub_shared.db import SessionDep
from verzuimhub_shared.errors import BadRequest, Forbidden, InvalidParam, NotFound
from verzuimhub_shared.feed_api import cursor_status_router, feed_router
from verzuimhub_shared.periods import school_year_bounds, school_year_of
from verzuimhub_shared.validation import (
    body_doc,
    json_body,
    json_response,
    service_router,
    validate,
)

router = service_router()

BrinPath = Annotated[str, Path(pattern=r"^[0-9]{2}[A-Z]{2}$", description="BRIN of the school")]
IdPath = Annotated[str, Path(max_length=36, description="The hub's melding id")]
Cursor = Annotated[str | None, Query(max_length=64, description="From the previous page")]
Limit = Annotated[int, Query(ge=1, le=500)]
PURPOSE_SCHOOL = "verzuimbeleid school (Wet ROD art. 20)"
PURPOSE_GEMEENTE = "leerplichttaak woongemeente (Leerplichtwet art. 16, Wet ROD art. 21)"


def _ctx(request: Request) -> service.MeldingContext:
    ctx: service.MeldingContext = request.app.state.melding
    return ctx


async def _audited(
    session: SessionDep,
    principal: Principal,
    record_ids: list[str],
    purpose: str,
    *,
    action: str = "lezen",
    record_type: str = "melding",
) -> None:
    """Every person-level answer is written to the append-only audit log."""
    await audit.record(
        session,
        AUDIT,
        principal,
        action=action,
        record_type=record_type,
        record_ids=record_ids,
        purpose=purpose,
    )


def _school_view(ctx: service.MeldingContext, m: Melding, pupil: Leerling) -> s.MeldingSchool:
    today = ctx.today()
    return s.MeldingSchool(
        id=m.id,
        soort=m.soort,
        status=m.status,
        begindatum=m.begindatum,
        einddatum=m.einddatum,
        uren=round(m.getelde_minuten / 60, 2),
        herhaalmelding=m.herhaalmelding,
        deadline=m.deadline,
        te_laat=m.status == "concept" and m.deadline is not None and m.deadline < today,
        discrepantie=m.discrepantie,
        brin=m.brin,
        vestiging=m.vestiging,
        sector=m.sector,
        pgn=ctx.sealer.open(pupil.pgn_sealed, context="pgn"),
        geboortedatum=pupil.geboortedatum,
        vermoedelijke_reden=m.vermoedelijke_reden,
        dagen=[s.Dag.model_validate(d) for d in m.dagen],
        duo_meldingsnummer=m.duo_meldingsnummer,
        gewijzigd_op=m.gewijzigd_op,
    )


async def _school_views(
    session: SessionDep, ctx: service.MeldingContext, meldingen: list[Melding]
) -> list[s.MeldingSchool]:
    pupils = await repo.leerlingen(session, sorted({m.leerling_id for m in meldingen}))
    return [_school_view(ctx, m, pupils[m.leerling_id]) for m in meldingen]


# --- school ------------------------------------------------------------------------------


@router.get(
    "/v1/scholen/{brin}/meldingen",
    operation_id="listSchoolMeldingen",
    summary="The school's meldingen: concepts waiting for confirmation, and sent ones",
    tags=["school"],
    response_model=s.MeldingSchoolPagina,
)
async def list_school_meldingen(
    request: Request,
    brin: BrinPath,
    principal: SchoolMeldingen,
    session: SessionDep,
    status: Annotated[str | None, Query(max_length=32, description="e.g. concept")] = None,
    cursor: Cursor = None,
    limit: Limit = 100,
) -> Response:
    principal.require_brin(brin)
    rows = list(
        await repo.list_meldingen(
            session,
            brin=brin,
            statuses=[status] if status else None,
            after=cursor,
            limit=limit + 1,
        )
    )
    page = rows[:limit]
    await _audited(session, principal, [m.id for m in page], PURPOSE_SCHOOL)
    views = await _school_views(session, _ctx(request), page)
    return json_response(
        200,
        s.MeldingSchoolPagina(meldingen=views, volgende=page[-1].id if len(rows) > limit else None),
    )


@router.get(
    "/v1/scholen/{brin}/meldingen/{id}",
    operation_id="getSchoolMelding",
    summary="One of the school's meldingen",
    tags=["school"],
    response_model=s.MeldingSchool,
)
async def get_school_melding(
    request: Request, brin: BrinPath, id: IdPath, principal: SchoolMeldingen, session: SessionDep
) -> Response:
    principal.require_brin(brin)
    m = await service.school_melding(session, frozenset({brin}), id)
    await _audited(session, principal, [m.id], PURPOSE_SCHOOL)
    [view] = await _school_views(session, _ctx(request), [m])
    return json_response(200, view)


@router.post(
    "/v1/scholen/{brin}/meldingen/{id}/bevestiging",
    operation_id="confirmMelding",
    summary="Confirm a concept (with the action already taken): it is sent to DUO",
    tags=["school"],
    response_model=s.MeldingSchool,
    responses={409: {"description": "Not a concept"}},
    openapi_extra=body_doc(s.Bevestiging),
)
async def confirm_melding(
    request: Request, brin: BrinPath, id: IdPath, principal: SchoolMeldingen, session: SessionDep
) -> Response:
    principal.require_brin(brin)
    data, _ = await json_body(request)
    bevestiging = validate(s.Bevestiging, data)
    m = await service.school_melding(session, frozenset({brin}), id)
    m = await service.confirm(
        session,
        _ctx(request),
        m,
        bevestiging.model_dump(mode="json", by_alias=True, exclude_none=True),
    )
    [view] = await _school_views(session, _ctx(request), [m])
    return json_response(200, view)


@router.post(
    "/v1/scholen/{brin}/meldingen/{id}/intrekking",
    operation_id="withdrawMelding",
    summary="Withdraw a melding; DUO is told when it already has it",
    tags=["school"],
    response_model=s.MeldingSchool,
    responses={409: {"description": "Closed meldingen cannot be withdrawn"}},
    openapi_extra=body_doc(s.Intrekking),
)
async def withdraw_melding(
    request: Request, brin: BrinPath, id: IdPath, principal: SchoolMeldingen, session: SessionDep
) -> Response:
    principal.require_brin(brin)
    data, _ = await json_body(request)
    intrekking = validate(s.Intrekking, data)
    m = await service.school_melding(session, frozenset({brin}), id)
    m = await service.withdraw(session, _ctx(request), m, intrekking.reden.value)
    [view] = await _school_views(session, _ctx(request), [m])
    return json_response(200, view)


@router.post(
    "/v1/scholen/{brin}/meldingen",
    operation_id="createOverigVerzuim",
    summary="File an overig-verzuim melding (the school is worried, below any threshold)",
    tags=["school"],
    status_code=201,
    response_model=s.MeldingSchool,
    openapi_extra=body_doc(s.OverigVerzuimIn),
)
async def create_overig(
    request: Request, brin: BrinPath, principal: SchoolMeldingen, session: SessionDep
) -> Response:
    principal.require_brin(brin)
    data, _ = await json_body(request)
    item = validate(s.OverigVerzuimIn, data)
    bevestiging = item.model_dump(
        mode="json",
        by_alias=True,
        exclude_none=True,
        exclude={"pgn", "vestiging", "begindatum", "einddatum"},
    )
    m = await service.file_overig(
        session,
        _ctx(request),
        brin,
        pgn=item.pgn,
        vestiging=item.vestiging,
        begindatum=item.begindatum,
        einddatum=item.einddatum,
        bevestiging=bevestiging,
    )
    [view] = await _school_views(session, _ctx(request), [m])
    return json_response(201, view)


@router.get(
    "/v1/scholen/{brin}/leerlingen",
    operation_id="listAanwezigheid",
    summary="Per pupil: total absence over a period and the attendance tier (own pupils)",
    tags=["school"],
    response_model=s.LeerlingOverzichtPagina,
)
async def list_aanwezigheid(
    request: Request,
    brin: BrinPath,
    principal: SchoolMeldingen,
    session: SessionDep,
    schooljaar: Annotated[
        str | None, Query(pattern=r"^[0-9]{4}-[0-9]{4}$", description="Default: the current")
    ] = None,
    cursor: Cursor = None,
    limit: Limit = 100,
) -> Response:
    principal.require_brin(brin)
    ctx = _ctx(request)
    today = ctx.today()
    try:
        start, end = school_year_bounds(schooljaar or school_year_of(today))
    except ValueError:
        raise BadRequest(
            "Geen schooljaar", invalid_params=[InvalidParam("schooljaar", "geen schooljaar")]
        ) from None
    end = min(end, today - timedelta(days=1)) if start <= today <= end else end
    rows = list(await repo.leerlingen_of_school(session, brin, cursor, limit + 1))
    page = rows[:limit]
    ledgers: dict[str, list[Any]] = {p.id: [] for p in page}
    for leerling_id, entry in await repo.ledger_entries(session, [p.id for p in page], start):
        if entry.datum <= end:
            ledgers[leerling_id].append(entry)
    overviews = []
    for pupil in page:
        entries = ledgers[pupil.id]
        calendar = ctx.calendar_for(pupil.brin, pupil.vestiging)
        tier = attendance_tier(
            ledger_days(entries), calendar, Sector(pupil.sector), start, max(start, end), ctx.rules
        )
        overviews.append(
            s.LeerlingOverzicht(
                leerling_id=pupil.id,
                pgn=ctx.sealer.open(pupil.pgn_sealed, context="pgn"),
                geboortedatum=pupil.geboortedatum,
                sector=pupil.sector,
                geoorloofd_minuten=sum(e.minuten for e in entries if e.soort == "geoorloofd"),
                ongeoorloofd_minuten=sum(e.minuten for e in entries if e.soort == "ongeoorloofd"),
                afstandsonderwijs_minuten=sum(e.minuten for e in entries if e.soort == "deelname"),
                aandeel_verzuim=float(tier.share),
                niveau=int(tier.tier),
            )
        )
    await _audited(session, principal, [p.id for p in page], PURPOSE_SCHOOL, record_type="leerling")
    return json_response(
        200,
        s.LeerlingOverzichtPagina(
            vanaf=start,
            tot_en_met=max(start, end),
            leerlingen=overviews,
            volgende=page[-1].id if len(rows) > limit else None,
        ),
    )


@router.get(
    "/v1/scholen/{brin}/beleid",
    operation_id="getSchoolBeleid",
    summary="The school's forwarding policy (automatic forwarding is off by default)",
    tags=["school"],
    response_model=s.SchoolBeleid,
)
async def get_beleid(
    request: Request, brin: BrinPath, principal: SchoolMeldingen, session: SessionDep
) -> Response:
    principal.require_brin(brin)
    policy = await repo.beleid(session, brin)
    ctx = _ctx(request)
    standaard = (
        service.open_json(ctx, policy.standaard_bevestiging_sealed, "beleid") if policy else {}
    )
    return json_response(
        200,
        s.SchoolBeleid(
            automatisch_doorsturen=bool(policy and policy.automatisch_doorsturen),
            standaard_bevestiging=s.Bevestiging.model_validate(standaard) if standaard else None,
        ),
    )


@router.put(
    "/v1/scholen/{brin}/beleid",
    operation_id="putSchoolBeleid",
    summary="Set the school's forwarding policy",
    tags=["school"],
    response_model=s.SchoolBeleid,
    openapi_extra=body_doc(s.SchoolBeleid),
)
async def put_beleid(
    request: Request, brin: BrinPath, principal: SchoolMeldingen, session: SessionDep
) -> Response:
    principal.require_brin(brin)
    data, _ = await json_body(request)
    policy = validate(s.SchoolBeleid, data)
    if policy.automatisch_doorsturen and policy.standaard_bevestiging is None:
        raise BadRequest(
            "Automatisch doorsturen vraagt een standaardbevestiging",
            invalid_params=[InvalidParam("standaardBevestiging", "verplicht bij automatisch")],
        )
    await service.set_beleid(session, _ctx(request), brin, policy)
    return json_response(200, policy)


# --- gemeente ----------------------------------------------------------------------------


def _gemeente(principal: Principal) -> str:
    if not principal.gemeente:
        raise Forbidden("Dit token hoort bij geen gemeente")
    return principal.gemeente


async def _gemeente_view(
    session: SessionDep, ctx: service.MeldingContext, meldingen: list[Melding]
) -> list[s.MeldingGemeente]:
    pupils = await repo.leerlingen(session, sorted({m.leerling_id for m in meldingen}))
    views = []
    for m in meldingen:
        bevestiging = service.open_json(ctx, m.bevestiging_sealed, "bevestiging")
        views.append(
            s.MeldingGemeente(
                id=m.id,
                status=m.status,
                duo_meldingsnummer=m.duo_meldingsnummer,
                melding=service.duo_payload(ctx, m, pupils[m.leerling_id], bevestiging),
            )
        )
    return views


async def _own_melding(session: SessionDep, gemeente: str, melding_id: str) -> Melding:
    m = await repo.melding(session, melding_id)
    if m is None or m.woongemeente != gemeente or m.status not in repo.VISIBLE_TO_GEMEENTE:
        raise NotFound("Deze melding bestaat niet")  # another gemeente's: leak nothing
    return m


@router.get(
    "/v1/meldingen",
    operation_id="listGemeenteMeldingen",
    summary="Meldingen about pupils living in the token's gemeente (cursor-paged)",
    tags=["gemeente"],
    response_model=s.MeldingGemeentePagina,
)
async def list_gemeente_meldingen(
    request: Request,
    principal: GemeenteMeldingen,
    session: SessionDep,
    status: Annotated[str | None, Query(max_length=32)] = None,
    cursor: Cursor = None,
    limit: Limit = 100,
) -> Response:
    gemeente = _gemeente(principal)
    statuses = [status] if status in repo.VISIBLE_TO_GEMEENTE else list(repo.VISIBLE_TO_GEMEENTE)
    if status and status not in repo.VISIBLE_TO_GEMEENTE:
        statuses = []
    rows = list(
        await repo.list_meldingen(
            session,
            woongemeente=gemeente,
            statuses=statuses or ["-"],
            after=cursor,
            limit=limit + 1,
        )
    )
    page = rows[:limit]
    await _audited(session, principal, [m.id for m in page], PURPOSE_GEMEENTE)
    views = await _gemeente_view(session, _ctx(request), page)
    return json_response(
        200,
        s.MeldingGemeentePagina(
            meldingen=views, volgende=page[-1].id if len(rows) > limit else None
        ),
    )


@router.get(
    "/v1/meldingen/{id}",
    operation_id="getGemeenteMelding",
    summary="One melding about a pupil living in the token's gemeente",
    tags=["gemeente"],
    response_model=s.MeldingGemeente,
    responses={404: {"description": "Unknown, or about a pupil living elsewhere"}},
)
async def get_gemeente_melding(
    request: Request, id: IdPath, principal: GemeenteMeldingen, session: SessionDep
) -> Response:
    m = await _own_melding(session, _gemeente(principal), id)
    await _audited(session, principal, [m.id], PURPOSE_GEMEENTE)
    [view] = await _gemeente_view(session, _ctx(request), [m])
    return json_response(200, view)


@router.post(
    "/v1/meldingen/{id}/status",
    operation_id="setMeldingStatus",
    summary="The LPA/RMC sets in_behandeling, afgesloten (with a reason) or ter kennisgeving",
    tags=["gemeente"],
    response_model=s.MeldingGemeente,
    responses={
        404: {"description": "Unknown, or about a pupil living elsewhere"},
        409: {"description": "The melding can no longer change"},
    },
    openapi_extra=body_doc(s.StatusWijziging),
)
async def set_status(
    request: Request, id: IdPath, principal: GemeenteMeldingen, session: SessionDep
) -> Response:
    data, _ = await json_body(request)
    change = validate(s.StatusWijziging, data)
    m = await _own_melding(session, _gemeente(principal), id)
    m = await service.set_gemeente_status(
        session, _ctx(request), m, change.status, change.reden, change.opmerking
    )
    # The answer carries the melding's person-level fields: a read like any other.
    await _audited(session, principal, [m.id], PURPOSE_GEMEENTE, action=f"status:{change.status}")
    [view] = await _gemeente_view(session, _ctx(request), [m])
    return json_response(200, view)


routers = [router, feed_router(FEED), cursor_status_router(CURSORS)]
OPENAPI_MODELS: list[type[BaseModel]] = [
    s.Bevestiging,
    s.Intrekking,
    s.OverigVerzuimIn,
    s.StatusWijziging,
]
