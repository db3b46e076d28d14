"""Retention: what each service may keep, and the purge loop that removes the rest.

The legal periods (Wet ROD art. 30) and the hub's own choices, in one place:

- verzuimgegevens (registrations, the ledger, meldingen and what derives from them): the
  school year of registration plus the following school year. On 1 August of the school
  year after that, they go: :func:`verzuim_cutoff` is the first day still kept.
- vrijstellingen (and absoluut-verzuim records): until one year after they end
  (:func:`exemption_cutoff`); a withdrawn one counts as ended on the day it was withdrawn.
- the event feeds: the same period as the data they carry, by the day an event was
  recorded; a consumer that replays from position 0 gets exactly what may still be held.
- the audit log: ``audit_retention_years`` (default 5), through the one controlled delete
  path (:func:`verzuimhub_shared.audit.purge_before`).
- Idempotency-Keys: ``idempotency_retention_days`` (default 7); a retry after that is new.

The purge runs in a worker loop in every replica; a PostgreSQL advisory lock lets one
replica at a time do it, and every purge is idempotent, so a crash half-way is harmless.
Tests call the service's ``purge_once(app, today)`` with any date: the clock is injected.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, date, datetime, time

from fastapi import FastAPI
from sqlalchemy import Table, text
from sqlalchemy import delete as sql_delete
from sqlalchemy.ext.asyncio import AsyncSession

from verzuimhub_shared.app import Worker, sleep_or_stop
from verzuimhub_shared.db import is_postgresql
from verzuimhub_shared.feed import FeedTables
from verzuimhub_shared.logging import get_logger
from verzuimhub_shared.metrics import Metrics
from verzuimhub_shared.periods import school_year_start

log = get_logger(__name__)

Purge = Callable[[FastAPI, date], Awaitable[dict[str, int]]]

_LOCK_KEY = 0x76_7A_68_72  # "vzhr": one purge at a time per database


def verzuim_cutoff(today: date) -> date:
    """The first day whose verzuimgegevens are still kept: 1 August of last school year."""
    current = school_year_start(today)
    return current.replace(year=current.year - 1)


def exemption_cutoff(today: date) -> date:
    """A vrijstelling that ended before this day is past its period (one year after)."""
    try:
        return today.replace(year=today.year - 1)
    except ValueError:  # 29 February
        return today.replace(year=today.year - 1, day=28)


def years_before(today: date, years: int) -> datetime:
    try:
        day = today.replace(year=today.year - years)
    except ValueError:
        day = today.replace(year=today.year - years, day=28)
    return at_midnight(day)


def at_midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


async def purge_feed(
    session: AsyncSession, tables: FeedTables, before: datetime, types: Sequence[str] = ()
) -> int:
    """Feed events recorded before ``before`` (of ``types``; all when empty). Positions are
    never reused (the counter stays), so every consumer's cursor remains valid."""
    events = tables.events
    query = sql_delete(events).where(events.c.recorded_at < before)
    if types:
        query = query.where(events.c.type.in_(types))
    result = await session.execute(query)
    return int(getattr(result, "rowcount", 0) or 0)


async def purge_idempotency_keys(session: AsyncSession, keys: Table, before: datetime) -> int:
    result = await session.execute(sql_delete(keys).where(keys.c.created_at < before))
    return int(getattr(result, "rowcount", 0) or 0)


async def try_lock(session: AsyncSession) -> bool:
    """One replica purges at a time (PostgreSQL); SQLite has one writer anyway."""
    if not is_postgresql(session):
        return True
    result = await session.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
    return bool(result.scalar_one())


def record(metrics: Metrics, counts: dict[str, int]) -> None:
    counter = getattr(metrics, "_retention_purged", None)
    if counter is None:
        counter = metrics.counter(
            "retention_purged_total", "Rows removed by the retention purge, per table.", ["table"]
        )
        metrics._retention_purged = counter  # type: ignore[attr-defined]
    for table, count in counts.items():
        counter.labels(table).inc(count)
    metrics.set_gauge(
        "retention_last_run_timestamp_seconds",
        "When the retention purge last completed.",
        datetime.now(UTC).timestamp(),
    )


def retention_worker(purge_once: Purge, today: Callable[[], date]) -> Worker:
    """A loop that purges every ``retention_interval_seconds`` (first run right away)."""

    async def retention(app: FastAPI, stop: asyncio.Event) -> None:
        interval: float = app.state.settings.retention_interval_seconds
        while not stop.is_set():
            counts = await purge_once(app, today())
            if any(counts.values()):
                log.info("retention_purged", **counts)
            record(app.state.metrics, counts)
            if await sleep_or_stop(stop, interval):
                return

    return retention
