"""Ledger entries (one per registration) to the rules' per-day input, and the specification
of days and hours that goes with a melding (dates, hours, authorised yes/no; never a reason
for authorised absence)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import date
from typing import NamedTuple

from verzuimhub_melding.rules import LedgerDay


class Entry(NamedTuple):
    """A ledger row as the rules read it. A tuple: the evaluator makes one per ledger row
    it reads (tens of thousands a round after a replay), straight from the row's values
    in this order (``repository.ENTRY_COLUMNS``)."""

    datum: date
    minuten: int
    eenheid: str
    aantal_eenheden: float
    alle_lessen_gemist: bool
    soort: str  # geoorloofd | ongeoorloofd | deelname
    categorie: str | None
    luxe_verzuim: bool


def ledger_days(entries: Iterable[Entry]) -> list[LedgerDay]:
    out = []
    for e in entries:
        units = round(e.aantal_eenheden) if e.eenheid == "lesuur" else 0
        if e.soort == "ongeoorloofd":
            out.append(
                LedgerDay(
                    e.datum,
                    unauthorised_minutes=e.minuten,
                    unauthorised_units=units,
                    luxe_verzuim=e.luxe_verzuim,
                    all_lessons_missed=e.alle_lessen_gemist,
                )
            )
        elif e.soort == "geoorloofd":
            out.append(LedgerDay(e.datum, authorised_minutes=e.minuten, authorised_units=units))
        else:
            out.append(LedgerDay(e.datum, distance_minutes=e.minuten))
    return out


def specificatie(
    entries: Iterable[Entry], begindatum: date, einddatum: date
) -> list[dict[str, object]]:
    """Per day in the period: minutes missed, authorised or not (bill 36663: authorised
    absence may accompany a melding, without its reason)."""
    per_day: dict[tuple[date, bool], int] = {}
    for e in entries:
        if e.soort == "deelname" or not begindatum <= e.datum <= einddatum:
            continue
        key = (e.datum, e.soort == "geoorloofd")
        per_day[key] = per_day.get(key, 0) + e.minuten
    return [
        {"datum": d.isoformat(), "minuten": m, "geoorloofd": authorised}
        for (d, authorised), m in sorted(per_day.items())
    ]


def vermoedelijke_reden(entries: Iterable[Entry], begindatum: date, einddatum: date) -> str | None:
    """The most registered unauthorised category in the period."""
    counts = Counter(
        e.categorie
        for e in entries
        if e.soort == "ongeoorloofd" and e.categorie and begindatum <= e.datum <= einddatum
    )
    return counts.most_common(1)[0][0] if counts else None
