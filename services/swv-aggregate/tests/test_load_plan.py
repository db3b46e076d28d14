"""A batch loads pupil periods by exact key, also before the table has statistics (a fresh
database, a replay). With a ``(period_kind, period)`` index the planner probed that index
for every key and scanned ~700 rows each (1.7 s per batch); migration 0003 dropped it. As
a plain join of the keys, the planner scanned the whole table for every batch (twenty-first
session). The plan probes the primary key for each key: no other index, no scan."""

from __future__ import annotations

import re

from sqlalchemy import Table

from verzuimhub_shared.db import Database, bulk_insert, index_scans_only, pg_fetch_lists
from verzuimhub_swv_aggregate.models import LeerlingPeriode
from verzuimhub_swv_aggregate.service import PUPIL_PERIODS_BY_KEYS

TABLE: Table = LeerlingPeriode.__table__  # type: ignore[assignment]


async def test_pupil_periods_are_read_without_a_misleading_index(
    clean_dbs: dict[str, str],
) -> None:
    db = Database(clean_dbs["swv-aggregate"])
    rows = [
        {
            "leerling": f"leerling-{pupil}",
            "scope": scope,
            "sector": "po",
            "period_kind": "week",
            "period": f"2026-W{week:02d}",
            "registraties": 1,
            "geoorloofd": 60,
            "ongeoorloofd": 0,
            "deelname": 0,
            "gepland": 1500,
        }
        for pupil in range(300)
        for scope in ("NL", "PO-99-01")
        for week in range(1, 41)
    ]
    last = rows[-1]
    key = [[str(last[k])] for k in ("leerling", "scope", "sector", "period_kind", "period")]
    try:
        async with db.transaction() as session:
            await bulk_insert(session, TABLE, rows)
        async with db.transaction() as session:
            async with index_scans_only(session):  # as the service reads them
                explained = await pg_fetch_lists(session, "EXPLAIN " + PUPIL_PERIODS_BY_KEYS, key)
                found = await pg_fetch_lists(session, PUPIL_PERIODS_BY_KEYS, key)
            plan = "\n".join(r[0] for r in explained)
            assert [r["leerling"] for r in found] == ["leerling-299"]
    finally:
        await db.dispose()
    assert set(re.findall(r"using (\w+)", plan)) == {"pk_leerling_perioden"}, plan
    assert "Seq Scan on leerling_perioden" not in plan, plan
