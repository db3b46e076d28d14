"""Ingest's events for melding, as the feed serves them, for tests of melding's consumer."""

from __future__ import annotations

from datetime import date
from typing import Any

from verzuimhub_shared import events as ev


def voor_melding(
    registratie_id: str,
    pgn: str,
    *,
    versie: int = 1,
    datum: date = date(2026, 3, 2),
    woongemeente: str = "GM9901",
) -> dict[str, Any]:
    """A registration's ``data`` for melding (60 minutes of truancy per version), in its
    JSON form."""
    data = ev.RegistratieVoorMelding(
        registratie_id=registratie_id,
        versie=versie,
        pgn=pgn,
        geboortedatum=date(2013, 5, 1),
        woongemeente=woongemeente,
        brin="99AA",
        vestiging="00",
        sector="po",
        datum=datum,
        minuten=60 * versie,
        eenheid="klokuur",
        aantal_eenheden=float(versie),
        alle_lessen_gemist=False,
        startkwalificatie=None,
        soort="ongeoorloofd",
        categorie="spijbelen",
        luxe_verzuim=False,
    )
    return data.model_dump(mode="json", by_alias=True)


def ingetrokken_voor_melding(registratie_id: str, versie: int = 2) -> dict[str, Any]:
    """A withdrawal's ``data`` for melding, in its JSON form."""
    data = ev.RegistratieIngetrokkenVoorMelding(
        registratie_id=registratie_id, versie=versie, brin="99AA"
    )
    return data.model_dump(mode="json", by_alias=True)
