"""Melding's background loops. Each coordinates through the database, so any number of
replicas can run them (ADR 0002):

- ``consume_ingest``: ingest's feed → ledger → rules → concept meldingen (exactly once);
- ``forward_to_duo``: the outbox → DUO, leased with SKIP LOCKED, retried with jittered
  backoff behind a circuit breaker, dead-lettered after the configured attempts;
- ``housekeeping``: overdue concepts and outbox depth/age as metrics; the per-school policy
  that forwards mandatory meldingen automatically past their deadline (off by default).
"""

from __future__ import annotations

import asyncio
import random
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
from fastapi import FastAPI
from sqlalchemy import delete as sql_delete
from sqlalchemy import select, union

from verzuimhub_melding import repository as repo
from verzuimhub_melding import service
from verzuimhub_melding.duo.breaker import CircuitBreaker
from verzuimhub_melding.duo.client import (
    DuoCircuitOpen,
    DuoClient,
    DuoPermanentError,
    DuoRetryableError,
    retry_delay,
)
from verzuimhub_melding.duo.contract import Intrekking, Verzuimmelding
from verzuimhub_melding.models import (
    AUDIT,
    CURSORS,
    FEED,
    IDEMPOTENCY,
    DuoOutbox,
    LedgerEntry,
    Leerling,
    Melding,
    TeEvalueren,
)
from verzuimhub_melding.settings import MeldingSettings
from verzuimhub_shared import audit, retention
from verzuimhub_shared.app import Worker, sleep_or_stop
from verzuimhub_shared.db import Database
from verzuimhub_shared.feed import FeedConsumer, Page
from verzuimhub_shared.http import http_client
from verzuimhub_shared.logging import get_logger
from verzuimhub_shared.metrics import Metrics, feed_lag_reporter
from verzuimhub_shared.tracing import current_trace, new_trace

log = get_logger(__name__)

LEASE = timedelta(seconds=60)
PURPOSE_DUO = "melding aan DUO (Leerplichtwet art. 21a, Wet ROD art. 12)"


def _token_reader(settings: MeldingSettings) -> Any:
    def read() -> str:
        if settings.feed_token_file is None:
            raise RuntimeError("VZH_MELDING_FEED_TOKEN_FILE is not set")
        return settings.feed_token_file.read_text().strip()

    return read


def ingest_consumer(app: FastAPI, client: Any) -> FeedConsumer:
    settings: MeldingSettings = app.state.settings
    db: Database = app.state.db
    ctx: service.MeldingContext = app.state.melding

    async def prepare(
        session: Any, batch: service.IngestBatch, ahead: service.IngestPlan | None
    ) -> service.IngestPlan:
        return await service.plan_ingest_events(session, ctx, batch, ahead)

    async def handler(session: Any, plan: service.IngestPlan) -> None:
        await service.write_ingest_plan(session, plan)

    async def decode(content: bytes) -> Page:
        # ~20 ms of CPU for a page of 5,000 events (ADR 0020), in parts (ADR 0023).
        return await service.decode_ingest_feed_in_turns(ctx, content)

    return FeedConsumer(
        name="ingest",
        url="/v1/feed",
        token=_token_reader(settings),
        cursors=CURSORS,
        transaction=db.transaction,
        handler=handler,
        prepare=prepare,
        decode=decode,
        client=client,
        batch_size=settings.feed_batch_size,
        on_lag=_lag_watch(app),
        on_applied=lambda _count: marks_waiting(app).set(),
    )


def marks_waiting(app: FastAPI) -> asyncio.Event:
    """Set when this replica's consumer committed a batch (ledger rows to mark): the
    evaluator wakes at once instead of at its next poll. Batches written by other replicas
    are found by that poll."""
    event: asyncio.Event | None = getattr(app.state, "marks_waiting", None)
    if event is None:
        event = app.state.marks_waiting = asyncio.Event()
    return event


