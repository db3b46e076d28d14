"""swv-aggregate's API schemas: lowerCamelCase, Dutch nouns, suppression explicit per cell."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class ApiModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class Periode(ApiModel):
    soort: Literal["week", "maand", "schooljaar"] = Field(description="Kind of fixed period")
    waarde: str = Field(description="2025-W47, 2025-11 or 2025-2026", examples=["2025-2026"])
    begindatum: date
    einddatum: date


class Cel(ApiModel):
    """One cell or margin. A margin leaves a dimension out of ``categorieen``."""

    categorieen: dict[str, str] = Field(
        description="Category per dimension; a dimension left out is the total over it",
        examples=[{"sector": "po"}],
    )
    waarde: int | None = Field(description="The published count; null when suppressed")
    onderdrukt: bool = Field(description="True when the value is withheld")
    reden: Literal["primary", "secondary"] | None = Field(
        description="primary: below the threshold; secondary: withheld so a small count "
        "cannot be derived from the others"
    )


class Tabel(ApiModel):
    naam: str = Field(examples=["niveaus"])
    omschrijving: str
    populatie: str = Field(examples=["leerlingen_per_niveau"])
    dimensies: list[str] = Field(examples=[["niveau", "sector"]])
    categorieen: dict[str, list[str]]
    cellen: list[Cel]


class UrenCel(ApiModel):
    soort: Literal["geoorloofd", "ongeoorloofd"]
    sector: str | None = Field(description="null: all sectors of the scope")
    uren: int | None = Field(description="Whole hours; null when the pupils behind it are hidden")
    onderdrukt: bool
    reden: Literal["primary", "secondary"] | None


class UrenTabel(ApiModel):
    omschrijving: str
    cellen: list[UrenCel]


class Cijfers(ApiModel):
    """Every table of one region (or the country) for one fixed period."""

    gebied: str = Field(description="SWV code, or NL for the national figures")
    periode: Periode
    peildatum: date = Field(description="Date of the 'actief' tables: period end, or today")
    drempel: int = Field(description="Smallest published count (k)", examples=[10])
    afrondingsbasis: int | None = Field(description="Counts rounded to this base; null: exact")
    tabellen: list[Tabel]
    uren: list[UrenCel]
    vorig_jaar: Cijfers | None = Field(
        None, description="The same figures for the same period one year earlier"
    )


EXAMPLE_TABEL = {
    "naam": "niveaus",
    "omschrijving": "Leerlingen met een registratie in de periode, per aanwezigheidsniveau",
    "populatie": "leerlingen_per_niveau",
    "dimensies": ["niveau", "sector"],
    "categorieen": {"niveau": ["1", "2", "3"], "sector": ["vo", "vso"]},
    "cellen": [
        {
            "categorieen": {"niveau": "1", "sector": "vo"},
            "waarde": 412,
            "onderdrukt": False,
            "reden": None,
        },
        {
            "categorieen": {"niveau": "3", "sector": "vso"},
            "waarde": None,
            "onderdrukt": True,
            "reden": "primary",
        },
        {"categorieen": {}, "waarde": 655, "onderdrukt": False, "reden": None},
    ],
}

EXAMPLE_CIJFERS = {
    "gebied": "VO-99-01",
    "periode": {
        "soort": "maand",
        "waarde": "2025-11",
        "begindatum": "2025-11-01",
        "einddatum": "2025-11-30",
    },
    "peildatum": "2025-11-30",
    "drempel": 10,
    "afrondingsbasis": None,
    "tabellen": [EXAMPLE_TABEL],
    "uren": [
        {"soort": "ongeoorloofd", "sector": "vo", "uren": 1284, "onderdrukt": False, "reden": None}
    ],
    "vorigJaar": None,
}

EXAMPLE_CSV = (
    "niveau,sector,value,suppression\r\n1,vo,412,\r\n3,vso,x,primary\r\ntotaal,totaal,655,\r\n"
)
