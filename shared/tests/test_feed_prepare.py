"""A consumer with a ``prepare`` stage (ADR 0022): the next batch is read and worked out
while the current one is written, and its plan is used only on top of the state it assumed.
PostgreSQL, real ingest feed over the ASGI app."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import text

from verzuimhub.testing import ingest_feed_consumer, truncate
from verzuimhub_ingest.models import FEED
from verzuimhub_melding.models import CURSORS
from verzuimhub_shared import feed
from verzuimhub_shared.db import Database

EVENTS = 240
BATCH = 20


@dataclass(frozen=True)
class Plan:
    """What a batch writes: the state it was worked out on (``parent``), the state it leaves
    (``token``, ``total``), and its events' keys."""

    parent: str
    token: str
    total: int
    keys: list[str]


@pytest_asyncio.fixture
async def db(db_urls: dict[str, str]) -> AsyncIterator[Database]:
    """Melding's database with ingest's feed of ``EVENTS`` events to consume, and the
    tables a ``Chain`` writes (dropped after the test)."""
    await truncate(db_urls["ingest"])
    await truncate(db_urls["melding"])
    producer = Database(db_urls["ingest"])
    async with producer.transaction() as session:
        events = [feed.Event("melding", "t", {"i": i}) for i in range(EVENTS)]
        await feed.append(session, FEED, events, source="u")
    await producer.dispose()
    database = Database(db_urls["melding"])
    async with database.transaction() as session:
        await session.execute(text("CREATE TABLE test_chain (token text, total bigint)"))
        await session.execute(text("INSERT INTO test_chain VALUES ('start', 0)"))
        await session.execute(text("CREATE TABLE test_applied (k text)"))
    try:
        yield database
    finally:
        async with database.transaction() as session:
            await session.execute(text("DROP TABLE test_chain"))
            await session.execute(text("DROP TABLE test_applied"))
        await database.dispose()


class Chain:
    """A consumer's stages whose every batch depends on the one before it, as melding's do
    (a pupil made by one batch is referred to by the next): a plan records the state it was
    worked out on, and writing it anywhere else fails the batch."""

    def __init__(self, *, wait_for_write: bool = False) -> None:
        self.writing = 0
        self.ahead_while_writing = 0
        self.ahead_written = 0
        #: A plan made ahead first waits until a write's handler has begun (or 5 s): without
        #: the overlap, that write is over by then.
        self.wait_for_write = wait_for_write
        self.write_began = asyncio.Event()

    async def prepare(self, session: Any, events: list[dict[str, Any]], ahead: Plan | None) -> Plan:
        if ahead is None:
            parent, total = (
                await session.execute(text("SELECT token, total FROM test_chain"))
            ).one()
        else:
            parent, total = ahead.token, ahead.total  # taken as written, seen or not
            if self.wait_for_write:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.write_began.wait(), 5)
                self.write_began.clear()
            self.ahead_while_writing += self.writing > 0
        total += sum(e["data"]["i"] for e in events)
        keys = [str(e["data"]["i"]) for e in events]
        return Plan(parent, secrets.token_hex(8), total, keys)

    async def handler(self, session: Any, plan: Plan) -> None:
        self.writing += 1
        self.write_began.set()
        try:
            state = (await session.execute(text("SELECT token FROM test_chain"))).scalar_one()
            if state != plan.parent:
                raise AssertionError(f"a plan worked out on {plan.parent} written on {state}")
            self.ahead_written += plan.parent != "start" and plan.parent == state
            await asyncio.sleep(0.01)  # the next batch is prepared meanwhile
            await session.execute(
                text("UPDATE test_chain SET token = :t, total = :n"),
                {"t": plan.token, "n": plan.total},
            )
            for k in plan.keys:
                await session.execute(text("INSERT INTO test_applied VALUES (:k)"), {"k": k})
        finally:
            self.writing -= 1


def _consumer(
    db: Database, client: Any, token: str, chain: Chain, **kwargs: Any
) -> feed.FeedConsumer:
    return ingest_feed_consumer(
        client,
        token=token,
        cursors=CURSORS,
        transaction=db.transaction,
        handler=chain.handler,
        prepare=chain.prepare,
        batch_size=BATCH,
        **kwargs,
    )


