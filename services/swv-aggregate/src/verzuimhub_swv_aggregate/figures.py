"""From aggregates to published tables: every figure of one scope and period goes through
one ``publish_tables`` call (linked tables, one suppression pattern). Pure, no I/O.

A scope is an SWV region (po or vo) or ``NL``. The sector dimension lists the sectors of
its kind (po: po, sbo, so; vo: vo, vso; ``NL``: every sector) that have schools in the scope
(see :func:`sectors_of`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from datetime import date

from verzuimhub_swv_aggregate.disclosure import (
    CountTable,
    DisclosureConfig,
    PublishedCell,
    PublishedTable,
    publish_tables,
)
from verzuimhub_swv_aggregate.periods import Period
from verzuimhub_swv_aggregate.repository import FlowFigures
from verzuimhub_swv_aggregate.service import (
    LEERLINGEN_AFSTAND,
    LEERLINGEN_GEOORLOOFD,
    LEERLINGEN_NIVEAU,
    LEERLINGEN_ONGEOORLOOFD,
    MELDINGEN,
    MINUTEN,
    NATIONAL,
)

ALL_SECTORS = ("po", "sbo", "so", "vo", "vso", "mbo")
SECTORS_BY_KIND = {"PO": ("po", "sbo", "so"), "VO": ("vo", "vso")}
TIERS = ("1", "2", "3")
#: DUO verzuimsoorten; anything else is counted as ``O`` (overig).
MELDING_SOORTEN = ("V3", "V4", "LRV", "RMC", "L", "O")
#: Published age bands (coarser than the feed's, fewer small cells).
BANDS = ("0-5", "6-11", "12-15", "16+")
_BAND_OF = {
    "0-3": "0-5",
    "4-5": "0-5",
    "6-11": "6-11",
    "12-15": "12-15",
    "16-17": "16+",
    "18-22": "16+",
    "23+": "16+",
}
SOORT_5A = "5a"
SOORT_ABSOLUUT = "absoluut_verzuim"


@dataclass(frozen=True)
class TableSpec:
    name: str  # the kebab-case path segment
    population: str
    description: str


TABLES: tuple[TableSpec, ...] = (
    TableSpec(
        "verzuim-geoorloofd",
        "leerlingen_geoorloofd_verzuim",
        "Leerlingen met geoorloofd verzuim in de periode, per sector",
    ),
    TableSpec(
        "verzuim-ongeoorloofd",
        "leerlingen_ongeoorloofd_verzuim",
        "Leerlingen met enig ongeoorloofd verzuim in de periode, per sector",
    ),
    TableSpec(
        "niveaus",
        "leerlingen_per_niveau",
        "Leerlingen met een registratie in de periode, per aanwezigheidsniveau (1-3) en sector",
    ),
    TableSpec(
        "afstandsonderwijs",
        "leerlingen_afstandsonderwijs",
        "Leerlingen met digitaal afstandsonderwijs in de periode, per sector",
    ),
    TableSpec(
        "meldingen",
        "meldingen",
        "Verzuimmeldingen met einddatum in de periode, per soort (LRV: langdurig relatief "
        "verzuim) en sector",
    ),
    TableSpec(
        "vrijstellingen-actief",
        "vrijstellingen_5a_actief",
        "Vrijstellingen 5 onder a van kracht op de peildatum, per leeftijdsband",
    ),
    TableSpec(
        "vrijstellingen-gestart",
        "vrijstellingen_5a_gestart",
        "Vrijstellingen 5 onder a met begindatum in de periode, per leeftijdsband",
    ),
    TableSpec(
        "vrijstellingen-beeindigd",
        "vrijstellingen_5a_beeindigd",
        "Vrijstellingen 5 onder a met einddatum in de periode, per leeftijdsband",
    ),
    TableSpec(
        "absoluut-verzuim-actief",
        "absoluut_verzuim_actief",
        "Leerplichtigen zonder inschrijving (absoluut verzuim) op de peildatum, per leeftijdsband",
    ),
    TableSpec(
        "absoluut-verzuim-gestart",
        "absoluut_verzuim_gestart",
        "Absoluut verzuim begonnen in de periode, per leeftijdsband",
    ),
    TableSpec(
        "absoluut-verzuim-beeindigd",
        "absoluut_verzuim_beeindigd",
        "Absoluut verzuim beëindigd in de periode, per leeftijdsband",
    ),
)
TABLE_NAMES = (*tuple(t.name for t in TABLES), "uren")
UREN_DESCRIPTION = (
    "Verzuimde uren (geoorloofd, ongeoorloofd) per sector; alleen getoond waar het aantal "
    "leerlingen achter het getal gepubliceerd is"
)


def sectors_of(scope: str, present: frozenset[str] | None = None) -> tuple[str, ...]:
    """The sector dimension of a scope's tables. ``present``: the sectors the reference data
    has schools for in that scope. A sector without schools is structurally empty, not a
    small count: listing it would only spread suppression over a region's every table."""
    kind = ALL_SECTORS if scope == NATIONAL else SECTORS_BY_KIND[scope[:2].upper()]
    if present is None:
        return kind
    return tuple(s for s in kind if s in present) or kind


