"""Ground truth of a demo year, computed from the generated data alone.

The hub's pipeline (ingest → feed → melding's incremental evaluation → school confirmation →
DUO; the feeds → swv-aggregate's rollups) is not used here. Meldingen come from the pure rules
engine run once per pupil over the pupil's whole generated ledger, with the pupil's own school
calendar; SWV figures are counted straight from the generated registrations, exemptions and
expected meldingen. ``compare`` lists every difference between that truth and what the hub
answered over HTTP.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from verzuimhub.demo_data import DemoYear, Pupil, Registratie
from verzuimhub_ingest.domain.catalogue import Catalogue, default_catalogue
from verzuimhub_melding.rules import LedgerDay, MeldingKind, RulesConfig, evaluate
from verzuimhub_melding.rules import Pupil as RulesPupil
from verzuimhub_melding.rules import Sector as RulesSector
from verzuimhub_shared.periods import age_band_on, school_year_bounds, school_year_of

#: Statuses under which the school has sent a melding (swv-aggregate counts these).
SENT_STATUSES = frozenset(
    {"ingediend", "geregistreerd", "in_behandeling", "afgesloten", "ter_kennisgeving_aangenomen"}
)
#: The feed's age bands → the published bands (swv-aggregate's figures).
PUBLISHED_BAND = {
    "0-3": "0-5",
    "4-5": "0-5",
    "6-11": "6-11",
    "12-15": "12-15",
    "16-17": "16+",
    "18-22": "16+",
    "23+": "16+",
}


@dataclass(frozen=True, order=True)
class ExpectedMelding:
    pgn: str
    brin: str
    kind: str
    begindatum: date
    einddatum: date
    woongemeente: str
    sector: str
    vestiging: str


def ledger_of(registraties: Iterable[Registratie], catalogue: Catalogue) -> list[LedgerDay]:
    """The rules' input for one pupil, straight from the registrations and the catalogue."""
    days = []
    for reg in registraties:
        category = catalogue.get(reg.categorie)
        assert category is not None, reg.categorie
        units = round(reg.aantal_eenheden) if reg.eenheid == "lesuur" else 0
        if category.participation:
            days.append(LedgerDay(reg.datum, distance_minutes=reg.minuten))
        elif category.authorised:
            days.append(
                LedgerDay(reg.datum, authorised_minutes=reg.minuten, authorised_units=units)
            )
        else:
            days.append(
                LedgerDay(
                    reg.datum,
                    unauthorised_minutes=reg.minuten,
                    unauthorised_units=units,
                    luxe_verzuim=category.duo_verzuimsoort == "L",
                    all_lessons_missed=reg.alle_lessen_gemist,
                )
            )
    return days


def expected_meldingen(
    year: DemoYear, config: RulesConfig | None = None, catalogue: Catalogue | None = None
) -> list[ExpectedMelding]:
    """Every melding the generated absence makes due (the rules engine, full history)."""
    catalogue = catalogue or default_catalogue()
    out: list[ExpectedMelding] = []
    for number, regs in year.by_pupil.items():
        pupil = year.pupils[number]
        if all(catalogue.get(r.categorie).authorised for r in regs):  # type: ignore[union-attr]
            continue  # only unauthorised absence makes a melding due
        rules_pupil = RulesPupil(
            geboortedatum=pupil.geboortedatum,
            sector=RulesSector(pupil.sector),
            woongemeente=pupil.woongemeente,
            startkwalificatie=bool(pupil.startkwalificatie),
        )
        result = evaluate(
            rules_pupil, ledger_of(regs, catalogue), [], year.calendar_of(pupil), config
        )
        for due in result.due:
            out.append(_expected(pupil, due.kind, due.begindatum, due.einddatum))
    return sorted(out)


