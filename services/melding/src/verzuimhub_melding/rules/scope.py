"""Age scope: on which dates each kind of melding can concern the pupil."""

from __future__ import annotations

from datetime import date

from verzuimhub_melding.rules.config import RulesConfig
from verzuimhub_melding.rules.model import Pupil

__all__ = [
    "age_on",
    "birthday",
    "in_leerplicht_scope",
    "in_rmc_scope",
    "in_v4_scope",
    "leerplicht_start",
]


def birthday(geboortedatum: date, years: int) -> date:
    """The date the pupil turns ``years`` (29 February: 1 March in other years)."""
    try:
        return geboortedatum.replace(year=geboortedatum.year + years)
    except ValueError:
        return date(geboortedatum.year + years, 3, 1)


def age_on(geboortedatum: date, day: date) -> int:
    age = day.year - geboortedatum.year
    if day < birthday(geboortedatum, age):
        age -= 1
    return age


def leerplicht_start(geboortedatum: date) -> date:
    """First day of the month after the 5th birthday (Leerplichtwet art. 3 lid 1)."""
    fifth = birthday(geboortedatum, 5)
    return date(fifth.year + fifth.month // 12, fifth.month % 12 + 1, 1)


def in_leerplicht_scope(pupil: Pupil, day: date) -> bool:
    """Leerplichtig or kwalificatieplichtig on ``day`` (Leerplichtwet art. 3, 4a).

    From the first day of the month after the 5th birthday until the 18th birthday; a pupil of
    16 or older with a startkwalificatie is no longer kwalificatieplichtig (art. 4a lid 1).
    """
    if day < leerplicht_start(pupil.geboortedatum) or day >= birthday(pupil.geboortedatum, 18):
        return False
    return not (pupil.startkwalificatie and day >= birthday(pupil.geboortedatum, 16))


def in_rmc_scope(pupil: Pupil, day: date) -> bool:
    """18 up to 23 without startkwalificatie (WEB art. 8.1.8a; RMC, Leerplichtwet art. 18a)."""
    born = pupil.geboortedatum
    return not pupil.startkwalificatie and birthday(born, 18) <= day < birthday(born, 23)


def in_v4_scope(pupil: Pupil, day: date, config: RulesConfig) -> bool:
    """18+ (RMC age) where the woongemeente asks for the 16-uur melding of its 18+ pupils."""
    return pupil.woongemeente in config.v4_gemeenten and in_rmc_scope(pupil, day)
