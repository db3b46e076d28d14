"""Database plumbing: async engine and session made in the app's lifespan.

The edge owns the transaction: ``SessionDep`` (requests) and ``Database.transaction``
(workers) commit on success and roll back on error; services and repositories only flush.
``Database.direct_transaction`` is the same without an ORM session, for short transactions
on hot paths whose statements all go around SQLAlchemy (ADR 0017).
Works on PostgreSQL (asyncpg) and SQLite (aiosqlite, the embedded default).
"""

from __future__ import annotations

import asyncio
import operator
import re
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Sequence
from contextlib import asynccontextmanager, suppress
from functools import lru_cache
from typing import Annotated, Any, TypeVar

import asyncpg
import orjson
import pybase64
from fastapi import Depends, Request
from sqlalchemy import MetaData, Result, String, Table, event, func, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.util.concurrency import greenlet_spawn

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_metadata() -> MetaData:
    return MetaData(naming_convention=NAMING_CONVENTION)


def code(length: int) -> Any:
    """The type of every string column the hub keeps: identifiers, keyed hashes and codes
    (BRIN, gemeente, status, category), compared byte by byte (``COLLATE "C"``) on
    PostgreSQL.

    No column holds language that a locale should sort. Under the database's locale
    (``C.UTF-8``, ``en_US.UTF-8``, …) every comparison in a key's index goes through
    ``strcoll``; with ``"C"`` it is a ``memcmp`` (PostgreSQL's CPU per batch registration
    -12 %, ADR 0012). SQLite compares bytewise (``BINARY``) already and knows no collation
    named ``C``."""
    return String(length).with_variant(String(length, collation="C"), "postgresql")


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def make_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    if is_sqlite(url):
        engine = create_async_engine(url, connect_args={"timeout": 30})
        _sqlite_pragmas(engine)
        return engine
    return create_async_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_use_lifo=True)


def _sqlite_pragmas(engine: AsyncEngine) -> None:
    """WAL, foreign keys, and BEGIN IMMEDIATE: SQLite serialises writers, so take the write
    lock up front instead of failing on a read-to-write upgrade under concurrency."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


class Database:
    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.engine = make_engine(url, pool_size=pool_size)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One unit of work: commit when the block succeeds, roll back when it raises."""
        async with self.sessionmaker() as session:
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise

    @asynccontextmanager
    async def direct_transaction(self) -> AsyncIterator[Tx]:
        """One unit of work, as :meth:`transaction`, for a short transaction whose
        statements all go around SQLAlchemy (``pg_fetch``, ``insert_new``, ``copy_records``,
        ``bulk_update``, ``feed.append``): on PostgreSQL a :class:`DirectTransaction` on a
        connection of the engine's pool, with no ORM session; elsewhere the session of
        :meth:`transaction`.

        A session's own work (made, begun, committed, closed, its connection checked out
        and in) cost ~0.2–0.3 ms of CPU per transaction, several times a statement's
        (``bench/transaction_bench.py``); single registrations pay it per group (ADR 0017).
        ``BEGIN`` and ``COMMIT`` are sent by hand, and statements handed to
        :meth:`DirectTransaction.send_with_commit` go with the ``COMMIT`` (ADR 0019).

        A failure is raised as SQLAlchemy raises it (``IntegrityError``, …), the
        ``COMMIT``'s own included. A connection whose transaction did not end (cancelled in
        the middle), or that the server dropped, is not given back: it is discarded. A
        dropped one also makes the pool replace the connections made before it, and is
        raised as ``DBAPIError`` flagged ``connection_invalidated``, so the edge answers
        503 with ``Retry-After``, as for a session (ADR 0010).
        """
        async with self.direct_lease() as lease, lease.transaction() as tx:
            yield tx

    @asynccontextmanager
    async def direct_lease(self) -> AsyncIterator[DirectLease]:
        """Direct transactions one after the other on one connection, held from the first
        to the end of the block (:class:`DirectLease`)."""
        lease = DirectLease(self)
        try:
            yield lease
        finally:
            await lease.release()

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


