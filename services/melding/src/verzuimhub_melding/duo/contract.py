"""The hub's own DUO contract: exactly the legal fields of a verzuimmelding, nothing more.

No public schema of DUO's current ROD interface exists, so the hub defines its own on the
legal field list of a verzuimmelding in the Besluit register onderwijsdeelnemers (Besluit
ROD), art. 13 and 14 (see ``docs/domain.md``, "The meldingen"), adapted in two ways the
domain doc prescribes:

- the pupil is identified by PGN and geboortedatum only. The register already holds the
  basisgegevens (naam, geslacht, adres) under the PGN, and the gemeente has the BRP: the hub
  never collects them, so they are absent here, not merely optional;
- the specification of the days and hours missed (bill 36663's preceding-absence overview)
  carries per day the date, the hours and authorised yes/no, and never the reason behind
  authorised absence nor any note.

Every model forbids unknown fields (an unknown field is an error, not silently dropped) and
uses lowerCamelCase property names. ``LEGAL_FIELDS`` lists every field path a melding may
carry; ``field_paths`` gives the paths of a serialised payload, so any test can assert that
nothing else leaves the hub: ``assert field_paths(body) <= LEGAL_FIELDS``.
"""

from __future__ import annotations

import re
from datetime import date
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    model_validator,
)
from pydantic.alias_generators import to_camel

__all__ = [
    "INTREKKING_FIELDS",
    "LEGAL_FIELDS",
    "Contactpersoon",
    "DuoReceipt",
    "DuoStatus",
    "GemeentelijkeActie",
    "Intrekking",
    "IntrekkingReden",
    "Leerling",
    "Leslocatie",
    "MeldingId",
    "OngeoorloofdeReden",
    "Prioriteit",
    "Verzuimdag",
    "Verzuimmelding",
    "Verzuimsoort",
    "field_paths",
    "is_valid_pgn",
    "payload",
]

_BESLUIT = "Besluit register onderwijsdeelnemers art. 13/14"

# -- value types -----------------------------------------------------------------------------

_ELFPROEF_WEIGHTS = (9, 8, 7, 6, 5, 4, 3, 2, -1)
_ONDERWIJSNUMMER_REMAINDER = 5
_NINE_DIGITS = re.compile(r"[0-9]{9}")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def is_valid_pgn(value: str) -> bool:
    """A BSN (elfproef, remainder 0) or an onderwijsnummer (leading 1, remainder 5).

    Wet register onderwijsdeelnemers art. 1: the PGN is the BSN, or the onderwijsnummer where
    no BSN exists. Same rule as ingest's validator, repeated here so the contract has no
    dependency on another service.
    """
    if not _NINE_DIGITS.fullmatch(value) or value == "000000000":
        return False
    remainder = sum(w * int(d) for w, d in zip(_ELFPROEF_WEIGHTS, value, strict=True)) % 11
    return remainder == 0 or (value.startswith("1") and remainder == _ONDERWIJSNUMMER_REMAINDER)


def _check_pgn(value: str) -> str:
    if not is_valid_pgn(value):
        # Never repeat the value: it may be a BSN.
        raise ValueError("geen geldig BSN of onderwijsnummer")
    return value


def _iso_date_only(value: Any) -> Any:
    """Dates as ISO ``YYYY-MM-DD`` strings (or ``date`` objects), never numbers or datetimes."""
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        return value
    if isinstance(value, date) and not hasattr(value, "hour"):
        return value
    raise ValueError("een datum als JJJJ-MM-DD")


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("mag niet leeg zijn")
    return value


