"""swv-aggregate's tables: rollups, and the internal state that keeps them incremental.

Nothing here ever leaves the service as a row. The state tables (``swv_registraties``,
``leerling_perioden``, ``meldingen``, ``vrijstellingen``) hold swv-aggregate's own pseudonyms
and ids, unlinkable to any other service's; they exist so a correction or retraction can be
applied as a delta and distinct pupils can be counted without recomputing. The API reads only
``rollups`` and ``vrijstelling_stromen`` (aggregates) and publishes them through disclosure
control.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import BigInteger, Boolean, Date, Integer
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from verzuimhub_shared.db import code, new_metadata
from verzuimhub_shared.feed import cursor_table


class Base(DeclarativeBase):
    metadata = new_metadata()


CURSORS = cursor_table(Base.metadata)


class Rollup(Base):
    """One figure: scope (an SWV code or ``NL``) × sector × fixed period × metric × category."""

    __tablename__ = "rollups"

    scope: Mapped[str] = mapped_column(code(16), primary_key=True)
    sector: Mapped[str] = mapped_column(code(8), primary_key=True)
    period_kind: Mapped[str] = mapped_column(code(12), primary_key=True)
    period: Mapped[str] = mapped_column(code(10), primary_key=True)
    metric: Mapped[str] = mapped_column(code(40), primary_key=True)
    category: Mapped[str] = mapped_column(code(32), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)


class SwvRegistratie(Base):
    """The latest state of one registration as swv-aggregate received it (for deltas)."""

    __tablename__ = "swv_registraties"

    id: Mapped[str] = mapped_column(code(128), primary_key=True)
    leerling: Mapped[str] = mapped_column(code(128))
    swv: Mapped[str | None] = mapped_column(code(16), nullable=True)
    sector: Mapped[str] = mapped_column(code(8))
    week: Mapped[str] = mapped_column(code(10))
    maand: Mapped[str] = mapped_column(code(10))
    schooljaar: Mapped[str] = mapped_column(code(10))
    minuten: Mapped[int] = mapped_column(Integer)
    groep: Mapped[str] = mapped_column(code(16))


class LeerlingPeriode(Base):
    """One pupil's minutes in one scope, sector and period: counts distinct pupils and tiers."""

    __tablename__ = "leerling_perioden"
    # Only the primary key: see migration 0003 (a period index misled the planner).

    leerling: Mapped[str] = mapped_column(code(128), primary_key=True)
    scope: Mapped[str] = mapped_column(code(16), primary_key=True)
    sector: Mapped[str] = mapped_column(code(8), primary_key=True)
    period_kind: Mapped[str] = mapped_column(code(12), primary_key=True)
    period: Mapped[str] = mapped_column(code(10), primary_key=True)
    registraties: Mapped[int] = mapped_column(Integer)
    geoorloofd: Mapped[int] = mapped_column(Integer)
    ongeoorloofd: Mapped[int] = mapped_column(Integer)
    deelname: Mapped[int] = mapped_column(Integer)
    gepland: Mapped[int] = mapped_column(Integer)


class SwvMelding(Base):
    """The latest state of one melding (melding's feed), to count it once."""

    __tablename__ = "swv_meldingen"

    id: Mapped[str] = mapped_column(code(128), primary_key=True)
    soort: Mapped[str] = mapped_column(code(8))
    sector: Mapped[str] = mapped_column(code(8))
    swv: Mapped[str | None] = mapped_column(code(16), nullable=True)
    week: Mapped[str] = mapped_column(code(10))
    maand: Mapped[str] = mapped_column(code(10))
    schooljaar: Mapped[str] = mapped_column(code(10))
    geteld: Mapped[bool] = mapped_column(Boolean)


class SwvVrijstelling(Base):
    """The latest state of one vrijstelling or absoluut-verzuim record (no pupil, no cause)."""

    __tablename__ = "swv_vrijstellingen"

    id: Mapped[str] = mapped_column(code(128), primary_key=True)
    soort: Mapped[str] = mapped_column(code(20))
    begindatum: Mapped[date] = mapped_column(Date)
    einddatum: Mapped[date | None] = mapped_column(Date, nullable=True)
    swv_po: Mapped[str | None] = mapped_column(code(16), nullable=True)
    swv_vo: Mapped[str | None] = mapped_column(code(16), nullable=True)
    leeftijdsband: Mapped[str] = mapped_column(code(8))


class VrijstellingStroom(Base):
    """How many vrijstellingen began (``begin``) or ended (``einde``) on one day.

    Started and ended in a period are range sums; active on a date is all begins up to that
    date minus all ends before it. Aggregates only, one row per scope, kind, band and day.
    """

    __tablename__ = "vrijstelling_stromen"

    scope: Mapped[str] = mapped_column(code(16), primary_key=True)
    soort: Mapped[str] = mapped_column(code(20), primary_key=True)
    leeftijdsband: Mapped[str] = mapped_column(code(8), primary_key=True)
    dag: Mapped[date] = mapped_column(Date, primary_key=True)
    richting: Mapped[str] = mapped_column(code(8), primary_key=True)
    aantal: Mapped[int] = mapped_column(Integer)