def _expected(pupil: Pupil, kind: MeldingKind, begin: date, end: date) -> ExpectedMelding:
    return ExpectedMelding(
        pupil.pgn,
        pupil.brin,
        kind.value,
        begin,
        end,
        pupil.woongemeente,
        pupil.sector,
        pupil.vestiging,
    )


# --------------------------------------------------------------------------- SWV figures


def swv_of(year: DemoYear, brin: str, vestiging: str, sector: str, woongemeente: str) -> str | None:
    """The SWV region a pupil's records count in: the school's for its sector, else the
    woongemeente's (the reference data's rule)."""
    school = year.refdata.school(brin, vestiging)
    if school is not None:
        found = school.swv_for_sector(sector)  # type: ignore[arg-type]
        if found:
            return found
    swv = year.refdata.swv_for_sector(woongemeente, sector)  # type: ignore[arg-type]
    return swv.code if swv else None


Cell = tuple[tuple[str, str], ...]  # sorted (dimension, category) pairs; () is the total


def cell_key(categorieen: Mapping[str, str]) -> Cell:
    return tuple(sorted(categorieen.items()))


def expected_swv_figures(
    year: DemoYear,
    meldingen: Iterable[ExpectedMelding],
    schooljaar: str,
    peildatum: date,
    catalogue: Catalogue | None = None,
) -> dict[str, dict[str, dict[Cell, int]]]:
    """scope (SWV code or ``NL``) → table → cell → true count, for one school year, for the
    tables the demo checks: pupils with authorised / unauthorised absence and with distance
    education per sector, meldingen per soort and sector (all confirmed), active
    5-onder-a vrijstellingen per age band, and the hours per kind and sector (``uren``)."""
    catalogue = catalogue or default_catalogue()
    first, last = school_year_bounds(schooljaar)
    pupils_by: dict[tuple[str, str, str], set[int]] = defaultdict(set)  # (scope, table, sector)
    minutes_by: dict[tuple[str, str, str], int] = defaultdict(int)  # (scope, soort, sector)
    for reg in year.registraties:
        if not first <= reg.datum <= last:
            continue
        pupil = year.pupils[reg.pupil]
        category = catalogue.get(reg.categorie)
        assert category is not None
        table = {
            "geoorloofd": "verzuim-geoorloofd",
            "ongeoorloofd": "verzuim-ongeoorloofd",
            "luxe": "verzuim-ongeoorloofd",
            "deelname": "afstandsonderwijs",
        }[category.group]
        swv = swv_of(year, pupil.brin, pupil.vestiging, pupil.sector, pupil.woongemeente)
        for scope in filter(None, (swv, "NL")):
            pupils_by[(scope, table, pupil.sector)].add(reg.pupil)
            if table != "afstandsonderwijs":
                minutes_by[(scope, table.removeprefix("verzuim-"), pupil.sector)] += reg.minuten
    figures: dict[str, dict[str, dict[Cell, int]]] = defaultdict(lambda: defaultdict(dict))
    for (scope, table, sector), members in pupils_by.items():
        figures[scope][table][cell_key({"sector": sector})] = len(members)
    for tables in figures.values():
        for cells in list(tables.values()):
            cells[()] = sum(cells.values())
    for (scope, soort, sector), minutes in minutes_by.items():
        figures[scope]["uren"][cell_key({"soort": soort, "sector": sector})] = minutes

    melding_counts: dict[str, dict[Cell, int]] = defaultdict(lambda: defaultdict(int))
    for m in meldingen:
        if school_year_of(m.einddatum) != schooljaar:
            continue
        swv = swv_of(year, m.brin, m.vestiging, m.sector, m.woongemeente)
        for scope in filter(None, (swv, "NL")):
            counts = melding_counts[scope]
            for cats in (
                {"soort": m.kind, "sector": m.sector},
                {"soort": m.kind},
                {"sector": m.sector},
                {},
            ):
                counts[cell_key(cats)] += 1
    for scope, counts in melding_counts.items():
        figures[scope]["meldingen"].update(counts)

    for v in year.vrijstellingen:
        if v.begindatum > peildatum or (v.einddatum is not None and v.einddatum < peildatum):
            continue
        band = PUBLISHED_BAND[age_band_on(v.geboortedatum, v.begindatum)]
        scopes = ["NL"]
        for kind in ("po", "vo"):
            region = year.refdata.swv_for_gemeente(v.gemeente, kind)
            if region is not None:
                scopes.append(region.code)
        for scope in scopes:
            cells = figures[scope]["vrijstellingen-actief"]
            for cats in ({"leeftijdsband": band}, {}):
                cells[cell_key(cats)] = cells.get(cell_key(cats), 0) + 1
    return {scope: dict(tables) for scope, tables in figures.items()}