class DirectLease:
    """:meth:`Database.direct_transaction` for transactions that follow each other (a
    group-commit writer's groups, ADR 0019): one connection of the pool, checked out at the
    first transaction and held until :meth:`release`; replaced if it has to be discarded.

    A transaction may begin the next one in its ``COMMIT``'s round trip (``begin_next``,
    for a caller that expects another to follow): the next transaction then sends no
    ``BEGIN`` of its own. Such a begun transaction holds no lock and no snapshot (READ
    COMMITTED takes one per statement), and :meth:`release` rolls it back if no transaction
    came to use it."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._fairy: PoolProxiedConnection | None = None
        self._begun = False

    @asynccontextmanager
    async def transaction(self, *, begin_next: bool = False) -> AsyncIterator[Tx]:
        """One unit of work, as :meth:`Database.direct_transaction` (whose docstring says
        how failures are met)."""
        db = self._db
        if db.dialect != "postgresql":
            async with db.transaction() as session:
                yield session
            return
        if self._fairy is None:
            try:
                self._fairy = await greenlet_spawn(db.engine.sync_engine.raw_connection)
            except Exception as exc:  # the server cannot be reached: as a dropped connection
                raise _connection_lost(exc) from exc
        fairy = self._fairy
        assert fairy is not None
        connection = fairy.driver_connection
        assert isinstance(connection, asyncpg.Connection)
        begun, self._begun = self._begun, False
        try:
            # BEGIN and COMMIT by hand, not asyncpg's Transaction: the COMMIT carries the
            # statements handed to DirectTransaction.send_with_commit, and may begin the
            # next transaction (ADR 0019).
            if not (begun and connection.is_in_transaction()):
                await connection.execute("BEGIN")
            tx = DirectTransaction(connection)
            try:
                yield tx
                await connection.execute(tx.commit_statement(then_begin=begin_next))
                tx.committed()
                self._begun = begin_next
            except BaseException:
                self._begun = False
                if connection.is_in_transaction() and not connection.is_closed():
                    with suppress(Exception):  # what is left is decided below
                        await connection.execute("ROLLBACK")
                raise
        except BaseException as exc:
            gone = connection.is_closed()
            if gone or connection.is_in_transaction():
                self._fairy = None
                await greenlet_spawn(_discard, db.engine, fairy, exc, gone)
            if gone and isinstance(exc, Exception):
                raise _connection_lost(exc) from exc
            if isinstance(exc, asyncpg.PostgresError):  # the COMMIT's own (a deferred check)
                raise _as_sqlalchemy_error("COMMIT", exc) from exc
            raise

    async def release(self) -> None:
        """Give the connection back to the pool; a begun transaction that no transaction
        used is rolled back first, and a connection that cannot be rolled back is
        discarded, never given back in a transaction."""
        fairy, self._fairy = self._fairy, None
        begun, self._begun = self._begun, False
        if fairy is None:
            return
        connection = fairy.driver_connection
        assert isinstance(connection, asyncpg.Connection)
        try:
            if begun and connection.is_in_transaction() and not connection.is_closed():
                await connection.execute("ROLLBACK")
        except BaseException as exc:
            await greenlet_spawn(_discard, self._db.engine, fairy, exc, connection.is_closed())
            if not isinstance(exc, Exception):
                raise
            return
        if connection.is_closed() or connection.is_in_transaction():
            await greenlet_spawn(_discard, self._db.engine, fairy, None, connection.is_closed())
            return
        await greenlet_spawn(fairy.close)


class DirectTransaction:
    """A PostgreSQL transaction on a pooled asyncpg connection, without an ORM session
    (:meth:`Database.direct_transaction`). The functions here that take a :data:`Tx` run
    their statements on it; anything that needs SQLAlchemy's execution needs a session."""

    __slots__ = ("_preparing", "_with_commit", "connection")

    def __init__(self, connection: asyncpg.Connection) -> None:
        self.connection = connection
        self._with_commit: list[str] = []
        self._preparing: dict[str, str] = {}

    def send_with_commit(self, statement: str) -> None:
        """Send ``statement`` (no parameters, no rows wanted) in one round trip with the
        ``COMMIT``, as one simple query: for the transaction's last write. No statement of
        this transaction sees what it writes, and its failure is the commit's (raised at
        the end of the transaction's block, and nothing is committed)."""
        self._with_commit.append(statement)

    def execute_with_commit(self, statement: str, document: str) -> None:
        """:meth:`send_with_commit` for ``statement``, which reads one text parameter as
        ``CAST(:rows AS json)``, given ``document`` (an SQL literal): ``EXECUTE`` of the
        statement prepared on this connection (SQL ``PREPARE``, a named statement of the
        session). Its first use on a connection prepares it, first in the same message:
        parsed and planned once per connection instead of in every transaction (~300 µs of
        the server's CPU for a group's insert of eight registrations, ~200 for its feed
        rows). A name is never given twice on a connection: a message that failed may or
        may not have prepared its statements, so they are prepared again under new names."""
        known = _PREPARED.get(self.connection)
        if known is None:
            known = _PREPARED[self.connection] = _Prepared()
        name = known.names.get(statement) or self._preparing.get(statement)
        if name is None:
            known.made += 1
            name = self._preparing[statement] = f"vzh_last_{known.made}"
        self.send_with_commit(f"EXECUTE {name}({document})")

    def commit_statement(self, *, then_begin: bool = False) -> str:
        """The ``COMMIT``, with what was handed to :meth:`send_with_commit` before it and,
        with ``then_begin``, the next transaction's ``BEGIN`` after it; the statements of
        :meth:`execute_with_commit` to prepare first."""
        statements = [
            *(
                f"PREPARE {name}(text) AS {_positional(statement)}"
                for statement, name in self._preparing.items()
            ),
            *self._with_commit,
            "COMMIT",
        ]
        if then_begin:
            statements.append("BEGIN")
        return ";\n".join(statements)

    def committed(self) -> None:
        """The ``COMMIT`` succeeded: what its message prepared is there from now on."""
        if self._preparing:
            _PREPARED[self.connection].names.update(self._preparing)
            self._preparing.clear()


class _Prepared:
    """The statements :meth:`DirectTransaction.execute_with_commit` prepared on one
    connection (name by text), and how many names it gave there."""

    __slots__ = ("made", "names")

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.made = 0


#: By connection: a connection that is closed and dropped takes its statements with it.
_PREPARED: weakref.WeakKeyDictionary[asyncpg.Connection, _Prepared] = weakref.WeakKeyDictionary()


#: A unit of work: an ORM session, or (PostgreSQL only) a transaction without one.
Tx = AsyncSession | DirectTransaction


def is_postgresql(tx: Tx) -> bool:
    return isinstance(tx, DirectTransaction) or tx.get_bind().dialect.name == "postgresql"


