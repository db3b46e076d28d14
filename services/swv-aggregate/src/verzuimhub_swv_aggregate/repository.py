"""swv-aggregate's queries: add deltas to the aggregates, read aggregates for one scope."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import case, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from verzuimhub_shared.db import dialect_insert, is_postgresql, json_rows, recordset
from verzuimhub_swv_aggregate.models import Rollup, VrijstellingStroom


async def _add(
    session: AsyncSession, table: Any, rows: list[dict[str, Any]], keys: list[str], value: str
) -> None:
    """``value += delta`` per key, inserting missing keys. Rows arrive sorted by key: a
    stable lock order for concurrent consumers. PostgreSQL: one statement with the rows as
    a JSON document (``db.bulk_insert``); SQLite: an executemany."""
    if not rows:
        return
    if is_postgresql(session):
        names = ", ".join([*keys, value])
        conflict = ", ".join(keys)
        sql = (
            f"INSERT INTO {table.name} ({names}) SELECT {names} "
            f"FROM {recordset(table, [*keys, value])} "
            f"ON CONFLICT ({conflict}) "
            f"DO UPDATE SET {value} = {table.name}.{value} + excluded.{value}"
        )
        await session.execute(text(sql), {"rows": json_rows(rows)})
        return
    stmt = dialect_insert(session, table)
    stmt = stmt.on_conflict_do_update(
        index_elements=keys, set_={value: table.c[value] + stmt.excluded[value]}
    )
    await session.execute(stmt, rows)


async def add_rollups(session: AsyncSession, deltas: Mapping[Any, int]) -> None:
    """``value += delta`` per rollup key (scope, sector, kind, period, metric, category)."""
    names = ["scope", "sector", "period_kind", "period", "metric", "category"]
    rows = [dict(zip(names, key, strict=True)) | {"value": d} for key, d in deltas.items() if d]
    rows.sort(key=lambda r: tuple(r[n] for n in names))
    await _add(session, Rollup.__table__, rows, names, "value")


async def add_flows(session: AsyncSession, deltas: Mapping[Any, int]) -> None:
    """``aantal += delta`` per (scope, soort, leeftijdsband, dag, richting)."""
    names = ["scope", "soort", "leeftijdsband", "dag", "richting"]
    rows = [dict(zip(names, key, strict=True)) | {"aantal": d} for key, d in deltas.items() if d]
    rows.sort(key=lambda r: tuple(str(r[n]) for n in names))
    await _add(session, VrijstellingStroom.__table__, rows, names, "aantal")


async def rollups_for(
    session: AsyncSession, scope: str, period_kind: str, period: str
) -> dict[tuple[str, str, str], int]:
    """{(metric, category, sector): value} of one scope and period."""
    t = Rollup.__table__
    result = await session.execute(
        select(t.c.metric, t.c.category, t.c.sector, t.c.value).where(
            t.c.scope == scope, t.c.period_kind == period_kind, t.c.period == period
        )
    )
    return {(r.metric, r.category, r.sector): int(r.value) for r in result}


@dataclass(frozen=True)
class FlowFigures:
    actief: int
    gestart: int
    beeindigd: int


async def flows_for(
    session: AsyncSession, scope: str, start: date, end: date, peildatum: date
) -> dict[tuple[str, str], FlowFigures]:
    """{(soort, leeftijdsband): figures}: active on ``peildatum``, begun and ended in
    ``start..end``. Sums over daily aggregates, never over records."""
    t = VrijstellingStroom.__table__
    is_begin = t.c.richting == "begin"
    is_end = t.c.richting == "einde"

    def total(condition: Any) -> Any:
        return func.coalesce(func.sum(case((condition, t.c.aantal), else_=0)), 0)

    result = await session.execute(
        select(
            t.c.soort,
            t.c.leeftijdsband,
            total(is_begin & (t.c.dag <= peildatum)) - total(is_end & (t.c.dag < peildatum)),
            total(is_begin & t.c.dag.between(start, end)),
            total(is_end & t.c.dag.between(start, end)),
        )
        .where(t.c.scope == scope)
        .group_by(t.c.soort, t.c.leeftijdsband)
    )
    return {(r[0], r[1]): FlowFigures(int(r[2]), int(r[3]), int(r[4])) for r in result}
