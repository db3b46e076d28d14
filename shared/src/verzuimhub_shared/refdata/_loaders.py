"""Pure parsers for the official reference files: text in, records out, every problem listed.

The four files and the published formats they mirror (column names are matched loosely, see
``_csv``; only the columns named here are read, any others are ignored):

``gemeenten.csv``: CBS "Gemeenten alfabetisch" (the CSV/XLSX published yearly with the
    gemeentelijke indeling), columns ``Gemeentecode;GemeentecodeGM;Gemeentenaam;Provinciecode;
    ProvinciecodePV;Provincienaam``. Needed: ``GemeentecodeGM`` (or the bare ``Gemeentecode``)
    and ``Gemeentenaam``. Save the XLSX as CSV to load it.

``swv_gemeenten.csv``: DUO open onderwijsdata "Samenwerkingsverbanden passend onderwijs", the
    list of gemeenten per SWV: one row per (SWV, gemeente), columns ``SAMENWERKINGSVERBAND``
    (``PO 22-02`` / ``PO-22-02``), ``NAAM SAMENWERKINGSVERBAND``, ``GEMEENTENUMMER`` (4 digits
    or ``GM`` code), optionally ``GEMEENTENAAM`` (ignored). The kind (po/vo) comes from the
    code. A gemeente is listed once per kind: DUO lists a split gemeente under every SWV that
    covers part of it; in the hub's copy it stays only under the SWV that covers most of it and
    the other parts go to ``swv_postcodes.csv``.

``swv_postcodes.csv`` (optional): the exceptions where an SWV border splits a gemeente, as PC4
    ranges: ``SAMENWERKINGSVERBAND;GEMEENTENUMMER;POSTCODE VAN;POSTCODE TOT EN MET`` (both
    inclusive; a blank upper bound means a single PC4). DUO publishes these only as notes on
    the region maps; this table is the hub's own, documented format.

``vestigingen.csv``: modelled on DUO "Adressen vestigingen" (po, vo, (v)so, mbo): ``BRIN
    NUMMER;VESTIGINGSNUMMER;VESTIGINGSNAAM;POSTCODE;GEMEENTENUMMER`` plus three columns DUO
    does not publish in one file, which the hub's copy adds: ``SECTOREN`` (``po``, ``sbo``,
    ``so``, ``vso``, ``vo``, ``mbo``; several separated by ``|``, ``,``, ``/`` or ``+``; DUO's
    ``bao``/``bo``/``sbao`` are accepted), ``SWV PO`` and ``SWV VO`` (blank: derived from the
    gemeente and postcode when a sector needs it) and ``VAKANTIEREGIO`` (``noord``, ``midden``,
    ``zuid``; the ministry assigns the region per gemeente, a few schools deviate, so the hub
    stores it per vestiging). DUO's newer 6-character ``VESTIGINGSCODE`` (``12AB00``) is
    accepted instead of BRIN + vestigingsnummer, and a ``VESTIGINGSNUMMER`` holding the full
    6-character code (as older DUO files do) is split.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from verzuimhub_shared.refdata._csv import RefDataError, Row, read_rows
from verzuimhub_shared.refdata._models import (
    BRIN_RE,
    HOLIDAY_REGIONS,
    VESTIGING_RE,
    Gemeente,
    PostcodeException,
    School,
    Sector,
    normalise_gemeente_code,
    normalise_pc4,
    normalise_swv_code,
)

GEMEENTE_COLUMNS = {
    "code": ["GemeentecodeGM", "Gemeentecode", "Gemeentenummer", "GemeenteCode GM"],
    "name": ["Gemeentenaam", "Naam"],
}
SWV_GEMEENTE_COLUMNS = {
    "swv": ["Samenwerkingsverband", "SWV", "SWV code", "Code samenwerkingsverband"],
    "swv_name": ["Naam samenwerkingsverband", "SWV naam", "Naam SWV"],
    "gemeente": ["Gemeentenummer", "GemeentecodeGM", "Gemeentecode"],
}
SWV_POSTCODE_COLUMNS = {
    "swv": SWV_GEMEENTE_COLUMNS["swv"],
    "gemeente": SWV_GEMEENTE_COLUMNS["gemeente"],
    "pc4_from": ["Postcode van", "PC4 van", "Van"],
    "pc4_to": ["Postcode tot en met", "Postcode tot", "PC4 tot en met", "PC4 tot", "Tot en met"],
}
SCHOOL_COLUMNS = {
    "brin": ["BRIN nummer", "BRIN", "Instellingscode"],
    "vestiging": ["Vestigingsnummer", "Vestiging"],
    "vestigingscode": ["Vestigingscode"],
    "name": ["Vestigingsnaam", "Naam"],
    "postcode": ["Postcode"],
    "gemeente": ["Gemeentenummer", "GemeentecodeGM", "Gemeentecode"],
    "sectors": ["Sectoren", "Sector"],
    "swv_po": ["SWV PO", "Samenwerkingsverband PO"],
    "swv_vo": ["SWV VO", "Samenwerkingsverband VO"],
    "region": ["Vakantieregio", "Regio"],
}

_SECTOR_ALIASES: dict[str, Sector] = {
    "po": "po",
    "bao": "po",
    "bo": "po",
    "sbo": "sbo",
    "sbao": "sbo",
    "so": "so",
    "vso": "vso",
    "vo": "vo",
    "mbo": "mbo",
}
_SECTOR_SPLIT = re.compile(r"[|,/+\s]+")


@dataclass(frozen=True, slots=True)
class SwvMembership:
    """One row of ``swv_gemeenten.csv``: gemeente ``gemeente`` lies in SWV ``swv``."""

    swv: str
    swv_name: str
    gemeente: str
    where: str


class _Problems:
    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, row: Row, message: str) -> None:
        self.items.append(f"{row.where()}: {message}")

    def raise_if_any(self) -> None:
        if self.items:
            raise RefDataError(self.items)


def parse_gemeenten(text: str, *, source: str = "gemeenten.csv") -> list[Gemeente]:
    """CBS gemeentelijke indeling → gemeenten, sorted by code."""
    problems = _Problems()
    result: dict[str, Gemeente] = {}
    for row in read_rows(text, GEMEENTE_COLUMNS, required=["code", "name"], source=source):
        try:
            code = normalise_gemeente_code(row.get("code"))
        except ValueError as exc:
            problems.add(row, str(exc))
            continue
        name = row.get("name")
        if not name:
            problems.add(row, f"{code}: gemeentenaam ontbreekt")
        elif code in result:
            problems.add(row, f"{code}: komt dubbel voor")
        else:
            result[code] = Gemeente(code, name)
    problems.raise_if_any()
    return [result[code] for code in sorted(result)]


def parse_swv_gemeenten(text: str, *, source: str = "swv_gemeenten.csv") -> list[SwvMembership]:
    """DUO gemeenten per samenwerkingsverband → one membership per row."""
    problems = _Problems()
    result: list[SwvMembership] = []
    rows = read_rows(text, SWV_GEMEENTE_COLUMNS, required=["swv", "gemeente"], source=source)
    for row in rows:
        try:
            swv = normalise_swv_code(row.get("swv"))
            gemeente = normalise_gemeente_code(row.get("gemeente"))
        except ValueError as exc:
            problems.add(row, str(exc))
            continue
        result.append(SwvMembership(swv, row.get("swv_name") or swv, gemeente, row.where()))
    problems.raise_if_any()
    return result


def parse_swv_postcodes(text: str, *, source: str = "swv_postcodes.csv") -> list[PostcodeException]:
    """PC4 ranges of split gemeenten → postcode exceptions."""
    problems = _Problems()
    result: list[PostcodeException] = []
    required = ["swv", "gemeente", "pc4_from"]
    for row in read_rows(text, SWV_POSTCODE_COLUMNS, required=required, source=source):
        try:
            swv = normalise_swv_code(row.get("swv"))
            gemeente = normalise_gemeente_code(row.get("gemeente"))
            pc4_from = normalise_pc4(row.get("pc4_from"))
            pc4_to = normalise_pc4(row.get("pc4_to") or pc4_from)
        except ValueError as exc:
            problems.add(row, str(exc))
            continue
        if pc4_to < pc4_from:
            problems.add(row, f"postcodebereik {pc4_from}-{pc4_to} loopt achteruit")
            continue
        result.append(PostcodeException(swv, gemeente, pc4_from, pc4_to))
    problems.raise_if_any()
    return result


def parse_sectors(value: str) -> frozenset[Sector]:
    """``'so|vso'`` → ``{'so', 'vso'}``; ValueError for an unknown or missing sector."""
    parts = [p for p in _SECTOR_SPLIT.split(value.strip().lower()) if p]
    if not parts:
        raise ValueError("sector ontbreekt")
    unknown = [p for p in parts if p not in _SECTOR_ALIASES]
    if unknown:
        raise ValueError(f"onbekende sector: {', '.join(unknown)}")
    return frozenset(_SECTOR_ALIASES[p] for p in parts)


def _brin_and_vestiging(row: Row) -> tuple[str, str]:
    brin = row.get("brin").upper()
    vestiging = row.get("vestiging").upper()
    code = row.get("vestigingscode").upper()
    if len(vestiging) == 6:
        code, vestiging = vestiging, ""
    if code and not (brin and vestiging):
        if len(code) != 6:
            raise ValueError(f"vestigingscode is geen 6 tekens: {code!r}")
        if brin and code[:4] != brin:
            raise ValueError(f"vestigingscode {code} hoort niet bij BRIN {brin}")
        brin, vestiging = code[:4], code[4:]
    if vestiging.isdigit() and len(vestiging) == 1:
        vestiging = f"0{vestiging}"  # Excel drops the leading zero
    if not BRIN_RE.fullmatch(brin):
        raise ValueError(f"geen BRIN (2 cijfers + 2 letters): {brin!r}")
    if not VESTIGING_RE.fullmatch(vestiging):
        raise ValueError(f"geen vestigingsnummer (2 cijfers): {vestiging!r}")
    return brin, vestiging


def _optional_swv(value: str) -> str | None:
    return normalise_swv_code(value) if value else None


def parse_schools(text: str, *, source: str = "vestigingen.csv") -> list[School]:
    """DUO-style vestigingen → schools, sorted by BRIN and vestigingsnummer.

    SWV codes left blank stay None here; ``RefData.build`` derives them from the location.
    """
    problems = _Problems()
    result: dict[tuple[str, str], School] = {}
    required = ["name", "gemeente", "sectors", "region"]
    for row in read_rows(text, SCHOOL_COLUMNS, required=required, source=source):
        try:
            brin, vestiging = _brin_and_vestiging(row)
            gemeente = normalise_gemeente_code(row.get("gemeente"))
            pc4 = normalise_pc4(row.get("postcode")) if row.get("postcode") else None
            sectors = parse_sectors(row.get("sectors"))
            swv_po = _optional_swv(row.get("swv_po"))
            swv_vo = _optional_swv(row.get("swv_vo"))
        except ValueError as exc:
            problems.add(row, str(exc))
            continue
        if not row.get("name"):
            problems.add(row, f"{brin}{vestiging}: vestigingsnaam ontbreekt")
            continue
        region = row.get("region").lower()
        if region not in HOLIDAY_REGIONS:
            problems.add(row, f"{brin}{vestiging}: vakantieregio moet noord, midden of zuid zijn")
            continue
        if (swv_po and not swv_po.startswith("PO")) or (swv_vo and not swv_vo.startswith("VO")):
            problems.add(row, f"{brin}{vestiging}: SWV PO/VO verwisseld")
            continue
        if (brin, vestiging) in result:
            problems.add(row, f"{brin}{vestiging}: komt dubbel voor")
            continue
        result[brin, vestiging] = School(
            brin=brin,
            vestiging=vestiging,
            name=row.get("name"),
            gemeente=gemeente,
            pc4=pc4,
            sectors=sectors,
            holiday_region=region,
            swv_po=swv_po,
            swv_vo=swv_vo,
        )
    problems.raise_if_any()
    return [result[key] for key in sorted(result)]
