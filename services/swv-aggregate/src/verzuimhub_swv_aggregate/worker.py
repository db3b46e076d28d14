"""swv-aggregate's background loops: one feed consumer per producer (ingest, melding)."""

from __future__ import annotations

import asyncio
import functools
from datetime import date
from typing import Any

from fastapi import FastAPI
from sqlalchemy import and_, or_
from sqlalchemy import delete as sql_delete

from verzuimhub_shared import retention
from verzuimhub_shared.app import Worker
from verzuimhub_shared.db import Database
from verzuimhub_shared.feed import FeedConsumer, Handler
from verzuimhub_shared.http import http_client
from verzuimhub_shared.metrics import Metrics, feed_lag_reporter
from verzuimhub_shared.periods import school_year_of
from verzuimhub_swv_aggregate.models import (
    CURSORS,
    LeerlingPeriode,
    SwvMelding,
    SwvRegistratie,
    SwvVrijstelling,
)
from verzuimhub_swv_aggregate.periods import week_label
from verzuimhub_swv_aggregate.service import (
    AggregateContext,
    apply_ingest_events,
    apply_melding_events,
)
from verzuimhub_swv_aggregate.settings import SwvSettings


def _token(settings: SwvSettings) -> str:
    """The consumer token, re-read on every fetch so it can be rotated without a restart."""
    if settings.feed_token_file is None:
        return ""
    return settings.feed_token_file.read_text().strip()


def consumer(
    app: FastAPI, name: str, client: Any, handler: Handler, batch_size: int
) -> FeedConsumer:
    settings: SwvSettings = app.state.settings
    db: Database = app.state.db
    return FeedConsumer(
        name=name,
        url="/v1/feed",
        token=functools.partial(_token, settings),
        cursors=CURSORS,
        transaction=db.transaction,
        handler=handler,
        client=client,
        batch_size=batch_size,
        on_lag=feed_lag_reporter(app.state.metrics),
    )


async def _run(app: FastAPI, stop: asyncio.Event, name: str, base_url: str, apply: Any) -> None:
    settings: SwvSettings = app.state.settings
    ctx: AggregateContext = app.state.aggregate
    metrics: Metrics = app.state.metrics
    handler: Handler = functools.partial(_apply_and_count, apply, ctx, metrics, name)
    async with http_client(base_url=base_url) as client:
        await consumer(app, name, client, handler, settings.feed_batch_size).run(stop)


async def _apply_and_count(
    apply: Any, ctx: AggregateContext, metrics: Metrics, name: str, session: Any, events: Any
) -> None:
    await apply(session, events, ctx)
    metrics.set_gauge(
        "feed_last_applied_position",
        "Feed position of the last applied event, per consumed feed.",
        float(events[-1]["position"]),
        {"feed": name},
    )


async def consume_ingest(app: FastAPI, stop: asyncio.Event) -> None:
    settings: SwvSettings = app.state.settings
    await _run(app, stop, "ingest", settings.ingest_url, apply_ingest_events)


async def consume_melding(app: FastAPI, stop: asyncio.Event) -> None:
    settings: SwvSettings = app.state.settings
    await _run(app, stop, "melding", settings.melding_url, apply_melding_events)


# --- retention -----------------------------------------------------------------------------


async def purge_once(app: FastAPI, today: date) -> dict[str, int]:
    """Remove the pseudonymous per-pupil state past its period (see
    ``verzuimhub_shared.retention``). The published rollups are anonymous aggregates and
    stay; a purged registration can no longer be corrected, and no correction is due then."""
    db: Database = app.state.db
    keep_from = retention.verzuim_cutoff(today)
    year = school_year_of(keep_from)
    month, week = keep_from.strftime("%Y-%m"), week_label(keep_from)
    ended_before = retention.exemption_cutoff(today)
    counts: dict[str, int] = {}

    def rows(result: Any) -> int:
        return int(getattr(result, "rowcount", 0) or 0)

    async with db.transaction() as session:
        if not await retention.try_lock(session):
            return counts
        counts["swv_registraties"] = rows(
            await session.execute(
                sql_delete(SwvRegistratie).where(SwvRegistratie.schooljaar < year)
            )
        )
        counts["swv_meldingen"] = rows(
            await session.execute(sql_delete(SwvMelding).where(SwvMelding.schooljaar < year))
        )
        lp = LeerlingPeriode
        counts["leerling_perioden"] = rows(
            await session.execute(
                sql_delete(lp).where(
                    or_(
                        and_(lp.period_kind == "schooljaar", lp.period < year),
                        and_(lp.period_kind == "maand", lp.period < month),
                        and_(lp.period_kind == "week", lp.period < week),
                    )
                )
            )
        )
        counts["swv_vrijstellingen"] = rows(
            await session.execute(
                sql_delete(SwvVrijstelling).where(
                    SwvVrijstelling.einddatum.is_not(None),
                    SwvVrijstelling.einddatum < ended_before,
                )
            )
        )
    return counts


def _today() -> date:
    from verzuimhub_swv_aggregate.app import today_in_nl

    return today_in_nl()


workers: list[Worker] = [
    consume_ingest,
    consume_melding,
    retention.retention_worker(purge_once, _today),
]
