"""A batch loads pupil periods by exact key, also before the table has statistics (a fresh
database, a replay). With a ``(period_kind, period)`` index the planner probed that index
for every key and scanned ~700 rows each (1.7 s per batch); migration 0003 dropped it. The
plan may scan or use the primary key, never another index."""

from __future__ import annotations

import re

from sqlalchemy import Table, text

from verzuimhub_shared.db import Database, bulk_insert, json_rows
from verzuimhub_swv_aggregate.models import LeerlingPeriode
from verzuimhub_swv_aggregate.service import PUPIL_PERIODS_BY_KEY

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
    keys = [{k: last[k] for k in ("leerling", "scope", "sector", "period_kind", "period")}]
    try:
        async with db.transaction() as session:
            await bulk_insert(session, TABLE, rows)
        async with db.transaction() as session:
            plan = "\n".join(
                r[0]
                for r in await session.execute(
                    text("EXPLAIN " + str(PUPIL_PERIODS_BY_KEY)), {"rows": json_rows(keys)}
                )
            )
            found = await session.execute(PUPIL_PERIODS_BY_KEY, {"rows": json_rows(keys)})
            assert [r.leerling for r in found] == ["leerling-299"]
    finally:
        await db.dispose()
    assert set(re.findall(r"using (\w+)", plan)) <= {"pk_leerling_perioden"}, plan
