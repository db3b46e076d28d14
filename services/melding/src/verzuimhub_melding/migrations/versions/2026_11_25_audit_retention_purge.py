"""audit log: the retention purge may delete rows older than a year, nothing else may

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 18:00:00.000000
"""
from collections.abc import Sequence

from verzuimhub_shared.audit import allow_retention_purge, refuse_every_delete


revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    allow_retention_purge()


def downgrade() -> None:
    refuse_every_delete()
