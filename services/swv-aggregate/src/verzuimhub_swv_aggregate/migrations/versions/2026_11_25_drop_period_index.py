"""leerling_perioden without the (period_kind, period) index

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 19:30:00

Without statistics (a fresh database, a replay) the planner looked pupils' rows up through
this index instead of the primary key and scanned ~700 rows per key: 1.7 s per batch. Its
only user was the daily retention purge, which scans the table instead; every write of a
pupil's period is one index cheaper.
"""
from collections.abc import Sequence

from alembic import op


revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('leerling_perioden', schema=None) as batch_op:
        batch_op.drop_index('ix_leerling_perioden_period')


def downgrade() -> None:
    with op.batch_alter_table('leerling_perioden', schema=None) as batch_op:
        batch_op.create_index('ix_leerling_perioden_period', ['period_kind', 'period'], unique=False)
