"""All of ingest's queries. Set-based for batches: no ORM round trip per row."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any, NamedTuple

import asyncpg
from sqlalchemy import Table, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from verzuimhub_ingest.models import Registratie, Vrijstelling
from verzuimhub_shared.db import (
    Tx,
    insert_new,
    insert_statement,
    is_postgresql,
    orm_session,
    pg_fetch_lists,
    send_last,
    update_last,
)

R: Table = Registratie.__table__  # type: ignore[assignment]
V: Table = Vrijstelling.__table__  # type: ignore[assignment]
#: The unique key a concurrent twin of a registration meets (:func:`is_twin`).
TWIN_CONSTRAINT = "uq_registraties_school_id"


_EXISTING_COLUMNS = (
    R.c.id,
    R.c.brin,
    R.c.school_registratie_id,
    R.c.versie,
    R.c.payload_hash,
    R.c.catalogus_versie,
    R.c.ingetrokken,
    R.c.pgn_hash,
    R.c.datum,
    R.c.minuten,
)

# PostgreSQL: the keys and pupil-days travel as arrays, in one call of the function
# ingest_lock_and_day_totals (migration 0005): exactly the rows asked for, whatever their
# number (an expanding IN of thousands of values was compiled per length and planned
# slowly), sent around SQLAlchemy's execution layers (db.pg_fetch: these run for every
# registration), and one round trip for both lookups (ADR 0019). The function runs them as
# two statements, so the day totals are read with a snapshot taken after the row locks are
# held, as when they were sent one by one.
#
# Each key is looked up on its own in a LATERAL subquery (the row lock, or OFFSET 0, keeps
# the planner from flattening it into a join): an index probe per key, whatever size a
# cached plan believes the table has. As a plain join, the plan cached while the table was
# small (a fresh database, a bulk load before autovacuum's first ANALYZE) was a hash join
# over a sequential scan, kept as the table grew: every registration then read the whole
# table. Statistics wrong about a key itself could still make a probe scan; these keys are
# near-unique, so statistics taken on a small table scale, and db.index_scans_only would
# cost this hot path two round trips (ADR 0014).
#
# Planning: the row lock is planned for each call (EXECUTE): its generic plan, made on a
# nearly empty table, probed the index on (brin, datum) by the BRIN alone, the two indexes
# costing the same without statistics. The day totals are a static query, whose plan is
# cached; their arrays are read through scalar subqueries, so that a custom plan cannot
# see their length and costs what the generic plan does, and PostgreSQL keeps the generic
# plan after its first five runs instead of planning every group afresh (~0.1 ms of its
# CPU a group). That plan probes the only index that leads with the pupil, whatever the
# table held when it was made (test_lookups).
#
# The three lists of text go as one string each (db.pg_fetch_lists: a batch's 15,000 keys
# cost asyncpg ~10 ms of ingest's CPU as arrays).
_LOCK_AND_DAY_TOTALS = "SELECT * FROM ingest_lock_and_day_totals({0}, {1}, {2}, $4)"


class Existing(NamedTuple):
    """A stored registration's current state (the columns of ``_EXISTING_COLUMNS``)."""

    id: str
    brin: str
    school_registratie_id: str
    versie: int
    payload_hash: str
    catalogus_versie: str
    ingetrokken: bool
    pgn_hash: str
    datum: date
    minuten: int


class DayMinutes(NamedTuple):
    """A live registration's minutes on a pupil's day."""

    id: str
    pgn_hash: str
    datum: date
    minuten: int


async def lock_and_day_totals(
    session: Tx, keys: Iterable[tuple[str, str]], pairs: Iterable[tuple[str, date]]
) -> tuple[dict[tuple[str, str], Existing], list[DayMinutes]]:
    """The current rows for (brin, school id) keys, locked for this transaction; then the
    live registrations of these (pupil pseudonym, day) pairs, read after those locks are
    held (a registration that a transaction holding one of them committed is seen)."""
    keys = list(set(keys))
    pairs = list(set(pairs))
    locked: list[Any]
    days: list[Any]
    if is_postgresql(session):
        brins, ids = zip(*keys, strict=True) if keys else ((), ())
        hashes, dates = zip(*pairs, strict=True) if pairs else ((), ())
        texts = [list(brins), list(ids), list(hashes)]
        rows = await pg_fetch_lists(session, _LOCK_AND_DAY_TOTALS, texts, list(dates))
        # By name: the function's columns are named as Existing's and DayMinutes' fields.
        locked = [[row[name] for name in Existing._fields] for row in rows if row["locked"]]
        days = [[row[name] for name in DayMinutes._fields] for row in rows if not row["locked"]]
    else:
        session = orm_session(session)
        locked = await _lock_existing_portable(session, keys) if keys else []
        days = await _minutes_on_days_portable(session, pairs) if pairs else []
    found = (Existing(*row) for row in locked)
    return (
        {(row.brin, row.school_registratie_id): row for row in found},
        [DayMinutes(*row) for row in days],
    )


