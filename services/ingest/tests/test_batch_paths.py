"""Batches that take every set-based path: locking existing rows, day totals against stored
rows, bulk updates, replays and conflicts inside one batch; on PostgreSQL and SQLite, whose
statements differ."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from verzuimhub.services import service
from verzuimhub.testing import (
    feed_rows_made_during,
    fetch_rows,
    make_bsn,
    registratie,
    running_app,
    settings_for,
)
from verzuimhub_ingest import repository as repo
from verzuimhub_ingest import service as ingest
from verzuimhub_shared.auth import Principal
from verzuimhub_shared.migrations import upgrade

Client = httpx.AsyncClient


@dataclass
class Ingest:
    """Ingest on one backend: its database's URL, and its app to open."""

    url: str
    open: Callable[[], AbstractAsyncContextManager[Client]]


@pytest.fixture(params=["postgresql", "sqlite"])
async def ingest_on(
    request: pytest.FixtureRequest, clean_dbs: dict[str, str], tmp_path: Path, key_dir: Path
) -> Ingest:
    """Ingest on PostgreSQL, and on SQLite, whose statements differ."""
    urls = dict(clean_dbs)
    if request.param == "sqlite":
        urls["ingest"] = f"sqlite+aiosqlite:///{tmp_path / 'ingest.db'}"
        await upgrade(service("ingest").migrations_package or "", urls["ingest"])
    settings = settings_for("ingest", urls, key_dir)
    return Ingest(urls["ingest"], lambda: running_app(service("ingest").create_app(settings)))


def _day(weeks_back: int) -> str:
    day = date.today() - timedelta(days=7 * weeks_back)
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    return day.isoformat()


async def _batch(client: Client, items: list[dict[str, Any]], headers: Any) -> list[Any]:
    response = await client.post(
        "/v1/registratie-batches", json={"registraties": items}, headers=headers
    )
    assert response.status_code == 200, response.text
    return list(response.json()["resultaten"])


async def test_corrections_replays_conflicts_and_day_totals_across_batches(
    ingest_on: Ingest, auth: Callable[..., dict[str, str]]
) -> None:
    school = auth("school", brins=["99AA"])
    p1, p2, p3 = make_bsn(301), make_bsn(302), make_bsn(303)
    day, other_day = _day(1), _day(2)

    def item(sid: str, pgn: str, minuten: int, versie: int = 1, **more: Any) -> dict[str, Any]:
        fields = {"schoolRegistratieId": sid, "pgn": pgn, "minuten": minuten, "versie": versie}
        return registratie(**{"datum": day, **fields, **more})

    first = [
        item("a", p1, 300),
        item("b", p1, 600),
        item("c", p2, 60),
        item("d", p3, 60, datum=other_day, notitie="gebeld"),
    ]
    second = [
        item("a", p1, 400, versie=2),  # correction: p1's day is now 400 + 600
        item("b", p1, 600),  # identical replay
        item("c", p2, 90),  # same versie, other content
        item("e", p1, 500),  # 1000 + 500 > 24 hours
        item("f", p1, 440),  # exactly 24 hours
        item("a", p1, 300, versie=3),  # a second correction in the same batch
        item("g", p2, 30),
        item("g", p2, 30),  # its identical twin in the same batch
        item("g", p2, 45, versie=2),  # a correction of a registration new in this batch
    ]
    async with ingest_on.open() as client:
        created = await _batch(client, first, school)
        results = await _batch(client, second, school)
        stored = {
            sid: (await client.get(f"/v1/scholen/99AA/registraties/{sid}", headers=school)).json()
            for sid in ("a", "b", "d", "f", "g")
        }
        feed = await client.get(
            "/v1/feed", params={"limit": 100}, headers=auth("consumer", consumer="melding")
        )

    assert [r["uitkomst"] for r in created] == ["aangemaakt"] * 4
    assert [r["uitkomst"] for r in results] == [
        "bijgewerkt",
        "ongewijzigd",
        "afgewezen",
        "afgewezen",
        "aangemaakt",
        "bijgewerkt",
        "aangemaakt",
        "ongewijzigd",
        "aangemaakt",
    ]
    assert results[2]["probleem"]["status"] == 409
    assert results[3]["probleem"]["invalidParams"][0]["name"] == "minuten"
    ids = {r["registratie"]["schoolRegistratieId"]: r["registratie"] for r in created}
    assert results[0]["registratie"] == ids["a"] | {"versie": 2}  # the same hub id
    assert results[1]["registratie"] == ids["b"]
    assert results[6]["registratie"]["registratieId"] == results[8]["registratie"]["registratieId"]

    assert (stored["a"]["versie"], stored["a"]["minuten"]) == (3, 300)
    assert stored["a"]["registratieId"] == ids["a"]["registratieId"]
    assert (stored["b"]["versie"], stored["f"]["minuten"]) == (1, 440)
    assert (stored["g"]["versie"], stored["g"]["minuten"]) == (2, 45)
    assert stored["d"]["notitie"] == "gebeld"
    assert stored["d"]["pgn"] == p3

    events = orjson.loads(feed.content)
    # 4 created, then a v2, f, a v3, g v1 and g v2: the replays and refusals add nothing.
    assert len(events) == 9
    latest = {}
    for event in events:
        latest[event["data"]["registratieId"]] = event["data"]
    assert latest[ids["a"]["registratieId"]]["minuten"] == 300
    assert latest[ids["a"]["registratieId"]]["versie"] == 3


