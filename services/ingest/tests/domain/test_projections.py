"""The projections are built as plain dicts for speed; they must stay exactly what the
contract models (verzuimhub_shared.events) give: same fields, values, order and JSON."""

from __future__ import annotations

import itertools
from datetime import date
from typing import Any

import orjson
import pytest
from pydantic import BaseModel

from verzuimhub_ingest.domain import projections
from verzuimhub_ingest.domain.catalogue import default_catalogue
from verzuimhub_ingest.schemas import RegistratieIn
from verzuimhub_shared.events import RegistratieVoorMelding, RegistratieVoorSwv
from verzuimhub_shared.periods import age_band_on, iso_week_label, month_label, school_year_of


def _item(**overrides: Any) -> RegistratieIn:
    fields: dict[str, Any] = {
        "school_registratie_id": "r-1",
        "versie": 3,
        "brin": "99AA",
        "vestiging": "00",
        "pgn": "123456782",
        "geboortedatum": date(2009, 2, 28),
        "woongemeente": "GM9901",
        "sector": "vo",
        "datum": date(2026, 1, 1),
        "minuten": 50,
        "eenheid": "lesuur",
        "aantal_eenheden": 1,
        "alle_lessen_gemist": False,
        "categorie": "ziekte",
        "startkwalificatie": None,
        "notitie": "nooit in een projectie",
    }
    return RegistratieIn.model_validate(fields | overrides)


def _as_model(model: type[BaseModel], data: dict[str, Any]) -> dict[str, Any]:
    dumped: dict[str, Any] = model.model_validate(data).model_dump(mode="json", by_alias=True)
    return dumped


ITEMS = [
    _item(),
    _item(startkwalificatie=True, aantal_eenheden=2.5, alle_lessen_gemist=True),
    _item(startkwalificatie=False, sector="po", eenheid="klokuur", datum=date(2025, 12, 29)),
    _item(geboortedatum=date(2020, 8, 1), datum=date(2025, 7, 31), sector="so"),
]


@pytest.mark.parametrize(
    ("item", "code"),
    list(itertools.product(ITEMS, default_catalogue().codes)),
)
def test_projections_equal_the_contract_models(item: RegistratieIn, code: str) -> None:
    category = default_catalogue().get(code)
    assert category is not None
    item = item.model_copy(update={"categorie": code})

    melding = projections.voor_melding("hub-id", item, category)
    expected = _as_model(RegistratieVoorMelding, melding)
    assert list(melding.items()) == list(expected.items())  # order too
    assert orjson.dumps(melding) == orjson.dumps(expected)
    assert "notitie" not in melding
    if melding["soort"] != "ongeoorloofd":
        assert melding["categorie"] is None

    swv = projections.voor_swv(item, category, swv="PO-99-01", leerling="l", registratie="r")
    expected = _as_model(RegistratieVoorSwv, swv)
    assert list(swv.items()) == list(expected.items())
    assert orjson.dumps(swv) == orjson.dumps(expected)
    assert swv["datumWeek"] == iso_week_label(item.datum)
    assert swv["maand"] == month_label(item.datum)
    assert swv["schooljaar"] == school_year_of(item.datum)
    assert swv["leeftijdsband"] == age_band_on(item.geboortedatum, item.datum)
    assert not {"pgn", "geboortedatum", "woongemeente", "categorie"} & set(swv)
