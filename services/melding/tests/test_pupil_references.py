"""The ledger's and the marks' reference to the pupil, checked by triggers (ADR 0021): what
the foreign keys guaranteed, for every writer, with a purge running beside the consumer.

The concurrent cases are the point of the mechanism. The consumer locks each pupil its rows
refer to; a purge that wants to delete one waits for it and then fails, and a batch that
refers to a pupil being deleted fails once the delete commits. Either way no ledger row is
left without its pupil, and the failed transaction's retry does the right thing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from verzuimhub.services import service
from verzuimhub.testing import eventually, truncate
from verzuimhub_melding import repository as repo
from verzuimhub_shared.db import COPY_MIN_ROWS, Database
from verzuimhub_shared.migrations import upgrade

PUPIL = (
    "INSERT INTO leerlingen (id, pgn_hash, pgn_sealed, brin, vestiging, geboortedatum,"
    " woongemeente, sector, startkwalificatie, gewijzigd_op)"
    " VALUES ('{id}', 'h-{id}', 'sealed', '99AA', '00', '2012-01-01', 'GM0363', 'po',"
    " NULL, CURRENT_TIMESTAMP)"
)


def ledger_row(registratie_id: str, leerling_id: str) -> tuple[Any, ...]:
    """In ``repo.LEDGER_COLUMNS`` order."""
    return (registratie_id, leerling_id, 1, date(2026, 1, 5), 60, "klokuur", 1.0, False,
            "ongeoorloofd", None, False, 1)  # fmt: skip


@pytest_asyncio.fixture
async def dsn(db_urls: dict[str, str]) -> AsyncIterator[str]:
    """Melding's database, emptied, holding pupils p1 and p2 (p1 with a ledger row)."""
    await truncate(db_urls["melding"])
    dsn = db_urls["melding"].replace("postgresql+asyncpg", "postgresql")
    conn = await asyncpg.connect(dsn)
    try:
        for pupil in ("p1", "p2"):
            await conn.execute(PUPIL.format(id=pupil))
        await conn.copy_records_to_table(
            "ledger", records=[ledger_row("r1", "p1")], columns=repo.LEDGER_COLUMNS
        )
    finally:
        await conn.close()
    yield dsn


async def _refused(conn: asyncpg.Connection, sql: str, *args: Any) -> str:
    with pytest.raises(asyncpg.ForeignKeyViolationError) as refused:
        await conn.execute(sql, *args)
    return str(refused.value.detail or refused.value)


async def test_a_ledger_row_needs_its_pupil_whichever_way_it_is_written(
    dsn: str, db_urls: dict[str, str]
) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        with pytest.raises(asyncpg.ForeignKeyViolationError) as copied:
            await conn.copy_records_to_table(
                "ledger",
                records=[ledger_row("r2", "p2"), ledger_row("r3", "p-nope")],
                columns=repo.LEDGER_COLUMNS,
            )
        assert "p-nope" in str(copied.value.detail)
        assert "p-nope" in await _refused(
            conn,
            "INSERT INTO ledger SELECT 'r4', 'p-nope', versie, datum, minuten, eenheid,"
            " aantal_eenheden, alle_lessen_gemist, soort, categorie, luxe_verzuim, positie"
            " FROM ledger WHERE registratie_id = 'r1'",
        )
        await _refused(conn, "UPDATE ledger SET leerling_id = 'p-nope' WHERE registratie_id = 'r1'")
        # Allowed: a row whose pupil exists, and a new version that moves it to another.
        await conn.copy_records_to_table(
            "ledger", records=[ledger_row("r2", "p2")], columns=repo.LEDGER_COLUMNS
        )
        await conn.execute("UPDATE ledger SET leerling_id = 'p2' WHERE registratie_id = 'r1'")
    finally:
        await conn.close()
    # The consumer's own path, through the repository: an update, an insert of a few rows
    # (one INSERT) and of a batch's (COPY, from db.COPY_MIN_ROWS rows on).
    batch = [ledger_row(f"b{i}", "p1") for i in range(COPY_MIN_ROWS)] + [ledger_row("b", "p-")]
    db = Database(db_urls["melding"])
    try:
        for inserts, updates in (([], [ledger_row("r2", "p-")]), (batch[-2:], []), (batch, [])):
            with pytest.raises(IntegrityError):
                async with db.transaction() as session:
                    await repo.upsert_ledger(session, inserts, updates)
    finally:
        await db.dispose()


async def test_a_mark_needs_its_pupil_and_keeps_it(dsn: str, db_urls: dict[str, str]) -> None:
    db = Database(db_urls["melding"])
    try:
        with pytest.raises(IntegrityError):
            async with db.transaction() as session:
                await repo.mark_for_evaluation(session, {"p-nope": date(2026, 1, 5)})
        async with db.transaction() as session:  # a new mark, then an earlier date for it
            await repo.mark_for_evaluation(session, {"p1": date(2026, 1, 5)})
            await repo.mark_for_evaluation(
                session, {"p1": date(2026, 1, 1), "p2": date(2026, 1, 1)}
            )
    finally:
        await db.dispose()
    conn = await asyncpg.connect(dsn)
    try:
        assert await conn.fetch("SELECT leerling_id, vanaf FROM te_evalueren ORDER BY 1") == [
            ("p1", date(2026, 1, 1)),
            ("p2", date(2026, 1, 1)),
        ]
        await _refused(conn, "UPDATE te_evalueren SET leerling_id = 'p3'")
    finally:
        await conn.close()


