"""Melding's lookups by a list of keys read through the indexes, whatever plan PostgreSQL
has cached.

A prepared statement gets a generic plan after five runs, made with what the planner knew
then. As ``key = ANY(:keys)``, made while the tables were nearly empty (a fresh database, a
replay before autovacuum's first ANALYZE), it was a sequential scan, and it stayed one as
the tables grew: in the benchmark's replay the evaluator read the whole ledger, the pupils
and the marks for every 500 pupils it evaluated. Here the old code read all 5,000
meldingen to find one pupil's."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import text

from verzuimhub.testing import truncate
from verzuimhub_melding import repository as repo
from verzuimhub_shared.db import Database

GROW = (
    """INSERT INTO leerlingen (id, pgn_hash, pgn_sealed, brin, vestiging, geboortedatum,
        woongemeente, sector, startkwalificatie, gewijzigd_op)
    SELECT 'l-' || g, 'h-' || g, 'sealed', '99AA', '00', DATE '2012-01-01', 'GM0363', 'po',
        NULL, now()
    FROM generate_series(1, 5000) AS g""",
    """INSERT INTO ledger (registratie_id, leerling_id, versie, datum, minuten, eenheid,
        aantal_eenheden, alle_lessen_gemist, soort, categorie, luxe_verzuim, positie)
    SELECT 'r-' || g, 'l-' || (g % 5000 + 1), 1, DATE '2026-01-05' + (g / 5000), 60,
        'klokuur', 1.0, false, 'ongeoorloofd', NULL, false, g
    FROM generate_series(1, 20000) AS g""",
    """INSERT INTO meldingen (id, leerling_id, brin, vestiging, woongemeente, sector, soort,
        begindatum, einddatum, getelde_minuten, herhaalmelding, status, dagen,
        alle_lessen_verzuimd, aangemaakt_op, gewijzigd_op)
    SELECT 'm-' || g, 'l-' || g, '99AA', '00', 'GM0363', 'po', 'V3', DATE '2026-01-05',
        DATE '2026-01-30', 960, false, 'concept', '[]', false, now(), now()
    FROM generate_series(1, 5000) AS g""",
    """INSERT INTO te_evalueren (leerling_id, vanaf, gemarkeerd_op)
    SELECT 'l-' || g, DATE '2026-01-05', now() - g * interval '1 second'
    FROM generate_series(1, 5000) AS g""",
)
TABLES = ("leerlingen", "ledger", "meldingen", "te_evalueren")
#: Index scans of the ledger not yet handed to the statistics collector: this transaction's
#: and maybe some before it (a backend hands them in at most once a second), so the tests
#: take differences.
LEDGER_PROBES = "SELECT idx_scan FROM pg_stat_xact_user_tables WHERE relname = 'ledger'"


async def _lookups(session: Any) -> dict[str, Any]:
    await repo.delete_ledger(session, ["r-9", "r-nope"])
    await repo.mark_ledger_changes(session, "ingest", 10)  # ten positions further each time
    return {
        "versions": await repo.ledger_versions(session, ["r-7", "r-nope"]),
        "by_key": await repo.leerlingen_by_key(session, [("h-7", "99AA"), ("h-7", "00XX")]),
        "ledger": await repo.ledger_entries(session, ["l-8"], date(2026, 1, 1)),
        "pupils": await repo.leerlingen(session, ["l-7", "l-nope"]),
        "meldingen": await repo.meldingen_of(session, ["l-7"]),
        "taken": await repo.take_marked(session, 2),
    }


async def test_lookups_probe_the_indexes_after_the_tables_grew(db_urls: dict[str, str]) -> None:
    await truncate(db_urls["melding"])
    db = Database(db_urls["melding"], pool_size=1)  # one connection: one statement cache
    try:
        async with db.transaction() as session:  # a consumer far ahead of the marks
            await session.execute(
                text("INSERT INTO feed_cursors VALUES ('ingest', 100000, 100000, now())")
            )
        for _ in range(8):  # the generic plans are made on empty tables
            async with db.transaction() as session:
                await _lookups(session)
        async with db.transaction() as session:
            for statement in GROW:
                await session.execute(text(statement))
        async with db.transaction() as session:
            found = await _lookups(session)
            read = {
                r.relname: (r.seq_tup_read, r.idx_tup_fetch)
                for r in await session.execute(
                    text(
                        "SELECT relname, seq_tup_read, idx_tup_fetch"
                        " FROM pg_stat_xact_user_tables WHERE relname = ANY(:tables)"
                    ),
                    {"tables": list(TABLES)},
                )
            }
            remaining = await session.execute(
                text("SELECT count(*) FROM ledger WHERE registratie_id IN ('r-9', 'r-10')")
            )
            assert remaining.scalar_one() == 1
            stand = await session.execute(text("SELECT positie FROM ledger_gemarkeerd"))
            assert stand.scalar_one() == 90  # the marks moved on 10 positions per call
    finally:
        await db.dispose()
        # Its rows are not real ones (placeholder sealed values): leave no test meeting them.
        await truncate(db_urls["melding"])
    assert {k: (v[0], v[1]) for k, v in found["versions"].items()} == {"r-7": (1, "l-8")}
    assert [(h, b) for h, b in found["by_key"]] == [("h-7", "99AA")]
    assert found["by_key"]["h-7", "99AA"][0] == "l-7"
    assert [(leerling, e.datum) for leerling, e in found["ledger"]] == [
        ("l-8", date(2026, 1, 5)),  # r-7
        ("l-8", date(2026, 1, 6)),  # r-5007
        ("l-8", date(2026, 1, 7)),  # r-10007
        ("l-8", date(2026, 1, 8)),  # r-15007
    ]
    assert list(found["pupils"]) == ["l-7"]
    assert [m.id for m in found["meldingen"]] == ["m-7"]
    assert found["taken"] == {"l-5000": date(2026, 1, 5), "l-4999": date(2026, 1, 5)}
    seq = {name: read.get(name, (0, 0))[0] for name in TABLES}
    assert seq == dict.fromkeys(TABLES, 0), f"rows read by sequential scans: {seq}"


async def test_only_registrations_up_to_the_ledgers_highest_are_looked_up(
    db_urls: dict[str, str],
) -> None:
    """A registration above the ledger's highest id cannot be in it: it costs no probe of
    the index (ADR 0028). New registrations are above it (time-ordered ids, ADR 0013);
    corrections of older ones are not, and are still found."""
    await truncate(db_urls["melding"])
    db = Database(db_urls["melding"], pool_size=1)
    try:
        async with db.transaction() as session:
            await session.execute(text(GROW[0]))
            await session.execute(
                text(GROW[1].replace("'r-' || g", "'r-' || lpad(g::text, 5, '0')"))
            )
        below = ["r-00007", "r-12345", "r-00000", "r-1234"]  # two in the ledger, two not
        above = [f"r-{n:05d}" for n in range(20001, 20501)] + ["r-nope", "s-00001"]
        assert len(above) >= repo.BOUNDED_FROM
        async with db.transaction() as session:
            before = await session.scalar(text(LEDGER_PROBES)) or 0
            found = await repo.ledger_versions(session, [*above, *below])
            probes = (await session.scalar(text(LEDGER_PROBES)) or 0) - before
        async with db.transaction() as session:  # few: probed without reading the highest
            before = await session.scalar(text(LEDGER_PROBES)) or 0
            assert await repo.ledger_versions(session, below[:2]) == {
                k: v for k, v in found.items() if k in below[:2]
            }
            few = (await session.scalar(text(LEDGER_PROBES)) or 0) - before
        async with db.transaction() as session:
            await session.execute(text("DELETE FROM ledger"))
            assert await repo.ledger_versions(session, [*above, *below]) == {}
    finally:
        await db.dispose()
        await truncate(db_urls["melding"])
    assert {k: v[:2] for k, v in found.items()} == {"r-00007": (1, "l-8"), "r-12345": (1, "l-2346")}
    # Each key of ``= ANY`` is a scan of its own (PostgreSQL 15, the project's; 17 probes
    # an array in one scan); the ledger's highest id is one more.
    assert probes <= len(below) + 1, f"{probes} probes of the ledger"
    assert few == 2