def _lag_watch(app: FastAPI) -> Any:
    """Report the consumer's lag as a metric, and note whether it is catching up (more than
    a batch behind) for the evaluator's priority (see ``evaluate_marked``)."""
    report = feed_lag_reporter(app.state.metrics)
    settings: MeldingSettings = app.state.settings

    def on_lag(feed: str, lag: int) -> None:
        report(feed, lag)
        was = getattr(app.state, "catching_up", False)
        app.state.catching_up = lag > settings.feed_batch_size
        if was and not app.state.catching_up:
            marks_waiting(app).set()  # the deferred changes may be evaluated now

    return on_lag


async def catch_up(app: FastAPI, client: Any) -> int:
    """Consume ingest's feed until it is idle, then evaluate every changed pupil: what the
    two loops do together, in one call (for tests and tools). Returns the events applied."""
    consumer = ingest_consumer(app, client)
    applied = 0
    while n := await consumer.step():
        applied += n
    await rules_round(app)
    return applied


async def consume_ingest(app: FastAPI, stop: asyncio.Event) -> None:
    settings: MeldingSettings = app.state.settings
    async with http_client(base_url=settings.ingest_url) as client:
        await ingest_consumer(app, client).run(stop, settings.feed_poll_seconds)


# --- DUO ---------------------------------------------------------------------------------


def duo_client(app: FastAPI, client: Any = None) -> DuoClient:
    settings: MeldingSettings = app.state.settings
    breaker = getattr(app.state, "duo_breaker", None)
    if breaker is None:
        breaker = app.state.duo_breaker = CircuitBreaker(
            failure_threshold=settings.duo_breaker_failures,
            reset_timeout=settings.duo_breaker_reset_seconds,
        )
    return DuoClient(
        settings.duo_url, client=client, timeout=settings.duo_timeout_seconds, breaker=breaker
    )


async def forward_once(app: FastAPI, duo: DuoClient, rng: random.Random | None = None) -> int:
    """Send what is due; returns how many items were handled (sent, retried or dead)."""
    settings: MeldingSettings = app.state.settings
    db: Database = app.state.db
    ctx: service.MeldingContext = app.state.melding
    metrics: Metrics = app.state.metrics
    now = datetime.now(UTC)
    async with db.transaction() as session:
        leased = await repo.lease_outbox(session, now, now + LEASE, limit=50)
        work = [(i.id, i.melding_id, i.actie, i.payload_sealed, i.attempts) for i in leased]
    handled = 0
    outer = current_trace.set(None)
    try:
        for item_id, melding_id, actie, sealed, attempts in work:
            # One trace per forward: DUO's request, the log lines and the audit row share it.
            current_trace.set(new_trace())
            async with db.transaction() as session:
                item = await session.get(DuoOutbox, item_id)
                assert item is not None
                if await repo.earlier_pending(session, item):
                    item.leased_until = None  # keep the order per melding: the earlier one first
                    continue
            body = orjson.loads(ctx.sealer.open(sealed, context="duo"))
            try:
                if actie == "indienen":
                    receipt = await duo.submit(Verzuimmelding.model_validate(body))
                else:
                    receipt = await duo.withdraw(melding_id, Intrekking.model_validate(body))
            except DuoCircuitOpen as exc:
                # Nothing was sent: hand this item and the rest of the batch back, untouched.
                rest = [
                    w[0] for w in work[work.index((item_id, melding_id, actie, sealed, attempts)) :]
                ]
                wait = timedelta(seconds=exc.retry_after or settings.duo_breaker_reset_seconds)
                async with db.transaction() as session:
                    await repo.release_leases(session, rest, datetime.now(UTC) + wait)
                break
            except (DuoRetryableError, DuoPermanentError) as exc:
                async with db.transaction() as session:
                    item = await session.get(DuoOutbox, item_id)
                    assert item is not None
                    item.attempts = attempts + 1
                    item.leased_until = None
                    item.last_error = f"{type(exc).__name__}: {str(exc)[:150]}"
                    if (
                        not isinstance(exc, DuoRetryableError)
                        or item.attempts >= settings.duo_max_attempts
                    ):
                        item.state = "dead"
                        metrics.counter(
                            "duo_outbox_dead_letters_total", "Outbox items given up after retries."
                        ).inc()
                        log.error(
                            "duo_dead_letter",
                            outbox_id=item_id,
                            melding_id=melding_id,
                            attempts=item.attempts,
                            error=type(exc).__name__,
                        )
                    else:
                        delay = retry_delay(
                            exc,
                            attempts,
                            settings.duo_backoff_base_seconds,
                            settings.duo_backoff_cap_seconds,
                            rng,
                        )
                        item.next_attempt_at = datetime.now(UTC) + timedelta(seconds=delay)
                        log.warning(
                            "duo_retry",
                            outbox_id=item_id,
                            attempt=item.attempts,
                            delay_s=round(delay, 2),
                        )
                handled += 1
                continue
            async with db.transaction() as session:
                item = await session.get(DuoOutbox, item_id)
                melding = await session.get(Melding, melding_id, with_for_update=True)
                assert item is not None
                assert melding is not None
                item.state = "sent"
                item.attempts = attempts + 1
                item.leased_until = None
                item.verzonden_op = datetime.now(UTC)
                melding.duo_status = receipt.status.value
                if actie == "indienen":
                    melding.duo_meldingsnummer = receipt.meldingsnummer
                    if melding.status == "ingediend":
                        melding.status = "geregistreerd"
                melding.gewijzigd_op = datetime.now(UTC)
                await audit.record(
                    session,
                    AUDIT,
                    None,
                    action=f"doorsturen:{actie}",
                    record_type="melding",
                    record_ids=[melding_id],
                    purpose=PURPOSE_DUO,
                )
                pupil = (await repo.leerlingen(session, [melding.leerling_id]))[melding.leerling_id]
                await service.publish(session, ctx, [melding], pupil)
            log.info(
                "melding_forwarded",
                melding_id=melding_id,
                actie=actie,
                duo_number=receipt.meldingsnummer,
            )
            handled += 1
    finally:
        current_trace.reset(outer)
    return handled


