"""Melding's tables."""

from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase

from verzuimhub_shared.db import new_metadata
from verzuimhub_shared.feed import cursor_table, feed_tables


class Base(DeclarativeBase):
    metadata = new_metadata()


FEED = feed_tables(Base.metadata)
CURSORS = cursor_table(Base.metadata)
