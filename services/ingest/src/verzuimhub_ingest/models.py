"""Ingest's tables. No PGN or note in clear: a keyed pseudonym to link, AES-GCM to keep."""

from __future__ import annotations

from datetime import date, datetime, time

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    Float,
    Index,
    Integer,
    Text,
    Time,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from verzuimhub_shared.audit import audit_table
from verzuimhub_shared.db import code, new_metadata
from verzuimhub_shared.feed import feed_tables
from verzuimhub_shared.idempotency import idempotency_table


class Base(DeclarativeBase):
    metadata = new_metadata()


class Registratie(Base):
    """One registered absence (or participation) of one pupil on one day, latest version."""

    __tablename__ = "registraties"
    __table_args__ = (
        UniqueConstraint("brin", "school_registratie_id", name="uq_registraties_school_id"),
        Index("ix_registraties_brin_datum", "brin", "datum", "id"),
        Index("ix_registraties_pgn_datum", "pgn_hash", "datum"),
    )

    id: Mapped[str] = mapped_column(code(36), primary_key=True)
    brin: Mapped[str] = mapped_column(code(4))
    school_registratie_id: Mapped[str] = mapped_column(code(64))
    versie: Mapped[int] = mapped_column(Integer)
    vestiging: Mapped[str] = mapped_column(code(2))
    pgn_hash: Mapped[str] = mapped_column(code(64))
    pgn_sealed: Mapped[str] = mapped_column(Text)
    pgn_soort: Mapped[str] = mapped_column(code(16))
    geboortedatum: Mapped[date] = mapped_column(Date)
    woongemeente: Mapped[str] = mapped_column(code(6))
    sector: Mapped[str] = mapped_column(code(3))
    datum: Mapped[date] = mapped_column(Date)
    starttijd: Mapped[time | None] = mapped_column(Time, nullable=True)
    minuten: Mapped[int] = mapped_column(Integer)
    eenheid: Mapped[str] = mapped_column(code(8))
    aantal_eenheden: Mapped[float] = mapped_column(Float)
    alle_lessen_gemist: Mapped[bool] = mapped_column(Boolean)
    categorie: Mapped[str] = mapped_column(code(40))
    catalogus_versie: Mapped[str] = mapped_column(code(40))
    startkwalificatie: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    notitie_sealed: Mapped[str | None] = mapped_column(Text, nullable=True)
    payload_hash: Mapped[str] = mapped_column(code(64))
    ingetrokken: Mapped[bool] = mapped_column(Boolean, default=False)
    vastgelegd_op: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    gewijzigd_op: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Vrijstelling(Base):
    """A vrijstelling (5 onder a/b/c, 15) or an absoluut-verzuim record, kept by a gemeente.

    There is deliberately no column for a cause, a diagnosis or free text."""

    __tablename__ = "vrijstellingen"
    __table_args__ = (Index("ix_vrijstellingen_gemeente", "gemeente", "id"),)

    id: Mapped[str] = mapped_column(code(36), primary_key=True)
    gemeente: Mapped[str] = mapped_column(code(6))
    soort: Mapped[str] = mapped_column(code(20))
    pgn_hash: Mapped[str] = mapped_column(code(64))
    pgn_sealed: Mapped[str] = mapped_column(Text)
    geboortedatum: Mapped[date] = mapped_column(Date)
    begindatum: Mapped[date] = mapped_column(Date)
    einddatum: Mapped[date | None] = mapped_column(Date, nullable=True)
    ingetrokken: Mapped[bool] = mapped_column(Boolean, default=False)
    vastgelegd_op: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    gewijzigd_op: Mapped[datetime] = mapped_column(DateTime(timezone=True))


FEED = feed_tables(Base.metadata)
IDEMPOTENCY = idempotency_table(Base.metadata)
AUDIT = audit_table(Base.metadata)
