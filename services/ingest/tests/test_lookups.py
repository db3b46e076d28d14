"""Ingest's key lookups probe the index key by key, whatever plan PostgreSQL has cached.

A prepared statement gets a generic plan after five runs, made with what the planner knew
then. Made while ``registraties`` was nearly empty (a fresh database, or before autovacuum's
first ANALYZE after a bulk load), a join of the requested keys to the table was a hash join
over a sequential scan, and it stayed one as the table grew: every registration then read
the whole table."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import text

from verzuimhub.testing import truncate
from verzuimhub_ingest import repository as repo
from verzuimhub_shared.db import Database

GROW = """
INSERT INTO registraties (id, brin, school_registratie_id, versie, vestiging, pgn_hash,
    pgn_sealed, pgn_soort, geboortedatum, woongemeente, sector, datum, minuten, eenheid,
    aantal_eenheden, alle_lessen_gemist, categorie, catalogus_versie, payload_hash,
    ingetrokken, vastgelegd_op, gewijzigd_op)
SELECT 'id-' || g, '99AA', 'sid-' || g, 1, '00', 'hash-' || (g % 5000), 'sealed', 'bsn',
    DATE '2012-01-01', 'GM0363', 'po', DATE '2026-01-05' + (g / 5000), 60, 'klokuur', 1.0,
    false, 'spijbelen', '2026.1', 'ph', false, now(), now()
FROM generate_series(1, 20000) AS g
"""


async def _lookups(session: Any) -> tuple[Any, Any]:
    return await repo.lock_and_day_totals(
        session, [("99AA", "sid-7"), ("99AA", "sid-nope")], [("hash-7", date(2026, 1, 5))]
    )


async def test_lookups_probe_the_index_after_the_table_grew(db_urls: dict[str, str]) -> None:
    await truncate(db_urls["ingest"])
    db = Database(db_urls["ingest"], pool_size=1)  # one connection: one statement cache
    try:
        for _ in range(8):  # the generic plans are made on an empty table
            async with db.transaction() as session:
                await _lookups(session)
        async with db.transaction() as session:
            await session.execute(text(GROW))
        async with db.transaction() as session:
            locked, minutes = await _lookups(session)
            read = (
                await session.execute(
                    text(
                        "SELECT seq_tup_read, idx_tup_fetch FROM pg_stat_xact_user_tables"
                        " WHERE relname = 'registraties'"
                    )
                )
            ).one()
    finally:
        await db.dispose()
        # Its rows are not real ones (placeholder sealed values): leave no test meeting them.
        await truncate(db_urls["ingest"])
    assert set(locked) == {("99AA", "sid-7")}
    assert locked["99AA", "sid-7"].id == "id-7"
    assert minutes == [("id-7", "hash-7", date(2026, 1, 5), 60)]
    assert read.seq_tup_read == 0, f"{read.seq_tup_read} rows read by a sequential scan"
    assert read.idx_tup_fetch <= 4
