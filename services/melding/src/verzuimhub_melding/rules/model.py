"""Plain, frozen input and output data of the rules engine."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

__all__ = [
    "CountingUnit",
    "Discrepancy",
    "DiscrepancyReason",
    "DueMelding",
    "Evaluation",
    "ExistingMelding",
    "LedgerDay",
    "LedgerWindow",
    "MeldingDag",
    "MeldingKind",
    "MeldingStatus",
    "Pupil",
    "Sector",
    "melding_key",
]

MINUTES_PER_HOUR = 60


class Sector(StrEnum):
    PO = "po"
    SBO = "sbo"
    SO = "so"
    VO = "vo"
    VSO = "vso"
    MBO = "mbo"


class CountingUnit(StrEnum):
    """How absence counts toward hour thresholds."""

    KLOKUUR = "klokuur"  # clock hours: minutes / 60
    LESUUR = "lesuur"  # each registered lesuur counts as one hour


class MeldingKind(StrEnum):
    """DUO verzuimsoorten. ``O`` (overig) is filed by the school by hand, never computed."""

    V3 = "V3"  # 16 uur in 4 lesweken, under 18
    V4 = "V4"  # 16 uur in 4 lesweken, 18 and older
    LRV = "LRV"  # langdurig relatief verzuim
    RMC = "RMC"  # RMC-melding, 18-23 without startkwalificatie
    L = "L"  # luxe verzuim
    O = "O"  # noqa: E741  overig verzuim

    @property
    def is_16_uur(self) -> bool:
        return self in (MeldingKind.V3, MeldingKind.V4)


class MeldingStatus(StrEnum):
    CONCEPT = "concept"  # computed, not yet confirmed and sent by the school
    SENT = "sent"  # delivered to DUO: never changed silently


def melding_key(kind: MeldingKind, begindatum: date) -> str:
    """Natural key of a melding: kind and begindatum, e.g. ``V3:2025-01-13``."""
    return f"{kind.value}:{begindatum.isoformat()}"


@dataclass(frozen=True, slots=True)
class LedgerDay:
    """One pupil's registered absence on one date at one school.

    Minutes are clock minutes; units are the lessons (lesuren) the school registered.
    Digital distance education is participation: it is never absence, whatever is recorded in
    ``distance_minutes``.
    """

    datum: date
    authorised_minutes: int = 0
    unauthorised_minutes: int = 0
    authorised_units: int = 0
    unauthorised_units: int = 0
    luxe_verzuim: bool = False  # the unauthorised time on this day is luxe verzuim
    all_lessons_missed: bool = False  # "heledag": the pupil missed every lesson of the day
    distance_minutes: int = 0  # took part in digital distance education (afstandsonderwijs)

    def unauthorised(self, unit: CountingUnit) -> int:
        """Unauthorised time in counted minutes (a lesuur counts as 60)."""
        if unit is CountingUnit.LESUUR:
            return self.unauthorised_units * MINUTES_PER_HOUR
        return self.unauthorised_minutes

    def authorised(self, unit: CountingUnit) -> int:
        """Authorised time in counted minutes (a lesuur counts as 60)."""
        if unit is CountingUnit.LESUUR:
            return self.authorised_units * MINUTES_PER_HOUR
        return self.authorised_minutes


@dataclass(frozen=True, slots=True)
class Pupil:
    """What the rules need to know about the pupil."""

    geboortedatum: date
    sector: Sector
    woongemeente: str = ""  # CBS code GMxxxx
    startkwalificatie: bool = False
    bestuur: str | None = None  # school board (bevoegd gezag), for the RMC period


@dataclass(frozen=True, slots=True)
class ExistingMelding:
    """A melding the service already holds for this pupil at this school."""

    kind: MeldingKind
    begindatum: date
    einddatum: date
    status: MeldingStatus
    herhaalmelding: bool = False

    @property
    def key(self) -> str:
        return melding_key(self.kind, self.begindatum)


@dataclass(frozen=True, slots=True)
class MeldingDag:
    """One line of the legal "specificatie van de verzuimde dagen en uren"."""

    datum: date
    unauthorised_minutes: int
    unauthorised_units: int
    counted_minutes: int
    hele_dag: bool


def _hours(minutes: int) -> Decimal:
    return (Decimal(minutes) / MINUTES_PER_HOUR).quantize(Decimal("0.01"), ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class DueMelding:
    """A melding the rules say is due."""

    kind: MeldingKind
    begindatum: date
    einddatum: date
    counted_minutes: int  # unauthorised time counted, in the sector's unit (lesuur = 60)
    dagen: tuple[MeldingDag, ...]
    herhaalmelding: bool
    deadline: date  # 5 working days after the threshold was reached

    @property
    def key(self) -> str:
        return melding_key(self.kind, self.begindatum)

    @property
    def uren(self) -> Decimal:
        """Hours counted, to two decimals."""
        return _hours(self.counted_minutes)

    def same_period(self, other: ExistingMelding) -> bool:
        return (
            self.kind == other.kind
            and self.begindatum == other.begindatum
            and self.einddatum == other.einddatum
        )


class DiscrepancyReason(StrEnum):
    NO_LONGER_SUPPORTED = "no_longer_supported"  # the ledger no longer gives this melding
    DIFFERS = "differs"  # the ledger now gives a different period or kind for it


@dataclass(frozen=True, slots=True)
class Discrepancy:
    """A sent melding the current ledger does not confirm: report it, never change it."""

    sent: ExistingMelding
    computed: DueMelding | None
    reason: DiscrepancyReason


@dataclass(frozen=True, slots=True)
class LedgerWindow:
    """The part of the ledger an incremental evaluation needs.

    Load the ledger days on or after ``start``. 16-uur counting resumes after ``anchor`` (an
    existing melding whose period a change cannot reach), or from ``start`` without one.
    """

    start: date
    anchor: ExistingMelding | None = None

    @property
    def start_16_uur(self) -> date:
        """Meldingen of the 16-uur kinds are recomputed only when they begin on or after this."""
        if self.anchor is not None:
            return max(self.start, self.anchor.einddatum + timedelta(days=1))
        return self.start


@dataclass(frozen=True, slots=True)
class Evaluation:
    """What the rules say about one pupil.

    - ``due``: meldingen that should exist and are not yet sent (new ones, and ones a stored
      concept with the same key should be brought in line with);
    - ``no_longer_due``: stored concepts the ledger no longer gives (withdraw them);
    - ``discrepancies``: sent meldingen the ledger no longer confirms (never changed silently);
    - ``needs_history_from``: set only in a windowed evaluation whose window cut through an
      absence episode or run: load the ledger from this date and evaluate again.
    """

    due: tuple[DueMelding, ...]
    no_longer_due: tuple[ExistingMelding, ...] = ()
    discrepancies: tuple[Discrepancy, ...] = ()
    needs_history_from: date | None = None
