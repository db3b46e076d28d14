"""the ledger's rows carry the feed position of the batch that wrote them, and the
evaluator marks pupils from them (ADR 0024)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 10:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The rows written so far were marked when they were written (position 0: before
    # any; the stand's row is made by its first use, at 0). SQLite adds a NOT NULL
    # column only with a default, and drops one only by copying the table (and losing
    # its triggers): there the default stays.
    op.add_column(
        'ledger', sa.Column('positie', sa.BigInteger(), nullable=False, server_default='0')
    )
    if op.get_bind().dialect.name == 'postgresql':
        op.alter_column('ledger', 'positie', server_default=None)
    op.create_index('ix_ledger_positie', 'ledger', ['positie'], unique=False)
    op.create_table(
        'ledger_gemarkeerd',
        sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('positie', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_gemarkeerd')),
    )


def downgrade() -> None:
    # Rows past the stand are not marked yet: mark them as the consumer did before.
    op.execute(
        "INSERT INTO te_evalueren (leerling_id, vanaf, gemarkeerd_op)"
        " SELECT leerling_id, min(datum), CURRENT_TIMESTAMP FROM ledger"
        " WHERE positie > coalesce((SELECT positie FROM ledger_gemarkeerd), 0)"
        " GROUP BY leerling_id"
        " ON CONFLICT (leerling_id) DO UPDATE SET vanaf = excluded.vanaf"
        " WHERE excluded.vanaf < te_evalueren.vanaf"
    )
    op.drop_table('ledger_gemarkeerd')
    op.drop_index('ix_ledger_positie', table_name='ledger')
    op.drop_column('ledger', 'positie')