def published_cells(cijfers: Mapping[str, Any]) -> dict[str, dict[Cell, Any]]:
    """table → cell → the published cell (``waarde``/``onderdrukt``/``reden``), from the
    ``GET /v1/regios/{swv}/cijfers`` answer; ``uren`` cells keyed by soort and sector."""
    out: dict[str, dict[Cell, Any]] = {}
    for tabel in cijfers["tabellen"]:
        out[tabel["naam"]] = {cell_key(c["categorieen"]): c for c in tabel["cellen"]}
    uren: dict[Cell, Any] = {}
    for c in cijfers["uren"]:
        cats = {"soort": c["soort"]} | ({"sector": c["sector"]} if c["sector"] else {})
        uren[cell_key(cats)] = {
            "waarde": c["uren"],
            "onderdrukt": c["onderdrukt"],
            "reden": c["reden"],
        }
    out["uren"] = uren
    return out


def compare_swv(
    expected: Mapping[str, Mapping[Cell, int]],
    published: Mapping[str, Mapping[Cell, Any]],
    threshold: int,
) -> tuple[list[str], int, int]:
    """Differences between the true counts and one published report; also how many cells
    were compared (shown) and how many were withheld."""
    problems: list[str] = []
    shown = withheld = 0
    for table, cells in published.items():
        truth = expected.get(table, {})
        for key, cell in cells.items():
            if table == "uren":
                soort_sector = dict(key)
                minutes = sum(
                    v
                    for k, v in truth.items()
                    if dict(k)["soort"] == soort_sector["soort"]
                    and (
                        "sector" not in soort_sector or dict(k)["sector"] == soort_sector["sector"]
                    )
                )
                true_value = (minutes + 30) // 60
            elif table in (
                "verzuim-geoorloofd",
                "verzuim-ongeoorloofd",
                "afstandsonderwijs",
                "meldingen",
                "vrijstellingen-actief",
            ):
                true_value = truth.get(key, 0)
            else:
                continue  # tiers and flows the demo does not recount
            if cell["onderdrukt"]:
                withheld += 1
                if cell["waarde"] is not None:
                    problems.append(f"{table} {dict(key)}: withheld but a value is shown")
                if cell["reden"] == "primary" and table != "uren" and true_value >= threshold:
                    problems.append(
                        f"{table} {dict(key)}: primary suppression of {true_value} >= {threshold}"
                    )
            else:
                shown += 1
                if cell["waarde"] != true_value:
                    problems.append(
                        f"{table} {dict(key)}: published {cell['waarde']}, true {true_value}"
                    )
                if table != "uren" and true_value < threshold:
                    problems.append(f"{table} {dict(key)}: {true_value} < {threshold} is shown")
    return problems, shown, withheld


# --------------------------------------------------------------------------- the whole check


@dataclass
class Check:
    """The hub's answers compared with the ground truth; ``problems`` empty when they agree."""

    expected: list[ExpectedMelding]
    problems: list[str]
    swv_shown: int = 0
    swv_withheld: int = 0


def melding_tuple(pgn: str, brin: str, soort: str, begin: str, end: str) -> tuple[str, ...]:
    return (pgn, brin, soort, begin, end)