def orm_session(tx: Tx) -> AsyncSession:
    """The session, where a statement needs SQLAlchemy (what runs elsewhere than on
    PostgreSQL always has one)."""
    if isinstance(tx, DirectTransaction):
        raise TypeError("this statement needs an ORM session (Database.transaction)")
    return tx


def _discard(
    engine: AsyncEngine, fairy: PoolProxiedConnection, exc: BaseException | None, gone: bool
) -> None:
    """Close a connection instead of giving it back to the pool (in a greenlet: closing
    awaits). When the server dropped it, the connections made before it are recycled on
    their next checkout too, as SQLAlchemy does on a disconnect: after a restart they are
    all gone, and each would otherwise fail one more request."""
    if gone:
        invalidate_older = getattr(engine.sync_engine.pool, "_invalidate", None)
        if invalidate_older is not None:
            invalidate_older(fairy, exc, _checkin=False)
    fairy.invalidate(exc)


def _connection_lost(exc: Exception) -> DBAPIError:
    if isinstance(exc, DBAPIError):
        exc.connection_invalidated = True
        return exc
    return DBAPIError(None, None, exc, connection_invalidated=True)


def dialect_insert(session: Tx, table: Any) -> Any:
    """An INSERT into ``table`` in the session's dialect (PostgreSQL's or SQLite's): the
    one with ``on_conflict_do_nothing`` and ``on_conflict_do_update``."""
    if is_postgresql(session):
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


async def insert_ignore(session: AsyncSession, table: Any, rows: list[dict[str, Any]]) -> int:
    """INSERT … ON CONFLICT DO NOTHING on PostgreSQL and SQLite; returns rows inserted."""
    if not rows:
        return 0
    stmt = dialect_insert(session, table).on_conflict_do_nothing()
    result = await session.execute(stmt, rows)
    return int(getattr(result, "rowcount", 0) or 0)


async def bulk_insert(
    session: Tx,
    table: Table,
    rows: Sequence[dict[str, Any]],
    *,
    ignore_conflicts: bool = False,
    returning: str | None = None,
) -> list[Any]:
    """Insert many rows (all with the same keys) in one statement; with ``returning``, that
    column of the rows actually inserted.

    On PostgreSQL the rows travel as one JSON document into ``INSERT … SELECT FROM
    json_to_recordset(…)``: serialising them costs orjson about a microsecond per row and
    the statement is prepared once, where an executemany builds, compiles and sends
    parameters per row and asyncpg's array encoding checks every value (ADR 0009).
    Elsewhere (SQLite) an ordinary executemany.
    """
    if not rows:
        return []
    columns = tuple(rows[0])
    if is_postgresql(session):
        sql = _positional(_recordset_insert_sql(table, columns, ignore_conflicts, returning))
        found = await pg_fetch(session, sql, json_rows(rows))
        return [row[0] for row in found] if returning else []
    session = orm_session(session)
    stmt: Any = dialect_insert(session, table)
    if ignore_conflicts:
        stmt = stmt.on_conflict_do_nothing()
    if returning:
        # SQLAlchemy batches an executemany with RETURNING into a few multi-row statements
        # ("insertmanyvalues"), in chunks that stay under SQLite's parameter limit.
        result = await session.execute(stmt.returning(table.c[returning]), list(rows))
        return list(result.scalars())
    await session.execute(stmt, list(rows))
    return []


#: Fewer rows go as one INSERT: COPY takes two round trips (start, data) where a prepared
#: INSERT takes one, which a single registration's two feed rows would feel.
COPY_MIN_ROWS = 32


