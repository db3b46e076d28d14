"""Marks for the evaluator (``te_evalueren``) on PostgreSQL and SQLite, through the real
migrations: a pupil is marked from the earliest changed date, and a mark that already
covers a date is left exactly as it was (not rewritten); the marks the evaluator makes from
the ledger's rows follow the consumer's cursor (ADR 0024)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date, datetime
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import insert, select, text

from verzuimhub.testing import run_sync
from verzuimhub_melding import repository as repo
from verzuimhub_melding.models import LedgerEntry, Leerling, TeEvalueren
from verzuimhub_shared.db import Database
from verzuimhub_shared.migrations import upgrade
from verzuimhub_shared.testing.postgres import PostgresServer


@pytest.fixture(scope="module")
def pg_url(pg: PostgresServer) -> str:
    url = pg.url_for(run_sync(pg.create_database("vzh_test_marks")))
    run_sync(upgrade("verzuimhub_melding", url))
    return url


def pupil(pupil_id: str) -> Leerling:
    return Leerling(
        id=pupil_id,
        pgn_hash=f"h-{pupil_id}",
        pgn_sealed="sealed",
        brin="99AA",
        vestiging="00",
        geboortedatum=date(2014, 1, 1),
        woongemeente="GM0999",
        sector="PO",
        startkwalificatie=None,
        gewijzigd_op=datetime(2026, 1, 1),
    )


@pytest_asyncio.fixture(params=["postgresql", "sqlite"])
async def db(
    request: pytest.FixtureRequest, pg_url: str, tmp_path: Path
) -> AsyncIterator[Database]:
    if request.param == "postgresql":
        url = pg_url
    else:
        url = f"sqlite+aiosqlite:///{tmp_path}/m.db"
        await upgrade("verzuimhub_melding", url)
    database = Database(url)
    async with database.transaction() as session:
        for table in ("te_evalueren", "ledger", "ledger_gemarkeerd", "leerlingen"):
            await session.execute(text(f"DELETE FROM {table}"))
        session.add_all(pupil(i) for i in ("p1", "p2", "p3", "p,4"))
    yield database
    await database.dispose()


async def marks(db: Database) -> dict[str, tuple[date, object, int | None]]:
    """Each mark's date, time of marking, and (PostgreSQL) the row version's xmin."""
    version = "xmin::text::bigint" if db.dialect == "postgresql" else "NULL"
    async with db.transaction() as session:
        rows = await session.execute(
            select(TeEvalueren.leerling_id, TeEvalueren.vanaf, TeEvalueren.gemarkeerd_op)
        )
        versions: dict[str, int | None] = dict(
            (await session.execute(text(f"SELECT leerling_id, {version} FROM te_evalueren"))).all()
        )
    return {r.leerling_id: (r.vanaf, r.gemarkeerd_op, versions[r.leerling_id]) for r in rows}


async def mark(db: Database, changed: dict[str, date]) -> None:
    async with db.transaction() as session:
        await repo.mark_for_evaluation(session, changed)


async def test_a_mark_keeps_the_earliest_date_and_is_not_rewritten_otherwise(
    db: Database,
) -> None:
    await mark(db, {"p1": date(2026, 3, 10), "p2": date(2026, 3, 10)})
    first = await marks(db)
    assert {k: v[0] for k, v in first.items()} == {"p1": date(2026, 3, 10), "p2": date(2026, 3, 10)}

    # p1 changed later than its mark, p2 earlier, p3 for the first time.
    await mark(db, {"p1": date(2026, 3, 12), "p2": date(2026, 3, 2), "p3": date(2026, 3, 5)})
    second = await marks(db)
    assert {k: v[0] for k, v in second.items()} == {
        "p1": date(2026, 3, 10),
        "p2": date(2026, 3, 2),
        "p3": date(2026, 3, 5),
    }
    # The time of marking is the first one: the evaluator's order and bounded wait hold.
    assert second["p1"][1] == first["p1"][1]
    assert second["p2"][1] == first["p2"][1]
    if db.dialect == "postgresql":
        assert second["p1"][2] == first["p1"][2]  # the very same row version
        assert second["p2"][2] != first["p2"][2]  # rewritten with the earlier date


async def test_pupils_are_marked_whatever_their_ids_hold(db: Database) -> None:
    """An id holding a comma (the separator of ``db.text_list``, which the marks' upsert
    used until ADR 0024 made the consumer's marks rare) gets its own mark, as any other."""
    await mark(db, {"p1": date(2026, 3, 10), "p,4": date(2026, 3, 11)})
    await mark(db, {"p2": date(2026, 3, 12), "p3": date(2026, 3, 13)})
    assert {k: v[0] for k, v in (await marks(db)).items()} == {
        "p1": date(2026, 3, 10),
        "p,4": date(2026, 3, 11),
        "p2": date(2026, 3, 12),
        "p3": date(2026, 3, 13),
    }


def entry(rid: str, pupil_id: str, day: int, positie: int) -> dict[str, object]:
    return {
        "registratie_id": rid,
        "leerling_id": pupil_id,
        "versie": 1,
        "datum": date(2026, 3, day),
        "minuten": 60,
        "eenheid": "klokuur",
        "aantal_eenheden": 1.0,
        "alle_lessen_gemist": False,
        "soort": "ongeoorloofd",
        "categorie": None,
        "luxe_verzuim": False,
        "positie": positie,
    }


async def ledger_at(db: Database, cursor: int, *rows: dict[str, object]) -> None:
    """Ledger rows, and the consumer's cursor at ``cursor`` (as its batch commits them)."""
    async with db.transaction() as session:
        await session.execute(text("DELETE FROM feed_cursors"))
        await session.execute(
            text("INSERT INTO feed_cursors VALUES ('ingest', :p, 0, CURRENT_TIMESTAMP)"),
            {"p": cursor},
        )
        if rows:
            await session.execute(insert(LedgerEntry), list(rows))


async def mark_ledger(db: Database, span: int = 1000) -> tuple[bool, int]:
    """One call of the marks from the ledger: whether they reached the cursor, the stand."""
    async with db.transaction() as session:
        done = await repo.mark_ledger_changes(session, "ingest", span)
        stand = (await session.execute(text("SELECT positie FROM ledger_gemarkeerd"))).scalar_one()
    return done, stand


async def waiting(db: Database) -> int:
    async with db.transaction() as session:
        return await repo.waiting_count(session)


LEDGER = (
    entry("r1", "p1", 10, 5),
    entry("r2", "p1", 4, 8),
    entry("r3", "p2", 7, 12),
    entry("r4", "p3", 1, 20),  # a batch not committed yet: past the cursor
)


async def test_the_ledgers_changes_are_marked_up_to_the_consumers_cursor(db: Database) -> None:
    await ledger_at(db, 12, *LEDGER)
    assert await waiting(db) == 3  # the row past the cursor counts too: it is written
    assert await mark_ledger(db) == (True, 12)
    assert {k: v[0] for k, v in (await marks(db)).items()} == {
        "p1": date(2026, 3, 4),  # its earliest changed date
        "p2": date(2026, 3, 7),
    }
    assert await waiting(db) == 3
    assert await mark_ledger(db) == (True, 12)  # nothing new: the stand stays
    await ledger_at(db, 20)  # the batch at 20 committed
    assert await mark_ledger(db) == (True, 20)
    assert {k: v[0] for k, v in (await marks(db)).items()} == {
        "p1": date(2026, 3, 4),
        "p2": date(2026, 3, 7),
        "p3": date(2026, 3, 1),
    }


async def test_the_marks_move_on_a_span_at_a_time(db: Database) -> None:
    await ledger_at(db, 20, *LEDGER)
    assert await mark_ledger(db, span=10) == (False, 10)
    assert set(await marks(db)) == {"p1"}
    assert await mark_ledger(db, span=10) == (True, 20)
    assert set(await marks(db)) == {"p1", "p2", "p3"}


async def test_the_marks_follow_a_cursor_moved_back(db: Database) -> None:
    """A cursor set back (an operator replaying the feed): the stand follows it, and the
    rows the replay writes again are marked, though the stand had passed them."""
    await ledger_at(db, 20, *LEDGER)
    assert await mark_ledger(db) == (True, 20)
    async with db.transaction() as session:
        await session.execute(text("DELETE FROM te_evalueren"))
    await ledger_at(db, 6)
    assert await mark_ledger(db) == (True, 6)
    assert await marks(db) == {}
    async with db.transaction() as session:  # the replay writes r3 again, at 12
        await session.execute(text("UPDATE ledger SET versie = 2 WHERE registratie_id = 'r3'"))
        await session.execute(text("UPDATE feed_cursors SET position = 12"))
    assert await mark_ledger(db) == (True, 12)
    assert {k: v[0] for k, v in (await marks(db)).items()} == {
        "p1": date(2026, 3, 4),  # r2, at 8
        "p2": date(2026, 3, 7),  # r3, at 12
    }


async def test_marks_from_the_ledger_keep_an_earlier_date(db: Database) -> None:
    await mark(db, {"p1": date(2026, 3, 1), "p2": date(2026, 3, 9)})
    before = await marks(db)
    await ledger_at(db, 12, *LEDGER)
    await mark_ledger(db)
    after = await marks(db)
    assert {k: v[0] for k, v in after.items()} == {"p1": date(2026, 3, 1), "p2": date(2026, 3, 7)}
    if db.dialect == "postgresql":
        assert after["p1"][2] == before["p1"][2]  # the very same row version
    assert await waiting(db) == 3


async def test_while_one_replica_moves_the_marks_another_leaves_them(db: Database) -> None:
    if db.dialect != "postgresql":
        pytest.skip("SQLite has one writer at a time")
    await ledger_at(db, 12, *LEDGER)
    await mark_ledger(db)  # the stand's row is made
    await ledger_at(db, 20)
    async with db.transaction() as holding:
        assert await repo.mark_ledger_changes(holding, "ingest", 1000)
        assert await mark_ledger(db) == (True, 12)  # skipped: the stand is locked
    assert await mark_ledger(db) == (True, 20)
    assert set(await marks(db)) == {"p1", "p2", "p3"}


async def test_a_mark_the_evaluator_holds_is_waited_for_and_written_again(db: Database) -> None:
    """The evaluator took p1's mark (its transaction open, evaluating a ledger that may miss
    the rows being marked): the marks from the ledger wait for its commit, then mark p1
    again, so the change is evaluated after all (ADR 0009, ADR 0024)."""
    if db.dialect != "postgresql":
        pytest.skip("SQLite has one writer at a time")
    await mark(db, {"p1": date(2026, 3, 20)})
    await ledger_at(db, 12, *LEDGER)
    async with db.transaction() as evaluating:
        assert await repo.take_marked(evaluating, 10) == {"p1": date(2026, 3, 20)}
        marking = asyncio.create_task(mark_ledger(db))
        await asyncio.sleep(0.3)
        assert not marking.done()  # waiting for the evaluator's transaction
    assert await marking == (True, 12)
    assert {k: v[0] for k, v in (await marks(db)).items()} == {
        "p1": date(2026, 3, 4),
        "p2": date(2026, 3, 7),
    }
