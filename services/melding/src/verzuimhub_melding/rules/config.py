"""The rules configuration: every number the law leaves to someone else is set here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType

from verzuimhub_melding.rules.model import CountingUnit, Sector

__all__ = ["DEFAULT_SCHEDULED_MINUTES", "RulesConfig"]

# Scheduled time per lesdag for the attendance tiers, in counted minutes (a lesuur = 60).
# po: 7520 uur over 8 years (WPO art. 8) is 940 a year, about 5 hours a lesdag; vo: 1000 uur
# a year (WVO 2020 art. 2.14) in lesuren, about 7 a lesdag; mbo: about 6 hours.
DEFAULT_SCHEDULED_MINUTES: Mapping[Sector, int] = MappingProxyType(
    {
        Sector.PO: 300,
        Sector.SBO: 300,
        Sector.SO: 300,
        Sector.VO: 420,
        Sector.VSO: 420,
        Sector.MBO: 360,
    }
)


def _frozen(mapping: Mapping[str, int]) -> Mapping[str, int]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True)
class RulesConfig:
    """Configuration of the melding rules. Defaults follow the law and DUO practice.

    Sources: see ``docs/rules.md``.
    """

    # Leerplichtwet art. 21a lid 1/2: 16 uur in 4 opeenvolgende lesweken.
    threshold_minutes: int = 16 * 60
    window_lesweken: int = 4
    # Gemeenten (CBS code) that ask for the 16-uur melding (V4) of pupils aged 18 and older.
    v4_gemeenten: frozenset[str] = frozenset()
    # Leerplichtwet art. 21a lid 2 speaks of "lestijd": the mbo institution chooses the unit.
    mbo_unit: CountingUnit = CountingUnit.KLOKUUR
    # LRV: unauthorised absence on every lesdag for more than this many lesweken.
    lrv_lesweken: int = 4
    # WEB art. 8.1.8a: four weeks, or a shorter period set by the school board.
    rmc_lesweken: int = 4
    rmc_lesweken_per_bestuur: Mapping[str, int] = field(default_factory=lambda: _frozen({}))
    # DUO: at most one herhaalmelding per 7 calendar days, at most 4.
    herhaal_spacing_days: int = 7
    herhaal_max: int = 4
    # Inspectie/DUO: report within 5 working days after the threshold is reached.
    deadline_working_days: int = 5
    # Luxe verzuim is reported as L; by default its days are not reported again as 16 uur,
    # LRV or RMC (one melding per absence, with one verzuimsoort).
    luxe_counts_for_other_kinds: bool = False
    # Attendance tiers (RtI / MD-MTSS): share of scheduled time missed, from which a tier starts.
    tier2_from: Decimal = Decimal("0.05")
    tier3_from: Decimal = Decimal("0.10")
    scheduled_minutes: Mapping[Sector, int] = field(
        default_factory=lambda: DEFAULT_SCHEDULED_MINUTES
    )

    def __post_init__(self) -> None:
        if self.threshold_minutes <= 0:
            raise ValueError("threshold_minutes must be positive")
        for name in ("window_lesweken", "lrv_lesweken", "rmc_lesweken"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if any(weeks < 1 for weeks in self.rmc_lesweken_per_bestuur.values()):
            raise ValueError("an RMC period must be at least 1 lesweek")
        if self.herhaal_spacing_days < 0 or self.herhaal_max < 0:
            raise ValueError("herhaal settings must not be negative")
        if not Decimal(0) < self.tier2_from <= self.tier3_from:
            raise ValueError("tier cut-offs must satisfy 0 < tier2_from <= tier3_from")
        if not isinstance(self.rmc_lesweken_per_bestuur, MappingProxyType):
            object.__setattr__(
                self, "rmc_lesweken_per_bestuur", _frozen(self.rmc_lesweken_per_bestuur)
            )

    def counting_unit(self, sector: Sector) -> CountingUnit:
        """Clock hours for po, sbo, so; lesuren for vo, vso; configurable for mbo."""
        if sector in (Sector.VO, Sector.VSO):
            return CountingUnit.LESUUR
        if sector is Sector.MBO:
            return self.mbo_unit
        return CountingUnit.KLOKUUR

    def rmc_period(self, bestuur: str | None) -> int:
        """RMC period in lesweken for a school board (WEB art. 8.1.8a: at most four weeks)."""
        if bestuur is not None and bestuur in self.rmc_lesweken_per_bestuur:
            return self.rmc_lesweken_per_bestuur[bestuur]
        return self.rmc_lesweken
