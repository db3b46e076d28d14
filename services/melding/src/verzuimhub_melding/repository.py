"""All of melding's queries."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Table, and_, bindparam, func, literal, or_, select, union, update
from sqlalchemy.ext.asyncio import AsyncSession

from verzuimhub_melding.domain.ledger import Entry
from verzuimhub_melding.models import (
    CURSORS,
    DuoOutbox,
    LedgerEntry,
    LedgerGemarkeerd,
    Leerling,
    Melding,
    SchoolBeleid,
    TeEvalueren,
)
from verzuimhub_shared.db import (
    bulk_update,
    by_keys,
    copy_records,
    delete_by_keys,
    dialect_insert,
    highest,
    index_scans_only,
    insert_ignore,
    is_postgresql,
    pg_fetch,
    planner_settings,
    rows_by_keys,
)

L: Table = Leerling.__table__  # type: ignore[assignment]
E: Table = LedgerEntry.__table__  # type: ignore[assignment]
T: Table = TeEvalueren.__table__  # type: ignore[assignment]
M: Table = Melding.__table__  # type: ignore[assignment]
G: Table = LedgerGemarkeerd.__table__  # type: ignore[assignment]

#: Statuses a gemeente can see (the school has sent them).
VISIBLE_TO_GEMEENTE = (
    "ingediend",
    "geregistreerd",
    "in_behandeling",
    "afgesloten",
    "ter_kennisgeving_aangenomen",
    "ingetrokken",
)


#: What melding keeps of a pupil besides the identity (rewritten when an event differs).
PUPIL_FACTS = ("vestiging", "geboortedatum", "woongemeente", "sector", "startkwalificatie")
_PUPIL_COLUMNS = (L.c.pgn_hash, L.c.brin, L.c.id, *(L.c[name] for name in PUPIL_FACTS))


async def leerlingen_by_key(
    session: AsyncSession, keys: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], tuple[str, tuple[Any, ...]]]:
    """(id, facts in ``PUPIL_FACTS`` order) of pupils by (pseudonym, BRIN). Queried on the
    pseudonym alone (the leading column of the unique index, one array parameter) and
    matched on the BRIN here: a tuple IN of a thousand pairs cost a third of a replay in
    planning and parameter handling. Rows are read by position (the hot path of a replay)."""
    wanted = set(keys)
    hashes = sorted({h for h, _ in wanted})
    found: dict[tuple[str, str], tuple[str, tuple[Any, ...]]] = {}
    for chunk in _chunks(session, hashes):
        rows = await rows_by_keys(session, L.c.pgn_hash, chunk, *_PUPIL_COLUMNS)
        for pgn_hash, brin, leerling_id, *facts in rows:
            if (pgn_hash, brin) in wanted:
                found[(pgn_hash, brin)] = (leerling_id, tuple(facts))
    return found


def _chunks(session: AsyncSession, values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    """One array parameter on PostgreSQL; SQLite binds each value, so stay under its limit."""
    size = (len(values) or 1) if is_postgresql(session) else 5000
    return (values[start : start + size] for start in range(0, len(values), size))


#: A new pupil's row as :func:`insert_leerlingen` takes it, in this order.
NEW_PUPIL_COLUMNS = ("id", "pgn_hash", "pgn_sealed", "brin", *PUPIL_FACTS, "gewijzigd_op")


async def insert_leerlingen(session: AsyncSession, rows: Sequence[tuple[Any, ...]]) -> None:
    """Pupils melding does not know yet, each the values of :data:`NEW_PUPIL_COLUMNS`
    (tuples, not dicts: a replay makes one for each of thousands of new pupils). Only the
    feed consumer adds pupils, and it read them in the transaction that holds the cursor's
    lock: nothing can add them meanwhile, and a conflict fails loudly (ignoring one would
    leave the ledger rows without their pupil)."""
    await copy_records(session, L, NEW_PUPIL_COLUMNS, rows)


async def update_leerlingen(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    await bulk_update(session, L, rows, key="id")


#: From this many ids on, :func:`ledger_versions` reads the ledger's highest id first: its
#: three round trips (with the planner settings) cost ~0.3 ms, a probe of the index ~2 µs
#: (PostgreSQL's and the client's, twenty-first session).
BOUNDED_FROM = 256


async def ledger_versions(
    session: AsyncSession, ids: Iterable[str]
) -> dict[str, tuple[int, str, date]]:
    """(version, pupil, date) of the ledger's registrations among ``ids``.

    Of many ids (``BOUNDED_FROM``), only those up to the ledger's highest are looked up:
    the others cannot be in it. Registration ids are time-ordered (ADR 0013), so a
    registration new to melding is nearly always above it, and costs no probe of the
    index; a correction or withdrawal of an older one is looked up (ADR 0028). Python
    orders strings by code point, which for UTF-8 text is the byte order of PostgreSQL's
    ``COLLATE "C"`` (ADR 0012) and SQLite's."""
    wanted = set(ids)
    if len(wanted) >= BOUNDED_FROM:
        top = await highest(session, E.c.registratie_id)
        # Compared, not sorted first: a replay's batch of 5,000 ids leaves none here, and
        # sorting them all was ~2 % of planning it (twenty-fourth session).
        wanted = set() if top is None else {i for i in wanted if i <= top}
    ids = sorted(wanted)
    out: dict[str, tuple[int, str, date]] = {}
    columns = (E.c.registratie_id, E.c.versie, E.c.leerling_id, E.c.datum)
    for chunk in _chunks(session, ids):
        for registratie_id, *version in await rows_by_keys(
            session, E.c.registratie_id, chunk, *columns
        ):
            out[registratie_id] = tuple(version)
    return out


