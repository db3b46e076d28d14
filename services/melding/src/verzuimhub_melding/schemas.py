"""Melding's API schemas (lowerCamelCase; unknown fields refused)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from verzuimhub_melding.duo.contract import (
    Contactpersoon,
    GemeentelijkeActie,
    IntrekkingReden,
    Leslocatie,
    Verzuimmelding,
)
from verzuimhub_shared.events import Sector


class ApiModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", str_strip_whitespace=True
    )


class Bevestiging(ApiModel):
    """What the school adds when it confirms a melding (Besluit ROD art. 13/14)."""

    ondernomen_actie: str = Field(
        min_length=1, max_length=2000, description="Action already taken by the school"
    )
    gemeentelijke_actie: GemeentelijkeActie
    contactpersoon: Contactpersoon
    leslocatie: Leslocatie | None = Field(None, description="Defaults to the school's location")
    telefoon_leerling_of_ouder: str | None = Field(None, max_length=20)


class Intrekking(ApiModel):
    reden: IntrekkingReden


class OverigVerzuimIn(Bevestiging):
    """An overig-verzuim melding the school files itself (below the threshold, worried)."""

    pgn: str = Field(pattern=r"^[0-9]{9}$")
    vestiging: str = Field(pattern=r"^[0-9]{2}$")
    begindatum: date
    einddatum: date


class Dag(ApiModel):
    datum: date
    minuten: int
    geoorloofd: bool


class MeldingSchool(ApiModel):
    """A melding as the school sees it (its own pupils)."""

    id: str
    soort: str
    status: str
    begindatum: date
    einddatum: date
    uren: float
    herhaalmelding: bool
    deadline: date | None
    te_laat: bool = Field(description="A concept past its 5-working-day deadline")
    discrepantie: str | None
    brin: str
    vestiging: str
    sector: Sector
    pgn: str
    geboortedatum: date
    vermoedelijke_reden: str | None
    dagen: list[Dag]
    duo_meldingsnummer: str | None
    gewijzigd_op: datetime


class MeldingSchoolPagina(ApiModel):
    meldingen: list[MeldingSchool]
    volgende: str | None = None


GemeenteStatus = Literal["in_behandeling", "afgesloten", "ter_kennisgeving_aangenomen"]


class StatusWijziging(ApiModel):
    status: GemeenteStatus
    reden: str | None = Field(None, max_length=64, description="Required for afgesloten")
    opmerking: str | None = Field(None, max_length=2000)


class MeldingGemeente(ApiModel):
    """A melding as the woongemeente sees it: the legal fields, the status, DUO's number."""

    id: str
    status: str
    duo_meldingsnummer: str | None
    melding: Verzuimmelding


class MeldingGemeentePagina(ApiModel):
    meldingen: list[MeldingGemeente]
    volgende: str | None = None


class LeerlingOverzicht(ApiModel):
    """Attendance of one pupil over a period, with its tier (RtI / MD-MTSS)."""

    leerling_id: str
    pgn: str
    geboortedatum: date
    sector: Sector
    geoorloofd_minuten: int
    ongeoorloofd_minuten: int
    afstandsonderwijs_minuten: int
    aandeel_verzuim: float = Field(description="Share of scheduled time missed (0..1)")
    niveau: int = Field(description="Attendance tier 1, 2 or 3")


class LeerlingOverzichtPagina(ApiModel):
    vanaf: date
    tot_en_met: date
    leerlingen: list[LeerlingOverzicht]
    volgende: str | None = None


class SchoolBeleid(ApiModel):
    """Forward mandatory meldingen automatically once their 5-working-day deadline has
    passed. Off by default: meldingen are not to be sent without deliberation, so turning
    it on requires the confirmation the school would otherwise give each time."""

    automatisch_doorsturen: bool
    standaard_bevestiging: Bevestiging | None = None
