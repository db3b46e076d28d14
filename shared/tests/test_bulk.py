"""Set-based reads and writes (``bulk_insert``, ``bulk_update``, ``by_keys``, …) on
PostgreSQL and SQLite: the same rows in, the same rows stored, whichever path the dialect
takes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    bindparam,
    select,
    text,
)
from sqlalchemy.exc import DBAPIError, IntegrityError

from verzuimhub.testing import run_sync
from verzuimhub_shared.db import (
    COPY_MIN_ROWS,
    Database,
    Tx,
    bulk_delete,
    bulk_insert,
    bulk_update,
    by_keys,
    code,
    copy_records,
    copy_rows,
    delete_by_keys,
    driver,
    highest,
    insert_new,
    pg_fetch,
    pg_fetch_lists,
    rows_by_keys,
    text_list,
)
from verzuimhub_shared.testing.postgres import PostgresServer

metadata = MetaData()
THINGS = Table(
    "things",
    metadata,
    Column("id", String(8), primary_key=True),
    Column("n", Integer, nullable=False),
    Column("x", Float, nullable=True),
    Column("day", Date, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("ok", Boolean, nullable=True),
    Column("note", String(20), nullable=True),
    Column("blob", LargeBinary, nullable=True),  # in base64 through a JSON document
)
KEYS = Table("keys", metadata, Column("id", String(8), primary_key=True))
AT = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)
#: A list of keys as long as a replay's batch lookups (thousands): one array parameter.
MANY = 2200


def rows(count: int, start: int = 0) -> list[dict[str, object]]:
    return [
        {
            "id": f"r{i}",
            "n": i,
            "x": i / 4 if i % 3 else None,
            "day": date(2026, 1, 1 + i % 28),
            "at": AT,
            "ok": [True, False, None][i % 3],
            "note": None if i % 2 else f"n\"'{{,}}\\{i}",  # JSON and array-literal specials
            "blob": None if i % 5 == 4 else bytes(range(256))[i % 256 :] + b"\\x00",
        }
        for i in range(start, start + count)
    ]


@pytest.fixture(scope="module")
def pg_url(pg: PostgresServer) -> str:
    return pg.url_for(run_sync(pg.create_database("vzh_test_bulk")))


@pytest_asyncio.fixture(params=["postgresql", "sqlite"])
async def db(
    request: pytest.FixtureRequest, pg_url: str, tmp_path: Path
) -> AsyncIterator[Database]:
    url = pg_url if request.param == "postgresql" else f"sqlite+aiosqlite:///{tmp_path}/b.db"
    async with fresh_things(url) as database:
        yield database


Unit = Callable[[Database], AbstractAsyncContextManager[Tx]]


@pytest.fixture(params=["session", "direct"])
def unit(request: pytest.FixtureRequest) -> Unit:
    """The unit of work the writes under test run in: an ORM session, or (on PostgreSQL)
    a transaction without one (``Database.direct_transaction``; elsewhere a session too)."""
    return Database.transaction if request.param == "session" else Database.direct_transaction


@asynccontextmanager
async def fresh_things(url: str) -> AsyncIterator[Database]:
    database = Database(url)
    async with database.engine.begin() as conn:
        await conn.run_sync(metadata.drop_all)
        await conn.run_sync(metadata.create_all)
    try:
        yield database
    finally:
        await database.dispose()


async def stored(db: Database) -> list[dict[str, object]]:
    async with db.transaction() as session:
        result = await session.execute(select(THINGS).order_by(THINGS.c.n))
        return [
            dict(r._mapping) | {"at": r.at.replace(tzinfo=UTC) if r.at.tzinfo is None else r.at}
            for r in result
        ]


async def test_inserted_rows_are_stored_exactly(db: Database, unit: Unit) -> None:
    async with unit(db) as session:
        await bulk_insert(session, THINGS, rows(300))
    assert await stored(db) == rows(300)


async def test_ignoring_conflicts_returns_only_the_rows_inserted(db: Database, unit: Unit) -> None:
    async with unit(db) as session:
        await bulk_insert(session, THINGS, rows(10))
    async with unit(db) as session:
        inserted = await bulk_insert(
            session, THINGS, rows(15, start=5), ignore_conflicts=True, returning="id"
        )
    assert sorted(inserted) == sorted(f"r{i}" for i in range(10, 20))
    assert len(await stored(db)) == 20


@pytest.mark.parametrize("count", [COPY_MIN_ROWS - 1, COPY_MIN_ROWS, 200])
async def test_new_rows_are_inserted_and_named(db: Database, unit: Unit, count: int) -> None:
    async with unit(db) as session:
        inserted = await insert_new(session, THINGS, rows(count), key="id")
    assert sorted(inserted) == sorted(f"r{i}" for i in range(count))
    assert await stored(db) == rows(count)


async def test_rows_already_there_are_left_out_and_the_rest_inserted(
    db: Database, unit: Unit
) -> None:
    """A row that meets a stored one fails the copy; the rest go in all the same, and the
    transaction goes on (the copy's savepoint is rolled back, not the transaction)."""
    async with unit(db) as session:
        await bulk_insert(session, THINGS, rows(10, start=95))
    async with unit(db) as session:
        await bulk_insert(session, THINGS, rows(1, start=500))  # earlier in this transaction
        inserted = await insert_new(session, THINGS, rows(100), key="id")
        after = await insert_new(session, THINGS, rows(50, start=200), key="id")
    assert sorted(inserted) == sorted(f"r{i}" for i in range(95))
    assert len(after) == 50
    assert [r["id"] for r in await stored(db)] == [
        *(f"r{i}" for i in range(105)),
        *(f"r{i}" for i in range(200, 250)),
        "r500",
    ]


async def test_a_conflict_is_an_error_unless_ignored(db: Database, unit: Unit) -> None:
    async with unit(db) as session:
        await bulk_insert(session, THINGS, rows(3))
    with pytest.raises(DBAPIError):
        async with unit(db) as session:
            await bulk_insert(session, THINGS, rows(1))


async def test_a_value_too_long_is_refused_not_truncated(db: Database, unit: Unit) -> None:
    if db.dialect != "postgresql":
        pytest.skip("SQLite does not enforce VARCHAR lengths")
    too_long = rows(1)[0] | {"note": "x" * 21}
    with pytest.raises(DBAPIError, match="too long"):
        async with unit(db) as session:
            await bulk_insert(session, THINGS, [too_long])
    async with unit(db) as session:
        await bulk_insert(session, THINGS, rows(1))
    with pytest.raises(DBAPIError, match="too long"):
        async with unit(db) as session:
            await bulk_update(session, THINGS, [{"_id": "r0", "note": "y" * 21}], key="id")


async def test_updates_change_only_the_rows_named(db: Database, unit: Unit) -> None:
    async with unit(db) as session:
        await bulk_insert(session, THINGS, rows(50))
    changes = [{"_id": f"r{i}", "n": 1000 + i, "note": None, "ok": True} for i in range(0, 50, 5)]
    async with unit(db) as session:
        await bulk_update(session, THINGS, changes, key="id")
    expected = rows(50)
    for row in expected:
        if int(str(row["id"])[1:]) % 5 == 0:
            row.update(n=1000 + int(str(row["id"])[1:]), note=None, ok=True)
    assert sorted(await stored(db), key=lambda r: str(r["id"])) == sorted(
        expected, key=lambda r: str(r["id"])
    )


async def test_updates_by_a_composite_key_change_only_rows_matching_every_column(
    db: Database,
    unit: Unit,
) -> None:
    async with unit(db) as session:
        await bulk_insert(session, THINGS, rows(20))
    stored_day = {str(r["id"]): r["day"] for r in rows(20)}
    changes = [
        {"_id": f"r{i}", "_day": stored_day[f"r{i}"] if i % 2 else date(2030, 1, 1), "n": -i}
        for i in range(0, 20, 3)
    ]
    async with unit(db) as session:
        await bulk_update(session, THINGS, changes, key=("id", "day"))
    expected = rows(20)
    for row in expected:
        i = int(str(row["id"])[1:])
        if i % 3 == 0 and i % 2:  # the id and the day match
            row["n"] = -i
    assert sorted(await stored(db), key=lambda r: str(r["id"])) == sorted(
        expected, key=lambda r: str(r["id"])
    )


async def test_by_keys_reads_each_wanted_row_once(db: Database) -> None:
    async with db.transaction() as session:
        await bulk_insert(session, THINGS, rows(40))
    wanted = [f"r{i}" for i in range(0, 40, 3)] + ["absent", "r3", "r3"]
    async with db.transaction() as session:
        whole = (await by_keys(session, THINGS.c.id, wanted)).all()
        assert list(whole[0]._fields) == [column.name for column in THINGS.c]
        assert sorted((r.id, r.n, r.note) for r in whole) == sorted(
            (r["id"], r["n"], r["note"]) for r in rows(40) if r["id"] in wanted
        )
        some = await by_keys(
            session, THINGS.c.id, wanted, THINGS.c.id, THINGS.c.n, where=[THINGS.c.n > 20]
        )
        assert sorted(some) == [(f"r{i}", i) for i in range(21, 40) if i % 3 == 0]
        locked = await by_keys(session, THINGS.c.id, ["r1", "r2"], THINGS.c.id, lock=True)
        assert sorted(locked.scalars()) == ["r1", "r2"]
        assert (await by_keys(session, THINGS.c.id, [])).all() == []


async def test_by_keys_reads_as_many_keys_as_given(db: Database) -> None:
    async with db.transaction() as session:
        await bulk_insert(session, THINGS, rows(MANY))
    wanted = [f"r{i}" for i in range(1, MANY, 2)] + ["absent", "r1"]
    async with db.transaction() as session:
        found = await by_keys(session, THINGS.c.id, wanted, THINGS.c.id, where=[THINGS.c.n > 10])
        assert sorted(found.scalars()) == sorted(f"r{i}" for i in range(11, MANY, 2))


async def test_rows_by_keys_reads_each_wanted_row_once_as_tuples(db: Database) -> None:
    count = MANY
    async with db.transaction() as session:
        await bulk_insert(session, THINGS, rows(count))
    few = [f"r{i}" for i in range(0, 40, 3)] + ["absent", "r3", "r3"]
    many = [f"r{i}" for i in range(1, count, 2)] + ["absent", "r1"]
    columns = (THINGS.c.n, THINGS.c.id, THINGS.c.day, THINGS.c.note)
    async with db.transaction() as session:
        for wanted in (few, many):
            found = await rows_by_keys(session, THINGS.c.id, iter(wanted), *columns)
            assert sorted(tuple(r) for r in found) == sorted(
                (r["n"], r["id"], r["day"], r["note"]) for r in rows(count) if r["id"] in wanted
            )
        assert await rows_by_keys(session, THINGS.c.id, [], THINGS.c.id) == []


#: A condition made once, as ``rows_by_keys`` wants it (its statement is cached).
AT_LEAST = THINGS.c.n >= bindparam("least")


async def test_rows_by_keys_meet_a_condition_with_the_values_given_each_time(
    db: Database,
) -> None:
    async with db.transaction() as session:
        await bulk_insert(session, THINGS, rows(30))
    wanted = [f"r{i}" for i in range(0, 30, 2)]
    async with db.transaction() as session:
        for least in (10, 25, 31):
            found = await rows_by_keys(
                session,
                THINGS.c.id,
                wanted,
                THINGS.c.id,
                THINGS.c.n,
                where=AT_LEAST,
                params={"least": least},
            )
            assert sorted(tuple(r) for r in found) == [
                (f"r{i}", i) for i in range(0, 30, 2) if i >= least
            ]


async def test_highest_is_the_greatest_value_byte_by_byte_or_none(db: Database) -> None:
    async with db.transaction() as session:
        assert await highest(session, THINGS.c.id) is None
        await bulk_insert(session, THINGS, rows(12))  # r0 … r11: "r9" is the greatest
        assert await highest(session, THINGS.c.id) == "r9"
        assert await highest(session, THINGS.c.n) == 11


def test_text_keys_are_joined_only_when_they_can_be_split_back() -> None:
    assert text_list(["r1", "r2", ""]) == "r1,r2,"
    assert text_list(["ab"]) == "ab"
    assert text_list(["a,b", "c"]) is None  # would come back as three
    assert text_list([""]) is None  # would come back as none
    assert text_list([]) is None
    assert text_list([1, 2]) is None  # not text


async def test_keys_holding_the_separator_or_empty_are_read_whole(db: Database) -> None:
    """Text keys go to PostgreSQL as one string when they can (``text_list``), and as an
    array when one holds the separator or is a lone empty string."""
    ids = ["a", "b", "a,b", "", "c"]
    async with db.transaction() as session:
        await bulk_insert(session, KEYS, [{"id": i} for i in ids])
    async with db.transaction() as session:
        for wanted in (["a,b", "c"], [""], ["", "c"], ["a", "b"], [",", "a"]):
            expected = sorted(set(wanted) & set(ids))
            assert sorted((await by_keys(session, KEYS.c.id, wanted)).scalars()) == expected
            found = await rows_by_keys(session, KEYS.c.id, wanted, KEYS.c.id)
            assert sorted(r[0] for r in found) == expected
        await delete_by_keys(session, KEYS.c.id, ["a,b", ""])
        await delete_by_keys(session, KEYS.c.id, ["c"])
    async with db.transaction() as session:
        assert sorted((await session.execute(select(KEYS.c.id))).scalars()) == ["a", "b"]


async def test_lists_of_text_come_back_whole_either_way(pg_db: Database) -> None:
    """``pg_fetch_lists`` sends the lists as strings for ``string_to_array`` when every one
    can be, and otherwise all as arrays: the statement reads the same values."""
    template = "SELECT a, b, $3::int AS n FROM unnest({0}, {1}) AS x(a, b) ORDER BY a"
    for lists in ([["r1", "r2"], ["s1", ""]], [["r1", "a,b"], ["s1", "s2"]], [[""], ["s"]]):
        async with pg_db.direct_transaction() as tx:
            rows = await pg_fetch_lists(tx, template, lists, 7)
        assert [tuple(r) for r in rows] == sorted((*pair, 7) for pair in zip(*lists, strict=True))


#: A key with an index that is not unique (compared as the hub's codes are: ``code``).
GROUPED = Table(
    "grouped",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("grp", code(8), nullable=False, index=True),
)
_SEQ_READ = text("SELECT seq_tup_read FROM pg_stat_xact_user_tables WHERE relname = 'grouped'")
_PLANNER = text("SELECT current_setting('enable_seqscan'), current_setting('enable_sort')")


async def test_by_keys_reads_through_the_index_whatever_the_statistics_say(pg_url: str) -> None:
    """Analysed while it was small (as autovacuum does on a fresh database), the table
    seemed to hold one group; grown since, a lookup of two groups is still planned on that:
    as ``grp = ANY(:keys)``, and as a probe per key, it read all 20,000 rows. The same for
    ``rows_by_keys``, on a key with the column's own collation."""
    db = Database(pg_url, pool_size=1)  # one connection: one statement cache
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(GROUPED.metadata.drop_all)
            await conn.run_sync(GROUPED.metadata.create_all)
        async with db.transaction() as session:
            await bulk_insert(session, GROUPED, [{"id": -i, "grp": "a"} for i in range(1, 11)])
        async with db.engine.connect() as conn:
            await conn.execute(text("ANALYZE grouped"))
        for _ in range(8):  # long enough for PostgreSQL to keep a generic plan
            async with db.transaction() as session:
                await by_keys(session, GROUPED.c.grp, ["g1", "g2"])
                await rows_by_keys(session, GROUPED.c.grp, ["g1", "g2"], GROUPED.c.id)
                await delete_by_keys(session, GROUPED.c.grp, ["g3"])
        grown: list[dict[str, Any]] = [{"id": i, "grp": f"g{i % 5000}"} for i in range(20_000)]
        async with db.transaction() as session:
            await bulk_insert(session, GROUPED, grown)
        async with db.transaction() as session:
            await session.execute(text("SET LOCAL enable_sort = off"))  # the caller's own
            # What earlier transactions read and this backend has not reported yet is
            # counted too (PostgreSQL 15): the difference is this transaction's.
            before = (await session.execute(_SEQ_READ)).scalar_one()
            found = await by_keys(session, GROUPED.c.grp, ["g1", "g2"])
            assert sorted(r.id for r in found) == sorted(
                r["id"] for r in grown if r["grp"] in ("g1", "g2")
            )
            pairs = await rows_by_keys(session, GROUPED.c.grp, ["g1", "g2"], GROUPED.c.id)
            assert sorted(r[0] for r in pairs) == sorted(
                r["id"] for r in grown if r["grp"] in ("g1", "g2")
            )
            await delete_by_keys(session, GROUPED.c.grp, ["g3"])
            assert (await session.execute(_SEQ_READ)).scalar_one() - before == 0
            # The planner is as the transaction had it, after each.
            assert tuple((await session.execute(_PLANNER)).one()) == ("on", "off")
        async with db.transaction() as session:
            assert (await by_keys(session, GROUPED.c.grp, ["g3"])).all() == []
    finally:
        async with db.engine.begin() as conn:
            await conn.run_sync(GROUPED.metadata.drop_all)
        await db.dispose()


_THINGS_SEQ_READ = text(
    "SELECT seq_tup_read FROM pg_stat_xact_user_tables WHERE relname = 'things'"
)


async def test_many_keys_are_read_through_the_index_after_the_table_was_emptied(
    pg_url: str,
) -> None:
    """A lookup of thousands of keys (a replay's batch) reads through the key's index, on
    a connection whose cached plans were made while the table was empty. Before, such a
    list was left to the planner. A generic plan made on the emptied table was a
    sequential scan, and it stayed one as the table filled again: it compared every row
    with every key (a generic plan cannot hash a parameter's list), seconds a batch on a
    ledger of 60,000 rows."""
    db = Database(pg_url, pool_size=1)  # one connection: one statement cache
    wanted = [f"r{i}" for i in range(0, 3000, 2)]
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(metadata.drop_all)
            await conn.run_sync(metadata.create_all)
        for filled in (True, False, True):  # filled, emptied (plans made), filled again
            async with db.transaction() as session:
                await session.execute(text("TRUNCATE things"))
                if filled:
                    await bulk_insert(session, THINGS, rows(3000))
            for _ in range(8):  # more than the five custom plans PostgreSQL makes first
                async with db.transaction() as session:
                    before = (await session.execute(_THINGS_SEQ_READ)).scalar_one()
                    found = await rows_by_keys(session, THINGS.c.id, wanted, THINGS.c.n)
                    read = (await by_keys(session, THINGS.c.id, wanted, THINGS.c.n)).all()
                    scanned = (await session.execute(_THINGS_SEQ_READ)).scalar_one() - before
                    assert sorted(n for (n,) in found) == sorted(n for (n,) in read)
                    assert len(found) == (len(wanted) if filled else 0)
                    assert scanned == 0
    finally:
        async with db.engine.begin() as conn:
            await conn.run_sync(metadata.drop_all)
        await db.dispose()


async def test_a_custom_plan_is_for_the_statement_alone(db: Database) -> None:
    if db.dialect != "postgresql":
        pytest.skip("planner settings are PostgreSQL's")
    async with db.transaction() as session:
        await bulk_insert(session, THINGS, rows(300))
    changes = [{"_id": f"r{i}", "n": -i} for i in range(200)]  # many rows: a custom plan
    async with db.transaction() as session:
        await bulk_update(session, THINGS, changes, key="id")
        await bulk_delete(session, THINGS, [{"id": f"r{i}"} for i in range(250, 300)])
        mode = await session.execute(text("SELECT current_setting('plan_cache_mode')"))
        assert mode.scalar_one() == "auto"  # the rest of the transaction plans as usual
    assert [r["n"] for r in await stored(db)][:3] == [-199, -198, -197]
    assert len(await stored(db)) == 250


async def test_a_custom_plan_is_for_the_statement_alone_without_a_session(
    pg_db: Database,
) -> None:
    async with pg_db.direct_transaction() as tx:
        await bulk_insert(tx, THINGS, rows(300))
        await bulk_update(tx, THINGS, [{"_id": f"r{i}", "n": -i} for i in range(200)], key="id")
        assert await pg_fetch(tx, "SELECT current_setting('plan_cache_mode')") == [("auto",)]
    assert [r["n"] for r in await stored(pg_db)][:3] == [-199, -198, -197]


async def test_delete_by_keys_removes_exactly_those_rows(db: Database) -> None:
    async with db.transaction() as session:
        await bulk_insert(session, THINGS, rows(20))
    async with db.transaction() as session:
        await delete_by_keys(session, THINGS.c.id, [f"r{i}" for i in range(0, 20, 2)] + ["x", "r0"])
        await delete_by_keys(session, THINGS.c.id, [])
    assert [row["id"] for row in await stored(db)] == [f"r{i}" for i in range(1, 20, 2)]


async def test_delete_removes_exactly_the_keys_given(db: Database) -> None:
    async with db.transaction() as session:
        await bulk_insert(session, THINGS, rows(20))
    async with db.transaction() as session:
        await bulk_delete(
            session, THINGS, [{"id": f"r{i}"} for i in range(0, 20, 2)] + [{"id": "x"}]
        )
        await bulk_delete(session, THINGS, [])
    assert [row["id"] for row in await stored(db)] == [f"r{i}" for i in range(1, 20, 2)]


@pytest.mark.parametrize("count", [3, 300])  # an INSERT below COPY_MIN_ROWS, COPY above
async def test_copied_rows_are_stored_exactly(db: Database, unit: Unit, count: int) -> None:
    async with unit(db) as session:
        await copy_rows(session, THINGS, rows(count))
    assert await stored(db) == rows(count)


@pytest.mark.parametrize("count", [3, 300])
async def test_copied_records_are_stored_exactly(db: Database, unit: Unit, count: int) -> None:
    columns = ("note", "id", "blob", "n", "x", "day", "at", "ok")  # not the table's order
    records = [tuple(row[c] for c in columns) for row in rows(count)]
    async with unit(db) as session:
        await copy_records(session, THINGS, columns, records)
        await copy_records(session, THINGS, columns, [])
    assert await stored(db) == rows(count)


async def test_copied_values_go_to_their_columns_whatever_the_key_order(db: Database) -> None:
    """Rows may list their keys in any order; a table of one column takes one-element
    records."""
    reordered = [dict(reversed(row.items())) if i % 2 else row for i, row in enumerate(rows(100))]
    keys = [{"id": f"k{i}"} for i in range(100)]
    async with db.transaction() as session:
        await copy_rows(session, THINGS, reordered)
        await copy_rows(session, KEYS, keys)
    assert await stored(db) == rows(100)
    async with db.transaction() as session:
        assert sorted(await session.scalars(select(KEYS.c.id))) == sorted(k["id"] for k in keys)


async def test_copied_rows_belong_to_the_transaction(db: Database, unit: Unit) -> None:
    # COPY first in the transaction (the adapter has begun nothing yet), then a failure:
    # the copied rows go with the rollback.
    async def copy_then_fail() -> None:
        async with unit(db) as session:
            await copy_rows(session, THINGS, rows(COPY_MIN_ROWS))
            raise RuntimeError("later in the same unit of work")

    with pytest.raises(RuntimeError):
        await copy_then_fail()
    assert await stored(db) == []
    async with unit(db) as session:
        await bulk_insert(session, THINGS, rows(2))
        await copy_rows(session, THINGS, rows(COPY_MIN_ROWS, start=2))
    assert await stored(db) == rows(COPY_MIN_ROWS + 2)


async def test_a_copied_conflict_or_too_long_value_is_an_error(db: Database, unit: Unit) -> None:
    n = COPY_MIN_ROWS
    async with unit(db) as session:
        await copy_rows(session, THINGS, rows(n))
    with pytest.raises(DBAPIError):
        async with unit(db) as session:
            await copy_rows(session, THINGS, rows(n, start=n - 1))
    if db.dialect == "postgresql":  # SQLite does not enforce VARCHAR lengths
        too_long = [*rows(n - 1, start=n), rows(1, start=2 * n)[0] | {"note": "x" * 21}]
        with pytest.raises(DBAPIError, match="too long"):
            async with unit(db) as session:
                await copy_rows(session, THINGS, too_long)
    assert await stored(db) == rows(n)


@pytest_asyncio.fixture
async def pg_db(pg_url: str) -> AsyncIterator[Database]:
    """PostgreSQL only: ``pg_fetch`` sends statements around SQLAlchemy, to asyncpg."""
    async with fresh_things(pg_url) as database:
        yield database


async def test_statements_around_sqlalchemy_belong_to_the_sessions_transaction(
    pg_db: Database,
) -> None:
    db = pg_db
    insert = "INSERT INTO things (id, n, day, at) VALUES ($1, $2, $3, $4) RETURNING n"

    async def insert_then_fail(thing: str) -> None:
        async with db.transaction() as session:
            assert await pg_fetch(session, insert, thing, 1, date(2026, 1, 1), AT) == [(1,)]
            raise RuntimeError("later in the same unit of work")

    with pytest.raises(RuntimeError):
        await insert_then_fail("a")  # the first statement of its transaction
    assert await stored(db) == []

    # One session, two transactions: the second begins anew and rolls back on its own.
    async with db.sessionmaker() as session:
        await pg_fetch(session, insert, "b", 2, date(2026, 1, 2), AT)
        await session.commit()
        await pg_fetch(session, insert, "c", 3, date(2026, 1, 3), AT)
        await session.rollback()
    assert [row["id"] for row in await stored(db)] == ["b"]


async def test_failures_around_sqlalchemy_are_reported_as_sqlalchemys(pg_db: Database) -> None:
    db = pg_db
    async with db.transaction() as session:
        await bulk_insert(session, THINGS, rows(1))
    with pytest.raises(IntegrityError):
        async with db.transaction() as session:
            await pg_fetch(
                session,
                "INSERT INTO things (id, n, day, at) VALUES ($1, 1, $2, $3)",
                "r0",
                date(2026, 1, 1),
                AT,
            )
    with pytest.raises(DBAPIError, match="too long"):
        async with db.transaction() as session:
            await pg_fetch(session, "UPDATE things SET note = $1 WHERE id = 'r0'", "x" * 21)


async def test_a_transaction_around_sqlalchemy_begins_with_begin_alone(
    pg_db: Database, pg: PostgresServer
) -> None:
    """``driver`` begins the session's transaction as SQLAlchemy's adapter does, with one
    ``BEGIN``: not with a ``SELECT 1`` through SQLAlchemy (two round trips and ~0.35 ms of
    CPU per transaction). What the backend ran last, seen from another connection, says
    which it was."""
    import asyncpg

    admin = await asyncpg.connect(pg.dsn)
    try:
        async with pg_db.transaction() as session:
            connection = await driver(session)
            activity = await admin.fetchrow(
                "SELECT query, state FROM pg_stat_activity WHERE pid = $1",
                connection.get_server_pid(),
            )
            assert activity["state"] == "idle in transaction"
            assert activity["query"].upper().startswith("BEGIN"), activity["query"]
            assert await driver(session) is connection  # once per transaction
    finally:
        await admin.close()


async def test_a_dropped_connection_is_reported_as_sqlalchemy_reports_it(
    pg_db: Database, pg: PostgresServer
) -> None:
    """The pool does not ping (ADR 0010): a connection the server dropped fails at the
    begin, and the caller gets SQLAlchemy's error flagged ``connection_invalidated`` (the
    services answer it 503); the next transaction gets a new connection."""
    import asyncpg

    async with pg_db.transaction() as session:
        pid = (await driver(session)).get_server_pid()
    admin = await asyncpg.connect(pg.dsn)
    try:
        await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()
    with pytest.raises(DBAPIError) as failed:
        async with pg_db.transaction() as session:
            await pg_fetch(session, "SELECT 1")
    assert failed.value.connection_invalidated
    async with pg_db.transaction() as session:
        assert await pg_fetch(session, "SELECT 2") == [(2,)]


async def test_pending_orm_changes_are_written_before_a_statement_around_sqlalchemy(
    pg_db: Database,
) -> None:
    from sqlalchemy.orm import registry

    class Thing:
        n: int

        def __init__(self, **values: Any) -> None:
            self.__dict__.update(values)

    mapped = registry()
    mapped.map_imperatively(Thing, THINGS)
    try:
        async with pg_db.transaction() as session:
            session.add(Thing(**rows(1)[0]))  # new
            assert await pg_fetch(session, "SELECT n FROM things") == [(0,)]
            thing = await session.get(Thing, "r0")
            assert thing is not None
            thing.n = 7  # dirty
            assert await pg_fetch(session, "SELECT n FROM things") == [(7,)]
            await session.delete(thing)  # deleted
            assert await pg_fetch(session, "SELECT count(*) FROM things") == [(0,)]
    finally:
        mapped.dispose()


async def test_rows_a_concurrent_transaction_inserts_first_are_left_out(pg_db: Database) -> None:
    """Two transactions insert overlapping rows: the second waits for the first on the
    key's index, then leaves out the rows the first committed, and inserts the rest."""
    import asyncio

    async with pg_db.transaction() as first:
        assert len(await insert_new(first, THINGS, rows(60), key="id")) == 60

        async def second() -> list[str]:
            async with pg_db.transaction() as session:
                return await insert_new(session, THINGS, rows(60, start=40), key="id")

        racing = asyncio.create_task(second())
        await asyncio.sleep(0.3)
        assert not racing.done()  # waiting for the first transaction's rows 40–59
    inserted = await racing
    assert sorted(inserted) == sorted(f"r{i}" for i in range(60, 100))
    assert [r["id"] for r in await stored(pg_db)] == [f"r{i}" for i in range(100)]