#: A ledger row's columns, in the order :func:`upsert_ledger` takes its values.
LEDGER_COLUMNS = (
    "registratie_id",
    "leerling_id",
    "versie",
    "datum",
    "minuten",
    "eenheid",
    "aantal_eenheden",
    "alle_lessen_gemist",
    "soort",
    "categorie",
    "luxe_verzuim",
    "positie",
)


async def upsert_ledger(
    session: AsyncSession,
    inserts: Sequence[tuple[Any, ...]],
    updates: Sequence[tuple[Any, ...]],
) -> None:
    """Ledger rows, each the values of :data:`LEDGER_COLUMNS` in that order.

    ``inserts`` are registrations the ledger does not hold: the caller read them in the
    transaction that holds the feed cursor's lock, so no other writer can add them
    meanwhile: they are copied in (no ``ON CONFLICT``, whose speculative insertion cost
    ~15 % of an INSERT), and a conflict should that ever not hold fails loudly. ``updates``
    replace the rows of registrations it holds."""
    await copy_records(session, E, LEDGER_COLUMNS, inserts)
    keyed = ("_registratie_id", *LEDGER_COLUMNS[1:])
    rows = [dict(zip(keyed, row, strict=True)) for row in updates]
    await bulk_update(session, E, rows, key="registratie_id")


async def delete_ledger(session: AsyncSession, ids: Sequence[str]) -> None:
    for chunk in _chunks(session, ids):
        await delete_by_keys(session, E.c.registratie_id, chunk)


#: A ledger row's columns as the rules read them, in ``Entry``'s order.
ENTRY_COLUMNS = tuple(Entry._fields)
_ENTRY = (E.c.leerling_id, *(E.c[name] for name in ENTRY_COLUMNS))
_SINCE = E.c.datum >= bindparam("since")


async def ledger_entries(
    session: AsyncSession, leerling_ids: Sequence[str], since: date
) -> list[tuple[str, Entry]]:
    """(pupil, entry) of the pupils' ledger rows from ``since`` on, by date. Plain rows
    (``rows_by_keys``), made into entries as they come: the evaluator reads thousands a
    round, and a SQLAlchemy row and a dataclass each cost more than the rules' work on
    it."""
    entries: list[tuple[str, Entry]] = []
    make = tuple.__new__  # the NamedTuple without its constructor's argument handling
    for chunk in _chunks(session, leerling_ids):
        for leerling_id, *values in await rows_by_keys(
            session, E.c.leerling_id, chunk, *_ENTRY, where=_SINCE, params={"since": since}
        ):
            entries.append((leerling_id, make(Entry, values)))
    entries.sort(key=_by_date)
    return entries


def _by_date(entry: tuple[str, Entry]) -> date:
    return entry[1].datum


async def leerlingen(session: AsyncSession, ids: Sequence[str]) -> dict[str, Leerling]:
    rows = await by_keys(session, L.c.id, ids, entity=Leerling)
    return {r.id: r for r in rows.scalars()}


async def meldingen_of(session: AsyncSession, leerling_ids: Sequence[str]) -> list[Melding]:
    rows = await by_keys(session, M.c.leerling_id, leerling_ids, lock=True, entity=Melding)
    return list(rows.scalars())


async def melding(session: AsyncSession, melding_id: str, *, lock: bool = True) -> Melding | None:
    query = select(Melding).where(Melding.id == melding_id)
    if lock:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def list_meldingen(
    session: AsyncSession,
    *,
    brin: str | None = None,
    woongemeente: str | None = None,
    statuses: Sequence[str] | None = None,
    after: str | None,
    limit: int,
) -> Sequence[Melding]:
    query = select(Melding)
    if brin is not None:
        query = query.where(Melding.brin == brin)
    if woongemeente is not None:
        query = query.where(Melding.woongemeente == woongemeente)
    if statuses:
        query = query.where(Melding.status.in_(list(statuses)))
    if after:
        query = query.where(Melding.id > after)
    return (await session.execute(query.order_by(Melding.id).limit(limit))).scalars().all()


