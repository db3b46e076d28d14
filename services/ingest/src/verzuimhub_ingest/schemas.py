"""Ingest's API schemas. lowerCamelCase on the wire; unknown fields are refused.

Validators read a context (catalogue, reference data, today) so one pass names every bad
field; reasons never repeat the value (it may be a BSN).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from verzuimhub_ingest.domain import validation as v
from verzuimhub_ingest.domain.catalogue import Catalogue
from verzuimhub_shared.events import Eenheid, Sector
from verzuimhub_shared.refdata import RefData

MAX_BATCH = 5000
VrijstellingSoort = Literal["5a", "5b", "5c", "15"]


class ApiModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", str_strip_whitespace=True
    )


def _fail(problems: list[v.Problem]) -> None:
    if problems:
        raise PydanticCustomError("ongeldig", problems[0].reason)


def _checked(rule: Callable[[str], list[v.Problem]]) -> Callable[[str], str]:
    def check(value: str) -> str:
        _fail(rule(value))
        return value

    return check


#: Field types carrying their own rule, so every model that has the field checks it alike.
Pgn = Annotated[
    str,
    AfterValidator(_checked(v.validate_pgn)),
    Field(description="BSN or onderwijsnummer (9 digits, elfproef)"),
]
Brin = Annotated[str, AfterValidator(_checked(v.validate_brin))]
Vestiging = Annotated[str, AfterValidator(_checked(v.validate_vestigingsnummer))]


def _ctx(info: ValidationInfo) -> dict[str, Any]:
    return info.context or {}


class RegistratieIn(ApiModel):
    """One registration from school software; the school's id is the natural key."""

    school_registratie_id: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9._:\-]+$",
        description="The school's own id of this registration, unique per BRIN",
    )
    versie: int = Field(1, ge=1, description="Higher versions replace lower ones")
    brin: Brin
    vestiging: Vestiging
    pgn: Pgn
    geboortedatum: date
    woongemeente: str = Field(description="CBS code of the pupil's gemeente, GMxxxx")
    sector: Sector
    datum: date
    starttijd: time | None = Field(None, json_schema_extra={"format": "time-local"})
    minuten: int = Field(ge=1, le=600)
    eenheid: Eenheid
    aantal_eenheden: float = Field(gt=0, le=24)
    alle_lessen_gemist: bool
    categorie: str
    startkwalificatie: bool | None = Field(
        None, description="For pupils of 16 and older: do they hold a startkwalificatie"
    )
    notitie: str | None = Field(None, max_length=2000, description="Stays with ingest")

    @field_validator("woongemeente")
    @classmethod
    def _gemeente(cls, value: str, info: ValidationInfo) -> str:
        refdata: RefData | None = _ctx(info).get("refdata")
        _fail(v.validate_gemeente_code(value, "woongemeente", refdata))
        return value

    @field_validator("categorie")
    @classmethod
    def _categorie(cls, value: str, info: ValidationInfo) -> str:
        catalogue: Catalogue | None = _ctx(info).get("catalogue")
        if catalogue is not None:
            _fail(v.validate_category(value, catalogue))
        return value

    @field_validator("datum")
    @classmethod
    def _datum(cls, value: date, info: ValidationInfo) -> date:
        today: date | None = _ctx(info).get("today")
        if today is not None:
            _fail(v.validate_registration_date(value, today))
        return value

    @field_validator("geboortedatum")
    @classmethod
    def _geboortedatum(cls, value: date, info: ValidationInfo) -> date:
        today: date | None = _ctx(info).get("today")
        if today is not None and not (today.year - 30 <= value.year and value < today):
            raise PydanticCustomError(
                "ongeldig", "geboortedatum valt buiten de leerplicht/RMC-leeftijd"
            )
        return value


class RegistratieBatchIn(ApiModel):
    """Up to 5,000 registrations; each is validated and answered on its own."""

    registraties: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_BATCH)


class Registratie(ApiModel):
    """A registration as stored (the school's view of its own pupils)."""

    registratie_id: str
    school_registratie_id: str
    versie: int
    brin: str
    vestiging: str
    pgn: str
    geboortedatum: date
    woongemeente: str
    sector: Sector
    datum: date
    starttijd: time | None = Field(None, json_schema_extra={"format": "time-local"})
    minuten: int
    eenheid: Eenheid
    aantal_eenheden: float
    alle_lessen_gemist: bool
    categorie: str
    catalogus_versie: str
    startkwalificatie: bool | None
    notitie: str | None
    gewijzigd_op: datetime


class RegistratieBevestiging(ApiModel):
    """The answer to a registration: identical for an identical replay."""

    registratie_id: str
    school_registratie_id: str
    brin: str
    versie: int
    catalogus_versie: str


class InvalidParamOut(ApiModel):
    name: str
    reason: str


class ProbleemOut(ApiModel):
    status: int
    title: str
    detail: str
    invalid_params: list[InvalidParamOut] = []


Uitkomst = Literal["aangemaakt", "bijgewerkt", "ongewijzigd", "afgewezen"]


class BatchItemResultaat(ApiModel):
    index: int
    uitkomst: Uitkomst
    registratie: RegistratieBevestiging | None = None
    probleem: ProbleemOut | None = None


class BatchResultaat(ApiModel):
    aangemaakt: int
    bijgewerkt: int
    ongewijzigd: int
    afgewezen: int
    resultaten: list[BatchItemResultaat]


class RegistratiePagina(ApiModel):
    registraties: list[Registratie]
    volgende: str | None = Field(None, description="Cursor of the next page; null at the end")


class VrijstellingIn(ApiModel):
    """A vrijstelling. No field for a cause, diagnosis or free text exists, by design."""

    soort: VrijstellingSoort
    pgn: Pgn
    geboortedatum: date
    begindatum: date
    einddatum: date | None = None


class AbsoluutVerzuimIn(ApiModel):
    """A leerplichtig child enrolled at no school. No cause field."""

    pgn: Pgn
    geboortedatum: date
    begindatum: date
    einddatum: date | None = None


class PeriodeWijziging(ApiModel):
    """Extend or end: the new einddatum (null: open-ended)."""

    einddatum: date | None


class Vrijstelling(ApiModel):
    id: str
    soort: str
    gemeente: str
    geboortedatum: date
    begindatum: date
    einddatum: date | None
    ingetrokken: bool
    gewijzigd_op: datetime


class VrijstellingPagina(ApiModel):
    items: list[Vrijstelling]
    volgende: str | None = None


class Categorie(ApiModel):
    code: str
    label: str
    geoorloofd: bool
    deelname: bool
    duo_verzuimsoort: str | None
    groep: str


class Catalogus(ApiModel):
    versie: str
    categorieen: list[Categorie]
