"""The evaluator gives way to a consumer catching up on a backlog, for a bounded time."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from verzuimhub.testing import make_bsn, truancy_week
from verzuimhub_melding import repository as repo
from verzuimhub_melding.worker import evaluate_marked, ingest_consumer


async def marks_and_meldingen(hub: Any) -> tuple[int, int]:
    async with hub.melding_app.state.db.transaction() as session:
        meldingen = await repo.list_meldingen(session, brin="99AA", after=None, limit=100)
        return await repo.marked_count(session), len(meldingen)


async def wait_until_evaluated(hub: Any, limit: float = 10.0) -> float:
    started = time.monotonic()
    while (await marks_and_meldingen(hub))[0]:
        assert time.monotonic() - started < limit, "the marks were never evaluated"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def test_marks_wait_while_catching_up_and_no_longer_than_the_bound(hub: Any) -> None:
    app = hub.melding_app
    app.state.settings.evaluation_defer_seconds = 1.0
    await hub.post_registraties(truancy_week(make_bsn(71)))
    consumer = ingest_consumer(app, hub.ingest)
    assert await consumer.step() == 4
    app.state.catching_up = True  # what the consumer's lag report says on a backlog

    stop = asyncio.Event()
    task = asyncio.create_task(evaluate_marked(app, stop))
    try:
        await asyncio.sleep(0.4)
        assert await marks_and_meldingen(hub) == (1, 0)  # younger than the bound: waits
        waited = await wait_until_evaluated(hub)
        assert 0.2 < waited < 3.0  # evaluated once the mark is older than the bound
        assert await marks_and_meldingen(hub) == (0, 1)  # the V3 concept
    finally:
        stop.set()
        await task


async def test_at_the_head_of_the_feed_marks_are_evaluated_at_once(hub: Any) -> None:
    app = hub.melding_app
    app.state.settings.evaluation_defer_seconds = 30.0
    await hub.post_registraties(truancy_week(make_bsn(72)))
    consumer = ingest_consumer(app, hub.ingest)
    assert await consumer.step() == 4
    assert app.state.catching_up is False  # the lag report: nothing more to fetch

    stop = asyncio.Event()
    task = asyncio.create_task(evaluate_marked(app, stop))
    try:
        assert await wait_until_evaluated(hub) < 2.0
        assert await marks_and_meldingen(hub) == (0, 1)
    finally:
        stop.set()
        await task
