"""Records of the reference data and the normalisers for their codes.

Codes are normalised once, when a file is read, so every lookup compares canonical forms
(the ``*_RE`` patterns describe those forms; they are unanchored, use ``fullmatch``):

- gemeente: ``GM`` + 4 digits (CBS). ``363``, ``0363`` and ``gm0363`` all become ``GM0363``;
  DUO files carry the bare 4-digit ``GEMEENTENUMMER``, CBS files both forms.
- SWV: ``PO-22-02`` / ``VO-25-07``. DUO writes the same code in several ways over the years
  (``PO 22-02``, ``PO22-02``, ``PO2202``); all become the hyphenated form.
- BRIN: 2 digits + 2 letters, upper case (``12AB``); vestigingsnummer: 2 digits (``00``).
  DUO's newer files give a 6-character ``VESTIGINGSCODE`` (``12AB00``), which is split.
- postcode: only the 4 digits (PC4) are ever kept. The hub collects no addresses; PC4 is
  enough to resolve the few SWV regions that split a gemeente.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, get_args

SwvKind = Literal["po", "vo"]
Sector = Literal["po", "sbo", "so", "vso", "vo", "mbo"]
HolidayRegion = Literal["noord", "midden", "zuid"]

SWV_KINDS: tuple[SwvKind, ...] = get_args(SwvKind)
SECTORS: tuple[Sector, ...] = get_args(Sector)
HOLIDAY_REGIONS: tuple[HolidayRegion, ...] = get_args(HolidayRegion)

GEMEENTE_CODE_RE = re.compile(r"GM[0-9]{4}")
SWV_CODE_RE = re.compile(r"(PO|VO)-[0-9]{2}-[0-9]{2}")
BRIN_RE = re.compile(r"[0-9]{2}[A-Z]{2}")
VESTIGING_RE = re.compile(r"[0-9]{2}")
PC4_RE = re.compile(r"[1-9][0-9]{3}")

_LOOSE_GEMEENTE_RE = re.compile(r"(?:GM)?([0-9]{1,4})")
_LOOSE_SWV_RE = re.compile(r"(PO|VO)[\s\-_]*([0-9]{2})[\s\-_]*([0-9]{2})")
_LOOSE_POSTCODE_RE = re.compile(r"([1-9][0-9]{3})\s*(?:[A-Z]{2})?")


def normalise_gemeente_code(value: str) -> str:
    """``'363'``, ``'0363'``, ``'gm0363'`` → ``'GM0363'``; ValueError for anything else."""
    match = _LOOSE_GEMEENTE_RE.fullmatch(value.strip().upper())
    if match is None or int(match.group(1)) == 0:
        raise ValueError(f"geen gemeentecode: {value!r}")
    return f"GM{int(match.group(1)):04d}"


def normalise_swv_code(value: str) -> str:
    """``'PO 22-02'``, ``'po2202'`` → ``'PO-22-02'``; ValueError for anything else."""
    match = _LOOSE_SWV_RE.fullmatch(value.strip().upper())
    if match is None:
        raise ValueError(f"geen samenwerkingsverbandcode: {value!r}")
    return f"{match.group(1)}-{match.group(2)}-{match.group(3)}"


def normalise_pc4(value: str) -> str:
    """``'1234'``, ``'1234 AB'``, ``'1234ab'`` → ``'1234'``; ValueError for anything else."""
    match = _LOOSE_POSTCODE_RE.fullmatch(value.strip().upper())
    if match is None:
        raise ValueError(f"geen postcode: {value!r}")
    return match.group(1)


def swv_kind_of_code(code: str) -> SwvKind:
    """The kind of an (already normalised) SWV code: ``'PO-22-02'`` → ``'po'``."""
    return "po" if code.startswith("PO") else "vo"


def swv_kind_for_sector(sector: Sector) -> SwvKind | None:
    """Which samenwerkingsverband covers a sector, or None when none does.

    Passend onderwijs (WPO art. 18a, WVO art. 17a, WEC art. 28a) has separate SWVs for po and
    vo. Speciaal basisonderwijs (sbo) belongs to the po SWV. Schools for (voortgezet) speciaal
    onderwijs take part in both: their so department in the po SWV, their vso department in
    the vo SWV, so the sector decides, not the school. mbo has no SWV.

    Simplification: cluster 1 and 2 (visual, auditory/communicative) institutions are
    organised nationally, not in SWVs; the hub does not distinguish clusters and maps every
    so/vso record the same way.
    """
    if sector in ("po", "sbo", "so"):
        return "po"
    if sector in ("vo", "vso"):
        return "vo"
    return None


@dataclass(frozen=True, slots=True)
class Gemeente:
    code: str
    name: str


@dataclass(frozen=True, slots=True)
class Swv:
    """A samenwerkingsverband passend onderwijs.

    ``gemeenten`` are the gemeenten it covers (wholly, or for the larger part when a gemeente is
    split); ``partial_gemeenten`` are gemeenten of which it covers only postcode ranges.
    """

    code: str
    name: str
    kind: SwvKind
    gemeenten: frozenset[str]
    partial_gemeenten: frozenset[str] = frozenset()

    def covers(self, gemeente: str) -> bool:
        return gemeente in self.gemeenten or gemeente in self.partial_gemeenten


@dataclass(frozen=True, slots=True)
class PostcodeException:
    """PC4 range ``pc4_from``..``pc4_to`` (inclusive) of ``gemeente`` belongs to ``swv``."""

    swv: str
    gemeente: str
    pc4_from: str
    pc4_to: str

    @property
    def kind(self) -> SwvKind:
        return swv_kind_of_code(self.swv)

    def contains(self, pc4: str) -> bool:
        return self.pc4_from <= pc4 <= self.pc4_to


@dataclass(frozen=True, slots=True)
class School:
    """One vestiging (location) of a school: BRIN + vestigingsnummer."""

    brin: str
    vestiging: str
    name: str
    gemeente: str
    pc4: str | None
    sectors: frozenset[Sector]
    holiday_region: HolidayRegion
    swv_po: str | None
    swv_vo: str | None

    @property
    def code(self) -> str:
        """DUO's 6-character vestigingscode, e.g. ``'12AB00'``."""
        return f"{self.brin}{self.vestiging}"

    def swv_for_sector(self, sector: Sector) -> str | None:
        """The SWV this vestiging belongs to for pupils of ``sector`` (see swv_kind_for_sector)."""
        kind = swv_kind_for_sector(sector)
        if kind == "po":
            return self.swv_po
        if kind == "vo":
            return self.swv_vo
        return None