IsoDate = Annotated[date, BeforeValidator(_iso_date_only)]
Pgn = Annotated[str, StringConstraints(strict=True), AfterValidator(_check_pgn)]
MeldingId = Annotated[
    str, StringConstraints(strict=True, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
]
Gemeentecode = Annotated[str, StringConstraints(strict=True, pattern=r"^GM[0-9]{4}$")]
Brin = Annotated[str, StringConstraints(strict=True, pattern=r"^[0-9]{2}[A-Z]{2}$")]
Vestigingsnummer = Annotated[str, StringConstraints(strict=True, pattern=r"^[0-9]{2}$")]
Telefoon = Annotated[str, StringConstraints(strict=True, pattern=r"^\+?[0-9][0-9 ()-]{5,19}$")]
Email = Annotated[
    str,
    StringConstraints(strict=True, max_length=254, pattern=r"^[^@\s]{1,64}@[^@\s]+\.[A-Za-z]{2,}$"),
]
Naam = Annotated[
    str, StringConstraints(strict=True, min_length=1, max_length=200), AfterValidator(_not_blank)
]
Functie = Annotated[
    str, StringConstraints(strict=True, min_length=1, max_length=100), AfterValidator(_not_blank)
]
Actietekst = Annotated[
    str, StringConstraints(strict=True, min_length=1, max_length=2000), AfterValidator(_not_blank)
]


class Verzuimsoort(StrEnum):
    """DUO verzuimsoorten (old IB-Groep verzuimloket codes, domain.md)."""

    V3 = "V3"  # 16 uur in 4 lesweken, jonger dan 18
    V4 = "V4"  # 16 uur in 4 lesweken, 18 of ouder
    LRV = "LRV"  # langdurig relatief verzuim
    RMC = "RMC"  # RMC: 18-23 zonder startkwalificatie
    L = "L"  # luxe verzuim
    O = "O"  # noqa: E741  overig verzuim


class OngeoorloofdeReden(StrEnum):
    """Presumed reason of the UNAUTHORISED absence: the unauthorised categories only.

    Authorised categories (ziekte, medisch_bezoek, godsdienst, ...) cannot be expressed here:
    their reasons never leave the school (domain.md, "Who may see what").
    """

    TE_LAAT = "te_laat"
    SPIJBELEN = "spijbelen"
    LUXE_VERZUIM = "luxe_verzuim"
    ONGEOORLOOFD_OVERIG = "ongeoorloofd_overig"


class Prioriteit(StrEnum):
    LAAG = "laag"
    NORMAAL = "normaal"
    HOOG = "hoog"


class DuoStatus(StrEnum):
    """DUO statuses of a melding (domain.md; old codes R, B, G, I, K)."""

    GEREGISTREERD = "Geregistreerd"
    IN_BEHANDELING = "In behandeling"
    AFGESLOTEN = "Afgesloten"
    INGETROKKEN = "Ingetrokken"
    TER_KENNISGEVING_AANGENOMEN = "Ter kennisgeving aangenomen"


class IntrekkingReden(StrEnum):
    """Why the school withdraws a melding: a code, never free text (it could carry a medical
    or other authorised reason, which never leaves the school)."""

    ALSNOG_GEOORLOOFD = "alsnog_geoorloofd"
    ONTERECHT_GEMELD = "onterecht_gemeld"
    DUBBELE_MELDING = "dubbele_melding"
    ONJUISTE_GEGEVENS = "onjuiste_gegevens"


# -- models ----------------------------------------------------------------------------------


class _Contract(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
    )


class Leerling(_Contract):
    """The pupil: PGN and birth date only; names, geslacht and address stay out on purpose."""

    pgn: Pgn = Field(
        description=f"{_BESLUIT}: identificerende gegevens, het persoonsgebonden nummer "
        "(BSN of onderwijsnummer, Wet ROD art. 1)."
    )
    geboortedatum: IsoDate = Field(
        description=f"{_BESLUIT}: identificerende gegevens, geboortedatum."
    )


class Verzuimdag(_Contract):
    """One day of the specification of the days and hours missed."""

    datum: IsoDate = Field(description=f"{_BESLUIT}: specificatie van de verzuimde dagen.")
    uren: Annotated[float, Field(strict=True, gt=0, le=24)] = Field(
        description=f"{_BESLUIT}: specificatie van de verzuimde uren op deze dag."
    )
    geoorloofd: StrictBool = Field(
        description="Wetsvoorstel 36663: voorafgaand verzuimoverzicht inclusief geoorloofd "
        "verzuim, zonder de reden van het geoorloofde verzuim."
    )


class GemeentelijkeActie(_Contract):
    gewenst: StrictBool = Field(
        description=f"{_BESLUIT}: of de school actie van de gemeente wenst."
    )
    prioriteit: Prioriteit | None = Field(
        None, description=f"{_BESLUIT}: met welke prioriteit (alleen als actie gewenst is)."
    )

    @model_validator(mode="after")
    def _prioriteit_iff_gewenst(self) -> GemeentelijkeActie:
        if self.gewenst and self.prioriteit is None:
            raise ValueError("prioriteit is verplicht als gemeentelijke actie gewenst is")
        if not self.gewenst and self.prioriteit is not None:
            raise ValueError("prioriteit hoort alleen bij gewenste gemeentelijke actie")
        return self


class Leslocatie(_Contract):
    brin: Brin = Field(description=f"{_BESLUIT}: leslocatie, BRIN van de school.")
    vestigingsnummer: Vestigingsnummer = Field(
        description=f"{_BESLUIT}: leslocatie, vestigingsnummer."
    )


class Contactpersoon(_Contract):
    naam: Naam = Field(description=f"{_BESLUIT}: contactpersoon van de school, naam.")
    functie: Functie = Field(description=f"{_BESLUIT}: contactpersoon van de school, functie.")
    telefoon: Telefoon = Field(
        description=f"{_BESLUIT}: contactpersoon van de school, telefoonnummer."
    )
    email: Email = Field(description=f"{_BESLUIT}: contactpersoon van de school, e-mailadres.")


class Verzuimmelding(_Contract):
    """A verzuimmelding as the hub sends it to DUO: the legal fields and nothing else."""

    melding_id: MeldingId = Field(
        description="Het eigen kenmerk van de hub voor deze melding; ook de Idempotency-Key, "
        "zodat een herhaalde verzending nooit een tweede melding bij DUO maakt. "
        "Technisch kenmerk, geen persoonsgegeven."
    )
    woongemeente: Gemeentecode = Field(
        description="CBS-code van de woongemeente; DUO routeert de melding daarheen "
        "(Leerplichtwet art. 21a, Wet ROD art. 12 lid 3 en art. 21 lid 3)."
    )
    leerling: Leerling = Field(description=f"{_BESLUIT}: identificerende gegevens, beperkt.")
    startkwalificatie: StrictBool = Field(
        description=f"{_BESLUIT}: of de deelnemer een startkwalificatie heeft."
    )
    begindatum: IsoDate = Field(
        description=f"{_BESLUIT}: begindatum van het verzuim (eerste dag ongeoorloofd verzuim "
        "in de periode)."
    )
    einddatum: IsoDate = Field(
        description=f"{_BESLUIT}: einddatum van het verzuim (bij 16 uur: de dag waarop de "
        "16 uur bereikt zijn)."
    )
    verzuimsoort: Verzuimsoort = Field(description=f"{_BESLUIT}: vermoedelijke verzuimsoort.")
    vermoedelijke_reden: OngeoorloofdeReden | None = Field(
        None,
        description=f"{_BESLUIT}: vermoedelijke reden van het ongeoorloofde verzuim "
        "(categorie; nooit een reden van geoorloofd verzuim).",
    )
    alle_lessen_verzuimd: StrictBool = Field(
        description=f"{_BESLUIT}: of alle lessen verzuimd zijn."
    )
    ondernomen_actie: Actietekst = Field(
        description=f"{_BESLUIT}: de actie die de school al heeft ondernomen (verplicht: een "
        "melding vertrekt nooit zonder afweging door de school)."
    )
    gemeentelijke_actie: GemeentelijkeActie = Field(
        description=f"{_BESLUIT}: of gemeentelijke actie gewenst is en met welke prioriteit."
    )
    leslocatie: Leslocatie = Field(description=f"{_BESLUIT}: de leslocatie.")
    contactpersoon: Contactpersoon = Field(description=f"{_BESLUIT}: contactpersoon van de school.")
    telefoon_leerling_of_ouder: Telefoon | None = Field(
        None, description=f"{_BESLUIT}: telefoonnummer van de leerling of ouder (facultatief)."
    )
    verzuimdagen: Annotated[list[Verzuimdag], Field(min_length=1, max_length=400)] = Field(
        description=f"{_BESLUIT}: specificatie van de verzuimde dagen en uren "
        "(met wetsvoorstel 36663: inclusief geoorloofd verzuim, zonder reden)."
    )

    @model_validator(mode="after")
    def _consistent_dates(self) -> Verzuimmelding:
        if self.begindatum > self.einddatum:
            raise ValueError("begindatum ligt na einddatum")
        dates = [dag.datum for dag in self.verzuimdagen]
        if len(set(dates)) != len(dates):
            raise ValueError("elke datum komt hoogstens één keer voor in verzuimdagen")
        if any(d > self.einddatum for d in dates):
            raise ValueError("verzuimdagen liggen niet na de einddatum")
        return self


class Intrekking(_Contract):
    """The school withdraws a melding (DUO status Ingetrokken); the melding id is in the path."""

    reden: IntrekkingReden = Field(description="Waarom de school de melding intrekt (code).")


class DuoReceipt(_Contract):
    """DUO's answer to a melding or an intrekking."""

    meldingsnummer: Annotated[str, StringConstraints(min_length=1, max_length=64)] = Field(
        description="DUO's eigen nummer van de melding."
    )
    melding_id: MeldingId = Field(description="Het kenmerk van de hub (de Idempotency-Key).")
    status: DuoStatus = Field(description=f"{_BESLUIT}: status van de melding bij DUO.")
    tijdstip: AwareDatetime = Field(description="Wanneer DUO de status vastlegde.")


# -- what may leave --------------------------------------------------------------------------

#: Every field path a serialised ``Verzuimmelding`` may contain: containers and leaves, list
#: items written ``name[].field``. A legal review reads this list, so it is spelled out rather
#: than derived (a test checks that it matches the model exactly).
LEGAL_FIELDS: frozenset[str] = frozenset(
    {
        "meldingId",
        "woongemeente",
        "leerling",
        "leerling.pgn",
        "leerling.geboortedatum",
        "startkwalificatie",
        "begindatum",
        "einddatum",
        "verzuimsoort",
        "vermoedelijkeReden",
        "alleLessenVerzuimd",
        "ondernomenActie",
        "gemeentelijkeActie",
        "gemeentelijkeActie.gewenst",
        "gemeentelijkeActie.prioriteit",
        "leslocatie",
        "leslocatie.brin",
        "leslocatie.vestigingsnummer",
        "contactpersoon",
        "contactpersoon.naam",
        "contactpersoon.functie",
        "contactpersoon.telefoon",
        "contactpersoon.email",
        "telefoonLeerlingOfOuder",
        "verzuimdagen",
        "verzuimdagen[]",
        "verzuimdagen[].datum",
        "verzuimdagen[].uren",
        "verzuimdagen[].geoorloofd",
    }
)

#: Every field path of a serialised ``Intrekking``.
INTREKKING_FIELDS: frozenset[str] = frozenset({"reden"})


def payload(model: BaseModel) -> dict[str, Any]:
    """The JSON body for DUO: camelCase keys, absent optionals left out."""
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


def field_paths(value: Any, prefix: str = "") -> set[str]:
    """Every key path of a JSON value: ``{"a": {"b": 1}, "c": [{"d": 2}]}`` gives
    ``{"a", "a.b", "c", "c[]", "c[].d"}``."""
    paths: set[str] = set()
    if isinstance(value, dict):
        for key, child in value.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            paths.add(path)
            paths |= field_paths(child, path)
    elif isinstance(value, list):
        item = f"{prefix}[]"
        for child in value:
            paths.add(item)
            paths |= field_paths(child, item)
    return paths
