"""What each consumer may see of a registration or a vrijstelling (pure functions).

The melding projection carries the identity (the law needs it for a melding) and, for
authorised absence, only that it was authorised: the reason never leaves ingest. The
swv-aggregate projection carries no identity at all: its own pseudonyms, the region, the
week, an age band and a coarse group.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from verzuimhub_ingest.domain.catalogue import Category
from verzuimhub_shared.events import (
    RegistratieVoorMelding,
    RegistratieVoorSwv,
    Soort,
    VrijstellingVoorSwv,
)
from verzuimhub_shared.periods import age_band_on, iso_week_label, month_label, school_year_of


@dataclass(frozen=True)
class RegistratieFeiten:
    """A validated registration with its hub id: the input of both projections."""

    registratie_id: str
    versie: int
    pgn: str
    geboortedatum: date
    woongemeente: str
    brin: str
    vestiging: str
    sector: str
    datum: date
    minuten: int
    eenheid: str
    aantal_eenheden: float
    alle_lessen_gemist: bool
    startkwalificatie: bool | None
    categorie: str


def soort_of(category: Category) -> Soort:
    if category.participation:
        return "deelname"
    return "geoorloofd" if category.authorised else "ongeoorloofd"


def voor_melding(feiten: RegistratieFeiten, category: Category) -> RegistratieVoorMelding:
    soort = soort_of(category)
    return RegistratieVoorMelding.model_validate(
        {
            "registratie_id": feiten.registratie_id,
            "versie": feiten.versie,
            "pgn": feiten.pgn,
            "geboortedatum": feiten.geboortedatum,
            "woongemeente": feiten.woongemeente,
            "brin": feiten.brin,
            "vestiging": feiten.vestiging,
            "sector": feiten.sector,
            "datum": feiten.datum,
            "minuten": feiten.minuten,
            "eenheid": feiten.eenheid,
            "aantal_eenheden": feiten.aantal_eenheden,
            "alle_lessen_gemist": feiten.alle_lessen_gemist,
            "startkwalificatie": feiten.startkwalificatie,
            "soort": soort,
            # Leerplichtwet art. 12 / Kamervragen 2022: the reason for authorised absence
            # stays at school; only unauthorised absence carries its category.
            "categorie": feiten.categorie if soort == "ongeoorloofd" else None,
            "luxe_verzuim": category.duo_verzuimsoort == "L",
        }
    )


def voor_swv(
    feiten: RegistratieFeiten,
    category: Category,
    *,
    swv: str | None,
    leerling: str,
    registratie: str,
) -> RegistratieVoorSwv:
    return RegistratieVoorSwv.model_validate(
        {
            "registratie_id": registratie,
            "leerling": leerling,
            "swv": swv,
            "sector": feiten.sector,
            "datum_week": iso_week_label(feiten.datum),
            "maand": month_label(feiten.datum),
            "schooljaar": school_year_of(feiten.datum),
            "leeftijdsband": age_band_on(feiten.geboortedatum, feiten.datum),
            "minuten": feiten.minuten,
            "groep": category.group,
        }
    )


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
