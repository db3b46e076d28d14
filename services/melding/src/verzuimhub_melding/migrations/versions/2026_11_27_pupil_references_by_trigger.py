"""the ledger's and the marks' reference to the pupil: checked per statement by triggers,
instead of per row by foreign keys (ADR 0021)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 03:00:00
"""
from collections.abc import Sequence

from alembic import op


revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The tables whose ``leerling_id`` refers to ``leerlingen.id``, and their foreign keys
#: until this revision. ``meldingen`` keeps its foreign key (few rows).
REFERRING = {
    "ledger": "fk_ledger_leerling_id_leerlingen",
    "te_evalueren": "fk_te_evalueren_leerling_id_leerlingen",
}

# PostgreSQL. What a foreign key does per row, once per statement, over the statement's
# transition table:
# - the referring side locks every pupil its new rows refer to (FOR KEY SHARE, as the key
#   did), and counts them: a pupil that does not exist, or that a concurrent transaction
#   deleted (READ COMMITTED skips it once that commits; REPEATABLE READ fails to lock it),
#   is one short. The lock makes a purge that wants to delete the pupil wait for this
#   transaction, and then fail on the referenced side's check;
# - the referenced side, after a DELETE, looks for rows that still refer to a deleted pupil,
#   with a snapshot of its own taken after the DELETE waited for such locks: it sees the
#   rows a transaction that held one committed. That holds in READ COMMITTED only (the
#   key's checks use a cross-check snapshot instead), so a DELETE in a stricter isolation
#   level is refused;
# - a key never changes (a pupil's id, a mark's pupil).
# Lookups go through the keys' indexes, whatever the statistics say (ADR 0014).
_POSTGRES = [
    """
CREATE FUNCTION pupil_references_exist() RETURNS trigger
LANGUAGE plpgsql SET enable_seqscan = off AS $$
DECLARE
    locked bigint;
    wanted bigint;
    missing text;
BEGIN
    SELECT count(*) INTO locked FROM (
        SELECT 1 FROM leerlingen
        WHERE id IN (SELECT leerling_id FROM new_rows)
        FOR KEY SHARE
    ) AS l;
    SELECT count(DISTINCT leerling_id) INTO wanted FROM new_rows;
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
""",
    """
CREATE FUNCTION pupils_unreferenced() RETURNS trigger
LANGUAGE plpgsql SET enable_seqscan = off AS $$
DECLARE
    referred text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM old_rows) THEN
        RETURN NULL;
    END IF;
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'pupils are deleted in READ COMMITTED only (ADR 0021)'
            USING ERRCODE = 'feature_not_supported';
    END IF;
    SELECT o.id INTO referred FROM old_rows AS o
    WHERE EXISTS (SELECT 1 FROM ledger AS e WHERE e.leerling_id = o.id)
       OR EXISTS (SELECT 1 FROM te_evalueren AS t WHERE t.leerling_id = o.id)
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'delete on table "leerlingen" violates a reference to it'
            USING ERRCODE = 'foreign_key_violation',
                DETAIL = format('Key (id)=(%s) is still referenced.', referred),
                TABLE = 'leerlingen', COLUMN = 'id';
    END IF;
    RETURN NULL;
END $$
""",
    """
CREATE FUNCTION key_never_changes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the key of a row of "%" never changes', TG_TABLE_NAME
        USING ERRCODE = 'foreign_key_violation', TABLE = TG_TABLE_NAME;
END $$
""",
    *(
        f"CREATE TRIGGER {table}_pupil_exists_on_insert AFTER INSERT ON {table}"
        " REFERENCING NEW TABLE AS new_rows"
        " FOR EACH STATEMENT EXECUTE FUNCTION pupil_references_exist()"
        for table in REFERRING
    ),
    # A registration's pupil may change with a new version: checked as an insert is.
    "CREATE TRIGGER ledger_pupil_exists_on_update AFTER UPDATE ON ledger"
    " REFERENCING NEW TABLE AS new_rows"
    " FOR EACH STATEMENT EXECUTE FUNCTION pupil_references_exist()",
    # A mark is the pupil's: its key never changes (and an upsert's update leaves it).
    "CREATE TRIGGER te_evalueren_key_fixed BEFORE UPDATE OF leerling_id ON te_evalueren"
    " FOR EACH ROW WHEN (OLD.leerling_id IS DISTINCT FROM NEW.leerling_id)"
    " EXECUTE FUNCTION key_never_changes()",
    "CREATE TRIGGER leerlingen_unreferenced_on_delete AFTER DELETE ON leerlingen"
    " REFERENCING OLD TABLE AS old_rows"
    " FOR EACH STATEMENT EXECUTE FUNCTION pupils_unreferenced()",
    "CREATE TRIGGER leerlingen_key_fixed BEFORE UPDATE OF id ON leerlingen"
    " FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id)"
    " EXECUTE FUNCTION key_never_changes()",
]

