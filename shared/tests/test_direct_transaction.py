"""``Database.direct_transaction``: a transaction on a connection of the engine's pool with
no ORM session (ADR 0017). It commits or rolls back as ``Database.transaction`` does, never
gives a connection back in the middle of a transaction, and meets a dropped connection as
a session does: SQLAlchemy's error flagged ``connection_invalidated``, the pool's older
connections replaced."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from sqlalchemy import Column, Integer, MetaData, Table, Text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from verzuimhub.testing import eventually, run_sync
from verzuimhub_shared.db import (
    Database,
    DirectTransaction,
    copy_rows,
    insert_statement,
    pg_fetch,
    send_last,
)
from verzuimhub_shared.testing.postgres import PostgresServer


@pytest.fixture(scope="module")
def pg_url(pg: PostgresServer) -> str:
    return pg.url_for(run_sync(pg.create_database("vzh_test_direct")))


@pytest_asyncio.fixture
async def db(pg_url: str) -> AsyncIterator[Database]:
    database = Database(pg_url)
    async with database.direct_transaction() as tx:
        await pg_fetch(tx, "DROP TABLE IF EXISTS notes")
        await pg_fetch(tx, "CREATE TABLE notes (n integer PRIMARY KEY)")
    try:
        yield database
    finally:
        await database.dispose()


async def _notes(db: Database) -> list[int]:
    async with db.direct_transaction() as tx:
        return [row[0] for row in await pg_fetch(tx, "SELECT n FROM notes ORDER BY n")]


async def _terminate(pg: PostgresServer, pids: set[int]) -> None:
    admin = await asyncpg.connect(pg.dsn)
    try:
        await admin.fetchval("SELECT count(pg_terminate_backend(p)) FROM unnest($1::int[]) p", pids)
    finally:
        await admin.close()


async def test_it_commits_when_the_block_succeeds_and_rolls_back_when_it_raises(
    db: Database,
) -> None:
    async with db.direct_transaction() as tx:
        assert isinstance(tx, DirectTransaction)  # no session on PostgreSQL
        await pg_fetch(tx, "INSERT INTO notes VALUES (1)")

    async def insert_then_fail() -> None:
        async with db.direct_transaction() as tx:
            await pg_fetch(tx, "INSERT INTO notes VALUES (2)")
            raise RuntimeError("later in the same unit of work")

    with pytest.raises(RuntimeError):
        await insert_then_fail()
    assert await _notes(db) == [1]
    # The connection went back to the pool and serves the next transaction.
    async with db.direct_transaction() as tx:
        await pg_fetch(tx, "INSERT INTO notes VALUES (3)")
    assert await _notes(db) == [1, 3]


async def test_a_connection_cancelled_in_its_commit_is_not_given_back(
    db: Database, pg: PostgresServer
) -> None:
    """The request is cancelled while its COMMIT runs (here: held up by a deferred
    trigger). Whatever state that leaves the connection in, the pool must not hand it to
    the next transaction: that one works, and no backend stays in a transaction."""
    async with db.direct_transaction() as tx:
        await pg_fetch(
            tx,
            "CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN PERFORM pg_sleep(2); RETURN NULL; END $$",
        )
        await pg_fetch(
            tx,
            "CREATE CONSTRAINT TRIGGER slow AFTER INSERT ON notes DEFERRABLE INITIALLY "
            "DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit()",
        )
    pids: set[int] = set()

    async def insert() -> None:
        async with db.direct_transaction() as tx:
            assert isinstance(tx, DirectTransaction)
            pids.add(tx.connection.get_server_pid())
            await pg_fetch(tx, "INSERT INTO notes VALUES (7)")

    task = asyncio.create_task(insert())
    admin = await asyncpg.connect(pg.dsn)
    try:

        async def committing() -> bool:  # in the COMMIT, in the trigger's sleep
            query = await admin.fetchval(
                "SELECT query FROM pg_stat_activity WHERE pid = ANY($1::int[]) "
                "AND state = 'active'",
                list(pids),
            )
            return bool(query and query.upper().startswith("COMMIT"))

        await eventually(committing)
    finally:
        await admin.close()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(3):  # the pool's connections, in turn
        async with db.direct_transaction() as tx:
            assert isinstance(tx, DirectTransaction)
            assert await pg_fetch(tx, "SELECT txid_current_if_assigned()") == [(None,)]
    admin = await asyncpg.connect(pg.dsn)
    try:
        states = await admin.fetch(
            "SELECT state FROM pg_stat_activity WHERE pid = ANY($1::int[])", list(pids)
        )
    finally:
        await admin.close()
    assert all(not row["state"].endswith("in transaction") for row in states), states


async def test_a_dropped_connection_is_reported_as_sqlalchemy_reports_it_and_replaced(
    db: Database, pg: PostgresServer
) -> None:
    """The server drops every connection (a restart): the first transaction fails with
    ``connection_invalidated`` (the services answer 503 with Retry-After), and the next one
    works although the pool held several connections made before the restart."""
    pids: set[int] = set()
    all_held = asyncio.Event()

    async def hold() -> None:
        async with db.direct_transaction() as tx:
            assert isinstance(tx, DirectTransaction)
            pids.add(tx.connection.get_server_pid())
            if len(pids) == 3:
                all_held.set()
            await all_held.wait()  # three connections at once

    await asyncio.gather(*(hold() for _ in range(3)))  # three idle in the pool now
    await _terminate(pg, pids)

    with pytest.raises(DBAPIError) as failed:
        async with db.direct_transaction() as tx:
            await pg_fetch(tx, "SELECT 1")
    assert failed.value.connection_invalidated
    async with db.direct_transaction() as tx:
        assert await pg_fetch(tx, "SELECT 2") == [(2,)]
        assert isinstance(tx, DirectTransaction)
        assert tx.connection.get_server_pid() not in pids


async def test_an_unreachable_server_is_reported_as_a_lost_connection() -> None:
    database = Database("postgresql+asyncpg://postgres@127.0.0.1:1/postgres")  # nobody there
    try:
        with pytest.raises(DBAPIError) as failed:
            async with database.direct_transaction():
                pass
        assert failed.value.connection_invalidated
    finally:
        await database.dispose()


async def test_elsewhere_it_is_a_session(tmp_path: Path) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path}/d.db")
    try:
        async with database.direct_transaction() as tx:
            assert isinstance(tx, AsyncSession)
    finally:
        await database.dispose()


async def test_a_failing_commit_is_reported_as_sqlalchemy_reports_it(db: Database) -> None:
    """A check deferred to the COMMIT fails there: SQLAlchemy's ``IntegrityError``, nothing
    stored, and the connection serves the next transaction."""
    async with db.direct_transaction() as tx:
        await pg_fetch(tx, "ALTER TABLE notes DROP CONSTRAINT notes_pkey")
        await pg_fetch(tx, "ALTER TABLE notes ADD UNIQUE (n) DEFERRABLE INITIALLY DEFERRED")

    async def twice() -> None:
        async with db.direct_transaction() as tx:
            await pg_fetch(tx, "INSERT INTO notes VALUES (5), (5)")  # checked at COMMIT

    with pytest.raises(IntegrityError):
        await twice()
    assert await _notes(db) == []


async def test_a_statement_sent_with_the_commit_is_written_by_it(db: Database) -> None:
    """``send_with_commit``: one round trip with the COMMIT. The transaction's own
    statements do not see it; once committed, everyone does."""
    async with db.direct_transaction() as tx:
        assert isinstance(tx, DirectTransaction)
        await pg_fetch(tx, "INSERT INTO notes VALUES (1)")
        tx.send_with_commit("INSERT INTO notes VALUES (2)")
        assert [row[0] for row in await pg_fetch(tx, "SELECT n FROM notes")] == [1]
    assert await _notes(db) == [1, 2]


async def test_a_statement_sent_with_the_commit_fails_the_commit(db: Database) -> None:
    """Its failure is the commit's: SQLAlchemy's error, nothing of the transaction stored,
    and the connection serves the next transaction."""
    async with db.direct_transaction() as tx:
        await pg_fetch(tx, "INSERT INTO notes VALUES (1)")

    async def conflicting() -> None:
        async with db.direct_transaction() as tx:
            assert isinstance(tx, DirectTransaction)
            await pg_fetch(tx, "INSERT INTO notes VALUES (2)")
            tx.send_with_commit("INSERT INTO notes VALUES (1)")  # already there

    with pytest.raises(IntegrityError):
        await conflicting()
    assert await _notes(db) == [1]
    async with db.direct_transaction() as tx:
        await pg_fetch(tx, "INSERT INTO notes VALUES (3)")
    assert await _notes(db) == [1, 3]


async def test_when_the_block_raises_what_waits_for_the_commit_is_not_sent(db: Database) -> None:
    async def failing() -> None:
        async with db.direct_transaction() as tx:
            assert isinstance(tx, DirectTransaction)
            tx.send_with_commit("INSERT INTO notes VALUES (4)")
            raise RuntimeError("later in the same unit of work")

    with pytest.raises(RuntimeError):
        await failing()
    assert await _notes(db) == []


LABELS = Table("labels", MetaData(), Column("n", Integer, primary_key=True), Column("label", Text))


async def test_the_last_write_goes_with_the_commit_unless_it_holds_a_dollar(db: Database) -> None:
    """``send_last`` writes a few rows with the COMMIT, their JSON written into the
    statement dollar-quoted. A document with a ``$`` in it could end that quoted string
    early: it refuses those rows, and they are written at once instead, as parameters."""
    async with db.direct_transaction() as tx:
        await pg_fetch(tx, "DROP TABLE IF EXISTS labels")
        await pg_fetch(tx, "CREATE TABLE labels (n integer PRIMARY KEY, label text)")
    tricky = 'it\'s "quoted", back\\slashed, $$ and $rows$ too; DROP TABLE labels; --'
    for n, label in enumerate(["plain 'quotes' and \\ backslashes; --", tricky]):
        async with db.direct_transaction() as tx:
            written = [{"n": n, "label": label}]
            if not send_last(tx, insert_statement(LABELS, ("n", "label")), written):
                await copy_rows(tx, LABELS, written)
            seen = await pg_fetch(tx, "SELECT count(*) FROM labels WHERE n = $1", n)
            assert seen == [(int("$" in label),)]  # written at once only with a dollar
    async with db.direct_transaction() as tx:
        rows = await pg_fetch(tx, "SELECT n, label FROM labels ORDER BY n")
        await pg_fetch(tx, "DROP TABLE labels")
    assert [tuple(row) for row in rows] == [
        (0, "plain 'quotes' and \\ backslashes; --"),
        (1, tricky),
    ]


async def test_the_last_write_is_prepared_once_per_connection_and_after_a_failure_anew(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``send_last``'s statement is prepared (SQL ``PREPARE``) in the first commit's
    message on a connection, and executed by name after that. A commit that failed may
    have prepared its statement or not (here it did): the next one prepares it again under
    a new name, and goes on."""
    async with db.direct_transaction() as tx:
        await pg_fetch(tx, "DROP TABLE IF EXISTS labels")
        await pg_fetch(tx, "CREATE TABLE labels (n integer PRIMARY KEY, label text)")
    insert = insert_statement(LABELS, ("n", "label"))
    other = insert_statement(LABELS, ("label", "n"))  # another statement's text

    def words(message: str) -> list[str]:
        return [" ".join(part.split()[:2]).split("(")[0] for part in message.split(";\n")]

    async with db.direct_lease() as lease:

        async def twin() -> None:
            async with lease.transaction(begin_next=True) as tx:
                await pg_fetch(tx, "INSERT INTO labels VALUES (3, 'first')")
                assert send_last(tx, other, [{"n": 3, "label": "l3"}])

        async with lease.transaction(begin_next=True) as tx:
            assert isinstance(tx, DirectTransaction)
            sent = _sent(tx.connection, monkeypatch)
            assert send_last(tx, insert, [{"n": 1, "label": "l1"}])
        async with lease.transaction(begin_next=True) as tx:
            assert send_last(tx, insert, [{"n": 2, "label": "l2"}])
        with pytest.raises(IntegrityError):
            await twin()
        async with lease.transaction(begin_next=True) as tx:
            assert send_last(tx, other, [{"n": 4, "label": "l4"}])
        async with lease.transaction() as tx:
            assert send_last(tx, other, [{"n": 5, "label": "l5"}])
            prepared = await pg_fetch(
                tx, "SELECT name FROM pg_prepared_statements WHERE name LIKE 'vzh_last_%'"
            )
    commits = [words(message) for message in sent if "COMMIT" in message.split(";\n")]
    assert commits == [
        ["PREPARE vzh_last_1", "EXECUTE vzh_last_1", "COMMIT", "BEGIN"],
        ["EXECUTE vzh_last_1", "COMMIT", "BEGIN"],
        ["PREPARE vzh_last_2", "EXECUTE vzh_last_2", "COMMIT", "BEGIN"],  # failed
        ["PREPARE vzh_last_3", "EXECUTE vzh_last_3", "COMMIT", "BEGIN"],
        ["EXECUTE vzh_last_3", "COMMIT"],
    ]
    # What the failed message prepared is left on the connection, unused.
    assert sorted(row[0] for row in prepared) == ["vzh_last_1", "vzh_last_2", "vzh_last_3"]
    async with db.direct_transaction() as tx:
        rows = await pg_fetch(tx, "SELECT n, label FROM labels ORDER BY n")
        await pg_fetch(tx, "DROP TABLE labels")
    assert [tuple(row) for row in rows] == [(1, "l1"), (2, "l2"), (4, "l4"), (5, "l5")]