@dataclass(frozen=True)
class HoursCell:
    soort: str
    sector: str | None  # None: all sectors
    hours: int | None
    reason: str | None


@dataclass(frozen=True)
class Report:
    scope: str
    period: Period
    peildatum: date
    tables: tuple[tuple[TableSpec, PublishedTable], ...]
    hours: tuple[HoursCell, ...]
    threshold: int
    rounding_base: int | None

    def table(self, name: str) -> PublishedTable:
        for spec, table in self.tables:
            if spec.name == name:
                return table
        raise KeyError(name)


#: Published reports by their complete input. Disclosure control (the interval audit of
#: every suppression pattern) costs far more than reading the aggregates, and the outcome
#: is a pure function of the aggregates and the configuration: unchanged figures are
#: published once and served from here until the aggregates of that scope and period move.
_REPORTS: OrderedDict[Hashable, Report] = OrderedDict()
REPORT_CACHE_SIZE = 256


def build_report(
    scope: str,
    period: Period,
    peildatum: date,
    rollups: Mapping[tuple[str, str, str], int],
    flows: Mapping[tuple[str, str], FlowFigures],
    config: DisclosureConfig,
    sectors: tuple[str, ...] | None = None,
    noise: Callable[[int], int] | None = None,
) -> Report:
    """Every table of one scope and period, published together (memoised on its inputs, so
    with ``noise`` the same state always gets the same noisy answer)."""
    sectors = sectors or sectors_of(scope)
    key = (
        scope,
        sectors,
        noise,
        period,
        peildatum,
        frozenset(rollups.items()),
        frozenset(flows.items()),
        config,
    )
    report = _REPORTS.get(key)
    if report is not None:
        _REPORTS.move_to_end(key)
        return report
    if noise is not None:
        rollups = {key: noise(value) for key, value in rollups.items()}
        flows = {
            key: FlowFigures(noise(f.actief), noise(f.gestart), noise(f.beeindigd))
            for key, f in flows.items()
        }
    report = _build_report(scope, period, peildatum, rollups, flows, config, sectors)
    _REPORTS[key] = report
    if len(_REPORTS) > REPORT_CACHE_SIZE:
        _REPORTS.popitem(last=False)
    return report


