"""Two replicas of melding on one database, each running its feed consumer and its rules
loop while registrations, corrections and withdrawals arrive: every change reaches the
rules once the feed is idle, and no melding is made twice (ADR 0002, 0009, 0024). The
consumers take turns on the cursor's lock; the markers on the stand's (SKIP LOCKED); the
evaluators share the marks (SKIP LOCKED)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import text

from verzuimhub.services import service
from verzuimhub.testing import eventually, make_bsn, running_app, settings_for, truancy_week
from verzuimhub_melding.repository import RULES_DONE_SQL
from verzuimhub_melding.worker import evaluate_marked, ingest_consumer
from verzuimhub_shared.feed import FEED_HEAD_HEADER

PUPILS = 24
FAST = {
    "feed_batch_size": 7,  # many small batches: the replicas' turns interleave
    "feed_poll_seconds": 0.01,
    "worker_interval_seconds": 0.02,
    "evaluation_defer_seconds": 0.05,
}


async def _replica(app: Any, ingest: Any, stop: asyncio.Event) -> None:
    settings = app.state.settings
    await asyncio.gather(
        ingest_consumer(app, ingest).run(stop, settings.feed_poll_seconds),
        evaluate_marked(app, stop),
    )


async def test_two_replicas_evaluate_every_change_once(
    hub: Any,
    clean_dbs: dict[str, str],
    key_dir: Path,
    mint: Callable[..., str],
    tmp_path: Path,
) -> None:
    token_file = tmp_path / "second-consumer.jwt"
    token_file.write_text(mint("consumer", consumer="melding"))
    second = service("melding").create_app(
        settings_for("melding", clean_dbs, key_dir, feed_token_file=token_file, **FAST)
    )
    for name, value in FAST.items():
        setattr(hub.melding_app.state.settings, name, value)
    stop = asyncio.Event()
    async with running_app(second):
        replicas = [
            asyncio.create_task(_replica(app, hub.ingest, stop))
            for app in (hub.melding_app, second)
        ]
        try:
            for start in range(0, PUPILS, 4):  # the feed grows while the replicas run
                week = [
                    item
                    for n in range(start, start + 4)
                    for item in truancy_week(make_bsn(500 + n), prefix=f"p{n}")
                ]
                await hub.post_registraties(week)
                await asyncio.sleep(0.03)
            # A correction of the last day to 30 minutes (15.5 hours: the melding lapses), and a
            # withdrawal of one day (the same), for two pupils each.
            for n in (0, 1):
                [day] = truancy_week(make_bsn(500 + n), prefix=f"p{n}")[3:]
                await hub.post_registraties([day | {"versie": 2, "minuten": 30}])
            school = {"Authorization": f"Bearer {mint('school', brins=['99AA'])}"}
            for n in (2, 3):
                gone = await hub.ingest.delete(
                    f"/v1/scholen/99AA/registraties/p{n}-3", headers=school
                )
                assert gone.status_code in (200, 204), gone.text

            async def done() -> bool:
                async with hub.melding_app.state.db.transaction() as session:
                    cursor = await session.execute(
                        text("SELECT position FROM feed_cursors WHERE feed = 'ingest'")
                    )
                    rules_done = (await session.execute(text(RULES_DONE_SQL))).scalar_one()
                    return bool(rules_done) and cursor.scalar_one_or_none() == await _head(hub)

            await eventually(done, 30)
        finally:
            stop.set()
            await asyncio.gather(*replicas)
    async with hub.melding_app.state.db.transaction() as session:
        rows = (
            await session.execute(
                text("SELECT leerling_id, soort, begindatum, status FROM meldingen")
            )
        ).all()
    keys = [(r.leerling_id, r.soort, r.begindatum) for r in rows]
    assert len(keys) == len(set(keys)), "a melding was made twice"
    due = [r for r in rows if r.status == "concept"]
    lapsed = [r for r in rows if r.status == "vervallen"]
    assert len(due) == PUPILS - 4  # one V3 each, but for the four whose week was cut short
    assert len(lapsed) == len(rows) - len(due) <= 4


async def _head(hub: Any) -> int:
    """The last position of ingest's feed for melding."""
    token = hub.mint("consumer", consumer="melding")
    response = await hub.ingest.get(
        "/v1/feed", params={"after": 0, "limit": 1}, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200
    return int(response.headers[FEED_HEAD_HEADER])
