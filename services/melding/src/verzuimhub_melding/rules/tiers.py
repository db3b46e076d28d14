"""Attendance tiers (RtI / MD-MTSS, Kearney & Graczyk 2014) over total absence in a period.

Total absence (authorised and unauthorised) as a share of scheduled time: the lesdagen in the
period times the scheduled time per lesdag of the sector (``RulesConfig.scheduled_minutes``, or
an explicit figure). Absence on a day counts at most the day's scheduled time; digital distance
education is participation and never absence. Cut-offs are configuration (defaults: tier 2 from
5%, tier 3 from 10%), since the model fixes none.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from enum import IntEnum
from fractions import Fraction

from verzuimhub_melding.rules.config import RulesConfig
from verzuimhub_melding.rules.engine import aggregate_ledger
from verzuimhub_melding.rules.model import LedgerDay, Sector
from verzuimhub_shared.calendar import SchoolCalendar

__all__ = ["AttendanceTier", "TierResult", "attendance_tier"]


class AttendanceTier(IntEnum):
    REGULAR = 1  # tier 1: regular attendance
    AT_RISK = 2  # tier 2: emerging / at-risk absenteeism
    CHRONIC = 3  # tier 3: chronic absenteeism


@dataclass(frozen=True, slots=True)
class TierResult:
    tier: AttendanceTier
    absent_minutes: int  # counted minutes (a lesuur = 60), capped per day at scheduled time
    scheduled_minutes: int
    lesdagen: int

    @property
    def share(self) -> Fraction:
        """Share of scheduled time missed (0 when nothing was scheduled)."""
        if self.scheduled_minutes == 0:
            return Fraction(0)
        return Fraction(self.absent_minutes, self.scheduled_minutes)


def attendance_tier(
    ledger: Iterable[LedgerDay],
    calendar: SchoolCalendar,
    sector: Sector,
    start: date,
    end: date,
    config: RulesConfig | None = None,
    *,
    scheduled_minutes_per_lesdag: int | None = None,
) -> TierResult:
    """The attendance tier of one pupil over ``start..end`` (inclusive)."""
    config = config or RulesConfig()
    unit = config.counting_unit(sector)
    per_day = (
        scheduled_minutes_per_lesdag
        if scheduled_minutes_per_lesdag is not None
        else config.scheduled_minutes[sector]
    )
    lesdagen = calendar.count_lesdagen(start, end)
    absent = 0
    for day, entry in aggregate_ledger(ledger).items():
        if start <= day <= end and calendar.is_lesdag(day):
            absent += min(per_day, entry.authorised(unit) + entry.unauthorised(unit))
    result = TierResult(AttendanceTier.REGULAR, absent, lesdagen * per_day, lesdagen)
    share = result.share
    if share >= Fraction(config.tier3_from):
        tier = AttendanceTier.CHRONIC
    elif share >= Fraction(config.tier2_from):
        tier = AttendanceTier.AT_RISK
    else:
        tier = AttendanceTier.REGULAR
    return TierResult(tier, absent, lesdagen * per_day, lesdagen)
