"""a feed row's body is binary: a sealed one without its base64 (ADR 0031)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 04:00:00
"""
from collections.abc import Sequence

from verzuimhub_shared.migrations import feed_body_binary


revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    feed_body_binary('feed_events')


def downgrade() -> None:
    feed_body_binary('feed_events', binary=False)
