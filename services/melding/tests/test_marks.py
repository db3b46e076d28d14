"""Marks for the evaluator (``te_evalueren``) on PostgreSQL and SQLite, through the real
migrations: a pupil is marked from the earliest changed date, and a mark that already
covers a date is left exactly as it was (not rewritten)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, datetime
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from verzuimhub.testing import run_sync
from verzuimhub_melding import repository as repo
from verzuimhub_melding.models import Leerling, TeEvalueren
from verzuimhub_shared.db import COPY_MIN_ROWS, Database
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
        await session.execute(text("DELETE FROM te_evalueren"))
        await session.execute(text("DELETE FROM leerlingen"))
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
    """Ids go to PostgreSQL as one string when they can (``db.text_list``); an id holding
    the separator sends them as an array, and each pupil gets its own mark."""
    await mark(db, {"p1": date(2026, 3, 10), "p,4": date(2026, 3, 11)})
    await mark(db, {"p2": date(2026, 3, 12), "p3": date(2026, 3, 13)})
    assert {k: v[0] for k, v in (await marks(db)).items()} == {
        "p1": date(2026, 3, 10),
        "p,4": date(2026, 3, 11),
        "p2": date(2026, 3, 12),
        "p3": date(2026, 3, 13),
    }


#: Enough new pupils for their marks to be copied with ``COPY`` on PostgreSQL.
NEW = [f"n{i}" for i in range(COPY_MIN_ROWS + 8)]


async def test_new_pupils_marks_are_copied_and_the_rest_upserted(db: Database) -> None:
    await mark(db, {"p1": date(2026, 3, 10), "p2": date(2026, 3, 10)})
    async with db.transaction() as session:  # as the feed consumer: pupils, then marks
        session.add_all(pupil(i) for i in NEW)
        await session.flush()
        changed = {i: date(2026, 3, 1 + n % 20) for n, i in enumerate(NEW)}
        changed |= {"p1": date(2026, 3, 2), "p2": date(2026, 3, 12)}
        await repo.mark_for_evaluation(session, changed, [*NEW, "not-changed"])
    assert {k: v[0] for k, v in (await marks(db)).items()} == changed | {"p2": date(2026, 3, 10)}


@pytest.mark.parametrize("count", [1, len(NEW)])
async def test_a_new_pupils_mark_that_is_there_already_fails(db: Database, count: int) -> None:
    async with db.transaction() as session:
        session.add_all(pupil(i) for i in NEW)
    changed = dict.fromkeys(NEW[:count], date(2026, 3, 10))
    await mark(db, changed)
    with pytest.raises(IntegrityError):
        async with db.transaction() as session:
            await repo.mark_for_evaluation(session, changed, NEW[:count])


async def test_a_copied_mark_needs_its_pupil(db: Database) -> None:
    with pytest.raises(IntegrityError):
        async with db.transaction() as session:
            await repo.mark_for_evaluation(session, dict.fromkeys(NEW, date(2026, 3, 10)), NEW)
    assert await marks(db) == {}
