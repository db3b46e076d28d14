"""The feed contract between services: event types and each consumer's projection.

Producers build these models; consumers parse them. Each consumer has its own projection
with only the fields it needs (architecture: per-consumer projections):

- ``melding`` gets what the law needs for meldingen: the PGN, birth date, woongemeente,
  school, sector, date, minutes, units, all-lessons-missed, startkwalificatie, and the
  category **only for unauthorised absence**. For authorised absence only ``geoorloofd``:
  the reason never leaves ingest. Never a note.
- ``swv-aggregate`` gets a pseudonym of its own (unlinkable to any other), the SWV region,
  sector, school week, month, school year, age band, minutes and a coarse category group.
  Never a PGN, birth date, woongemeente or note. Exemptions and absoluut verzuim go to
  ``swv-aggregate`` only.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

SOURCE_INGEST = "urn:nl:verzuimhub:ingest"
SOURCE_MELDING = "urn:nl:verzuimhub:melding"

CONSUMER_MELDING = "melding"
CONSUMER_SWV = "swv-aggregate"

# Event types (reverse DNS, versioned).
REGISTRATIE_VASTGELEGD = "nl.verzuimhub.registratie.vastgelegd.v1"
REGISTRATIE_INGETROKKEN = "nl.verzuimhub.registratie.ingetrokken.v1"
VRIJSTELLING_VASTGELEGD = "nl.verzuimhub.vrijstelling.vastgelegd.v1"
VRIJSTELLING_INGETROKKEN = "nl.verzuimhub.vrijstelling.ingetrokken.v1"
ABSOLUUT_VERZUIM_VASTGELEGD = "nl.verzuimhub.absoluut-verzuim.vastgelegd.v1"
ABSOLUUT_VERZUIM_INGETROKKEN = "nl.verzuimhub.absoluut-verzuim.ingetrokken.v1"
MELDING_GEWIJZIGD = "nl.verzuimhub.melding.gewijzigd.v1"

Sector = Literal["po", "sbo", "so", "vo", "vso", "mbo"]
Eenheid = Literal["klokuur", "lesuur"]
#: How a registration counts: authorised absence, unauthorised absence, or participation
#: (digital distance education: never absence).
Soort = Literal["geoorloofd", "ongeoorloofd", "deelname"]
#: Coarse group for anonymised statistics.
Groep = Literal["geoorloofd", "ongeoorloofd", "luxe", "deelname"]


class Contract(BaseModel):
    """Event data: camelCase on the wire, strict about unknown fields."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class RegistratieVoorMelding(Contract):
    """``registratie.vastgelegd`` as the melding service sees it."""

    registratie_id: str
    versie: int
    pgn: str
    geboortedatum: date
    woongemeente: str
    brin: str
    vestiging: str
    sector: Sector
    datum: date
    minuten: int
    eenheid: Eenheid
    aantal_eenheden: float
    alle_lessen_gemist: bool
    startkwalificatie: bool | None
    soort: Soort
    #: The catalogue code, only when ``soort == "ongeoorloofd"``; otherwise None.
    categorie: str | None
    luxe_verzuim: bool


class RegistratieIngetrokkenVoorMelding(Contract):
    registratie_id: str
    versie: int
    brin: str


class RegistratieVoorSwv(Contract):
    """``registratie.vastgelegd`` as swv-aggregate sees it: no identity at all."""

    registratie_id: str  # an id of swv-aggregate's own, unlinkable to ingest's
    leerling: str  # swv-aggregate's own pseudonym of the pupil
    swv: str | None
    sector: Sector
    datum_week: str  # ISO week, e.g. "2026-W41"
    maand: str  # "2026-10"
    schooljaar: str  # "2026-2027"
    leeftijdsband: str
    minuten: int
    groep: Groep


class RegistratieIngetrokkenVoorSwv(Contract):
    registratie_id: str


class VrijstellingVoorSwv(Contract):
    """A 5-onder-a (or b, c, 15) exemption or an absoluut-verzuim record, without cause."""

    vrijstelling_id: str  # swv-aggregate's own id
    leerling: str
    soort: str  # "5a", "5b", "5c", "15", or "absoluut_verzuim"
    begindatum: date
    einddatum: date | None
    swv_po: str | None
    swv_vo: str | None
    leeftijdsband: str


class VrijstellingIngetrokkenVoorSwv(Contract):
    vrijstelling_id: str


class MeldingVoorSwv(Contract):
    """melding's own feed to swv-aggregate: no identity."""

    melding_id: str  # swv-aggregate's own id
    soort: str  # V3, V4, LRV, RMC, L, O
    status: str
    sector: Sector
    swv: str | None
    schoolweek: str
    maand: str
    schooljaar: str
    leeftijdsband: str
