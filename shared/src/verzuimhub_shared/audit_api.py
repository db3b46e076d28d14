"""``GET /v1/audit`` (admin): query a service's append-only audit log.

No ``from __future__ import annotations`` here: FastAPI reads these signatures at runtime.
Read-only by construction: the router has no other method, and the query itself is
recorded in the log (who looked at the log is accountable too).
"""

from datetime import datetime
from typing import Annotated, Any

from fastapi import Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel
from sqlalchemy import Table, select

from verzuimhub_shared import audit
from verzuimhub_shared.auth import Admin
from verzuimhub_shared.db import SessionDep
from verzuimhub_shared.errors import BadRequest, InvalidParam
from verzuimhub_shared.validation import service_router


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class AuditRegel(_Model):
    id: int
    at: datetime
    subject: str
    organisation: str
    action: str
    record_type: str
    record_id: str
    purpose: str
    trace_id: str | None


class AuditPagina(_Model):
    regels: list[AuditRegel]
    volgende: str | None = None


PURPOSE_AUDIT = "toezicht op verwerkingen (beheer)"


def audit_router(table: Table) -> Any:
    router = service_router(tags=["beheer"])

    @router.get(
        "/v1/audit",
        operation_id="listAuditLog",
        summary="Audit log entries, oldest first, filtered by record, trace or time (admin)",
        response_model=AuditPagina,
    )
    async def list_audit(
        principal: Admin,
        session: SessionDep,
        record_type: Annotated[
            str | None, Query(alias="recordType", max_length=64, description="e.g. melding")
        ] = None,
        record_id: Annotated[str | None, Query(alias="recordId", max_length=64)] = None,
        trace_id: Annotated[
            str | None, Query(alias="traceId", pattern=r"^[0-9a-f]{32}$", description="W3C")
        ] = None,
        vanaf: Annotated[datetime | None, Query(description="At or after this moment")] = None,
        tot: Annotated[datetime | None, Query(description="Before this moment")] = None,
        cursor: Annotated[str | None, Query(max_length=18, pattern=r"^[0-9]+$")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> Response:
        if record_id is not None and record_type is None:
            raise BadRequest(
                "recordId alleen samen met recordType",
                invalid_params=[InvalidParam("recordType", "verplicht bij recordId")],
            )
        c = table.c
        query = select(table).order_by(c.id).limit(limit + 1)
        if record_type is not None:
            query = query.where(c.record_type == record_type)
        if record_id is not None:
            query = query.where(c.record_id == record_id)
        if trace_id is not None:
            query = query.where(c.trace_id == trace_id)
        if vanaf is not None:
            query = query.where(c.at >= vanaf)
        if tot is not None:
            query = query.where(c.at < tot)
        if cursor is not None:
            query = query.where(c.id > int(cursor))
        rows = [dict(r._mapping) for r in await session.execute(query)]
        page = rows[:limit]
        await audit.record(
            session,
            table,
            principal,
            action="lezen",
            record_type="audit_log",
            record_ids=["zoekvraag"],
            purpose=PURPOSE_AUDIT,
        )
        body = AuditPagina(
            regels=[AuditRegel.model_validate(r) for r in page],
            volgende=str(page[-1]["id"]) if len(rows) > limit else None,
        )
        return Response(body.model_dump_json(by_alias=True), media_type="application/json")

    return router
