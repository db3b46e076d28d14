"""Attendance tiers: total absence as a share of scheduled time."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from verzuimhub_melding.rules import (
    AttendanceTier,
    LedgerDay,
    RulesConfig,
    Sector,
    attendance_tier,
)
from verzuimhub_shared.calendar import SchoolCalendar

D = date
# 2 Sep .. 29 Sep 2024 in midden: 20 lesdagen; po schedules 300 minutes a lesdag = 6000.
START, END = D(2024, 9, 2), D(2024, 9, 29)


@pytest.mark.parametrize(
    ("ledger", "tier", "absent"),
    [
        ([], AttendanceTier.REGULAR, 0),
        ([LedgerDay(D(2024, 9, 2), authorised_minutes=299)], AttendanceTier.REGULAR, 299),
        # 5% of 6000 = 300: tier 2 from exactly 5%
        ([LedgerDay(D(2024, 9, 2), authorised_minutes=300)], AttendanceTier.AT_RISK, 300),
        # authorised and unauthorised both count
        (
            [
                LedgerDay(D(2024, 9, 2), authorised_minutes=300),
                LedgerDay(D(2024, 9, 3), unauthorised_minutes=299),
            ],
            AttendanceTier.AT_RISK,
            599,
        ),
        # 10% = 600: tier 3
        (
            [
                LedgerDay(D(2024, 9, 2), authorised_minutes=300),
                LedgerDay(D(2024, 9, 3), unauthorised_minutes=300),
            ],
            AttendanceTier.CHRONIC,
            600,
        ),
        # a day counts at most its scheduled time
        ([LedgerDay(D(2024, 9, 2), unauthorised_minutes=900)], AttendanceTier.AT_RISK, 300),
        # distance education is participation
        ([LedgerDay(D(2024, 9, d), distance_minutes=300) for d in range(2, 7)], 1, 0),
        # weekends and days outside the period do not count
        (
            [
                LedgerDay(D(2024, 9, 7), authorised_minutes=300),
                LedgerDay(D(2024, 9, 30), authorised_minutes=300),
            ],
            AttendanceTier.REGULAR,
            0,
        ),
    ],
)
def test_po_tiers(
    midden: SchoolCalendar, ledger: list[LedgerDay], tier: AttendanceTier, absent: int
) -> None:
    result = attendance_tier(ledger, midden, Sector.PO, START, END)
    assert (result.tier, result.absent_minutes) == (tier, absent)
    assert (result.lesdagen, result.scheduled_minutes) == (20, 6000)


def test_vo_counts_lesuren(midden: SchoolCalendar) -> None:
    # vo: 7 lesuren a lesdag over 20 lesdagen = 140 lesuren; 14 lesuren missed = 10%.
    ledger = [
        LedgerDay(D(2024, 9, 2 + i), authorised_units=7, authorised_minutes=315) for i in range(2)
    ]
    result = attendance_tier(ledger, midden, Sector.VO, START, END)
    assert result.tier is AttendanceTier.CHRONIC
    assert result.share == Decimal("0.1")


def test_holiday_weeks_are_not_scheduled(midden: SchoolCalendar) -> None:
    # 14 Oct .. 3 Nov: one lesweek, the herfstvakantie, one lesweek = 10 lesdagen.
    result = attendance_tier([], midden, Sector.PO, D(2024, 10, 14), D(2024, 11, 3))
    assert result.lesdagen == 10


def test_cut_offs_and_scheduled_time_are_configuration(midden: SchoolCalendar) -> None:
    config = RulesConfig(tier2_from=Decimal("0.02"), tier3_from=Decimal("0.04"))
    ledger = [LedgerDay(D(2024, 9, 2), authorised_minutes=240)]  # 4% of 6000
    assert attendance_tier(ledger, midden, Sector.PO, START, END, config).tier == 3
    explicit = attendance_tier(
        ledger, midden, Sector.PO, START, END, config, scheduled_minutes_per_lesdag=600
    )
    assert (explicit.tier, explicit.scheduled_minutes) == (AttendanceTier.AT_RISK, 12000)


def test_empty_period(midden: SchoolCalendar) -> None:
    result = attendance_tier([], midden, Sector.PO, D(2024, 10, 21), D(2024, 10, 25))
    assert (result.tier, result.share, result.scheduled_minutes) == (1, 0, 0)


def test_invalid_cut_offs_are_refused() -> None:
    with pytest.raises(ValueError, match="tier"):
        RulesConfig(tier2_from=Decimal("0.2"), tier3_from=Decimal("0.1"))