async def test_a_bad_item_in_a_batch_gets_the_problem_it_gets_alone(
    clean_dbs: dict[str, str], app_client: Callable[..., Any], auth: Any
) -> None:
    school = auth("school", brins=["99AA"])
    bad = registratie(schoolRegistratieId="x", pgn="123456789", brin="9AA", minuten=0, extra=1)
    good = [registratie(schoolRegistratieId=f"ok-{i}", pgn=make_bsn(400 + i)) for i in range(3)]
    async with app_client("ingest") as client:
        alone = await client.post("/v1/registraties", json=bad, headers=school)
        results = await _batch(client, [good[0], bad, good[1], good[2]], school)
    outcomes = [r["uitkomst"] for r in results]
    assert outcomes == ["aangemaakt", "afgewezen", "aangemaakt", "aangemaakt"]
    problem = alone.json()
    assert results[1]["probleem"] == {
        "status": 400,
        "title": problem["title"],
        "detail": problem["detail"],
        "invalidParams": problem["invalidParams"],
    }
    assert {p["name"] for p in problem["invalidParams"]} == {"pgn", "brin", "minuten", "extra"}
    assert "123456789" not in str(results)


async def test_a_batchs_feed_rows_are_made_while_its_registrations_are_written(
    ingest_on: Ingest, auth: Callable[..., dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """ADR 0029: the database writes a batch's registrations while ingest makes and seals
    its feed rows; the rows are all stored, and all published once."""
    overlapped = feed_rows_made_during(monkeypatch, repo, "insert_registraties")
    school = auth("school", brins=["99AA"])
    items = [
        registratie(schoolRegistratieId=f"m-{i}", pgn=make_bsn(700 + i % 50), datum=_day(1 + i % 3))
        for i in range(300)
    ]
    async with ingest_on.open() as client:
        results = await _batch(client, items, school)
    url = ingest_on.url
    assert [r["uitkomst"] for r in results] == ["aangemaakt"] * 300
    assert overlapped
    assert overlapped[0], overlapped  # the first rows, at least, while the write ran
    assert await fetch_rows(url, "SELECT count(*) FROM registraties") == [(300,)]
    published = "SELECT count(*), count(DISTINCT subject) FROM feed_events"
    assert await fetch_rows(url, published) == [(600, 300)]  # one per consumer and registration


async def test_a_registration_a_concurrent_batch_stored_first_is_refused_and_not_published(
    clean_dbs: dict[str, str], key_dir: Path
) -> None:
    """Two batches carry the same new registration. The second copies its rows while the
    first's are uncommitted, waits on the key's index, and then stores all but that one:
    it answers a conflict for it and publishes no event for it (its feed rows, made while
    the copy ran, are dropped)."""
    app = service("ingest").create_app(settings_for("ingest", clean_dbs, key_dir))
    principal = Principal("school-test", frozenset({"registraties:schrijven"}), frozenset({"99AA"}))

    def batch(prefix: str) -> list[dict[str, Any]]:
        twin = registratie(schoolRegistratieId="twin", pgn=make_bsn(800), datum=_day(1))
        return [twin] + [
            registratie(schoolRegistratieId=f"{prefix}-{i}", pgn=make_bsn(810 + i), datum=_day(2))
            for i in range(99)
        ]

    async with running_app(app):
        ctx, db = app.state.ingest, app.state.db

        async def second() -> list[ingest.ItemOutcome]:
            async with db.transaction() as session:
                return await ingest.submit_registraties(session, ctx, principal, batch("b"))

        async with db.transaction() as first:
            await ingest.submit_registraties(first, ctx, principal, batch("a"))
            racing = asyncio.create_task(second())
            await asyncio.sleep(0.3)
            assert not racing.done()  # waiting for the first batch's "twin"
        outcomes = await racing
    url = clean_dbs["ingest"]
    orphans = (  # events of a registration that was not stored
        "SELECT count(*) FROM feed_events WHERE subject IS NOT NULL "
        "AND subject NOT IN (SELECT id FROM registraties)"
    )
    assert outcomes[0].uitkomst == "afgewezen"
    assert outcomes[0].problem is not None
    assert outcomes[0].problem.status == 409
    assert [o.uitkomst for o in outcomes[1:]] == ["aangemaakt"] * 99
    assert await fetch_rows(url, orphans) == [(0,)]
    # one per consumer for each registration stored
    assert await fetch_rows(url, "SELECT count(*) FROM feed_events") == [(2 * (100 + 99),)]