async def test_a_referenced_pupil_is_not_deleted_and_its_id_never_changes(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        assert "p1" in await _refused(conn, "DELETE FROM leerlingen WHERE id = 'p1'")
        await conn.execute("INSERT INTO te_evalueren VALUES ('p2', DATE '2026-01-05', now())")
        assert "p2" in await _refused(conn, "DELETE FROM leerlingen WHERE id = 'p2'")
        await _refused(conn, "DELETE FROM leerlingen")
        await _refused(conn, "UPDATE leerlingen SET id = 'p9' WHERE id = 'p1'")
        await conn.execute("UPDATE leerlingen SET woongemeente = 'GM0344'")  # not a key
        await conn.execute("DELETE FROM te_evalueren")
        assert await conn.execute("DELETE FROM leerlingen WHERE id = 'p2'") == "DELETE 1"
        assert await conn.fetchval("SELECT count(*) FROM leerlingen") == 1
    finally:
        await conn.close()


async def _waiting_for_a_lock(observer: asyncpg.Connection, pid: int) -> bool:
    return bool(
        await observer.fetchval(
            "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1", pid
        )
    )


async def test_a_purge_waits_for_a_batch_that_refers_to_the_pupil_then_fails(dsn: str) -> None:
    consumer, purge, observer = [await asyncpg.connect(dsn) for _ in range(3)]
    try:
        batch = consumer.transaction()
        await batch.start()
        await consumer.copy_records_to_table(
            "ledger", records=[ledger_row("r2", "p2")], columns=repo.LEDGER_COLUMNS
        )  # p2 is locked now
        delete = asyncio.create_task(purge.execute("DELETE FROM leerlingen WHERE id = 'p2'"))
        await eventually(lambda: _waiting_for_a_lock(observer, purge.get_server_pid()))
        await batch.commit()
        with pytest.raises(asyncpg.ForeignKeyViolationError):
            await delete
        assert await observer.fetch(
            "SELECT e.registratie_id, l.id FROM ledger AS e"
            " LEFT JOIN leerlingen AS l ON l.id = e.leerling_id ORDER BY 1"
        ) == [("r1", "p1"), ("r2", "p2")]
    finally:
        for conn in (consumer, purge, observer):
            await conn.close()


async def test_a_batch_that_refers_to_a_pupil_being_deleted_fails(dsn: str) -> None:
    consumer, purge, observer = [await asyncpg.connect(dsn) for _ in range(3)]
    try:
        deletion = purge.transaction()
        await deletion.start()
        assert await purge.execute("DELETE FROM leerlingen WHERE id = 'p2'") == "DELETE 1"
        copy = asyncio.create_task(
            consumer.copy_records_to_table(
                "ledger", records=[ledger_row("r2", "p2")], columns=repo.LEDGER_COLUMNS
            )
        )
        await eventually(lambda: _waiting_for_a_lock(observer, consumer.get_server_pid()))
        await deletion.commit()
        with pytest.raises(asyncpg.ForeignKeyViolationError) as refused:
            await copy
        assert "p2" in str(refused.value.detail)
        assert await observer.fetch("SELECT registratie_id FROM ledger") == [("r1",)]
    finally:
        for conn in (consumer, purge, observer):
            await conn.close()


async def test_pupils_are_deleted_in_read_committed_only(dsn: str) -> None:
    """The referenced side's check needs a snapshot taken after the DELETE waited; a
    REPEATABLE READ transaction would check with its first one."""
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction(isolation="repeatable_read"):
            with pytest.raises(asyncpg.FeatureNotSupportedError):
                await conn.execute("DELETE FROM leerlingen WHERE id = 'p2'")
        async with conn.transaction(isolation="repeatable_read"):
            await conn.execute("DELETE FROM leerlingen WHERE id = 'nobody'")  # nothing deleted
    finally:
        await conn.close()


async def test_the_references_are_checked_on_sqlite_too(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'melding.db'}"
    await upgrade(service("melding").migrations_package or "", url)
    db = Database(url)
    refusals = [
        "INSERT INTO ledger VALUES ('r2', 'p-nope', 1, '2026-01-05', 60, 'klokuur', 1.0, 0,"
        " 'ongeoorloofd', NULL, 0, 1)",
        "UPDATE ledger SET leerling_id = 'p-nope'",
        "INSERT INTO te_evalueren VALUES ('p-nope', '2026-01-05', CURRENT_TIMESTAMP)",
        "UPDATE te_evalueren SET leerling_id = 'p2'",
        "DELETE FROM leerlingen WHERE id = 'p1'",
        "UPDATE leerlingen SET id = 'p9' WHERE id = 'p2'",
    ]
    try:
        async with db.transaction() as session:
            for pupil in ("p1", "p2"):
                await session.execute(text(PUPIL.format(id=pupil)))
            await repo.upsert_ledger(session, [ledger_row("r1", "p1")], [])
            await repo.mark_for_evaluation(session, {"p1": date(2026, 1, 5)})
        for sql in refusals:
            with pytest.raises(IntegrityError, match="FOREIGN KEY"):
                async with db.transaction() as session:
                    await session.execute(text(sql))
        async with db.transaction() as session:
            await session.execute(text("UPDATE ledger SET leerling_id = 'p2'"))
            await session.execute(text("DELETE FROM te_evalueren"))
            await session.execute(text("DELETE FROM leerlingen WHERE id = 'p1'"))
    finally:
        await db.dispose()
