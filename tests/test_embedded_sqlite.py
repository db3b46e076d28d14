"""The embedded default: ingest and melding on SQLite, from registrations to a concept
melding and its confirmation, with the real migrations."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from verzuimhub.services import service
from verzuimhub.testing import (
    BEVESTIGING,
    make_bsn,
    registratie,
    running_app,
    settings_for,
    truancy_week,
)
from verzuimhub_melding.worker import ingest_consumer, rules_round
from verzuimhub_shared.migrations import upgrade


async def test_the_hub_works_on_sqlite(
    tmp_path: Path, key_dir: Path, mint: Callable[..., Any]
) -> None:
    urls = {}
    for name in ("ingest", "melding"):
        urls[name] = f"sqlite+aiosqlite:///{tmp_path / name}.db"
        await upgrade(service(name).migrations_package or "", urls[name])
    token_file = tmp_path / "consumer.jwt"
    token_file.write_text(mint("consumer", consumer="melding"))
    ingest_app = service("ingest").create_app(settings_for("ingest", urls, key_dir))
    melding_app = service("melding").create_app(
        settings_for("melding", urls, key_dir, feed_token_file=token_file)
    )
    school = {"Authorization": f"Bearer {mint('school', brins=['99AA'])}"}
    items = truancy_week(make_bsn(61))
    async with running_app(ingest_app) as ingest, running_app(melding_app) as melding:
        first = await ingest.post(
            "/v1/registratie-batches", json={"registraties": items}, headers=school
        )
        replay = await ingest.post(
            "/v1/registratie-batches", json={"registraties": items}, headers=school
        )
        assert first.json()["aangemaakt"] == 4
        assert replay.json()["ongewijzigd"] == 4
        consumer = ingest_consumer(melding_app, ingest)
        assert await consumer.step() == 4
        assert await consumer.step() == 0
        assert await rules_round(melding_app) == 1  # marks from the ledger, one pupil
        [concept] = (await melding.get("/v1/scholen/99AA/meldingen", headers=school)).json()[
            "meldingen"
        ]
        assert concept["soort"] == "V3"
        confirmed = await melding.post(
            f"/v1/scholen/99AA/meldingen/{concept['id']}/bevestiging",
            json=BEVESTIGING,
            headers=school,
        )
        assert confirmed.json()["status"] == "ingediend"


async def test_concurrent_single_registrations_on_sqlite(
    tmp_path: Path, key_dir: Path, mint: Callable[..., Any]
) -> None:
    """Group commit on the embedded default: two groups in flight queue on SQLite's write
    lock (BEGIN IMMEDIATE) instead of failing; every request is stored once."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'ingest'}.db"
    await upgrade(service("ingest").migrations_package or "", url)
    app = service("ingest").create_app(settings_for("ingest", {"ingest": url}, key_dir))
    school = {"Authorization": f"Bearer {mint('school', brins=['99AA'])}"}
    reader = {"Authorization": f"Bearer {mint('consumer', consumer='melding')}"}
    bodies = [registratie(schoolRegistratieId=f"c{i}", pgn=make_bsn(200 + i)) for i in range(20)]
    async with running_app(app) as ingest:
        answers = await asyncio.gather(
            *(ingest.post("/v1/registraties", json=body, headers=school) for body in bodies)
        )
        events = (await ingest.get("/v1/feed", params={"limit": 100}, headers=reader)).json()
    assert [a.status_code for a in answers] == [201] * 20
    assert sorted(e["data"]["registratieId"] for e in events) == sorted(
        a.json()["registratieId"] for a in answers
    )
