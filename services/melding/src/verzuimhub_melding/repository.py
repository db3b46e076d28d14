"""All of melding's queries."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Table, and_, bindparam, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from verzuimhub_melding.models import DuoOutbox, LedgerEntry, Leerling, Melding, SchoolBeleid
from verzuimhub_shared.db import insert_ignore

L: Table = Leerling.__table__  # type: ignore[assignment]
E: Table = LedgerEntry.__table__  # type: ignore[assignment]

#: Statuses a gemeente can see (the school has sent them).
VISIBLE_TO_GEMEENTE = (
    "ingediend",
    "geregistreerd",
    "in_behandeling",
    "afgesloten",
    "ter_kennisgeving_aangenomen",
    "ingetrokken",
)


async def leerlingen_by_key(
    session: AsyncSession, keys: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], Any]:
    """Pupils by (pseudonym, BRIN). Queried on the pseudonym alone (the leading column of
    the unique index, one array parameter) and matched on the BRIN here: a tuple IN of a
    thousand pairs cost a third of a replay in planning and parameter handling."""
    wanted = set(keys)
    hashes = sorted({h for h, _ in wanted})
    found: dict[tuple[str, str], Any] = {}
    for start in range(0, len(hashes), 5000):
        rows = await session.execute(
            select(L).where(L.c.pgn_hash.in_(hashes[start : start + 5000]))
        )
        for row in rows:
            if (row.pgn_hash, row.brin) in wanted:
                found[(row.pgn_hash, row.brin)] = row
    return found


async def insert_leerlingen(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    await insert_ignore(session, L, list(rows))


async def update_leerlingen(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    if not rows:
        return
    await session.execute(
        update(L)
        .where(L.c.id == bindparam("_id"))
        .values({k: bindparam(k) for k in rows[0] if k != "_id"}),
        list(rows),
    )


async def ledger_versions(
    session: AsyncSession, ids: Iterable[str]
) -> dict[str, tuple[int, str, date]]:
    ids = list(set(ids))
    out: dict[str, tuple[int, str, date]] = {}
    for start in range(0, len(ids), 1000):
        rows = await session.execute(
            select(E.c.registratie_id, E.c.versie, E.c.leerling_id, E.c.datum).where(
                E.c.registratie_id.in_(ids[start : start + 1000])
            )
        )
        for r in rows:
            out[r.registratie_id] = (r.versie, r.leerling_id, r.datum)
    return out


async def upsert_ledger(
    session: AsyncSession, inserts: Sequence[dict[str, Any]], updates: Sequence[dict[str, Any]]
) -> None:
    await insert_ignore(session, E, list(inserts))
    if updates:
        await session.execute(
            update(E)
            .where(E.c.registratie_id == bindparam("_id"))
            .values({k: bindparam(k) for k in updates[0] if k != "_id"}),
            list(updates),
        )


async def delete_ledger(session: AsyncSession, ids: Sequence[str]) -> None:
    if ids:
        await session.execute(delete(E).where(E.c.registratie_id.in_(list(ids))))


async def ledger_of(
    session: AsyncSession, leerling_ids: Sequence[str], since: date | None
) -> list[Any]:
    query = select(E).where(E.c.leerling_id.in_(list(leerling_ids)))
    if since is not None:
        query = query.where(E.c.datum >= since)
    return list(await session.execute(query.order_by(E.c.datum)))


async def leerlingen(session: AsyncSession, ids: Sequence[str]) -> dict[str, Leerling]:
    rows = await session.execute(select(Leerling).where(Leerling.id.in_(list(ids))))
    return {r.id: r for r in rows.scalars()}


async def meldingen_of(session: AsyncSession, leerling_ids: Sequence[str]) -> list[Melding]:
    rows = await session.execute(
        select(Melding).where(Melding.leerling_id.in_(list(leerling_ids))).with_for_update()
    )
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
    """Upsert marks, keeping the earliest changed date per pupil."""
    if not changed:
        return
    from datetime import UTC

    from verzuimhub_melding.models import TeEvalueren

    table: Table = TeEvalueren.__table__  # type: ignore[assignment]
    now = datetime.now(UTC)
    rows = [
        {"leerling_id": k, "vanaf": v, "gemarkeerd_op": now} for k, v in sorted(changed.items())
    ]
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy import func
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        stmt = pg_insert(table)
        stmt = stmt.on_conflict_do_update(
            index_elements=[table.c.leerling_id],
            set_={"vanaf": func.least(table.c.vanaf, stmt.excluded.vanaf)},
        )
    else:
        from sqlalchemy import func
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        stmt = sqlite_insert(table)  # type: ignore[assignment]
        stmt = stmt.on_conflict_do_update(
            index_elements=[table.c.leerling_id],
            set_={"vanaf": func.min(table.c.vanaf, stmt.excluded.vanaf)},
        )
    await session.execute(stmt, rows)


async def take_marked(session: AsyncSession, limit: int) -> dict[str, date]:
    """Claim up to ``limit`` marked pupils (oldest first) and remove their marks."""
    from verzuimhub_melding.models import TeEvalueren

    rows = (
        await session.execute(
            select(TeEvalueren.leerling_id, TeEvalueren.vanaf)
            .order_by(TeEvalueren.gemarkeerd_op)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    ).all()
    marked = {r.leerling_id: r.vanaf for r in rows}
    if marked:
        await session.execute(delete(TeEvalueren).where(TeEvalueren.leerling_id.in_(list(marked))))
    return marked


async def marked_count(session: AsyncSession) -> int:
    from sqlalchemy import func

    from verzuimhub_melding.models import TeEvalueren

    return int((await session.execute(select(func.count()).select_from(TeEvalueren))).scalar_one())
