"""swv-aggregate's tables: rollups only, never a person-level row that leaves."""

from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase

from verzuimhub_shared.db import new_metadata
from verzuimhub_shared.feed import cursor_table


class Base(DeclarativeBase):
    metadata = new_metadata()


CURSORS = cursor_table(Base.metadata)
