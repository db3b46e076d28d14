"""The append-only audit log of person-level reads and disclosures.

In the spirit of the Dutch government's Logboek Dataverwerkingen: who (subject), for which
organisation, what action on which record, for what purpose, with the trace id. The code
has no update path and one delete path: :func:`purge_before`, the retention purge. On
PostgreSQL a trigger refuses every UPDATE, and every DELETE except one made inside a
transaction that declared itself the retention purge (``SET LOCAL verzuimhub.audit_purge``)
of a row older than a hard floor of one year, whatever the configured period says.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    Table,
    delete,
    insert,
    text,
)
from sqlalchemy.ext.asyncio import AsyncSession

from verzuimhub_shared.auth import Principal
from verzuimhub_shared.db import code, is_postgresql
from verzuimhub_shared.tracing import current_trace


def audit_table(metadata: MetaData) -> Table:
    return Table(
        "audit_log",
        metadata,
        Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
        Column("at", DateTime(timezone=True), nullable=False),
        Column("subject", code(200), nullable=False),
        Column("organisation", code(200), nullable=False),
        Column("action", code(64), nullable=False),
        Column("record_type", code(64), nullable=False),
        Column("record_id", code(64), nullable=False),
        Column("purpose", code(200), nullable=False),
        Column("trace_id", code(32), nullable=True),
        Index("ix_audit_log_record", "record_type", "record_id"),
    )


async def record(
    session: AsyncSession,
    table: Table,
    principal: Principal | None,
    *,
    action: str,
    record_type: str,
    record_ids: Iterable[str],
    purpose: str,
) -> None:
    trace = current_trace.get()
    now = datetime.now(UTC)
    rows = [
        {
            "at": now,
            "subject": principal.subject if principal else "systeem",
            "organisation": principal.organisation if principal else "verzuimhub",
            "action": action,
            "record_type": record_type,
            "record_id": record_id,
            "purpose": purpose,
            "trace_id": trace.trace_id if trace else None,
        }
        for record_id in record_ids
    ]
    if rows:
        await session.execute(insert(table), rows)


async def purge_before(session: AsyncSession, table: Table, cutoff: datetime) -> int:
    """The retention purge, the only delete path: rows recorded before ``cutoff``."""
    if is_postgresql(session):
        await session.execute(text("SET LOCAL verzuimhub.audit_purge = 'on'"))
    result = await session.execute(delete(table).where(table.c.at < cutoff))
    if is_postgresql(session):
        await session.execute(text("SET LOCAL verzuimhub.audit_purge = 'off'"))
    return int(getattr(result, "rowcount", 0) or 0)


_APPEND_ONLY_FUNCTION = """
CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION 'audit_log is append-only';
END;
$$ LANGUAGE plpgsql
"""
_APPEND_ONLY_TRIGGER = """
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
  FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()
"""


def create_append_only_trigger() -> None:
    """For a migration: refuse UPDATE and DELETE on audit_log (PostgreSQL)."""
    from alembic import op

    if op.get_bind().dialect.name == "postgresql":
        op.execute(_APPEND_ONLY_FUNCTION)
        op.execute(_APPEND_ONLY_TRIGGER)


#: Replaces the function above (migration 0003 of each service with an audit log): DELETE
#: passes only inside the retention purge's transaction and only for rows over a year old.
_RETENTION_AWARE_FUNCTION = """
CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'DELETE'
     AND coalesce(current_setting('verzuimhub.audit_purge', true), '') = 'on'
     AND OLD.at < now() - interval '1 year' THEN
    RETURN OLD;
  END IF;
  RAISE EXCEPTION 'audit_log is append-only';
END;
$$ LANGUAGE plpgsql
"""


def allow_retention_purge() -> None:
    """For a migration: let the retention purge (and nothing else) delete old audit rows."""
    from alembic import op

    if op.get_bind().dialect.name == "postgresql":
        op.execute(_RETENTION_AWARE_FUNCTION)


def refuse_every_delete() -> None:
    """For a downgrade: back to the strict append-only function."""
    from alembic import op

    if op.get_bind().dialect.name == "postgresql":
        op.execute(_APPEND_ONLY_FUNCTION)
