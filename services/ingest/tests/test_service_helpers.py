"""Hand-built stand-ins for pydantic round trips on the batch path: each must give exactly
what the model-based version gave (stored payload hashes must keep matching replays)."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, time, timedelta, timezone
from typing import Any

import orjson
import pytest

from verzuimhub_ingest.schemas import RegistratieBevestiging, RegistratieIn
from verzuimhub_ingest.service import _confirm, payload_hash


def _model_hash(item: RegistratieIn) -> str:
    """How payload hashes were computed (and stored) before."""
    canonical = orjson.dumps(item.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


def _item(**overrides: Any) -> RegistratieIn:
    fields: dict[str, Any] = {
        "schoolRegistratieId": "  r-1 ",
        "brin": "99AA",
        "vestiging": "00",
        "pgn": "123456782",
        "geboortedatum": "2015-03-04",
        "woongemeente": "GM9901",
        "sector": "po",
        "datum": "2026-01-05",
        "minuten": 60,
        "eenheid": "klokuur",
        "aantalEenheden": 1,
        "alleLessenGemist": False,
        "categorie": "ziekte",
    }
    return RegistratieIn.model_validate(fields | overrides)


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"versie": 7, "aantalEenheden": 0.1, "startkwalificatie": False},
        {"notitie": "belde \u00e9\u00e9n keer \U0001f600", "alleLessenGemist": True},
        {"starttijd": "08:30"},
        {"starttijd": "08:30:15.123456"},
        {"starttijd": time(8, 30, tzinfo=timezone(timedelta(hours=1)))},
        {"starttijd": time(8, 30, 1, 5, tzinfo=UTC)},
        {"aantalEenheden": 23.999999999999996, "minuten": 600},
        {"datum": date(2025, 8, 1), "geboortedatum": date(2000, 1, 1)},
    ],
)
def test_payload_hash_is_the_model_dump_hash(overrides: dict[str, Any]) -> None:
    item = _item(**overrides)
    assert payload_hash(item) == _model_hash(item)


def test_confirmation_is_byte_for_byte_the_model() -> None:
    item = _item(versie=4)
    model = RegistratieBevestiging(
        registratie_id="id-1",
        school_registratie_id=item.school_registratie_id,
        brin=item.brin,
        versie=item.versie,
        catalogus_versie="2026.1",
    )
    assert (
        orjson.dumps(_confirm("id-1", item, "2026.1"))
        == model.model_dump_json(by_alias=True).encode()
    )
