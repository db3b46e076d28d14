"""Retention with a controllable clock: each service's ``purge_once(app, today)`` removes
what is past its legal period on ``today`` and nothing else (Wet ROD art. 30; the feeds, the
audit log and Idempotency-Keys by their documented periods, docs/hardening.md)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, text

from verzuimhub.services import service
from verzuimhub.testing import BEVESTIGING, make_bsn, running_app, settings_for, truancy_week
from verzuimhub_ingest.worker import purge_once as purge_ingest
from verzuimhub_melding.worker import catch_up
from verzuimhub_melding.worker import purge_once as purge_melding
from verzuimhub_shared.db import Database
from verzuimhub_shared.periods import school_year_start
from verzuimhub_shared.retention import exemption_cutoff, verzuim_cutoff
from verzuimhub_swv_aggregate.models import SwvRegistratie
from verzuimhub_swv_aggregate.worker import purge_once as purge_swv

pytestmark = pytest.mark.postgres


def test_the_periods() -> None:
    # Registered in 2025-2026: kept through 2026-2027, gone on 1 August 2027.
    assert verzuim_cutoff(date(2027, 7, 31)) == date(2025, 8, 1)
    assert verzuim_cutoff(date(2027, 8, 1)) == date(2026, 8, 1)
    assert exemption_cutoff(date(2027, 3, 1)) == date(2026, 3, 1)
    assert exemption_cutoff(date(2028, 2, 29)) == date(2027, 2, 28)


async def _count(url: str, sql: str) -> int:
    db = Database(url)
    try:
        async with db.transaction() as session:
            return int((await session.execute(text(sql))).scalar_one())
    finally:
        await db.dispose()


async def _insert(url: str, table: Any, rows: list[dict[str, Any]]) -> None:
    db = Database(url)
    try:
        async with db.transaction() as session:
            await session.execute(insert(table), rows)
    finally:
        await db.dispose()


def _audit_row(at: datetime) -> dict[str, Any]:
    return {
        "at": at,
        "subject": "s",
        "organisation": "o",
        "action": "lezen",
        "record_type": "melding",
        "record_id": "x",
        "purpose": "p",
        "trace_id": None,
    }


async def test_each_service_purges_what_is_past_its_period(
    clean_dbs: dict[str, str], key_dir: Path, mint: Callable[..., str], tmp_path: Path
) -> None:
    from verzuimhub_ingest.models import AUDIT as INGEST_AUDIT
    from verzuimhub_melding.models import AUDIT as MELDING_AUDIT

    token_file = tmp_path / "consumer.jwt"
    token_file.write_text(mint("consumer", consumer="melding"))
    school = {"Authorization": f"Bearer {mint('school', brins=['99AA'])}"}
    gemeente = {"Authorization": f"Bearer {mint('gemeente', gemeente='GM9901')}"}
    apps = {
        name: service(name).create_app(
            settings_for(name, clean_dbs, key_dir, feed_token_file=token_file)
            if name == "melding"
            else settings_for(name, clean_dbs, key_dir)
        )
        for name in ("ingest", "melding", "swv-aggregate")
    }
    items = truancy_week(make_bsn(91), prefix="a") + truancy_week(make_bsn(92), prefix="b")
    registered = date.fromisoformat(items[0]["datum"])
    ended = date.today() - timedelta(days=10)
    six_years_ago = datetime.now(UTC) - timedelta(days=6 * 366)
    await _insert(clean_dbs["ingest"], INGEST_AUDIT, [_audit_row(six_years_ago)])
    await _insert(clean_dbs["melding"], MELDING_AUDIT, [_audit_row(six_years_ago)])
    await _insert(
        clean_dbs["swv-aggregate"],
        SwvRegistratie,
        [
            {
                "id": f"r-{year}",
                "leerling": "l",
                "swv": "PO-99-01",
                "sector": "po",
                "week": f"{year}-W40",
                "maand": f"{year}-10",
                "schooljaar": f"{year}-{year + 1}",
                "minuten": 60,
                "groep": "ongeoorloofd",
            }
            for year in (registered.year - 5, registered.year)
        ],
    )
    async with (
        running_app(apps["ingest"]) as ingest,
        running_app(apps["melding"]) as melding,
        running_app(apps["swv-aggregate"]),
    ):
        r = await ingest.post(
            "/v1/registratie-batches", json={"registraties": items}, headers=school
        )
        assert r.json()["afgewezen"] == 0
        for einddatum in (ended.isoformat(), None):
            body = {
                "soort": "5a",
                "pgn": make_bsn(93),
                "geboortedatum": "2014-01-01",
                "begindatum": (ended - timedelta(days=100)).isoformat(),
                "einddatum": einddatum,
            }
            r = await ingest.post("/v1/vrijstellingen", json=body, headers=gemeente)
            assert r.status_code == 201, r.text
        await catch_up(apps["melding"], ingest)
        listed = await melding.get("/v1/scholen/99AA/meldingen", headers=school)
        first, _ = [m["id"] for m in listed.json()["meldingen"]]
        r = await melding.post(
            f"/v1/scholen/99AA/meldingen/{first}/bevestiging", json=BEVESTIGING, headers=school
        )
        assert r.status_code == 200  # confirmed, waiting in the outbox (DUO not reached)

        # Today: nothing of this year goes; the six-year-old audit rows do.
        today = date.today()
        ingest_counts = await purge_ingest(apps["ingest"], today)
        melding_counts = await purge_melding(apps["melding"], today)
        assert ingest_counts["registraties"] == 0
        assert ingest_counts["vrijstellingen"] == 0
        assert ingest_counts["audit_log"] == 1
        assert melding_counts["ledger"] == melding_counts["meldingen"] == 0
        assert melding_counts["audit_log"] == 1
        swv_counts = await purge_swv(apps["swv-aggregate"], today)
        assert swv_counts["swv_registraties"] == 1  # the one five school years back

        # One year and a day after the vrijstelling ended: that one goes, the open one stays.
        counts = await purge_ingest(apps["ingest"], ended + timedelta(days=367))
        assert counts["vrijstellingen"] == 1
        assert counts["vrijstelling_feed_events"] >= 1  # its events go with it
        assert counts["registraties"] == 0
        left = await _count(
            clean_dbs["ingest"], "SELECT count(*) FROM feed_events WHERE type LIKE '%vrijstelling%'"
        )
        assert left >= 1  # the open one's events stay

        # The last day of the following school year: everything is still there.
        start = school_year_start(registered)
        following_ends = start.replace(year=start.year + 2)
        last_day = following_ends - timedelta(days=1)
        assert (await purge_ingest(apps["ingest"], last_day))["registraties"] == 0
        assert (await purge_melding(apps["melding"], last_day))["ledger"] == 0

        # 1 August after it: registrations, their feed events, the ledger and the concept go;
        # the confirmed melding waits for DUO and stays; the vrijstelling events stay.
        feed_before = await _count(clean_dbs["ingest"], "SELECT count(*) FROM feed_events")
        counts = await purge_ingest(apps["ingest"], following_ends)
        assert counts["registraties"] == len(items)
        assert counts["idempotency_keys"] == 0
        assert 0 < counts["feed_events"] < feed_before
        left_types = await _count(
            clean_dbs["ingest"],
            "SELECT count(*) FROM feed_events WHERE type LIKE '%registratie%'",
        )
        assert left_types == 0
        counts = await purge_melding(apps["melding"], following_ends)
        assert counts["ledger"] == len(items)
        assert counts["meldingen"] == 1
        assert counts["leerlingen"] == 1
        remaining = await _count(clean_dbs["melding"], "SELECT count(*) FROM meldingen")
        assert remaining == 1
        # Running it again changes nothing: the purge is idempotent.
        again = await purge_melding(apps["melding"], following_ends)
        assert not any(again.values())