async def test_replicas_with_a_prepare_stage_apply_every_event_once_on_the_state_planned(
    db: Database,
    app_client: Callable[..., Any],
    mint: Callable[..., str],
) -> None:
    """Three replicas run side by side, each preparing its next batch while it writes one.
    A replica whose batch another replica applied first drops the next batch's plan: that
    plan assumed its own writes (``Chain`` fails the batch otherwise)."""
    chain = Chain()
    stop = asyncio.Event()

    async def watch() -> None:
        while True:
            async with db.transaction() as session:
                position = (
                    await session.execute(text("SELECT position FROM feed_cursors"))
                ).scalar_one_or_none()
            if position == EVENTS:
                stop.set()
                return
            await asyncio.sleep(0.02)

    async with app_client("ingest") as ingest:
        token = mint("consumer", consumer="melding")
        replicas = [_consumer(db, ingest, token, chain) for _ in range(3)]
        await asyncio.wait_for(
            asyncio.gather(watch(), *(r.run(stop, idle_seconds=0.01) for r in replicas)),
            timeout=60,
        )
    async with db.transaction() as session:
        count, distinct = (
            await session.execute(text("SELECT count(*), count(DISTINCT k) FROM test_applied"))
        ).one()
        total = (await session.execute(text("SELECT total FROM test_chain"))).scalar_one()
        cursor = (
            await session.execute(text("SELECT position, events_applied FROM feed_cursors"))
        ).one()
    assert (count, distinct) == (EVENTS, EVENTS)
    assert total == sum(range(EVENTS))
    assert tuple(cursor) == (EVENTS, EVENTS)
    assert chain.ahead_written > 0  # plans made ahead were written


async def test_a_failure_preparing_the_next_batch_lets_the_current_one_commit(
    db: Database,
    app_client: Callable[..., Any],
    mint: Callable[..., str],
) -> None:
    """The next batch is prepared while the current one is written (the overlap is what the
    stage is for); when preparing it fails, the current batch is still committed, and then
    the failure is raised."""

    class Broken(Chain):
        async def prepare(
            self, session: Any, events: list[dict[str, Any]], ahead: Plan | None
        ) -> Plan:
            if any(e["data"]["i"] == 2 * BATCH for e in events):
                raise RuntimeError("the third batch cannot be prepared")
            return await super().prepare(session, events, ahead)

    chain = Broken(wait_for_write=True)
    async with app_client("ingest") as ingest:
        consumer = _consumer(db, ingest, mint("consumer", consumer="melding"), chain)
        with pytest.raises(RuntimeError, match="third batch"):
            await asyncio.wait_for(consumer.run(asyncio.Event(), idle_seconds=0.01), 30)
        assert await consumer.cursor() == 2 * BATCH
    async with db.transaction() as session:
        count = (await session.execute(text("SELECT count(*) FROM test_applied"))).scalar_one()
    assert count == 2 * BATCH
    assert chain.ahead_while_writing == 1  # the second batch, prepared while the first was written
    assert chain.ahead_written == 1


async def test_a_plan_made_on_a_batch_another_replica_applied_is_dropped(
    db: Database,
    app_client: Callable[..., Any],
    mint: Callable[..., str],
) -> None:
    """Replica A plans the first batch; before A writes it, replica B applies that batch. A's
    write then finds the cursor moved, and the plan A made for the second batch meanwhile
    (on top of A's first plan, never written) is dropped, though the cursor stands exactly
    where it would start: A plans the second batch again, on B's state."""
    stop = asyncio.Event()

    async with app_client("ingest") as ingest:
        token = mint("consumer", consumer="melding")
        other = _consumer(db, ingest, token, Chain())

        class Overtaken(Chain):
            async def prepare(
                self, session: Any, events: list[dict[str, Any]], ahead: Plan | None
            ) -> Plan:
                plan = await super().prepare(session, events, ahead)
                if events[0]["data"]["i"] == 0 and ahead is None:
                    assert await other.step() == BATCH  # B applies the first batch first
                return plan

            async def handler(self, session: Any, plan: Plan) -> None:
                await super().handler(session, plan)
                if plan.total == sum(range(EVENTS)):
                    stop.set()

        chain = Overtaken()
        consumer = _consumer(db, ingest, token, chain)
        await asyncio.wait_for(consumer.run(stop, idle_seconds=0.01), timeout=30)
    async with db.transaction() as session:
        count, distinct = (
            await session.execute(text("SELECT count(*), count(DISTINCT k) FROM test_applied"))
        ).one()
    assert (count, distinct) == (EVENTS, EVENTS)
    assert chain.ahead_written > 0


async def test_a_failure_preparing_the_first_batch_leaves_no_fetch_running(
    db: Database,
    app_client: Callable[..., Any],
    mint: Callable[..., str],
) -> None:
    """The first batch of a backlog is prepared before its write, while the next page is
    already being fetched; when preparing it fails, that fetch is cancelled, not left
    running behind the failed consumer."""

    class Broken(Chain):
        async def prepare(
            self, session: Any, events: list[dict[str, Any]], ahead: Plan | None
        ) -> Plan:
            raise RuntimeError("the first batch cannot be prepared")

    async with app_client("ingest") as ingest:
        consumer = _consumer(db, ingest, mint("consumer", consumer="melding"), Broken())
        with pytest.raises(RuntimeError, match="first batch"):
            await asyncio.wait_for(consumer.run(asyncio.Event(), idle_seconds=0.01), 30)
        fetching = [
            t
            for t in asyncio.all_tasks()
            if getattr(t.get_coro(), "__qualname__", "") == "FeedConsumer.fetch"
        ]
        if fetching:
            await asyncio.wait(fetching, timeout=5)
        assert [t for t in fetching if not t.cancelled()] == []
        assert await consumer.cursor() == 0