async def leerlingen_of_school(
    session: AsyncSession, brin: str, after: str | None, limit: int
) -> Sequence[Leerling]:
    query = select(Leerling).where(Leerling.brin == brin)
    if after:
        query = query.where(Leerling.id > after)
    return (await session.execute(query.order_by(Leerling.id).limit(limit))).scalars().all()


async def beleid(session: AsyncSession, brin: str) -> SchoolBeleid | None:
    return await session.get(SchoolBeleid, brin)


async def lease_outbox(
    session: AsyncSession, now: datetime, until: datetime, limit: int
) -> list[DuoOutbox]:
    """Due outbox items, leased to this worker (SKIP LOCKED: replicas never share one)."""
    rows = await session.execute(
        select(DuoOutbox)
        .where(
            DuoOutbox.state == "pending",
            DuoOutbox.next_attempt_at <= now,
            or_(DuoOutbox.leased_until.is_(None), DuoOutbox.leased_until < now),
        )
        .order_by(DuoOutbox.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    items = list(rows.scalars())
    for item in items:
        item.leased_until = until
    return items


async def earlier_pending(session: AsyncSession, item: DuoOutbox) -> bool:
    """Is there an older unsent item for the same melding (send in order)?"""
    row = await session.execute(
        select(DuoOutbox.id)
        .where(
            and_(
                DuoOutbox.melding_id == item.melding_id,
                DuoOutbox.id < item.id,
                DuoOutbox.state == "pending",
            )
        )
        .limit(1)
    )
    return row.first() is not None


async def outbox_stats(session: AsyncSession, now: datetime) -> dict[str, float]:
    from sqlalchemy import func

    rows = await session.execute(
        select(DuoOutbox.state, func.count(), func.min(DuoOutbox.aangemaakt_op)).group_by(
            DuoOutbox.state
        )
    )
    stats: dict[str, float] = {"pending": 0, "dead": 0, "sent": 0, "oldest_pending_age": 0}
    for state, count, oldest in rows:
        stats[state] = float(count)
        if state == "pending" and oldest is not None:
            if oldest.tzinfo is None:
                from datetime import UTC

                oldest = oldest.replace(tzinfo=UTC)
            stats["oldest_pending_age"] = (now - oldest).total_seconds()
    return stats


async def overdue_concepts(session: AsyncSession, today: date) -> Sequence[Melding]:
    rows = await session.execute(
        select(Melding).where(Melding.status == "concept", Melding.deadline < today)
    )
    return rows.scalars().all()


async def release_leases(session: AsyncSession, ids: Sequence[int], next_attempt: datetime) -> None:
    if ids:
        await session.execute(
            update(DuoOutbox)
            .where(DuoOutbox.id.in_(list(ids)))
            .values(leased_until=None, next_attempt_at=next_attempt)
        )


async def mark_for_evaluation(session: AsyncSession, changed: dict[str, date]) -> None:
    """Upsert marks, keeping the earliest changed date per pupil: the consumer's, for what
    its ledger rows do not show (a registration withdrawn, or moved to a later date or
    another pupil); :func:`mark_ledger_changes` marks the rest (ADR 0024).

    A pupil already marked from an earlier or the same date is left as it is (rewriting
    its row to store the same date costs a new row version and index entries). The marks
    go in the order of the pupils' ids, as :func:`mark_ledger_changes`' do: two writers
    of marks that lock them in the same order never wait for each other in a circle."""
    if not changed:
        return
    now = datetime.now(UTC)
    rows = [{"leerling_id": k, "vanaf": changed[k], "gemarkeerd_op": now} for k in sorted(changed)]
    await session.execute(_earliest_mark(dialect_insert(session, T)), rows)


def _earliest_mark(stmt: Any) -> Any:
    """``stmt`` (an INSERT of marks), keeping a mark's earlier date on a conflict."""
    return stmt.on_conflict_do_update(
        index_elements=[T.c.leerling_id],
        set_={"vanaf": stmt.excluded.vanaf},
        where=stmt.excluded.vanaf < T.c.vanaf,
    )


async def mark_ledger_changes(session: AsyncSession, feed: str, span: int) -> bool:
    """Mark the pupils of the ledger's rows written since the stand
    (:class:`LedgerGemarkeerd`), each from its earliest changed date, and move the stand on:
    up to the cursor of the consumer of ``feed`` (the rows at or below it are committed),
    at most ``span`` positions at a time. Returns whether the stand reached the cursor
    (or another replica is moving it: the stand is locked, SKIP LOCKED).

    A mark is upserted as the consumer's were (ADR 0009): a mark the evaluator holds makes
    this wait for its commit and then write a fresh one, so no change is evaluated on a
    ledger that misses it. Over a catch-up, each pupil is marked once per call, not once
    per batch that touched it (ADR 0024)."""
    stand = await _stand(session)
    if stand is None:
        return True
    cursor = (
        await session.execute(select(CURSORS.c.position).where(CURSORS.c.feed == feed))
    ).scalar_one_or_none() or 0
    if cursor < stand:  # the cursor was moved back (a replay): rows from there are new
        await session.execute(update(G).where(G.c.id == 1).values(positie=cursor))
        return True
    upto = min(cursor, stand + span)
    if upto == stand:
        return True
    changes = (
        select(
            E.c.leerling_id, func.min(E.c.datum), literal(datetime.now(UTC), T.c.gemarkeerd_op.type)
        )
        .where(E.c.positie > stand, E.c.positie <= upto)
        .group_by(E.c.leerling_id)
        .order_by(E.c.leerling_id)  # as the consumer's marks go in (mark_for_evaluation)
    )
    insert = dialect_insert(session, T)
    stmt = _earliest_mark(insert.from_select(["leerling_id", "vanaf", "gemarkeerd_op"], changes))
    async with planner_settings(session, enable_seqscan="off"):  # along the position's index
        await session.execute(stmt)
    await session.execute(update(G).where(G.c.id == 1).values(positie=upto))
    return upto == cursor


async def _stand(session: AsyncSession) -> int | None:
    """The stand, locked; ``None`` when another transaction holds it. Its row is made the
    first time (as a consumer's cursor row is)."""
    lock = select(G.c.positie).where(G.c.id == 1).with_for_update(skip_locked=True)
    stand = (await session.execute(lock)).scalar_one_or_none()
    if stand is not None:
        return int(stand)
    if (await session.execute(select(G.c.id))).first() is not None:
        return None  # another replica is moving it
    await insert_ignore(session, G, [{"id": 1, "positie": 0}])
    return (await session.execute(lock)).scalar_one_or_none()


#: For a process that watches melding's database from outside (tests, the benchmark):
#: whether every change the consumer of ingest's feed applied is marked and evaluated.
RULES_DONE_SQL = (
    "SELECT NOT EXISTS (SELECT FROM te_evalueren)"
    " AND coalesce((SELECT positie FROM ledger_gemarkeerd), 0)"
    " >= coalesce((SELECT position FROM feed_cursors WHERE feed = 'ingest'), 0)"
)


async def waiting_count(session: AsyncSession) -> int:
    """Pupils waiting for the rules: marked, or with ledger rows past the stand."""
    stand = func.coalesce(select(G.c.positie).where(G.c.id == 1).scalar_subquery(), 0)
    waiting = union(
        select(T.c.leerling_id), select(E.c.leerling_id).where(E.c.positie > stand)
    ).subquery()
    async with index_scans_only(session):  # the rows past the stand: along its index
        return int((await session.execute(select(func.count()).select_from(waiting))).scalar_one())


async def take_marked(session: AsyncSession, limit: int) -> dict[str, date]:
    """Claim up to ``limit`` marked pupils (oldest first) and remove their marks."""
    if is_postgresql(session):
        # One statement: the oldest marks, claimed (locked, SKIP LOCKED) along the index on
        # ``gemarkeerd_op`` and deleted by their row address. Planned on an empty queue,
        # the claim sorted the whole queue, and the delete scanned it, each time it grew.
        async with index_scans_only(session):
            taken = await pg_fetch(session, _TAKE_PG, limit)
        return {leerling_id: vanaf for leerling_id, vanaf in taken}
    query = select(TeEvalueren.leerling_id, TeEvalueren.vanaf)
    rows = (
        await session.execute(
            query.order_by(TeEvalueren.gemarkeerd_op).limit(limit).with_for_update(skip_locked=True)
        )
    ).all()
    marked = {r.leerling_id: r.vanaf for r in rows}
    if marked:
        await delete_by_keys(session, T.c.leerling_id, list(marked))
    return marked


_TAKE_PG = (
    "DELETE FROM te_evalueren WHERE ctid = ANY(ARRAY("
    "SELECT ctid FROM te_evalueren ORDER BY gemarkeerd_op LIMIT $1"
    " FOR UPDATE SKIP LOCKED)) RETURNING leerling_id, vanaf"
)