async def forward_to_duo(app: FastAPI, stop: asyncio.Event) -> None:
    settings: MeldingSettings = app.state.settings
    async with duo_client(app) as duo:
        while not stop.is_set():
            handled = await forward_once(app, duo)
            if handled == 0 and await sleep_or_stop(stop, settings.worker_interval_seconds):
                return


# --- housekeeping --------------------------------------------------------------------------


async def housekeeping_once(app: FastAPI) -> None:
    db: Database = app.state.db
    ctx: service.MeldingContext = app.state.melding
    metrics: Metrics = app.state.metrics
    now = datetime.now(UTC)
    async with db.transaction() as session:
        stats = await repo.outbox_stats(session, now)
        overdue = await repo.overdue_concepts(session, ctx.today())
        waiting = await repo.waiting_count(session)
        for m in overdue:
            policy = await repo.beleid(session, m.brin)
            if policy and policy.automatisch_doorsturen and policy.standaard_bevestiging_sealed:
                defaults = service.open_json(ctx, policy.standaard_bevestiging_sealed, "beleid")
                await service.confirm(session, ctx, m, defaults)
                log.info("melding_auto_forwarded", melding_id=m.id)
    metrics.set_gauge("duo_outbox_depth", "Outbox items waiting for DUO.", stats["pending"])
    metrics.set_gauge(
        "duo_outbox_oldest_age_seconds",
        "Age of the oldest waiting item.",
        stats["oldest_pending_age"],
    )
    metrics.set_gauge("duo_outbox_dead", "Outbox items in the dead-letter state.", stats["dead"])
    metrics.set_gauge(
        "leerlingen_te_evalueren", "Pupils whose ledger changed, waiting for the rules.", waiting
    )
    metrics.set_gauge(
        "meldingen_overdue", "Concepts past their 5-working-day deadline.", float(len(overdue))
    )


async def housekeeping(app: FastAPI, stop: asyncio.Event) -> None:
    while not stop.is_set():
        await housekeeping_once(app)
        if await sleep_or_stop(stop, 15.0):
            return


