"""ingest_lock_and_day_totals(): the row lock and the day totals in one round trip (ADR 0019)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 00:00:00
"""
from collections.abc import Sequence

from alembic import op


revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Two statements of their own, as they were when the service sent them one by one: the
# day totals are read with a snapshot taken after the row locks are held (a VOLATILE
# function takes one per statement it runs). The row lock goes through EXECUTE: planned
# for each call, as its prepared statement was (ADR 0014). The day totals are a static
# query, whose plan PL/pgSQL caches as a prepared statement's; their arrays are read
# through scalar subqueries so that the generic plan is kept (ADR 0014).
_FUNCTION = """
CREATE FUNCTION ingest_lock_and_day_totals(
    brins varchar[], ids varchar[], hashes varchar[], days date[]
) RETURNS TABLE (
    locked boolean, id varchar, brin varchar, school_registratie_id varchar,
    versie integer, payload_hash varchar, catalogus_versie varchar, ingetrokken boolean,
    pgn_hash varchar, datum date, minuten integer
) LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RETURN QUERY EXECUTE
        'SELECT true, r.* FROM unnest($1, $2) AS k(brin, sid) '
        'CROSS JOIN LATERAL (SELECT x.id, x.brin, x.school_registratie_id, x.versie, '
        'x.payload_hash, x.catalogus_versie, x.ingetrokken, x.pgn_hash, x.datum, x.minuten '
        'FROM registraties AS x '
        'WHERE x.brin = k.brin AND x.school_registratie_id = k.sid FOR UPDATE) AS r'
        USING brins, ids;
    RETURN QUERY
        SELECT false, r.id, NULL::varchar, NULL::varchar, NULL::integer, NULL::varchar,
            NULL::varchar, NULL::boolean, r.pgn_hash, r.datum, r.minuten
        FROM unnest((SELECT hashes), (SELECT days)) AS p(pgn_hash, datum)
        CROSS JOIN LATERAL (
            SELECT x.id, x.pgn_hash, x.datum, x.minuten FROM registraties AS x
            WHERE x.pgn_hash = p.pgn_hash AND x.datum = p.datum AND NOT x.ingetrokken
            OFFSET 0
        ) AS r;
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION ingest_lock_and_day_totals(varchar[], varchar[], varchar[], date[])")