def _sent(connection: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The simple queries (BEGIN, COMMIT, …) the connection sends from now on."""
    sent: list[str] = []
    execute = asyncpg.Connection.execute

    async def recording(self: asyncpg.Connection, query: str, *args: Any, **kwargs: Any) -> Any:
        if self is connection:
            sent.append(query)
        return await execute(self, query, *args, **kwargs)

    monkeypatch.setattr(asyncpg.Connection, "execute", recording)
    return sent


async def test_a_lease_holds_one_connection_and_begins_the_next_transaction_with_a_commit(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``begin_next`` true: the COMMIT's round trip begins the next transaction, which then
    sends no BEGIN of its own. The connection is the same throughout, and what was begun
    and not used is rolled back before the connection goes back to the pool."""
    async with db.direct_lease() as lease:
        async with lease.transaction(begin_next=True) as tx:
            assert isinstance(tx, DirectTransaction)
            connection = tx.connection
            sent = _sent(connection, monkeypatch)
            await pg_fetch(tx, "INSERT INTO notes VALUES (1)")
        assert sent == ["COMMIT;\nBEGIN"]
        assert connection.is_in_transaction()
        async with lease.transaction(begin_next=True) as tx:
            assert isinstance(tx, DirectTransaction)
            assert tx.connection is connection
            await pg_fetch(tx, "INSERT INTO notes VALUES (2)")
        async with lease.transaction() as tx:  # begin_next not given: no next one
            await pg_fetch(tx, "INSERT INTO notes VALUES (3)")
        assert sent == ["COMMIT;\nBEGIN", "COMMIT;\nBEGIN", "COMMIT"]
        assert not connection.is_in_transaction()
        async with lease.transaction(begin_next=True) as tx:
            await pg_fetch(tx, "INSERT INTO notes VALUES (4)")
        assert sent[-2:] == ["BEGIN", "COMMIT;\nBEGIN"]
    assert sent[-1] == "ROLLBACK"  # the last one begun, never used
    assert not connection.is_in_transaction()
    assert await _notes(db) == [1, 2, 3, 4]


async def test_a_lease_goes_on_after_a_failure_and_after_a_dropped_connection(
    db: Database, pg: PostgresServer
) -> None:
    async with db.direct_lease() as lease:
        with pytest.raises(IntegrityError):
            async with lease.transaction(begin_next=True) as tx:
                await pg_fetch(tx, "INSERT INTO notes VALUES (1), (1)")
        async with lease.transaction(begin_next=True) as tx:
            assert isinstance(tx, DirectTransaction)
            first = tx.connection.get_server_pid()
            await pg_fetch(tx, "INSERT INTO notes VALUES (2)")
        await _terminate(pg, {first})  # while a transaction is begun for the next
        with pytest.raises(DBAPIError) as failed:
            async with lease.transaction() as tx:
                await pg_fetch(tx, "SELECT 1")
        assert failed.value.connection_invalidated
        async with lease.transaction() as tx:
            assert isinstance(tx, DirectTransaction)
            assert tx.connection.get_server_pid() != first
            await pg_fetch(tx, "INSERT INTO notes VALUES (3)")
    assert await _notes(db) == [2, 3]


async def test_a_lease_whose_connection_was_dropped_is_released_without_a_failure(
    db: Database, pg: PostgresServer
) -> None:
    async with db.direct_lease() as lease:
        async with lease.transaction(begin_next=True) as tx:
            assert isinstance(tx, DirectTransaction)
            connection = tx.connection
        await _terminate(pg, {connection.get_server_pid()})
        await eventually(connection.is_closed)
    async with db.direct_transaction() as tx:  # the pool serves a working connection
        assert await pg_fetch(tx, "SELECT txid_current_if_assigned()") == [(None,)]
