"""Pure melding rules: which meldingen one pupil's absence ledger makes due, and attendance tiers.

No I/O. The melding service loads a pupil's ledger (all of it, or the window from
:func:`ledger_window` after one change), calls :func:`evaluate`, and stores the result. See
``docs/rules.md`` for every rule, its legal source and each interpretive choice.
"""

from verzuimhub_melding.rules.config import DEFAULT_SCHEDULED_MINUTES, RulesConfig
from verzuimhub_melding.rules.engine import aggregate_ledger, evaluate, ledger_window
from verzuimhub_melding.rules.model import (
    CountingUnit,
    Discrepancy,
    DiscrepancyReason,
    DueMelding,
    Evaluation,
    ExistingMelding,
    LedgerDay,
    LedgerWindow,
    MeldingDag,
    MeldingKind,
    MeldingStatus,
    Pupil,
    Sector,
    melding_key,
)
from verzuimhub_melding.rules.scope import (
    age_on,
    in_leerplicht_scope,
    in_rmc_scope,
    in_v4_scope,
    leerplicht_start,
)
from verzuimhub_melding.rules.tiers import AttendanceTier, TierResult, attendance_tier

__all__ = [
    "DEFAULT_SCHEDULED_MINUTES",
    "AttendanceTier",
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
    "RulesConfig",
    "Sector",
    "TierResult",
    "age_on",
    "aggregate_ledger",
    "attendance_tier",
    "evaluate",
    "in_leerplicht_scope",
    "in_rmc_scope",
    "in_v4_scope",
    "ledger_window",
    "leerplicht_start",
    "melding_key",
]
