"""What each consumer may see of a registration or a vrijstelling (pure functions).

The melding projection carries the identity (the law needs it for a melding) and, for
authorised absence, only that it was authorised: the reason never leaves ingest. The
swv-aggregate projection carries no identity at all: its own pseudonyms, the region, the
week, an age band and a coarse group.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from typing import Any, Protocol

from verzuimhub_ingest.domain.catalogue import Category
from verzuimhub_shared.events import Soort, VrijstellingVoorSwv
from verzuimhub_shared.periods import age_band_on, iso_week_label, month_label, school_year_of


class RegistratieFeiten(Protocol):
    """A validated registration: the input of both projections (``RegistratieIn`` is one,
    so a batch projects its items as they are, without a copy per item)."""

    @property
    def versie(self) -> int: ...
    @property
    def pgn(self) -> str: ...
    @property
    def geboortedatum(self) -> date: ...
    @property
    def woongemeente(self) -> str: ...
    @property
    def brin(self) -> str: ...
    @property
    def vestiging(self) -> str: ...
    @property
    def sector(self) -> str: ...
    @property
    def datum(self) -> date: ...
    @property
    def minuten(self) -> int: ...
    @property
    def eenheid(self) -> str: ...
    @property
    def aantal_eenheden(self) -> float: ...
    @property
    def alle_lessen_gemist(self) -> bool: ...
    @property
    def startkwalificatie(self) -> bool | None: ...
    @property
    def categorie(self) -> str: ...


def soort_of(category: Category) -> Soort:
    if category.participation:
        return "deelname"
    return "geoorloofd" if category.authorised else "ongeoorloofd"


# The projections are event data as the feed carries it: JSON-ready dicts, camelCase, keys
# in the order of the contract models (RegistratieVoorMelding, RegistratieVoorSwv in
# verzuimhub_shared.events). They are built by hand, not through those models: a model
# round trip per event cost more than everything else a registration needs. The tests
# hold every projection equal to its model's ``model_dump(mode="json", by_alias=True)``.


def voor_melding(
    registratie_id: str, feiten: RegistratieFeiten, category: Category
) -> dict[str, Any]:
    """``registratie.vastgelegd`` for melding: the identity, and the reason only for
    unauthorised absence."""
    soort = soort_of(category)
    return {
        "registratieId": registratie_id,
        "versie": feiten.versie,
        "pgn": feiten.pgn,
        "geboortedatum": feiten.geboortedatum.isoformat(),
        "woongemeente": feiten.woongemeente,
        "brin": feiten.brin,
        "vestiging": feiten.vestiging,
        "sector": feiten.sector,
        "datum": feiten.datum.isoformat(),
        "minuten": feiten.minuten,
        "eenheid": feiten.eenheid,
        "aantalEenheden": float(feiten.aantal_eenheden),
        "alleLessenGemist": feiten.alle_lessen_gemist,
        "startkwalificatie": feiten.startkwalificatie,
        "soort": soort,
        # Leerplichtwet art. 12 / Kamervragen 2022: the reason for authorised absence
        # stays at school; only unauthorised absence carries its category.
        "categorie": feiten.categorie if soort == "ongeoorloofd" else None,
        "luxeVerzuim": category.duo_verzuimsoort == "L",
    }


def voor_swv(
    feiten: RegistratieFeiten,
    category: Category,
    *,
    swv: str | None,
    leerling: str,
    registratie: str,
) -> dict[str, Any]:
    """``registratie.vastgelegd`` for swv-aggregate: its own pseudonyms, no identity."""
    week, maand, schooljaar = _periods(feiten.datum)
    return {
        "registratieId": registratie,
        "leerling": leerling,
        "swv": swv,
        "sector": feiten.sector,
        "datumWeek": week,
        "maand": maand,
        "schooljaar": schooljaar,
        "leeftijdsband": age_band_on(feiten.geboortedatum, feiten.datum),
        "minuten": feiten.minuten,
        "groep": category.group,
    }


@lru_cache(maxsize=1024)  # a batch spans a few hundred school days at most
def _periods(day: date) -> tuple[str, str, str]:
    """ISO week, month and school year of a day (strftime alone cost microseconds)."""
    return iso_week_label(day), month_label(day), school_year_of(day)


def vrijstelling_voor_swv(
    *,
    vrijstelling: str,
    leerling: str,
    soort: str,
    geboortedatum: date,
    begindatum: date,
    einddatum: date | None,
    swv_po: str | None,
    swv_vo: str | None,
) -> VrijstellingVoorSwv:
    return VrijstellingVoorSwv.model_validate(
        {
            "vrijstelling_id": vrijstelling,
            "leerling": leerling,
            "soort": soort,
            "begindatum": begindatum,
            "einddatum": einddatum,
            "swv_po": swv_po,
            "swv_vo": swv_vo,
            "leeftijdsband": age_band_on(geboortedatum, begindatum),
        }
    )