def check_outcome(
    year: DemoYear,
    expected: list[ExpectedMelding],
    school_meldingen: Sequence[Mapping[str, Any]],
    duo_ontvangen: Sequence[Mapping[str, Any]],
    gemeente_meldingen: Mapping[str, Sequence[Mapping[str, Any]]],
    swv_cijfers: Mapping[str, Mapping[str, Any]],
    schooljaar: str,
    peildatum: date,
) -> Check:
    """Compare what the hub answered with the truth: the meldingen due (kind, begindatum,
    einddatum per pupil and school), what DUO received (exactly the confirmed ones, once
    each), what each gemeente can pull (exactly its inwoners' meldingen), the SWV figures."""
    problems: list[str] = []
    ours = {p.pgn for p in year.pupils}
    truth = Counter(
        melding_tuple(m.pgn, m.brin, m.kind, m.begindatum.isoformat(), m.einddatum.isoformat())
        for m in expected
    )
    live = [m for m in school_meldingen if m["status"] != "vervallen" and m["soort"] != "O"]
    hub = Counter(
        melding_tuple(m["pgn"], m["brin"], m["soort"], m["begindatum"], m["einddatum"])
        for m in live
        if m["pgn"] in ours
    )
    for key in sorted((truth - hub).keys()):
        problems.append(f"melding due but not in the hub: {key[1:]}")
    for key in sorted((hub - truth).keys()):
        problems.append(f"melding in the hub but not due: {key[1:]}")

    sent = {m["id"]: m for m in live if m["status"] in SENT_STATUSES}
    not_sent = [m for m in live if m["status"] not in SENT_STATUSES]
    if not_sent:
        problems.append(f"{len(not_sent)} meldingen were not confirmed and sent")
    duo_ids = Counter(m["meldingId"] for m in duo_ontvangen)
    for melding_id, count in duo_ids.items():
        if count != 1:
            problems.append(f"DUO received melding {melding_id} {count} times")
    if set(duo_ids) != set(sent):
        problems.append(
            f"DUO received {len(set(duo_ids) - set(sent))} meldingen not sent by the schools and "
            f"misses {len(set(sent) - set(duo_ids))}"
        )
    for received in duo_ontvangen:
        m = sent.get(received["meldingId"])
        body = received["melding"]
        if m is None:
            continue
        if (
            body["leerling"]["pgn"],
            body["verzuimsoort"],
            body["begindatum"],
            body["einddatum"],
        ) != (m["pgn"], m["soort"], m["begindatum"], m["einddatum"]):
            problems.append(f"DUO's copy of {m['id']} differs from the school's melding")
        if received["status"] != "Geregistreerd":
            problems.append(f"DUO status of {m['id']} is {received['status']}")

    woongemeente = {p.pgn: p.woongemeente for p in year.pupils}
    for gemeente, pulled in gemeente_meldingen.items():
        ids = Counter(m["id"] for m in pulled)
        own = {i for i, m in sent.items() if woongemeente.get(m["pgn"]) == gemeente}
        if any(c != 1 for c in ids.values()):
            problems.append(f"{gemeente} sees a melding twice")
        if set(ids) != own:
            problems.append(
                f"{gemeente} pulls {len(set(ids) - own)} meldingen not about its inwoners and "
                f"misses {len(own - set(ids))}"
            )
        for m in pulled:
            if m["melding"]["woongemeente"] != gemeente:
                problems.append(f"{gemeente} sees melding {m['id']} of another gemeente")

    figures = expected_swv_figures(year, expected, schooljaar, peildatum)
    shown = withheld = 0
    for scope, cijfers in swv_cijfers.items():
        found, s, w = compare_swv(
            figures.get(scope, {}), published_cells(cijfers), int(cijfers["drempel"])
        )
        problems.extend(f"{scope}: {p}" for p in found)
        shown += s
        withheld += w
    return Check(expected, problems, shown, withheld)