# --- retention -----------------------------------------------------------------------------


async def purge_once(app: FastAPI, today: date) -> dict[str, int]:
    """Remove what is past its period on ``today`` (see ``verzuimhub_shared.retention``):
    ledger entries and meldingen after the school year of registration plus the next; a
    melding still waiting for DUO stays until it has been delivered or dead-lettered."""
    db: Database = app.state.db
    settings: MeldingSettings = app.state.settings
    keep_from = retention.verzuim_cutoff(today)
    counts: dict[str, int] = {}

    def rows(result: Any) -> int:
        return int(getattr(result, "rowcount", 0) or 0)

    async with db.transaction() as session:
        if not await retention.try_lock(session):
            return counts
        counts["ledger"] = rows(
            await session.execute(sql_delete(LedgerEntry).where(LedgerEntry.datum < keep_from))
        )
        waiting = select(DuoOutbox.melding_id).where(DuoOutbox.state == "pending")
        expired = select(Melding.id).where(
            Melding.einddatum < keep_from, Melding.id.not_in(waiting)
        )
        counts["duo_outbox"] = rows(
            await session.execute(sql_delete(DuoOutbox).where(DuoOutbox.melding_id.in_(expired)))
        )
        counts["meldingen"] = rows(
            await session.execute(sql_delete(Melding).where(Melding.id.in_(expired)))
        )
        in_use = union(
            select(LedgerEntry.leerling_id),
            select(Melding.leerling_id),
            select(TeEvalueren.leerling_id),
        )
        counts["leerlingen"] = rows(
            await session.execute(sql_delete(Leerling).where(Leerling.id.not_in(in_use)))
        )
        counts["feed_events"] = await retention.purge_feed(
            session, FEED, retention.at_midnight(keep_from)
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
    from verzuimhub_melding.app import today_in_nl

    return today_in_nl()


async def evaluate_marked(app: FastAPI, stop: asyncio.Event) -> None:
    """The rules, for each pupil whose ledger changed: once per pupil however many events.

    Each round marks the pupils of the ledger's rows written since the last round, then
    evaluates every marked pupil (ADR 0024). While the consumer catches up on a backlog (a
    replay, a restart after an outage), a pupil evaluated now would very likely change
    again in the next batches: rounds start ``evaluation_defer_seconds`` apart, and leave
    the CPU to the consumer in between. At the head of the feed (the usual case) a round
    starts at once: this replica's consumer wakes the loop as it commits a batch; other
    replicas' batches are found by polling (ADR 0009)."""
    settings: MeldingSettings = app.state.settings
    wake = marks_waiting(app)
    last_round = time.monotonic()
    while not stop.is_set():
        if getattr(app.state, "catching_up", False):
            rest = last_round + settings.evaluation_defer_seconds - time.monotonic()
            if rest > 0:
                wake.clear()
                if await sleep_or_stop(stop, rest, wake):
                    return
                continue
        wake.clear()  # before looking: batches committed from here on wake the next rest
        last_round = time.monotonic()
        if not await rules_round(app, stop) and await sleep_or_stop(
            stop, settings.worker_interval_seconds, wake
        ):
            return


async def rules_round(app: FastAPI, stop: asyncio.Event | None = None) -> int:
    """Mark the ledger's changes, then evaluate the marked pupils, 500 to a transaction,
    until none is left (or ``stop`` is set); returns how many were evaluated."""
    db: Database = app.state.db
    ctx: service.MeldingContext = app.state.melding
    while True:
        async with db.transaction() as session:
            if await service.mark_ledger_changes(session):
                break
    evaluated = 0
    while stop is None or not stop.is_set():
        async with db.transaction() as session:
            n = await service.evaluate_pending(session, ctx)
        if not n:
            break
        evaluated += n
    return evaluated


workers: list[Worker] = [
    consume_ingest,
    evaluate_marked,
    forward_to_duo,
    housekeeping,
    retention.retention_worker(purge_once, _today),
]