async def _lock_existing_portable(session: AsyncSession, keys: list[tuple[str, str]]) -> list[Any]:
    # On the unique index's columns with two IN lists, matched to the pairs here (a tuple
    # IN is not portable). A row of another requested BRIN with a requested id is locked
    # too; harmless.
    wanted = set(keys)
    brins = sorted({b for b, _ in wanted})
    ids = sorted({i for _, i in wanted})
    found: list[Any] = []
    for start in range(0, len(ids), 5000):
        rows = await session.execute(
            select(*_EXISTING_COLUMNS)
            .where(R.c.brin.in_(brins), R.c.school_registratie_id.in_(ids[start : start + 5000]))
            .with_for_update()
        )
        found.extend(row for row in rows if (row.brin, row.school_registratie_id) in wanted)
    return found


async def _minutes_on_days_portable(
    session: AsyncSession, pairs: list[tuple[str, date]]
) -> list[Any]:
    # Pupils' pseudonyms (the index's leading column) within the batch's date span, matched
    # to the pairs here: see _lock_existing_portable.
    wanted = set(pairs)
    hashes = sorted({h for h, _ in wanted})
    first, last = min(d for _, d in wanted), max(d for _, d in wanted)
    out: list[Any] = []
    for start in range(0, len(hashes), 5000):
        rows = await session.execute(
            select(R.c.id, R.c.pgn_hash, R.c.datum, R.c.minuten).where(
                R.c.pgn_hash.in_(hashes[start : start + 5000]),
                R.c.datum.between(first, last),
                R.c.ingetrokken.is_(False),
            )
        )
        out.extend(row for row in rows if (row.pgn_hash, row.datum) in wanted)
    return out


async def insert_registraties(session: Tx, rows: Sequence[dict[str, Any]]) -> set[str]:
    """Insert new rows (all with the same keys); returns the ids of the rows inserted.

    On a :class:`DirectTransaction` (a group of single registrations) a few rows go with
    its ``COMMIT`` (ADR 0026): all are taken as inserted, and a row that a concurrent twin
    committed first fails the commit (:func:`is_twin`). Otherwise a row already there is
    left out, and its id is not returned."""
    if not rows:
        return set()
    if send_last(session, insert_statement(R, tuple(rows[0])), rows):
        return {row["id"] for row in rows}
    return set(await insert_new(session, R, rows, key="id"))


def is_twin(error: BaseException) -> bool:
    """Whether ``error`` is a commit that failed because a concurrent transaction stored
    one of the same registrations first (its unique key: BRIN and the school's id)."""
    orig = getattr(error, "orig", None)
    return (
        isinstance(orig, asyncpg.UniqueViolationError)
        and getattr(orig, "constraint_name", None) == TWIN_CONSTRAINT
    )


async def update_registraties(session: Tx, rows: Sequence[dict[str, Any]]) -> None:
    """Replace existing rows (all with the same keys, ``id`` among them) by id: with a
    :class:`DirectTransaction`'s ``COMMIT`` where it can (``db.update_last``)."""
    if rows:
        await update_last(
            session, R, [{"_id": row["id"]} | _without_id(row) for row in rows], key="id"
        )


def _without_id(row: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in row.items() if name != "id"}


async def get_registratie(session: AsyncSession, brin: str, school_id: str) -> Registratie | None:
    result = await session.execute(
        select(Registratie)
        .where(Registratie.brin == brin, Registratie.school_registratie_id == school_id)
        .with_for_update()
    )
    return result.scalar_one_or_none()


async def list_registraties(
    session: AsyncSession,
    brin: str,
    vanaf: date | None,
    tot: date | None,
    after: tuple[date, str] | None,
    limit: int,
) -> Sequence[Registratie]:
    query = select(Registratie).where(Registratie.brin == brin, Registratie.ingetrokken.is_(False))
    if vanaf:
        query = query.where(Registratie.datum >= vanaf)
    if tot:
        query = query.where(Registratie.datum < tot)
    if after:
        query = query.where(
            or_(
                Registratie.datum > after[0],
                and_(Registratie.datum == after[0], Registratie.id > after[1]),
            )
        )
    query = query.order_by(Registratie.datum, Registratie.id).limit(limit)
    return (await session.execute(query)).scalars().all()


async def get_vrijstelling(
    session: AsyncSession, gemeente: str, vrijstelling_id: str, absoluut: bool
) -> Vrijstelling | None:
    kind = Vrijstelling.soort == "absoluut_verzuim"
    result = await session.execute(
        select(Vrijstelling)
        .where(
            Vrijstelling.id == vrijstelling_id,
            Vrijstelling.gemeente == gemeente,
            kind if absoluut else ~kind,
        )
        .with_for_update()
    )
    return result.scalar_one_or_none()


async def list_vrijstellingen(
    session: AsyncSession, gemeente: str, absoluut: bool, after: str | None, limit: int
) -> Sequence[Vrijstelling]:
    kind = Vrijstelling.soort == "absoluut_verzuim"
    query = select(Vrijstelling).where(
        Vrijstelling.gemeente == gemeente, kind if absoluut else ~kind
    )
    if after:
        query = query.where(Vrijstelling.id > after)
    return (await session.execute(query.order_by(Vrijstelling.id).limit(limit))).scalars().all()
