"""The evaluator gives way to a consumer catching up on a backlog, for a bounded time: its
rounds (mark the ledger's changes, evaluate the marked pupils) start that far apart."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from verzuimhub.testing import eventually, make_bsn, truancy_week
from verzuimhub_melding import repository as repo
from verzuimhub_melding.worker import _lag_watch, evaluate_marked, ingest_consumer


async def marks_and_meldingen(hub: Any) -> tuple[int, int]:
    """(pupils waiting for the rules, meldingen)."""
    async with hub.melding_app.state.db.transaction() as session:
        meldingen = await repo.list_meldingen(session, brin="99AA", after=None, limit=100)
        return await repo.waiting_count(session), len(meldingen)


async def wait_until_evaluated(hub: Any, limit: float = 20.0) -> float:
    """Seconds until no pupil waits for the rules (fails after ``limit``)."""
    started = time.monotonic()

    async def evaluated() -> bool:
        return not (await marks_and_meldingen(hub))[0]

    await eventually(evaluated, limit)
    return time.monotonic() - started


async def consumed_truant_week(hub: Any, seed: int, defer_seconds: float) -> None:
    """One pupil's truant week through ingest and melding's consumer: one pupil waits."""
    hub.melding_app.state.settings.evaluation_defer_seconds = defer_seconds
    await hub.post_registraties(truancy_week(make_bsn(seed)))
    assert await ingest_consumer(hub.melding_app, hub.ingest).step() == 4


@asynccontextmanager
async def evaluator(hub: Any) -> AsyncIterator[None]:
    """melding's evaluator loop, running for the block."""
    stop = asyncio.Event()
    task = asyncio.create_task(evaluate_marked(hub.melding_app, stop))
    try:
        yield
    finally:
        stop.set()
        await task


async def test_marks_wait_while_catching_up_and_no_longer_than_the_bound(hub: Any) -> None:
    # The bound leaves a loaded machine 1.4 s of slack on either side of the checks.
    await consumed_truant_week(hub, 71, defer_seconds=2.0)
    hub.melding_app.state.catching_up = True  # what the lag report says on a backlog
    async with evaluator(hub):
        await asyncio.sleep(0.4)
        assert await marks_and_meldingen(hub) == (1, 0)  # the first round: a bound away
        waited = await wait_until_evaluated(hub)
        assert 0.2 < waited < 6.0  # evaluated once the bound has passed
        assert await marks_and_meldingen(hub) == (0, 1)  # the V3 concept


async def test_at_the_head_of_the_feed_marks_are_evaluated_at_once(hub: Any) -> None:
    await consumed_truant_week(hub, 72, defer_seconds=30.0)
    assert hub.melding_app.state.catching_up is False  # the lag report: nothing to fetch
    async with evaluator(hub):
        assert await wait_until_evaluated(hub) < 10.0  # not the 30 s defer or poll
        assert await marks_and_meldingen(hub) == (0, 1)


async def test_the_consumer_wakes_the_evaluator_instead_of_its_next_poll(hub: Any) -> None:
    hub.melding_app.state.settings.worker_interval_seconds = 30.0  # the poll: far away
    async with evaluator(hub):
        await asyncio.sleep(0.1)  # found nothing changed: resting until woken or polled
        await consumed_truant_week(hub, 73, defer_seconds=30.0)  # commits, then wakes it
        assert await wait_until_evaluated(hub) < 10.0  # not the 30 s defer or poll
        assert await marks_and_meldingen(hub) == (0, 1)


async def test_marks_deferred_by_a_catch_up_are_evaluated_as_soon_as_it_ends(hub: Any) -> None:
    hub.melding_app.state.settings.worker_interval_seconds = 30.0  # the poll: far away
    await consumed_truant_week(hub, 74, defer_seconds=30.0)
    on_lag = _lag_watch(hub.melding_app)
    on_lag("ingest", 1_000_000)  # a backlog: the change waits for the next round
    async with evaluator(hub):
        await asyncio.sleep(0.3)
        assert await marks_and_meldingen(hub) == (1, 0)
        on_lag("ingest", 0)  # caught up: the evaluator is woken, not left to its poll
        assert await wait_until_evaluated(hub) < 10.0  # not the 30 s defer or poll
        assert await marks_and_meldingen(hub) == (0, 1)
