"""The audit log: every person-level read and every forward to DUO is in it, with the trace
id; nothing can change or delete it except the retention purge; an admin can query it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, text
from sqlalchemy.exc import DBAPIError

from verzuimhub.testing import BEVESTIGING, make_bsn, truancy_week
from verzuimhub_melding.models import AUDIT
from verzuimhub_shared import audit
from verzuimhub_shared.db import Database

pytestmark = pytest.mark.postgres


def _trace_id(response: Any) -> str:
    return str(response.headers["traceparent"].split("-")[1])


async def _audit_rows(url: str, **where: str) -> list[dict[str, Any]]:
    db = Database(url)
    try:
        async with db.transaction() as session:
            clauses = " AND ".join(f"{k} = :{k}" for k in where) or "true"
            rows = await session.execute(
                text(f"SELECT * FROM audit_log WHERE {clauses} ORDER BY id"), where
            )
            return [dict(r._mapping) for r in rows]
    finally:
        await db.dispose()


async def test_person_level_reads_and_forwards_are_audited_with_their_trace(
    hub: Any, auth: Any, clean_dbs: dict[str, str]
) -> None:
    school = auth("school", brins=["99AA"])
    gemeente = auth("gemeente", gemeente="GM9901")
    admin = auth("admin")
    await hub.post_registraties(truancy_week(make_bsn(81)))
    await hub.sync()
    listed = await hub.melding.get("/v1/scholen/99AA/meldingen", headers=school)
    [concept] = listed.json()["meldingen"]
    mid = concept["id"]
    overview = await hub.melding.get("/v1/scholen/99AA/leerlingen", headers=school)
    [pupil] = overview.json()["leerlingen"]
    confirmed = await hub.melding.post(
        f"/v1/scholen/99AA/meldingen/{mid}/bevestiging", json=BEVESTIGING, headers=school
    )
    assert confirmed.status_code == 200
    assert await hub.forward() == 1
    gemeente_list = await hub.melding.get("/v1/meldingen", headers=gemeente)
    gemeente_one = await hub.melding.get(f"/v1/meldingen/{mid}", headers=gemeente)
    assert gemeente_one.status_code == 200

    url = clean_dbs["melding"]
    melding_rows = await _audit_rows(url, record_type="melding", record_id=mid)
    by_trace = {r["trace_id"]: r for r in melding_rows}
    for response, purpose in (
        (listed, "verzuimbeleid"),
        (gemeente_list, "leerplichttaak"),
        (gemeente_one, "leerplichttaak"),
    ):
        row = by_trace[_trace_id(response)]
        assert row["action"] == "lezen"
        assert purpose in row["purpose"]
    assert by_trace[_trace_id(gemeente_one)]["organisation"] == "gemeente:GM9901"
    [forward] = [r for r in melding_rows if r["action"] == "doorsturen:indienen"]
    assert forward["subject"] == "systeem"
    assert len(forward["trace_id"] or "") == 32
    [pupil_read] = await _audit_rows(url, record_type="leerling", record_id=pupil["leerlingId"])
    assert pupil_read["trace_id"] == _trace_id(overview)

    # The admin finds all of it by record, and by trace.
    found = await hub.melding.get(
        "/v1/audit", params={"recordType": "melding", "recordId": mid}, headers=admin
    )
    assert found.status_code == 200, found.text
    actions = [r["action"] for r in found.json()["regels"]]
    assert actions.count("doorsturen:indienen") == 1
    assert actions.count("lezen") == len(melding_rows) - 1
    traced = await hub.melding.get(
        "/v1/audit", params={"traceId": forward["trace_id"]}, headers=admin
    )
    assert [r["action"] for r in traced.json()["regels"]] == ["doorsturen:indienen"]
    # Looking at the log is logged too.
    assert await _audit_rows(url, record_type="audit_log")


async def test_the_admin_query_pages_with_a_cursor_and_filters_by_time(
    app_client: Any, auth: Any, clean_dbs: dict[str, str]
) -> None:
    db = Database(clean_dbs["melding"])
    base = datetime(2026, 1, 5, 12, tzinfo=UTC)
    try:
        async with db.transaction() as session:
            await session.execute(
                insert(AUDIT),
                [
                    {
                        "at": base + timedelta(hours=i),
                        "subject": "s",
                        "organisation": "gemeente:GM9901",
                        "action": "lezen",
                        "record_type": "melding",
                        "record_id": f"m-{i % 2}",
                        "purpose": "p",
                        "trace_id": None,
                    }
                    for i in range(7)
                ],
            )
    finally:
        await db.dispose()
    admin = auth("admin")
    seen: list[str] = []
    async with app_client("melding") as client:
        params: dict[str, Any] = {"recordType": "melding", "recordId": "m-0", "limit": 2}
        while True:
            page = (await client.get("/v1/audit", params=params, headers=admin)).json()
            seen += [r["at"] for r in page["regels"]]
            if not page["volgende"]:
                break
            params["cursor"] = page["volgende"]
        later = await client.get(
            "/v1/audit",
            params={"recordType": "melding", "vanaf": (base + timedelta(hours=4)).isoformat()},
            headers=admin,
        )
        bad = await client.get("/v1/audit", params={"recordId": "m-0"}, headers=admin)
    assert len(seen) == 4  # hours 0, 2, 4, 6
    assert seen == sorted(seen)
    assert [r["recordId"] for r in later.json()["regels"]] == ["m-0", "m-1", "m-0"]
    assert bad.status_code == 400


async def _execute(db: Database, statements: list[str]) -> None:
    async with db.transaction() as session:
        for statement in statements:
            await session.execute(text(statement))


async def _purge(db: Database, before: datetime) -> None:
    async with db.transaction() as session:
        await audit.purge_before(session, AUDIT, before)


async def test_no_update_or_delete_except_the_retention_purge_of_old_rows(
    clean_dbs: dict[str, str],
) -> None:
    db = Database(clean_dbs["melding"])
    now = datetime.now(UTC)
    row = {
        "subject": "s",
        "organisation": "o",
        "action": "lezen",
        "record_type": "melding",
        "record_id": "x",
        "purpose": "p",
        "trace_id": None,
    }
    try:
        async with db.transaction() as session:
            await session.execute(
                insert(AUDIT),
                [row | {"at": now - timedelta(days=3000)}, row | {"at": now - timedelta(days=30)}],
            )
        for statement in (
            "UPDATE audit_log SET purpose = 'x'",
            "DELETE FROM audit_log",
            # Even inside a transaction that claims to be the purge: only old rows may go.
            "SET LOCAL verzuimhub.audit_purge = 'on'; DELETE FROM audit_log",
            "SET LOCAL verzuimhub.audit_purge = 'on'; UPDATE audit_log SET purpose = 'x'",
        ):
            with pytest.raises(DBAPIError, match="append-only"):
                await _execute(db, statement.split("; "))
        async with db.transaction() as session:
            deleted = await audit.purge_before(session, AUDIT, now - timedelta(days=5 * 365))
        assert deleted == 1
        # The hard floor: not even the purge takes rows under a year old.
        with pytest.raises(DBAPIError, match="append-only"):
            await _purge(db, now)
        async with db.transaction() as session:
            left = (await session.execute(text("SELECT count(*) FROM audit_log"))).scalar_one()
        assert left == 1
    finally:
        await db.dispose()


def test_the_code_has_no_other_update_or_delete_path_for_the_audit_log() -> None:
    roots = [Path(__file__).parents[3] / p for p in ("shared/src", "services", "src")]
    offenders = []
    for root in roots:
        for path in root.rglob("*.py"):
            if "tests" in path.parts or "migrations" in path.parts:
                continue
            source = path.read_text()
            for needle in ("update(AUDIT", "delete(AUDIT", "UPDATE audit_log", "DELETE FROM audit"):
                if needle in source:
                    offenders.append(f"{path}: {needle}")
            if path.name != "audit.py" and "delete(table" in source and "audit" in source:
                offenders.append(f"{path}: delete(table) near audit")
    assert not offenders, offenders
