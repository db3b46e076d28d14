"""swv-aggregate's HTTP routes (no ``from __future__ import annotations``: FastAPI reads them).

An SWV token reads its own region in full detail and the national figures; any other region
answers 404, exactly like a region that does not exist. Only fixed periods exist.
"""

import csv
import io
from typing import Annotated, Any, Literal

from fastapi import Path, Query, Request, Response

from verzuimhub_shared.auth import AggregatenReader, Principal
from verzuimhub_shared.db import SessionDep
from verzuimhub_shared.errors import BadRequest, InvalidParam, NotFound
from verzuimhub_shared.feed_api import cursor_status_router
from verzuimhub_shared.validation import service_router
from verzuimhub_swv_aggregate import repository as repo
from verzuimhub_swv_aggregate import schemas as s
from verzuimhub_swv_aggregate.dashboard import router as dashboard_router
from verzuimhub_swv_aggregate.disclosure import TOTAL_LABEL, DisclosureConfig, PublishedTable
from verzuimhub_swv_aggregate.figures import (
    TABLE_NAMES,
    TABLES,
    UREN_DESCRIPTION,
    Report,
    build_report,
    sectors_of,
)
from verzuimhub_swv_aggregate.models import CURSORS
from verzuimhub_swv_aggregate.periods import Period, parse_period
from verzuimhub_swv_aggregate.service import NATIONAL, AggregateContext

router = service_router(tags=["cijfers"])

CSV_MEDIA = "text/csv"

PeriodeQuery = Annotated[
    str,
    Query(
        max_length=16,
        description="A fixed period: school week `2025-W47`, month `2025-11` or school year "
        "`2025-2026`. Free date ranges do not exist.",
        examples=["2025-2026"],
    ),
]
FormaatQuery = Annotated[
    Literal["json", "csv"] | None,
    Query(description="`csv` for a CSV export (or send `Accept: text/csv`)"),
]
SwvPath = Annotated[
    str, Path(alias="swvCode", max_length=16, description="Your own SWV code, e.g. PO-22-02")
]
TabelPath = Annotated[str, Path(max_length=40, description=f"One of: {', '.join(TABLE_NAMES)}")]

_CIJFERS_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Every table of the area for the period, suppressed cells marked",
        "content": {"application/json": {"example": s.EXAMPLE_CIJFERS}},
    },
    404: {"description": "Not your region (or no such region)"},
}
_TABEL_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "One table as JSON, or as CSV (hidden values are `x`, margins `totaal`)",
        "content": {
            "application/json": {"example": s.EXAMPLE_TABEL},
            CSV_MEDIA: {"schema": {"type": "string"}, "example": s.EXAMPLE_CSV},
        },
    },
    404: {"description": "Not your region, or no such table"},
}


def _period(value: str) -> Period:
    try:
        return parse_period(value)
    except ValueError as exc:
        raise BadRequest(
            "Alleen vaste perioden: schoolweek, maand of schooljaar",
            invalid_params=[InvalidParam("periode", str(exc))],
        ) from None


def _own_region(principal: Principal, code: str) -> str:
    """The caller's own region; anything else is 'not found' (no hint that it exists)."""
    own = (principal.swv or "").upper()
    if not own or code.upper() != own:
        raise NotFound("Deze regio bestaat niet")
    return own


async def _report(request: Request, session: Any, scope: str, period: Period) -> Report:
    ctx: AggregateContext = request.app.state.aggregate
    config: DisclosureConfig = request.app.state.disclosure
    peildatum = min(period.end, ctx.today())
    rollups = await repo.rollups_for(session, scope, period.kind, period.label)
    flows = await repo.flows_for(session, scope, period.start, period.end, peildatum)
    return build_report(
        scope,
        period,
        peildatum,
        rollups,
        flows,
        config,
        sectors_of(scope, ctx.sectors_in(scope)),
        noise=request.app.state.noise,
    )


def _tabel(name: str, description: str, table: PublishedTable) -> s.Tabel:
    return s.Tabel(
        naam=name,
        omschrijving=description,
        populatie=table.population,
        dimensies=list(table.dimensions),
        categorieen={d: list(c) for d, c in zip(table.dimensions, table.categories, strict=True)},
        cellen=[
            s.Cel(
                categorieen=dict(cats),
                waarde=cell.value,
                onderdrukt=cell.suppressed,
                reden=cell.reason.value if cell.reason else None,
            )
            for cats, cell in table.cells.items()
        ],
    )


