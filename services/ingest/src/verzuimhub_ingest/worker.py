"""Ingest's background loop: the retention purge (see ``verzuimhub_shared.retention``)."""

from __future__ import annotations

from datetime import date, timedelta

from fastapi import FastAPI
from sqlalchemy import and_, or_, select
from sqlalchemy import delete as sql_delete

from verzuimhub_ingest.models import AUDIT, FEED, IDEMPOTENCY, Registratie, Vrijstelling
from verzuimhub_shared import audit, events, retention
from verzuimhub_shared.app import Worker
from verzuimhub_shared.db import Database

REGISTRATIE_EVENTS = (events.REGISTRATIE_VASTGELEGD, events.REGISTRATIE_INGETROKKEN)


async def purge_once(app: FastAPI, today: date) -> dict[str, int]:
    """Remove what is past its period on ``today``; counts per table."""
    db: Database = app.state.db
    settings = app.state.settings
    keep_from = retention.verzuim_cutoff(today)
    ended_before = retention.exemption_cutoff(today)
    counts: dict[str, int] = {}
    async with db.transaction() as session:
        if not await retention.try_lock(session):
            return counts
        result = await session.execute(sql_delete(Registratie).where(Registratie.datum < keep_from))
        counts["registraties"] = int(getattr(result, "rowcount", 0) or 0)
        expired = select(Vrijstelling.id).where(
            or_(
                and_(Vrijstelling.einddatum.is_not(None), Vrijstelling.einddatum < ended_before),
                and_(
                    Vrijstelling.ingetrokken.is_(True),
                    Vrijstelling.gewijzigd_op < retention.at_midnight(ended_before),
                ),
            )
        )
        ids = list((await session.execute(expired)).scalars())
        # Their feed events go with them (the rows carry the record id as subject).
        result = await session.execute(
            sql_delete(FEED.events).where(FEED.events.c.subject.in_(ids))
        )
        counts["vrijstelling_feed_events"] = int(getattr(result, "rowcount", 0) or 0)
        result = await session.execute(sql_delete(Vrijstelling).where(Vrijstelling.id.in_(ids)))
        counts["vrijstellingen"] = int(getattr(result, "rowcount", 0) or 0)
        counts["feed_events"] = await retention.purge_feed(
            session, FEED, retention.at_midnight(keep_from), REGISTRATIE_EVENTS
        )
        counts["idempotency_keys"] = await retention.purge_idempotency_keys(
            session,
            IDEMPOTENCY,
            retention.at_midnight(today - timedelta(days=settings.idempotency_retention_days)),
        )
        counts["audit_log"] = await audit.purge_before(
            session, AUDIT, retention.years_before(today, settings.audit_retention_years)
        )
    return counts


def _today() -> date:
    from verzuimhub_ingest.app import today_in_nl

    return today_in_nl()


workers: list[Worker] = [retention.retention_worker(purge_once, _today)]
