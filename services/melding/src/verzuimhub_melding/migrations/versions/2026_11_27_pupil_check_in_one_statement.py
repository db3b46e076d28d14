"""the referring side's pupil check locks and counts in one statement over the distinct
pupils (ADR 0021, addendum)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27 18:00:00
"""
from collections.abc import Sequence

from alembic import op


revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The same guarantee as 0006's: every pupil the statement's new rows refer to is locked
# FOR KEY SHARE and counted against the distinct pupils referred to. 0006 read the
# transition table twice (an IN for the locks, a sorted count(DISTINCT) for the wanted)
# in two statements; here each distinct pupil (hashed once) is locked by a probe of the
# key's index, in one statement. A pupil that does not exist, or that a concurrent
# transaction deleted, is one short, as before.
_CHECK = """
    SELECT count(*), count(l.found) INTO wanted, locked
    FROM (SELECT DISTINCT leerling_id FROM new_rows) AS w
    LEFT JOIN LATERAL (
        SELECT true AS found FROM leerlingen WHERE id = w.leerling_id FOR KEY SHARE
    ) AS l ON true;"""

# 0006's.
_CHECK_BEFORE = """
    SELECT count(*) INTO locked FROM (
        SELECT 1 FROM leerlingen
        WHERE id IN (SELECT leerling_id FROM new_rows)
        FOR KEY SHARE
    ) AS l;
    SELECT count(DISTINCT leerling_id) INTO wanted FROM new_rows;"""


def _function(check: str) -> str:
    return f"""
CREATE OR REPLACE FUNCTION pupil_references_exist() RETURNS trigger
LANGUAGE plpgsql SET enable_seqscan = off AS $$
DECLARE
    locked bigint;
    wanted bigint;
    missing text;
BEGIN{check}
    IF locked <> wanted THEN
        SELECT n.leerling_id INTO missing FROM new_rows AS n
        WHERE NOT EXISTS (SELECT 1 FROM leerlingen AS l WHERE l.id = n.leerling_id)
        LIMIT 1;
        RAISE EXCEPTION 'insert or update on table "%" violates its reference to leerlingen',
            TG_TABLE_NAME
            USING ERRCODE = 'foreign_key_violation',
                DETAIL = format('Key (leerling_id)=(%s) is not present in table "leerlingen".',
                                coalesce(missing, '?')),
                TABLE = TG_TABLE_NAME, COLUMN = 'leerling_id';
    END IF;
    RETURN NULL;
END $$
"""


def upgrade() -> None:
    # SQLite checks per row (0006): nothing to change there.
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(_function(_CHECK))


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(_function(_CHECK_BEFORE))
