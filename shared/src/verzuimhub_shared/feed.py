"""The event feed: a transactional outbox served over HTTP, and the consumer loop.

Producer side. Events are written in the same transaction as the state change. Positions
are *commit-ordered*: :func:`append` takes the next positions from a one-row counter with
``UPDATE … RETURNING``, which holds that row's lock until the transaction ends. A second
writer waits there until the first has committed or rolled back, so a position only ever
becomes visible after every lower position is settled, and a reader that asks for
``position > cursor`` can never skip a late committer. Call :func:`append` (or
:func:`append_rows`, with rows :func:`rows_of` made beforehand, ADR 0029) as the last
write of a transaction: the counter lock is held from there to the commit (on a
``DirectTransaction``, in the commit's own message, ADR 0026).

Each consumer has its own rows (per-consumer projection); a consumer's rows may be sealed
(AES-GCM) at rest when they carry an identity. An envelope is stored with position 0 and
served with its row's (ADR 0026). A page is served one event per line: still one JSON
array, readable line by line.

Consumer side. :class:`FeedConsumer` fetches a batch over HTTP without any transaction
open, then in one transaction locks its cursor row, checks that no other replica advanced
it meanwhile, applies the batch and stores the new cursor: exactly-once in effect, safe
with any number of replicas. A consumer with a ``prepare`` stage reads and works out the
next batch while the current one is written (ADR 0022); that plan is used only when the
batch before it was applied by this consumer and the cursor is where that batch left it.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import secrets
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import httpx
import orjson
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    bindparam,
    func,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from verzuimhub_shared.crypto import Sealer
from verzuimhub_shared.db import (
    DirectTransaction,
    Tx,
    code,
    copy_rows,
    fetch_plain,
    index_scans_only,
    insert_ignore,
    is_postgresql,
    orm_session,
    pg_fetch,
    recordset,
    send_last,
)
from verzuimhub_shared.logging import get_logger

CLOUDEVENTS_BATCH = "application/cloudevents-batch+json"
#: Response header: the newest position the feed holds for the calling consumer. The
#: consumer's lag is the distance from its cursor (in positions: 0 when caught up).
FEED_HEAD_HEADER = "Feed-Head-Position"

log = get_logger(__name__)


@dataclass(frozen=True)
class FeedTables:
    events: Table
    counter: Table


def feed_tables(metadata: MetaData, prefix: str = "feed") -> FeedTables:
    events = Table(
        f"{prefix}_events",
        metadata,
        Column("position", BigInteger, primary_key=True, autoincrement=False),
        Column("consumer", code(32), nullable=False),
        Column("event_id", code(64), nullable=False),
        Column("type", code(128), nullable=False),
        Column("subject", code(64), nullable=True),
        Column("recorded_at", DateTime(timezone=True), nullable=False),
        Column("sealed", Boolean, nullable=False),
        # The envelope's JSON, or what Sealer.seal_binary made of it (ADR 0031).
        Column("body", LargeBinary, nullable=False),
        Index(f"ix_{prefix}_events_consumer_position", "consumer", "position"),
    )
    counter = Table(
        f"{prefix}_counter",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("last_position", BigInteger, nullable=False),
    )
    return FeedTables(events, counter)


def cursor_table(metadata: MetaData) -> Table:
    return Table(
        "feed_cursors",
        metadata,
        Column("feed", code(64), primary_key=True),
        Column("position", BigInteger, nullable=False),
        Column("events_applied", BigInteger, nullable=False, server_default="0"),
        Column("updated_at", DateTime(timezone=True), nullable=False),
    )


@dataclass(frozen=True)
class Event:
    """One event for one consumer, before it has a position."""

    consumer: str
    type: str
    data: dict[str, Any]
    #: The producer's own record id, kept on the row for its bookkeeping (retention) and
    #: never sent: a consumer's projection decides what it may link.
    subject: str | None = None
    seal: bool = False
    event_id: str = ""


async def append(
    session: Tx,
    tables: FeedTables,
    events: Sequence[Event],
    *,
    source: str,
    sealer: Sealer | None = None,
) -> None:
    """Append events: the last write of the transaction (:func:`rows_of`, then
    :func:`append_rows`)."""
    await append_rows(session, tables, rows_of(events, source=source, sealer=sealer))


def rows_of(
    events: Sequence[Event], *, source: str, sealer: Sealer | None = None
) -> list[dict[str, Any]]:
    """The feed rows of ``events``, their bodies made and sealed: Python only, no database
    (so a producer can make them while one of its statements runs)."""
    if not events:
        return []
    now = datetime.now(UTC)
    stamp = now.isoformat().replace("+00:00", "Z")
    rows = []
    # Fresh ids from one read of the system's randomness (uuid4().hex costs 3× more than
    # token_hex, and each read is a system call).
    fresh = secrets.token_hex(16 * len(events))
    for offset, event in enumerate(events):
        event_id = event.event_id or fresh[32 * offset : 32 * offset + 32]
        envelope = {
            "position": 0,  # the row's: written in by read_batch
            "specversion": "1.0",
            "id": event_id,
            "source": source,
            "type": event.type,
            "time": stamp,
            "datacontenttype": "application/json",
            "data": event.data,
        }
        if event.seal:
            if sealer is None:
                raise ValueError("a sealed event needs a sealer")
            body = sealer.seal_binary(orjson.dumps(envelope), context=event.consumer)
        else:
            # A copy: orjson's own bytes, kept, cost a fresh page of memory each (~2.5 µs
            # against ~0.7 for the copy, the twenty-fifth session's machine).
            body = bytes(memoryview(orjson.dumps(envelope)))
        rows.append(
            {
                "consumer": event.consumer,
                "event_id": event_id,
                "type": event.type,
                "subject": event.subject,
                "recorded_at": now,
                "sealed": event.seal,
                "body": body,
            }
        )
    return rows


async def append_rows(session: Tx, tables: FeedTables, rows: Sequence[dict[str, Any]]) -> None:
    """Append rows made by :func:`rows_of`: the last write of the transaction.

    An event's envelope is stored with ``"position": 0`` (:data:`UNPOSITIONED`), and
    :func:`read_batch` writes the row's position in as it serves it (ADR 0026): the body is
    made, and sealed, before the positions are known. On a :class:`DirectTransaction`, a
    few rows go with its ``COMMIT``, in one statement that advances the counter and inserts
    them: the counter's lock is taken there, in the commit's own round trip. Elsewhere the
    counter is advanced first (``UPDATE … RETURNING``) and the rows are inserted after."""
    if not rows:
        return
    if isinstance(session, DirectTransaction):
        statement = _numbered_insert_sql(tables, tuple(rows[0]), len(rows))
        numbered = [row | {"_offset": offset} for offset, row in enumerate(rows, 1)]
        if send_last(session, statement, numbered):
            return
    if is_postgresql(session):
        [row] = await pg_fetch(session, _advance_sql(tables.counter.name), len(rows))
        last = int(row[0])
    else:
        result = await orm_session(session).execute(_advance(tables), {"n": len(rows)})
        last = int(result.scalar_one())
    first = last - len(rows) + 1
    # Not with the COMMIT: what send_last could not send (too many rows, a "$") it cannot
    # send with positions either.
    await copy_rows(
        session,
        tables.events,
        [{"position": first + offset} | row for offset, row in enumerate(rows)],
    )


#: What an envelope's position is at rest (ADR 0026): "the row's". No event has position
#: 0 (a cursor at 0 stands before the first), so an envelope stored before ADR 0026, which
#: carries its own position, is told apart exactly, and served as it is.
UNPOSITIONED = '{"position":0,'
_UNPOSITIONED = UNPOSITIONED.encode()


def _counter_update(counter: str, amount: str) -> str:
    """The counter advanced by ``amount``, returning the last position taken."""
    return (
        f'UPDATE "{counter}" SET last_position = last_position + {amount} WHERE id = 1 '
        "RETURNING last_position"
    )


@lru_cache(maxsize=64)
def _numbered_insert_sql(tables: FeedTables, columns: tuple[str, ...], count: int) -> str:
    """The counter advanced by ``count`` and that many rows (of ``columns``) inserted at
    the positions it returned, in order, in one statement (for :func:`send_last`; each row
    carries its 1-based ``_offset`` besides)."""
    events = tables.events
    names = ", ".join(f'"{name}"' for name in columns)
    values = ", ".join(f'x."{name}"' for name in columns)
    advance = _counter_update(tables.counter.name, str(count))
    return (
        f"WITH adv AS ({advance}) "
        f'INSERT INTO "{events.name}" ("position", {names}) '
        f"SELECT adv.last_position - {count} + x._offset, {values} "
        f"FROM adv, {recordset(events, columns, param='rows', _offset='position')}"
    )


@lru_cache(maxsize=8)
def _advance_sql(counter: str) -> str:
    """The same on PostgreSQL, sent around SQLAlchemy (``db.pg_fetch``: once per write)."""
    return _counter_update(counter, "$1")


@lru_cache(maxsize=8)
def _advance(tables: FeedTables) -> Any:
    """``UPDATE counter SET last_position = last_position + :n RETURNING last_position``,
    built once (building it was a tenth of a single registration's CPU)."""
    c = tables.counter.c
    return (
        update(tables.counter)
        .where(c.id == 1)
        .values(last_position=c.last_position + bindparam("n", type_=BigInteger))
        .returning(c.last_position)
    )


async def read_batch(
    session: AsyncSession,
    tables: FeedTables,
    consumer: str,
    after: int,
    limit: int,
    sealer: Sealer | None = None,
) -> bytes:
    """The consumer's events after ``after`` as a CloudEvents JSON batch (raw bytes), one
    event per line."""
    t = tables.events
    # After a bulk append that autovacuum had not analysed yet, the planner guessed a few
    # hundred events after the cursor and chose to fetch *every* later event and sort them
    # (on disk) for each page: a page of 5,000 of 60,000 events took 60–100 ms instead of
    # 2, and a replay from position 0 grew with the square of the backlog.
    async with index_scans_only(session):
        # A page is up to 5,000 rows: plain rows, around SQLAlchemy's result layer.
        params = {"consumer": consumer, "after": after, "limit": limit}
        result = await fetch_plain(session, _page_statement(t), params)
    # In bytes throughout: the rows are bytes (ADR 0031), and the page is not one string
    # to encode at the end (twenty-fourth session: 6 % of serving a page's instructions).
    # The page is made in one join of its pieces, each event after its separator: not
    # joined and then bracketed, two more copies of the whole page (1.6 MB), nor each
    # unpositioned body sliced and then concatenated with its position. By ``timeit`` on
    # 2,500 rows: 1.8-3.1 µs an event as it was, 0.6 as it is (a body's tail as a
    # ``memoryview`` instead of a slice: 0.7-0.8; twenty-sixth session).
    parts: list[bytes] = []
    add = parts.append
    skip = len(_UNPOSITIONED)
    separator = b"["  # before the first event; then the separator between two
    for position, sealed, body in result:
        if sealed:
            if sealer is None:
                raise ValueError("sealed feed rows need a sealer")
            data = sealer.open_binary(body, context=consumer)
        else:
            data = body
        if data.startswith(_UNPOSITIONED):  # the row's position written in (ADR 0026)
            add(b'%s{"position":%d,' % (separator, position))
            add(data[skip:])
        else:
            add(separator)
            add(data)
        separator = _EVENT_SEPARATOR
    add(b"]" if parts else b"[]")
    return b"".join(parts)


def page_parts(content: bytes, size: int) -> Iterator[bytes | memoryview]:
    """A page as :func:`read_batch` serves it, as JSON arrays of its events in order, each
    of about ``size`` bytes or a little more: cut only between two events, where a page
    has its separator (one event per line, ADR 0016). A consumer decodes a large page part
    by part, and its event loop gets a turn between them. A page framed otherwise (line
    breaks inside its events) can be cut into parts that do not parse; one no larger than
    ``size`` comes out whole.

    The parts are views of one copy of the page, each framed in place: its separator's
    comma becomes the ``]`` of the part before it and its line break the ``[`` of the part
    after it (a part cut and bracketed as new bytes was copied three times, 4.5 % of the
    decoding's instructions, twenty-fourth session)."""
    if len(content) <= size:
        yield content
        return
    framed = bytearray(content)
    view = memoryview(framed)
    start, end = 1, len(content) - 1  # inside the brackets
    while True:
        framed[start - 1] = _OPEN  # the page's own "[", or the separator's line break
        cut = content.find(_EVENT_SEPARATOR, start + size, end)
        if cut < 0:
            yield view[start - 1 : end + 1]  # up to the page's own "]"
            return
        framed[cut] = _CLOSE  # the separator's comma
        yield view[start - 1 : cut + 1]
        start = cut + len(_EVENT_SEPARATOR)


#: Between two events of a page: a line break after the comma. A raw line break cannot
#: stand inside a JSON string, and the envelopes are serialised without one (orjson), so
#: it only ever stands between events.
_EVENT_SEPARATOR = b",\n"
_OPEN, _CLOSE = ord("["), ord("]")


@lru_cache(maxsize=8)
def _page_statement(events: Table) -> Any:
    return (
        select(events.c.position, events.c.sealed, events.c.body)
        .where(events.c.consumer == bindparam("consumer"), events.c.position > bindparam("after"))
        .order_by(events.c.position)
        .limit(bindparam("limit"))
    )


async def last_position_for(session: AsyncSession, tables: FeedTables, consumer: str) -> int:
    t = tables.events
    result = await session.execute(select(func.max(t.c.position)).where(t.c.consumer == consumer))
    return int(result.scalar_one_or_none() or 0)


# --- consumer side -------------------------------------------------------------------

Handler = Callable[[AsyncSession, list[dict[str, Any]]], Awaitable[None]]


@dataclass(frozen=True)
class Page:
    """One fetched batch of a feed: how many events, the last one's position, and what the
    consumer's handler gets (the events, or what its ``decode`` made of them)."""

    count: int
    last_position: int
    batch: Any


def events_page(content: bytes) -> Page:
    """A feed response as a list of event dicts (the consumer's default ``decode``)."""
    events: list[dict[str, Any]] = orjson.loads(content)
    return Page(len(events), int(events[-1]["position"]) if events else 0, events)


#: A batch not prepared yet: ``FeedConsumer._apply`` prepares it in the write's transaction.
_UNPREPARED: Any = object()


@dataclass
class _Ready:
    """The page after position ``after``, fetched and prepared ahead, and the fetch of the
    page after it, when one was started."""

    after: int
    page: Page
    prepared: Any
    prefetch: tuple[int, asyncio.Task[Page]] | None


class FeedConsumer:
    """Pulls one feed and applies it exactly once in effect (see module docstring)."""

    def __init__(
        self,
        *,
        name: str,
        url: str,
        token: Callable[[], str],
        cursors: Table,
        transaction: Callable[[], Any],
        handler: Callable[[AsyncSession, Any], Awaitable[None]],
        client: httpx.AsyncClient,
        batch_size: int = 1000,
        on_lag: Callable[[str, int], None] | None = None,
        decode: Callable[[bytes], Page | Awaitable[Page]] = events_page,
        on_applied: Callable[[int], None] | None = None,
        prepare: Callable[[AsyncSession, Any, Any], Awaitable[Any]] | None = None,
    ) -> None:
        """``handler(session, batch)`` applies a batch inside the consumer's transaction;
        ``batch`` is what ``decode(response body)`` made of a response: by default the list
        of events. ``decode`` does the work that needs no database (parsing, validating,
        hashing) and runs as soon as a batch arrives: for a prefetched batch, while the
        previous one waits on the database. It may be a coroutine function, to give the
        event loop turns while it works (ADR 0023). ``on_applied(count)`` is called once a
        batch is committed (to wake whatever works on what the batch wrote).

        ``prepare(session, batch, ahead)``, when given, does the reading and working out
        for a batch, and ``handler`` gets what it returns instead of the batch (ADR 0022).
        In :meth:`run`, while a full batch is written, the next one is prepared in a
        transaction of its own: ``ahead`` is then the batch being written's prepared work,
        whose writes that transaction may or may not see yet, and which the result must
        take as done. The first of such a run of batches is prepared the same way, before
        its write, with ``ahead`` ``None``. A batch with none after it (the feed's head)
        and :meth:`step` prepare in the transaction that writes the batch, after the
        cursor's lock, with ``ahead`` ``None``."""
        self.name = name
        self._on_lag = on_lag
        self.url = url
        self._token = token
        self._cursors = cursors
        self._transaction = transaction
        self._handler = handler
        self._decode = decode
        self._on_applied = on_applied
        self._prepare = prepare
        self._client = client
        self.batch_size = batch_size
        self.last_seen_head = 0

    async def cursor(self) -> int:
        async with self._transaction() as session:
            return await self._read_cursor(session, lock=False)

    async def _read_cursor(self, session: AsyncSession, *, lock: bool) -> int:
        query = select(self._cursors.c.position).where(self._cursors.c.feed == self.name)
        if lock:
            query = query.with_for_update()
        position = (await session.execute(query)).scalar_one_or_none()
        if position is None:
            row = {"feed": self.name, "position": 0, "events_applied": 0}
            await insert_ignore(session, self._cursors, [row | {"updated_at": datetime.now(UTC)}])
            position = (await session.execute(query)).scalar_one()
        return int(position)

    async def fetch(self, after: int, *, cursor: int | None = None) -> Page:
        """The batch after position ``after``, decoded. ``cursor``: where the consumer's
        cursor stands, when that is not ``after`` (a prefetch, while the batch before it is
        applied)."""
        response = await self._client.get(
            self.url,
            params={"after": after, "limit": self.batch_size},
            headers={"authorization": f"Bearer {self._token()}"},
        )
        response.raise_for_status()
        head = response.headers.get(FEED_HEAD_HEADER)
        if head is not None and head.isdigit():
            self.last_seen_head = int(head)
            if self._on_lag is not None:
                # From the cursor, not from the end of this batch: the batch is not applied
                # yet (a prefetched one waits behind the batch being applied), and a
                # consumer about to apply its last batch of a backlog is still catching up.
                at = after if cursor is None else cursor
                self._on_lag(self.name, max(0, self.last_seen_head - at))
        page = self._decode(response.content)
        return await page if inspect.isawaitable(page) else page

    async def step(self) -> int:
        """Fetch and apply one batch; returns how many events were applied (0: idle)."""
        after = await self.cursor()
        return await self._apply(after, await self.fetch(after))

    async def _apply(self, after: int, page: Page, prepared: Any = _UNPREPARED) -> int:
        if not page.count:
            return 0
        async with self._transaction() as session:
            current = await self._read_cursor(session, lock=True)
            if current != after:
                return 0  # another replica applied this batch meanwhile
            work = page.batch
            if self._prepare is not None:
                if prepared is _UNPREPARED:
                    prepared = await self._prepare(session, page.batch, None)
                work = prepared
            await self._handler(session, work)
            await session.execute(
                update(self._cursors)
                .where(self._cursors.c.feed == self.name)
                .values(
                    position=page.last_position,
                    events_applied=self._cursors.c.events_applied + page.count,
                    updated_at=datetime.now(UTC),
                )
            )
        if self._on_applied is not None:
            self._on_applied(page.count)
        return page.count

    async def _prepared(self, batch: Any, ahead: Any) -> Any:
        assert self._prepare is not None
        async with self._transaction() as session:
            return await self._prepare(session, batch, ahead)

    async def _apply_preparing_next(
        self, after: int, page: Page, prepared: Any, following: asyncio.Task[Page]
    ) -> tuple[int, _Ready | None]:
        """Apply ``page`` and, while it is written, prepare the page ``following`` it (and
        start fetching the one after that). The next page's plan is returned only when this
        page was applied (not when another replica had advanced the cursor): it assumes
        this page's writes."""
        if prepared is _UNPREPARED:
            try:
                prepared = await self._prepared(page.batch, None)
            except BaseException:
                following.cancel()
                raise
        write = asyncio.create_task(self._apply(after, page, prepared))
        ready: _Ready | None = None
        try:
            try:
                nxt = await following
            except Exception:
                nxt = None  # fetched again once this page is applied, and its failure met then
            if nxt is not None and nxt.count:
                ready = _Ready(page.last_position, nxt, _UNPREPARED, self._prefetch(nxt, after))
                ready.prepared = await self._prepared(nxt.batch, prepared)
        except Exception:
            _drop(ready)
            await write  # this page's outcome first: its failure is the one raised
            raise
        except BaseException:
            _drop(ready)
            write.cancel()  # rolled back, or committed: the cursor says which
            with contextlib.suppress(BaseException):
                await write
            raise
        try:
            applied = await write
        except BaseException:
            _drop(ready)
            raise
        if applied != page.count:
            _drop(ready)
            return applied, None
        return applied, ready

    def _prefetch(self, page: Page, cursor: int) -> tuple[int, asyncio.Task[Page]] | None:
        """Start fetching the page after ``page`` when more is likely waiting (``page`` was
        full); ``cursor``: where the cursor stands meanwhile."""
        if page.count < self.batch_size:
            return None
        task = asyncio.create_task(self.fetch(page.last_position, cursor=cursor))
        task.add_done_callback(_retrieve)  # a discarded failure stays quiet
        return (page.last_position, task)

    async def run(self, stop: asyncio.Event, idle_seconds: float = 0.5) -> None:
        """Apply batches until ``stop``. While one batch is applied, the next one is already
        being fetched (the producer serves it on another core), and, with a ``prepare``
        stage, prepared, while the one after it is fetched. A prefetched batch is used only
        when it starts exactly at the cursor this consumer then reads, and a prepared one
        only when this consumer applied the batch before it (its write checks the cursor
        under the lock, as every write does); so a replica that advanced meanwhile or a
        failed apply just costs the discarded work."""
        backoff = idle_seconds
        prefetch: tuple[int, asyncio.Task[Page]] | None = None
        ready: _Ready | None = None
        try:
            while not stop.is_set():
                try:
                    prepared: Any = _UNPREPARED
                    if ready is not None:
                        after, page, prepared, prefetch = (
                            ready.after,
                            ready.page,
                            ready.prepared,
                            ready.prefetch,
                        )
                        ready = None
                    else:
                        after = await self.cursor()
                        if prefetch is not None and prefetch[0] == after:
                            page = await prefetch[1]
                        else:
                            if prefetch is not None:
                                prefetch[1].cancel()
                            page = await self.fetch(after)
                        prefetch = self._prefetch(page, after)
                    if self._prepare is not None and prefetch is not None:
                        following, prefetch = prefetch[1], None
                        applied, ready = await self._apply_preparing_next(
                            after, page, prepared, following
                        )
                    else:
                        applied = await self._apply(after, page, prepared)
                    backoff = idle_seconds
                except (httpx.HTTPError, OSError) as exc:
                    log.warning("feed_fetch_failed", feed=self.name, exc_type=type(exc).__name__)
                    applied = 0
                    backoff = min(backoff * 2, 10.0)
                if applied == 0:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(backoff):  # not wait_for: see middleware
                            await stop.wait()
        finally:
            _drop(ready)
            if prefetch is not None:
                prefetch[1].cancel()
                with contextlib.suppress(BaseException):
                    await prefetch[1]


def _drop(ready: _Ready | None) -> None:
    """A prepared batch not to be used: the fetch it started is cancelled."""
    if ready is not None and ready.prefetch is not None:
        ready.prefetch[1].cancel()


def _retrieve(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()


def seed_counter(table_name: str = "feed_counter") -> Any:
    """For the initial migration: the counter's single row."""
    from alembic import op
    from sqlalchemy import column, table

    op.bulk_insert(
        table(table_name, column("id", Integer), column("last_position", BigInteger)),
        [{"id": 1, "last_position": 0}],
    )
