"""Ingest's tables. Identities are never stored in clear: see ``verzuimhub_shared.crypto``."""

from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase

from verzuimhub_shared.db import new_metadata
from verzuimhub_shared.feed import feed_tables


class Base(DeclarativeBase):
    metadata = new_metadata()


FEED = feed_tables(Base.metadata)