def _build_report(
    scope: str,
    period: Period,
    peildatum: date,
    rollups: Mapping[tuple[str, str, str], int],
    flows: Mapping[tuple[str, str], FlowFigures],
    config: DisclosureConfig,
    sectors: tuple[str, ...],
) -> Report:

    def by_sector(metric: str, category: str = "") -> dict[str, int]:
        return {s: rollups.get((metric, category, s), 0) for s in sectors}

    niveau = {(t, s): rollups.get((LEERLINGEN_NIVEAU, t, s), 0) for t in TIERS for s in sectors}
    meldingen = {(m, s): 0 for m in MELDING_SOORTEN for s in sectors}
    for (metric, category, sector), value in rollups.items():
        if metric == MELDINGEN and sector in sectors:
            soort = category if category in MELDING_SOORTEN else "O"
            meldingen[(soort, sector)] += value

    def banded(soort: str, figure: str) -> dict[str, int]:
        counts = dict.fromkeys(BANDS, 0)
        for (kind, band), figures in flows.items():
            if kind == soort:
                counts[_BAND_OF.get(band, "16+")] += getattr(figures, figure)
        return counts

    counts: dict[str, CountTable] = {
        "verzuim-geoorloofd": CountTable.one_way(
            "leerlingen_geoorloofd_verzuim", "sector", by_sector(LEERLINGEN_GEOORLOOFD)
        ),
        "verzuim-ongeoorloofd": CountTable.one_way(
            "leerlingen_ongeoorloofd_verzuim", "sector", by_sector(LEERLINGEN_ONGEOORLOOFD)
        ),
        "niveaus": CountTable.two_way(
            "leerlingen_per_niveau", "niveau", "sector", TIERS, sectors, niveau
        ),
        "afstandsonderwijs": CountTable.one_way(
            "leerlingen_afstandsonderwijs", "sector", by_sector(LEERLINGEN_AFSTAND)
        ),
        "meldingen": CountTable.two_way(
            "meldingen", "soort", "sector", MELDING_SOORTEN, sectors, meldingen
        ),
    }
    for prefix, soort in (("vrijstellingen", SOORT_5A), ("absoluut-verzuim", SOORT_ABSOLUUT)):
        population = "vrijstellingen_5a" if soort == SOORT_5A else "absoluut_verzuim"
        for figure in ("actief", "gestart", "beeindigd"):
            counts[f"{prefix}-{figure}"] = CountTable.one_way(
                f"{population}_{figure}", "leeftijdsband", banded(soort, figure)
            )
    specs = list(TABLES)
    published = publish_tables([counts[spec.name] for spec in specs], config)
    report_tables = tuple(zip(specs, published, strict=True))
    hours = _hours(rollups, sectors, dict(report_tables_by_name(report_tables)))
    return Report(
        scope=scope,
        period=period,
        peildatum=peildatum,
        tables=report_tables,
        hours=hours,
        threshold=config.threshold,
        rounding_base=config.rounding_base,
    )


def report_tables_by_name(
    tables: tuple[tuple[TableSpec, PublishedTable], ...],
) -> list[tuple[str, PublishedTable]]:
    return [(spec.name, table) for spec, table in tables]


def _hours(
    rollups: Mapping[tuple[str, str, str], int],
    sectors: tuple[str, ...],
    tables: Mapping[str, PublishedTable],
) -> tuple[HoursCell, ...]:
    """Hours follow the suppression of the pupils behind them: an hour total is shown only
    where the count of pupils with that kind of absence in that sector is published."""
    groups = {"geoorloofd": ("geoorloofd",), "ongeoorloofd": ("ongeoorloofd", "luxe")}
    cells: list[HoursCell] = []
    for soort, members in groups.items():
        pupils = tables[f"verzuim-{soort}"]
        for sector in (*sectors, None):
            chosen = sectors if sector is None else (sector,)
            minutes = sum(rollups.get((MINUTEN, g, s), 0) for g in members for s in chosen)
            guard: PublishedCell = pupils.total if sector is None else pupils.cell(sector=sector)
            if guard.suppressed:
                reason = guard.reason.value if guard.reason else "primary"
                cells.append(HoursCell(soort, sector, None, reason))
            else:
                cells.append(HoursCell(soort, sector, (minutes + 30) // 60, None))
    return tuple(cells)