async def copy_rows(session: Tx, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert many rows (all with the same keys) that cannot conflict, the fastest way the
    database has: on PostgreSQL binary ``COPY … FROM STDIN`` on the session's own
    connection, inside its transaction (constraints and foreign keys are checked as for an
    INSERT, a value too long for its column is refused); elsewhere :func:`bulk_insert`.

    For append-only rows on hot paths (feed events, melding's ledger): COPY took less than
    half the time of ``json_to_recordset`` for the same rows (ADR 0009). Fewer than
    :data:`COPY_MIN_ROWS` rows go as one INSERT. Values must have the column's Python type
    (``date`` for a date, an aware ``datetime`` for a timestamp).
    """
    if rows:
        await copy_records(session, table, *_as_records(rows))


async def update_last(
    session: Tx, table: Table, rows: Sequence[dict[str, Any]], *, key: str
) -> None:
    """:func:`bulk_update` as one of the transaction's last writes: sent with a
    :class:`DirectTransaction`'s ``COMMIT`` where :func:`send_last` can."""
    if rows and send_last(
        session, update_statement(table, (key,), _set_columns(rows, (key,))), rows
    ):
        return
    await bulk_update(session, table, rows, key=key)


def send_last(session: Tx, statement: str, rows: Sequence[dict[str, Any]]) -> bool:
    """Hand ``statement``, which reads ``rows`` as a JSON document (``CAST(:rows AS json)``,
    as :func:`recordset` writes it), to a :class:`DirectTransaction`'s ``COMMIT``, with the
    document written in (ADR 0019): one round trip for the write and the commit. The
    statement is prepared once per connection and executed by name
    (:meth:`DirectTransaction.execute_with_commit`). No later
    statement of the transaction sees what it writes; its failure is the commit's.

    False, and nothing sent, where that cannot be: not a :class:`DirectTransaction`, no
    rows, :data:`COPY_MIN_ROWS` rows or more, or a ``$`` in the document. A simple query
    has no parameters, so the document is dollar-quoted (``$rows$…$rows$``), in which
    nothing is an escape or a quote; orjson's JSON holds no raw control character, and a
    ``$`` could end the quoted string early."""
    if not isinstance(session, DirectTransaction) or not rows or len(rows) >= COPY_MIN_ROWS:
        return False
    document = json_rows(rows)
    if "$" in document:
        return False
    session.execute_with_commit(statement, f"$rows${document}$rows$")
    return True


async def copy_records(
    session: Tx,
    table: Table,
    columns: tuple[str, ...],
    records: Sequence[tuple[Any, ...]],
) -> None:
    """:func:`copy_rows` for rows built as tuples of ``columns``' values, in that order:
    what COPY sends, without a dict per row in between (a replay builds 5,000 ledger rows
    a batch)."""
    if not records:
        return
    if len(records) < COPY_MIN_ROWS or not is_postgresql(session):
        await bulk_insert(session, table, [dict(zip(columns, r, strict=True)) for r in records])
        return
    try:
        await _copy(await driver(session), table, columns, records)
    except asyncpg.PostgresError as exc:
        raise _as_sqlalchemy_error(f"COPY {table.name}", exc) from exc


async def insert_new(
    session: Tx, table: Table, rows: Sequence[dict[str, Any]], *, key: str
) -> list[Any]:
    """Insert rows that most likely are not there yet (all with the same keys); returns
    the ``key`` of the rows actually inserted. A row that meets a stored one (one a
    concurrent transaction wrote first, say) is left out, as ``bulk_insert(…,
    ignore_conflicts=True)`` leaves it out.

    On PostgreSQL, from :data:`COPY_MIN_ROWS` rows on, the rows are copied in a savepoint.
    For a batch of registrations that cost PostgreSQL ~11 µs a row, against ~22 µs for
    ``INSERT … ON CONFLICT DO NOTHING RETURNING`` from a JSON recordset. Should any row
    conflict, the savepoint is rolled back and all the rows go that other way, which
    skips the conflicting ones."""
    if len(rows) >= COPY_MIN_ROWS and is_postgresql(session):
        connection = await driver(session)
        # A savepoint in the transaction, by hand: a DirectTransaction's is not asyncpg's own
        # Transaction, inside which asyncpg refuses Connection.transaction().
        await connection.execute("SAVEPOINT insert_new")
        try:
            await _copy(connection, table, *_as_records(rows))
        except asyncpg.UniqueViolationError:
            await connection.execute("ROLLBACK TO SAVEPOINT insert_new")
            # the rows again, below, without the ones already there
        except asyncpg.PostgresError as exc:
            raise _as_sqlalchemy_error(f"COPY {table.name}", exc) from exc
        else:
            await connection.execute("RELEASE SAVEPOINT insert_new")
            return [row[key] for row in rows]
    return await bulk_insert(session, table, rows, ignore_conflicts=True, returning=key)


W = TypeVar("W")
P = TypeVar("P")


async def meanwhile(write: Coroutine[Any, Any, W], work: Awaitable[P]) -> tuple[W, P]:
    """``write`` (statements on the transaction's connection) while ``work`` (Python that
    leaves the connection alone and gives the event loop a turn now and then) runs: the
    database works on the one while this process works on the other. Both results.

    ``write`` is always waited for, even when ``work`` fails, so that the connection is
    idle again before the edge ends the transaction; ``work``'s error is the one raised.
    ``write`` is started (its first statement sent) before ``work`` begins; should
    ``work`` give the loop no turn, the rest of ``write`` runs after it (still correct, only
    not overlapped)."""
    parent = asyncio.current_task()  # named after it: whose statements these are
    task = asyncio.create_task(write, name=f"{parent.get_name() if parent else ''}/meanwhile")
    try:
        await asyncio.sleep(0)  # the write's first statement goes out now
        done = await work
    except BaseException:
        await asyncio.wait([task])
        if not task.cancelled():
            task.exception()  # retrieved: work's error is the one that counts
        raise
    return await task, done


async def in_turns(count: int, size: int) -> AsyncIterator[slice]:
    """Slices of ``count`` items, ``size`` at a time, with a turn of the event loop before
    each but the first: a long piece of Python over a batch, cut so that a statement
    running meanwhile (:func:`meanwhile`, or the write of the batch before it) is sent and
    answered between its slices (ADR 0022, 0023, 0029)."""
    for start in range(0, count, size):
        if start:
            await asyncio.sleep(0)
        yield slice(start, start + size)


async def _copy(
    connection: asyncpg.Connection,
    table: Table,
    columns: tuple[str, ...],
    records: Sequence[tuple[Any, ...]],
) -> None:
    await connection.copy_records_to_table(
        table.name, records=records, columns=columns, schema_name=table.schema
    )


def _as_records(rows: Sequence[dict[str, Any]]) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
    """Rows with the same keys as (their columns, each row's values in that order)."""
    columns = tuple(rows[0])
    return columns, list(map(_record_of(columns), rows))


def _record_of(columns: tuple[str, ...]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    """A row's values in ``columns`` order, picked in C: for 5,000 ledger rows 0.5 ms
    against 2.2 ms with a generator per row."""
    if len(columns) == 1:
        name = columns[0]
        return lambda row: (row[name],)
    return operator.itemgetter(*columns)


_DRIVER = "verzuimhub.driver"


async def driver(session: Tx) -> asyncpg.Connection:
    """The asyncpg connection under a PostgreSQL session, in the session's transaction
    (begun here if no statement has begun it): for statements on hot paths that go around
    SQLAlchemy's execution layers, which cost ~0.3 ms of CPU a statement on this machine
    against ~0.1 ms for asyncpg alone (ADR 0010). The session still commits or rolls back
    (the edge owns the transaction); pending ORM changes are flushed first, as before any
    statement. A :class:`DirectTransaction`'s is its own."""
    if isinstance(session, DirectTransaction):
        return session.connection
    if session.new or session.dirty or session.deleted:
        await session.flush()  # a flush with nothing to write still costs ~20 µs
    transaction = session.get_transaction()
    cached = session.info.get(_DRIVER)
    if cached is not None and cached[0] is transaction and transaction is not None:
        return cached[1]
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    found = raw.driver_connection
    assert isinstance(found, asyncpg.Connection)
    if not found.is_in_transaction():
        await _begin(session, raw.dbapi_connection)
    session.info[_DRIVER] = (session.get_transaction(), found)
    return found


async def _begin(session: AsyncSession, adapter: Any) -> None:
    """Begin the session's transaction on its connection, as SQLAlchemy's asyncpg adapter
    begins it lazily with the first statement it runs itself (a statement sent around it
    must not come first).

    The adapter's own begin costs one round trip (``BEGIN``). A ``SELECT 1`` through
    SQLAlchemy cost two, and together with a flush before every statement 0.15–0.35 ms
    more CPU per transaction of one to six statements on this machine
    (``bench/transaction_bench.py``). Single registrations share a six-statement
    transaction, 2.7 on average under load, so that was a tenth of each one's CPU.

    The begin is also where a connection the server dropped fails (the pool does not
    ping, ADR 0010). Then, or should a SQLAlchemy release no longer have this adapter's
    ``_start_transaction``, the begin goes through SQLAlchemy as a ``SELECT 1``. SQLAlchemy
    then sees the failure: it flags the error ``connection_invalidated`` and discards the
    pool."""
    start = getattr(adapter, "_start_transaction", None)
    mutex = getattr(adapter, "_execute_mutex", None)
    if start is not None and mutex is not None:
        try:
            async with mutex:
                if adapter._transaction is None:
                    await start()
        except Exception:
            pass  # SQLAlchemy's own begin, below, meets the failure again and handles it
        else:
            return
    await session.execute(_statement("SELECT 1"))


async def pg_fetch(session: Tx, sql: str, *args: Any) -> list[asyncpg.Record]:
    """Run one PostgreSQL statement (``$1``-style parameters) on the session's connection,
    around SQLAlchemy (see :func:`driver`); its rows. asyncpg prepares it once per
    connection. Failures are raised as SQLAlchemy raises them (``IntegrityError``, …)."""
    connection = await driver(session)
    try:
        return await connection.fetch(sql, *args)
    except asyncpg.PostgresError as exc:
        raise _as_sqlalchemy_error(sql, exc) from exc


def _as_sqlalchemy_error(statement: str, exc: asyncpg.PostgresError) -> DBAPIError:
    """A failure around SQLAlchemy, reported as SQLAlchemy reports the same failure."""
    if isinstance(exc, asyncpg.IntegrityConstraintViolationError):
        return IntegrityError(statement, None, exc)
    return DBAPIError(statement, None, exc)


async def bulk_update(
    session: Tx,
    table: Table,
    rows: Sequence[dict[str, Any]],
    *,
    key: str | tuple[str, ...],
) -> None:
    """Update many rows (all with the same keys) by a unique column, or by the columns of a
    composite key: each row carries each key column's value under ``"_" + column`` and the
    new values under the column names.

    PostgreSQL: one ``UPDATE … FROM json_to_recordset(…)`` (see :func:`bulk_insert`),
    around SQLAlchemy; elsewhere an executemany.
    """
    if not rows:
        return
    keys = (key,) if isinstance(key, str) else key
    columns = _set_columns(rows, keys)
    if is_postgresql(session):
        sql = _positional(_recordset_update_sql(table, keys, columns))
        async with plan_for_these_rows(session, rows):
            await pg_fetch(session, sql, json_rows(rows))
        return
    session = orm_session(session)
    from sqlalchemy import bindparam, update

    stmt = (
        update(table)
        .where(*(table.c[name] == bindparam("_" + name) for name in keys))
        .values({name: bindparam(name) for name in columns})
    )
    await session.execute(stmt, list(rows))


async def bulk_delete(session: AsyncSession, table: Table, keys: Sequence[dict[str, Any]]) -> None:
    """Delete the rows matching each of ``keys`` (dicts of column → value, all alike)."""
    if not keys:
        return
    columns = tuple(keys[0])
    if is_postgresql(session):
        match = " AND ".join(f'"{table.name}"."{c}" = x."{c}"' for c in columns)
        sql = f'DELETE FROM "{table.name}" USING {recordset(table, columns)} WHERE {match}'
        async with plan_for_these_rows(session, keys):
            await session.execute(_statement(sql), {"rows": json_rows(keys)})
        return
    from sqlalchemy import and_, bindparam, delete

    condition = and_(*(table.c[c] == bindparam(c) for c in columns))
    await session.execute(delete(table).where(condition), list(keys))


def _set_columns(rows: Sequence[dict[str, Any]], keys: tuple[str, ...]) -> tuple[str, ...]:
    """An update's rows: the columns they set (all but the ``"_" + key`` matches)."""
    matches = {"_" + name for name in keys}
    return tuple(name for name in rows[0] if name not in matches)


def plan_for_these_rows(session: Tx, rows: Sequence[Any]) -> Any:
    """For a statement that joins a table with a JSON document of many rows (``async
    with``): plan it for this execution (``plan_cache_mode = force_custom_plan``, see
    :func:`planner_settings`).

    A prepared statement switches to a generic plan after five executions; one made while
    the table was still small (a fresh database, a replay) can join the other way round and
    stay so as the table grows: a consumer's batch went from milliseconds to 0.7 s that way.
    A custom plan sees the table's current size every time."""
    if len(rows) > 100:
        return planner_settings(session, plan_cache_mode="force_custom_plan")
    return planner_settings(session)


def json_rows(rows: Sequence[dict[str, Any]]) -> str:
    """Rows as the JSON document ``json_to_recordset`` reads (dates and times in ISO 8601,
    bytes in base64, which :func:`recordset` decodes)."""
    return orjson.dumps(list(rows), default=_base64).decode()


def _base64(value: Any) -> str:
    """A ``bytes`` value in a JSON document: a feed row's body (ADR 0031). Base64 (SIMD),
    not ``bytea``'s hex input: Python's hex was ~8,000 instructions a 600-byte body."""
    if type(value) is bytes:
        return pybase64.b64encode_as_string(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def recordset(table: Table, columns: Sequence[str], *, param: str = "rows", **renamed: str) -> str:
    """``json_to_recordset(CAST(:rows AS json)) AS x(col type, …)`` for these columns of
    ``table``; ``renamed`` maps a JSON key to the column whose type it has. A ``bytea``
    column comes as base64 text (:func:`json_rows`) and is decoded in a subquery, so
    ``x`` has the column's type all the same."""
    names = [*columns, *renamed]
    types = [_pg_type(table, renamed.get(name, name)) for name in names]
    source = f"json_to_recordset(CAST(:{param} AS json))"
    fields = ", ".join(
        f'"{name}" {"TEXT" if kind == "BYTEA" else kind}'
        for name, kind in zip(names, types, strict=True)
    )
    if "BYTEA" not in types:
        return f"{source} AS x({fields})"
    values = ", ".join(
        f'decode(r."{name}", \'base64\') AS "{name}"' if kind == "BYTEA" else f'r."{name}"'
        for name, kind in zip(names, types, strict=True)
    )
    return f"(SELECT {values} FROM {source} AS r({fields})) AS x"


@asynccontextmanager
async def planner_settings(session: Tx, **settings: str) -> AsyncIterator[None]:
    """Planner settings for the statements of the block, on PostgreSQL: set for this
    transaction only (``set_config(…, true)``), and what was in effect before is restored
    after the block, for whatever else the transaction does. On failure they end with the
    transaction. Nothing elsewhere, or without settings."""
    if not settings or not is_postgresql(session):
        yield
        return
    names = tuple(settings)
    apply, restore = _setting_statements(len(names))
    [before] = await pg_fetch(session, apply, *names, *settings.values())
    yield
    await pg_fetch(session, restore, *names, *(before[i] for i in range(len(names))))


@lru_cache(maxsize=8)
def _setting_statements(count: int) -> tuple[str, str]:
    """(read the current values and set new ones, set values) for ``count`` settings, as
    ``pg_fetch`` takes them (the names, then the values): one round trip each (the select
    list is evaluated left to right)."""
    current = ", ".join(f"current_setting(${i + 1})" for i in range(count))
    sets = ", ".join(f"set_config(${i + 1}, ${count + i + 1}, true)" for i in range(count))
    return f"SELECT {current}, {sets}", f"SELECT {sets}"


def index_scans_only(session: Tx) -> Any:
    """For statements that must read through an index whatever the table's statistics say
    (``async with``): on PostgreSQL, sequential scans and sorts are switched off for the
    block (see :func:`planner_settings`). What is left reads through an index, in its
    order, and stops at a ``LIMIT``: a feed's page, a queue's oldest entries, rows by key.

    Statistics lag behind a table that grows fast: until autovacuum's next ``ANALYZE`` the
    planner goes by what the table held then, and a prepared statement's generic plan (kept
    after five executions) stays as it was made. Such plans read or sorted the whole table
    per call: a feed's page of 5,000 of 60,000 events took 60–100 ms instead of 2; the
    evaluator read the whole ledger for every 500 pupils."""
    return planner_settings(session, enable_seqscan="off", enable_sort="off")


async def by_keys(
    session: AsyncSession,
    key: Any,
    keys: Sequence[Any],
    *columns: Any,
    where: Sequence[Any] = (),
    lock: bool = False,
    entity: Any = None,
    params: dict[str, Any] | None = None,
) -> Result[*tuple[Any, ...]]:
    """The rows of ``key``'s table whose ``key`` is one of ``keys`` (and that meet
    ``where``, whose named ``bindparam``s take their values from ``params``; locked ``FOR
    UPDATE`` with ``lock``): their ``columns`` (default: all), or the ORM ``entity``
    mapped to the table. Unordered.

    On PostgreSQL ``key = ANY(:keys)`` (see :func:`_one_of`), under
    :func:`index_scans_only`: a lookup by key reads through the key's index, however many
    keys and whatever a cached plan or stale statistics say. A replay's batch of 5,000 keys
    was once left to the planner (above 1,000 keys). A generic plan made while the table
    was nearly empty then scanned it and compared each row with every key (a generic plan
    cannot hash a parameter's list): 4–15 s a batch on a ledger of 60,000 rows, where the
    index takes milliseconds (twentieth session). Elsewhere: ``key IN (…)``. See ADR
    0014."""
    keys = list(dict.fromkeys(keys))
    postgres = is_postgresql(session)
    query: Any = select(*(columns or key.table.c)).where(_one_of(key, keys, postgres), *where)
    if lock:
        query = query.with_for_update()
    if entity is not None:
        query = select(entity).from_statement(query)
    if not postgres or not keys:
        return await session.execute(query, params or {})
    async with index_scans_only(session):
        return await session.execute(query, params or {})


async def highest(session: AsyncSession, column: Any) -> Any:
    """The highest value in ``column`` (``None`` when its table is empty): on PostgreSQL
    read from the end of the column's index (:func:`index_scans_only`), so a stale plan
    cannot read the table for it."""
    statement = select(func.max(column))
    if not is_postgresql(session):
        return await session.scalar(statement)
    async with index_scans_only(session):
        return await session.scalar(statement)


async def rows_by_keys(
    session: AsyncSession,
    key: Any,
    keys: Iterable[Any],
    *columns: Any,
    where: Any = None,
    params: dict[str, Any] | None = None,
) -> Sequence[Sequence[Any]]:
    """:func:`by_keys` for ``columns`` of plain rows, as tuples in ``columns`` order
    (positional only), through :func:`fetch_plain`: a replay's batch looks up thousands of
    keys and gets thousands of rows back. The keys are probed as :func:`by_keys` probes
    them. ``where``: one more condition, its values as named ``bindparam``s given in
    ``params``; the statement is compiled once per (key, columns, where), so make it once
    (a module constant)."""
    keys = list(dict.fromkeys(keys))
    if not keys:
        return []
    if not is_postgresql(session):
        also = () if where is None else (where,)
        return (await by_keys(session, key, keys, *columns, where=also, params=params)).all()
    joined = _text_keys(key, keys)
    statement = _rows_by_keys_statement(key, columns, joined is not None, where)
    values = {**(params or {}), "keys": keys if joined is None else joined}
    async with index_scans_only(session):
        return await fetch_plain(session, statement, values)


@lru_cache(maxsize=64)
def _rows_by_keys_statement(
    key: Any, columns: tuple[Any, ...], joined: bool, where: Any = None
) -> Any:
    """:func:`by_keys`' statement on PostgreSQL, the keys left to the parameter ``keys``
    (one string with ``joined``, see :func:`_any_key`)."""
    also = () if where is None else (where,)
    return select(*columns).where(_any_key(key, joined=joined), *also)


async def fetch_plain(
    session: AsyncSession, statement: Any, params: dict[str, Any]
) -> Sequence[Sequence[Any]]:
    """The rows of a Core ``SELECT`` with named ``bindparam``s, as plain tuples. On
    PostgreSQL it runs around SQLAlchemy's execution and result layers (:func:`pg_fetch`),
    compiled once per statement object (make it once, e.g. in an ``lru_cache``d function):
    for statements that return thousands of rows, whose processing by SQLAlchemy's result
    layer cost more than asyncpg's decoding of them. Elsewhere through the session."""
    if not is_postgresql(session):
        return (await session.execute(statement, params)).all()
    sql, names = _compiled_for_asyncpg(statement)
    return await pg_fetch(session, sql, *(params[name] for name in names))


@lru_cache(maxsize=64)
def _compiled_for_asyncpg(statement: Any) -> tuple[str, tuple[str, ...]]:
    """A Core statement as asyncpg's SQL (``$n`` parameters), and its parameters' names in
    ``$n`` order."""
    from sqlalchemy.dialects.postgresql.asyncpg import dialect

    compiled = statement.compile(dialect=dialect())
    return str(compiled), tuple(compiled.positiontup or ())


async def delete_by_keys(session: AsyncSession, key: Any, keys: Sequence[Any]) -> None:
    """Delete the rows of ``key``'s table whose ``key`` is one of ``keys``: through the
    key's index on PostgreSQL (see :func:`index_scans_only`)."""
    from sqlalchemy import delete

    keys = list(dict.fromkeys(keys))
    if not keys:
        return
    postgres = is_postgresql(session)
    statement = delete(key.table).where(_one_of(key, keys, postgres))
    async with index_scans_only(session):  # a no-op elsewhere
        await session.execute(statement)


def _one_of(key: Any, keys: list[Any], postgres: bool) -> Any:
    """``key = ANY(:keys)`` on PostgreSQL (one parameter: one prepared statement whatever
    the count, where an expanding IN is compiled per length); ``key IN (…)`` elsewhere."""
    if not postgres:
        return key.in_(keys)
    joined = _text_keys(key, keys)
    return _any_key(key, keys if joined is None else joined, joined=joined is not None)


def _any_key(key: Any, keys: Any = None, *, joined: bool = False) -> Any:
    """``key = ANY(:keys)``: the keys as one parameter named ``keys``: an array, or with
    ``joined`` a string of text keys for ``string_to_array`` (:func:`text_list`)."""
    from sqlalchemy import Text, any_, bindparam, func, literal_column

    if joined:
        separator: Any = literal_column(f"'{LIST_SEPARATOR}'")
        return key == any_(func.string_to_array(bindparam("keys", keys, type_=Text), separator))
    return key == any_(bindparam("keys", keys, type_=postgresql.ARRAY(key.type)))


def _text_keys(key: Any, keys: list[Any]) -> str | None:
    """The keys of a text column as one string (:func:`text_list`), when they can be."""
    return text_list(keys) if isinstance(key.type, String) else None


#: Between the values of a list of text sent as one string (:func:`text_list`).
LIST_SEPARATOR = ","


def _split_list(parameter: str) -> str:
    """SQL for the array of text that :func:`text_list` sent as ``parameter`` (``$1``)."""
    return f"string_to_array({parameter}::text, '{LIST_SEPARATOR}')"


async def pg_fetch_lists(
    session: Tx, template: str, lists: Sequence[Sequence[str]], *args: Any
) -> list[asyncpg.Record]:
    """:func:`pg_fetch` of a statement whose first parameters are lists of text, written
    ``{0}``, ``{1}``, … in ``template`` (they are ``$1``, ``$2``, …; ``args`` follow them,
    written ``$n`` as usual; no other braces). Each list goes as one string that
    PostgreSQL splits (:func:`text_list`) when every list can, otherwise all go as
    ``text[]`` arrays."""
    joined = [text_list(values) for values in lists]
    if None in joined:
        return await pg_fetch(session, _lists_sql(template, len(lists), False), *lists, *args)
    return await pg_fetch(session, _lists_sql(template, len(lists), True), *joined, *args)


@lru_cache(maxsize=64)
def _lists_sql(template: str, count: int, joined: bool) -> str:
    numbers = range(1, count + 1)
    return template.format(*(_split_list(f"${n}") if joined else f"${n}::text[]" for n in numbers))


def text_list(values: Sequence[Any]) -> str | None:
    """``values`` as one parameter for ``string_to_array($n, ',')`` on PostgreSQL, when
    they are strings and none holds the separator; otherwise None (send the array).

    asyncpg encodes a ``text[]`` parameter value by value, in Python (~0.65 µs each: a
    replay's batch sends ~15,000 keys); one string costs it next to nothing, and
    PostgreSQL splits it for less than it decodes the array (5,000 keys: 3.3 ms of the
    client's CPU and 1.3 of the server's as an array, 0.2 and 0.9 as one string). The
    check is the join's own count of separators; an empty string alone would read as no
    value at all."""
    try:
        joined = LIST_SEPARATOR.join(values)
    except TypeError:
        return None
    if not joined or joined.count(LIST_SEPARATOR) != len(values) - 1:
        return None
    return joined


@lru_cache(maxsize=256)
def _positional(sql: str) -> str:
    """A generated statement's ``:rows`` as asyncpg's ``$1`` (see :func:`pg_fetch`)."""
    return sql.replace("CAST(:rows AS json)", "CAST($1 AS json)")


@lru_cache(maxsize=256)
def _statement(sql: str) -> Any:
    """The ``text()`` construct of a generated statement, made once (parsing its binds per
    call showed up in a single registration's profile)."""
    return text(sql)


def _pg_type(table: Table, name: str) -> str:
    """The column's type without a length: the record's fields are read unbounded and the
    column itself refuses a value too long (an explicit cast to ``VARCHAR(n)`` would
    silently truncate instead)."""
    compiled = table.c[name].type.compile(dialect=postgresql.dialect())
    return re.sub(r"\(\d+(,\s*\d+)?\)", "", compiled)


def insert_statement(table: Table, columns: tuple[str, ...]) -> str:
    """``INSERT INTO table (columns) SELECT … FROM`` the rows' JSON document (``:rows``),
    for :func:`send_last`: a conflict fails it."""
    return _recordset_insert_sql(table, columns, False, None)


def update_statement(table: Table, keys: tuple[str, ...], columns: tuple[str, ...]) -> str:
    """:func:`bulk_update`'s ``UPDATE … FROM`` the rows' JSON document (``:rows``), for
    :func:`send_last`."""
    return _recordset_update_sql(table, keys, columns)


@lru_cache(maxsize=256)
def _recordset_insert_sql(
    table: Table, columns: tuple[str, ...], ignore_conflicts: bool, returning: str | None
) -> str:
    names = ", ".join(f'"{name}"' for name in columns)
    sql = f'INSERT INTO "{table.name}" ({names}) SELECT {names} FROM {recordset(table, columns)}'
    if ignore_conflicts:
        sql += " ON CONFLICT DO NOTHING"
    if returning:
        sql += f' RETURNING "{returning}"'
    return sql


@lru_cache(maxsize=256)
def _recordset_update_sql(table: Table, keys: tuple[str, ...], columns: tuple[str, ...]) -> str:
    sets = ", ".join(f'"{name}" = x."{name}"' for name in columns)
    source = recordset(table, columns, **{"_" + name: name for name in keys})
    match = " AND ".join(f'"{table.name}"."{name}" = x."_{name}"' for name in keys)
    return f'UPDATE "{table.name}" SET {sets} FROM {source} WHERE {match}'


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    db: Database = request.app.state.db
    async with db.transaction() as session:
        yield session


#: A request-scoped session; the transaction ends (commit/rollback) before the response.
SessionDep = Annotated[AsyncSession, Depends(_session, scope="function")]