_POSTGRES_DOWN = [
    "DROP TRIGGER leerlingen_key_fixed ON leerlingen",
    "DROP TRIGGER leerlingen_unreferenced_on_delete ON leerlingen",
    "DROP TRIGGER te_evalueren_key_fixed ON te_evalueren",
    "DROP TRIGGER ledger_pupil_exists_on_update ON ledger",
    *(f"DROP TRIGGER {table}_pupil_exists_on_insert ON {table}" for table in REFERRING),
    "DROP FUNCTION key_never_changes()",
    "DROP FUNCTION pupils_unreferenced()",
    "DROP FUNCTION pupil_references_exist()",
]


# SQLite (the embedded default: one writer at a time): the same checks, per row.
def _refuse(message: str) -> str:
    return f"BEGIN SELECT RAISE(ABORT, 'FOREIGN KEY constraint failed: {message}'); END"


_PUPIL_MISSING = "NOT EXISTS (SELECT 1 FROM leerlingen WHERE id = NEW.leerling_id)"
_SQLITE = [
    *(
        f"CREATE TRIGGER {table}_pupil_exists_on_insert BEFORE INSERT ON {table}"
        f" WHEN {_PUPIL_MISSING} {_refuse(table + '.leerling_id')}"
        for table in REFERRING
    ),
    "CREATE TRIGGER ledger_pupil_exists_on_update BEFORE UPDATE OF leerling_id ON ledger"
    f" WHEN {_PUPIL_MISSING} {_refuse('ledger.leerling_id')}",
    "CREATE TRIGGER te_evalueren_key_fixed BEFORE UPDATE OF leerling_id ON te_evalueren"
    f" WHEN OLD.leerling_id IS NOT NEW.leerling_id {_refuse('te_evalueren.leerling_id never changes')}",
    "CREATE TRIGGER leerlingen_unreferenced_on_delete BEFORE DELETE ON leerlingen"
    " WHEN EXISTS (SELECT 1 FROM ledger WHERE leerling_id = OLD.id)"
    " OR EXISTS (SELECT 1 FROM te_evalueren WHERE leerling_id = OLD.id)"
    f" {_refuse('leerlingen.id is referenced')}",
    "CREATE TRIGGER leerlingen_key_fixed BEFORE UPDATE OF id ON leerlingen"
    f" WHEN OLD.id IS NOT NEW.id {_refuse('leerlingen.id never changes')}",
]

_SQLITE_DOWN = [
    *(f"DROP TRIGGER {table}_pupil_exists_on_insert" for table in REFERRING),
    "DROP TRIGGER ledger_pupil_exists_on_update",
    "DROP TRIGGER te_evalueren_key_fixed",
    "DROP TRIGGER leerlingen_unreferenced_on_delete",
    "DROP TRIGGER leerlingen_key_fixed",
]


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for table, key in REFERRING.items():
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(key, type_="foreignkey")
    for statement in _POSTGRES if postgres else _SQLITE:
        op.execute(statement)


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for statement in _POSTGRES_DOWN if postgres else _SQLITE_DOWN:
        op.execute(statement)
    for table, key in REFERRING.items():
        with op.batch_alter_table(table) as batch:
            batch.create_foreign_key(key, "leerlingen", ["leerling_id"], ["id"])
