"""swv-aggregate's background loops: one feed consumer per producer (ingest, melding)."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from fastapi import FastAPI

from verzuimhub_shared.app import Worker
from verzuimhub_shared.db import Database
from verzuimhub_shared.feed import FeedConsumer, Handler
from verzuimhub_shared.http import http_client
from verzuimhub_shared.metrics import Metrics
from verzuimhub_swv_aggregate.models import CURSORS
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


workers: list[Worker] = [consume_ingest, consume_melding]
