"""Melding's tables: each pupil's absence ledger per school, the meldingen, the DUO outbox.

The PGN arrives on ingest's feed; here too it is kept only sealed (AES-GCM), with a keyed
pseudonym of melding's own for linking.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from verzuimhub_shared.audit import audit_table
from verzuimhub_shared.db import code, new_metadata
from verzuimhub_shared.feed import cursor_table, feed_tables
from verzuimhub_shared.idempotency import idempotency_table


class Base(DeclarativeBase):
    metadata = new_metadata()


class Leerling(Base):
    """A pupil at one school (BRIN): the unit the rules evaluate."""

    __tablename__ = "leerlingen"
    __table_args__ = (UniqueConstraint("pgn_hash", "brin", name="uq_leerlingen_pgn_brin"),)

    id: Mapped[str] = mapped_column(code(36), primary_key=True)
    pgn_hash: Mapped[str] = mapped_column(code(64))
    pgn_sealed: Mapped[str] = mapped_column(Text)
    brin: Mapped[str] = mapped_column(code(4), index=True)
    vestiging: Mapped[str] = mapped_column(code(2))
    geboortedatum: Mapped[date] = mapped_column(Date)
    woongemeente: Mapped[str] = mapped_column(code(6))
    sector: Mapped[str] = mapped_column(code(3))
    startkwalificatie: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    gewijzigd_op: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class LedgerEntry(Base):
    """One registration as melding needs it (no reason for authorised absence, no note)."""

    __tablename__ = "ledger"
    __table_args__ = (
        Index("ix_ledger_leerling_datum", "leerling_id", "datum"),
        Index("ix_ledger_positie", "positie"),
    )

    registratie_id: Mapped[str] = mapped_column(code(36), primary_key=True)
    #: Refers to ``leerlingen.id``: checked by triggers, not a foreign key (ADR 0021).
    leerling_id: Mapped[str] = mapped_column(code(36))
    versie: Mapped[int] = mapped_column(Integer)
    datum: Mapped[date] = mapped_column(Date)
    minuten: Mapped[int] = mapped_column(Integer)
    eenheid: Mapped[str] = mapped_column(code(8))
    aantal_eenheden: Mapped[float] = mapped_column(Float)
    alle_lessen_gemist: Mapped[bool] = mapped_column(Boolean)
    soort: Mapped[str] = mapped_column(code(12))
    categorie: Mapped[str | None] = mapped_column(code(40), nullable=True)
    luxe_verzuim: Mapped[bool] = mapped_column(Boolean)
    #: The last feed position of the batch that wrote this version (the consumer's cursor
    #: once it committed): the rows past :class:`LedgerGemarkeerd`'s position are the
    #: changes not marked for the rules yet (ADR 0024).
    positie: Mapped[int] = mapped_column(BigInteger)


class Melding(Base):
    __tablename__ = "meldingen"
    __table_args__ = (
        Index("ix_meldingen_brin_status", "brin", "status", "id"),
        Index("ix_meldingen_woongemeente", "woongemeente", "status", "id"),
        Index("ix_meldingen_leerling", "leerling_id", "soort", "begindatum"),
    )

    id: Mapped[str] = mapped_column(code(36), primary_key=True)
    leerling_id: Mapped[str] = mapped_column(ForeignKey("leerlingen.id"))
    brin: Mapped[str] = mapped_column(code(4))
    vestiging: Mapped[str] = mapped_column(code(2))
    woongemeente: Mapped[str] = mapped_column(code(6))
    sector: Mapped[str] = mapped_column(code(3))
    soort: Mapped[str] = mapped_column(code(4))
    begindatum: Mapped[date] = mapped_column(Date)
    einddatum: Mapped[date] = mapped_column(Date)
    getelde_minuten: Mapped[int] = mapped_column(Integer)
    herhaalmelding: Mapped[bool] = mapped_column(Boolean)
    deadline: Mapped[date | None] = mapped_column(Date, nullable=True)
    #: concept → ingediend → geregistreerd → in_behandeling / afgesloten /
    #: ter_kennisgeving_aangenomen; ingetrokken by the school; vervallen when no longer due.
    status: Mapped[str] = mapped_column(code(32))
    dagen: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    vermoedelijke_reden: Mapped[str | None] = mapped_column(code(40), nullable=True)
    alle_lessen_verzuimd: Mapped[bool] = mapped_column(Boolean, default=False)
    discrepantie: Mapped[str | None] = mapped_column(code(32), nullable=True)
    # Filled in when the school confirms (sealed: contact data is personal data too).
    bevestiging_sealed: Mapped[str | None] = mapped_column(Text, nullable=True)
    duo_meldingsnummer: Mapped[str | None] = mapped_column(code(64), nullable=True)
    duo_status: Mapped[str | None] = mapped_column(code(40), nullable=True)
    afsluitreden: Mapped[str | None] = mapped_column(code(64), nullable=True)
    intrekkingsreden: Mapped[str | None] = mapped_column(code(40), nullable=True)
    #: The gemeente's remark when it changes the status (its own data; sealed).
    opmerking_sealed: Mapped[str | None] = mapped_column(Text, nullable=True)
    aangemaakt_op: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    gewijzigd_op: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class TeEvalueren(Base):
    """A pupil whose ledger changed since the rules last looked: evaluate from ``vanaf``.

    Written in the transaction that changed the ledger; removed in the transaction that
    evaluated it. Many events for one pupil during a catch-up make one evaluation."""

    __tablename__ = "te_evalueren"

    #: Refers to ``leerlingen.id``: checked by triggers, not a foreign key (ADR 0021).
    leerling_id: Mapped[str] = mapped_column(code(36), primary_key=True)
    vanaf: Mapped[date] = mapped_column(Date)
    gemarkeerd_op: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class LedgerGemarkeerd(Base):
    """One row: the ledger's rows up to this position of ingest's feed are marked for the
    rules (:class:`TeEvalueren`). Moved on, and the marks written, by the evaluator, in one
    transaction; the consumer writes marks only for what its rows do not show (ADR 0024)."""

    __tablename__ = "ledger_gemarkeerd"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    positie: Mapped[int] = mapped_column(BigInteger)


class DuoOutbox(Base):
    """What must reach DUO, written in the transaction that decided it; sent after commit."""

    __tablename__ = "duo_outbox"
    __table_args__ = (Index("ix_duo_outbox_due", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    melding_id: Mapped[str] = mapped_column(ForeignKey("meldingen.id"))
    actie: Mapped[str] = mapped_column(code(16))  # indienen | intrekken
    payload_sealed: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(code(16))  # pending | sent | dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    leased_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_error: Mapped[str | None] = mapped_column(code(200), nullable=True)
    aangemaakt_op: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    verzonden_op: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class SchoolBeleid(Base):
    """Per-school policy: forward mandatory meldingen automatically past their deadline.

    Off by default: meldingen are not to be sent without deliberation."""

    __tablename__ = "school_beleid"

    brin: Mapped[str] = mapped_column(code(4), primary_key=True)
    automatisch_doorsturen: Mapped[bool] = mapped_column(Boolean, default=False)
    standaard_bevestiging_sealed: Mapped[str | None] = mapped_column(Text, nullable=True)


FEED = feed_tables(Base.metadata)
CURSORS = cursor_table(Base.metadata)
IDEMPOTENCY = idempotency_table(Base.metadata)
AUDIT = audit_table(Base.metadata)