def _cijfers(report: Report, previous: Report | None) -> s.Cijfers:
    p = report.period
    return s.Cijfers(
        gebied=report.scope,
        periode=s.Periode(soort=p.kind, waarde=p.label, begindatum=p.start, einddatum=p.end),
        peildatum=report.peildatum,
        drempel=report.threshold,
        afrondingsbasis=report.rounding_base,
        tabellen=[_tabel(spec.name, spec.description, t) for spec, t in report.tables],
        uren=[_uren(c) for c in report.hours],
        vorig_jaar=_cijfers(previous, None) if previous is not None else None,
    )


def _uren(cell: Any) -> s.UrenCel:
    return s.UrenCel(
        soort=cell.soort,
        sector=cell.sector,
        uren=cell.hours,
        onderdrukt=cell.hours is None,
        reden=cell.reason,
    )


def _wants_csv(request: Request, formaat: str | None) -> bool:
    if formaat is not None:
        return formaat == "csv"
    return CSV_MEDIA in request.headers.get("accept", "")


def _csv(header: list[str], rows: list[list[str]], filename: str) -> Response:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return Response(
        buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}.csv"'},
    )


def _json(model: Any) -> Response:
    return Response(model.model_dump_json(by_alias=True), media_type="application/json")


async def _all_tables(request: Request, session: Any, scope: str, periode: str) -> Response:
    period = _period(periode)
    report = await _report(request, session, scope, period)
    previous = await _report(request, session, scope, period.previous_year())
    return _json(_cijfers(report, previous))


async def _one_table(
    request: Request, session: Any, scope: str, tabel: str, periode: str, formaat: str | None
) -> Response:
    if tabel not in TABLE_NAMES:
        raise NotFound("Deze tabel bestaat niet")
    period = _period(periode)
    report = await _report(request, session, scope, period)
    filename = f"{tabel}-{scope}-{period.label}"
    if tabel == "uren":
        cells = [_uren(c) for c in report.hours]
        if _wants_csv(request, formaat):
            rows = [
                [
                    c.soort,
                    c.sector or TOTAL_LABEL,
                    "x" if c.uren is None else str(c.uren),
                    c.reden or "",
                ]
                for c in cells
            ]
            return _csv(["soort", "sector", "uren", "suppression"], rows, filename)
        return Response(
            s.UrenTabel(omschrijving=UREN_DESCRIPTION, cellen=cells).model_dump_json(by_alias=True),
            media_type="application/json",
        )
    spec = next(t for t in TABLES if t.name == tabel)
    table = report.table(tabel)
    if _wants_csv(request, formaat):
        return _csv(table.csv_header(), table.csv_rows(), filename)
    return _json(_tabel(spec.name, spec.description, table))


@router.get(
    "/v1/regios/{swvCode}/cijfers",
    operation_id="getRegioCijfers",
    summary="All figures of your own SWV region for one fixed period, with last year's",
    response_model=s.Cijfers,
    responses=_CIJFERS_RESPONSES,
)
async def get_regio_cijfers(
    request: Request,
    principal: AggregatenReader,
    session: SessionDep,
    swv_code: SwvPath,
    periode: PeriodeQuery,
) -> Response:
    return await _all_tables(request, session, _own_region(principal, swv_code), periode)


@router.get(
    "/v1/regios/{swvCode}/cijfers/{tabel}",
    operation_id="getRegioTabel",
    summary="One table of your own SWV region, as JSON or CSV",
    response_model=s.Tabel,
    responses=_TABEL_RESPONSES,
)
async def get_regio_tabel(
    request: Request,
    principal: AggregatenReader,
    session: SessionDep,
    swv_code: SwvPath,
    tabel: TabelPath,
    periode: PeriodeQuery,
    formaat: FormaatQuery = None,
) -> Response:
    scope = _own_region(principal, swv_code)
    return await _one_table(request, session, scope, tabel, periode, formaat)


@router.get(
    "/v1/landelijk/cijfers",
    operation_id="getLandelijkeCijfers",
    summary="All national figures for one fixed period, with last year's (every SWV token)",
    response_model=s.Cijfers,
    responses={200: _CIJFERS_RESPONSES[200]},
)
async def get_landelijke_cijfers(
    request: Request, _: AggregatenReader, session: SessionDep, periode: PeriodeQuery
) -> Response:
    return await _all_tables(request, session, NATIONAL, periode)


@router.get(
    "/v1/landelijk/cijfers/{tabel}",
    operation_id="getLandelijkeTabel",
    summary="One national table, as JSON or CSV",
    response_model=s.Tabel,
    responses=_TABEL_RESPONSES,
)
async def get_landelijke_tabel(
    request: Request,
    _: AggregatenReader,
    session: SessionDep,
    tabel: TabelPath,
    periode: PeriodeQuery,
    formaat: FormaatQuery = None,
) -> Response:
    return await _one_table(request, session, NATIONAL, tabel, periode, formaat)


routers = [router, cursor_status_router(CURSORS), dashboard_router]
