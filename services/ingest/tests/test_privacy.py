"""Privacy is a correctness property: each of these fails if the protection breaks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest
from sqlalchemy import text

from verzuimhub.testing import make_bsn, registratie
from verzuimhub_shared.db import make_engine

NOTE = "moeder belde: psychiatrische opname"


def _as_text(value: object) -> str:
    """A binary value byte for byte (a feed row's body, ADR 0031): text in it stays text."""
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)


async def _everything_in(url: str) -> str:
    """Every value of every table of a database, as one text."""
    engine = make_engine(url)
    chunks: list[str] = []
    try:
        async with engine.connect() as conn:
            tables = [
                r[0]
                for r in await conn.execute(
                    text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
                )
            ]
            for table in tables:
                for row in await conn.execute(text(f'SELECT * FROM "{table}"')):
                    chunks.append(" ".join(_as_text(v) for v in row))
    finally:
        await engine.dispose()
    return "\n".join(chunks)


@pytest.fixture
async def stored(clean_dbs: Any, app_client: Callable[..., Any], auth: Any) -> dict[str, Any]:
    """Registrations in every category, with notes, and an exemption; their feeds."""
    school = auth("school", brins=["99AA"])
    pgns = [make_bsn(500 + i) for i in range(12)]
    categories = [
        "ziekte",
        "medisch_bezoek",
        "schorsing",
        "godsdienst",
        "verlof_vakantie",
        "verlof_gewichtig",
        "school_gesloten",
        "afstandsonderwijs",
        "te_laat",
        "spijbelen",
        "luxe_verzuim",
        "ongeoorloofd_overig",
    ]
    items = [
        registratie(schoolRegistratieId=f"p-{i}", pgn=pgn, categorie=cat, notitie=NOTE)
        for i, (pgn, cat) in enumerate(zip(pgns, categories, strict=True))
    ]
    async with app_client("ingest") as client:
        batch = await client.post(
            "/v1/registratie-batches", json={"registraties": items}, headers=school
        )
        assert batch.json()["aangemaakt"] == 12
        exemption_pgn = make_bsn(999)
        created = await client.post(
            "/v1/vrijstellingen",
            json={
                "soort": "5a",
                "pgn": exemption_pgn,
                "geboortedatum": "2016-05-01",
                "begindatum": "2025-09-01",
            },
            headers=auth("gemeente", gemeente="GM9901"),
        )
        assert created.status_code == 201
        feeds = {}
        for consumer in ("melding", "swv-aggregate"):
            response = await client.get(
                "/v1/feed", params={"limit": 1000}, headers=auth("consumer", consumer=consumer)
            )
            feeds[consumer] = orjson.loads(response.content)
    return {"pgns": [*pgns, exemption_pgn], "items": items, "feeds": feeds, "db": clean_dbs}


async def test_no_pgn_or_note_in_clear_at_rest(stored: dict[str, Any]) -> None:
    everything = await _everything_in(stored["db"]["ingest"])
    assert everything  # the scan saw data
    for pgn in stored["pgns"]:
        assert pgn not in everything
    assert NOTE not in everything
    assert "psychiatrisch" not in everything


async def test_swv_feed_has_no_identity_and_its_own_pseudonyms(stored: dict[str, Any]) -> None:
    swv = stored["feeds"]["swv-aggregate"]
    text_ = orjson.dumps(swv).decode()
    for pgn in stored["pgns"]:
        assert pgn not in text_
    assert NOTE not in text_
    for event in swv:
        assert not {"pgn", "geboortedatum", "woongemeente", "notitie", "categorie"} & set(
            event["data"]
        )
    melding_ids = {e["data"]["registratieId"] for e in stored["feeds"]["melding"]}
    swv_ids = {e["data"].get("registratieId") for e in swv}
    assert not melding_ids & swv_ids  # unlinkable ids across consumers


async def test_melding_feed_never_carries_a_reason_for_authorised_absence(
    stored: dict[str, Any],
) -> None:
    melding = stored["feeds"]["melding"]
    assert len(melding) == 12
    assert NOTE not in orjson.dumps(melding).decode()
    for event in melding:
        data = event["data"]
        assert "notitie" not in data
        if data["soort"] == "ongeoorloofd":
            assert data["categorie"] in {
                "te_laat",
                "spijbelen",
                "luxe_verzuim",
                "ongeoorloofd_overig",
            }
        else:
            assert data["categorie"] is None
    assert not [e for e in melding if "vrijstelling" in e["type"]]  # exemptions: swv only
    luxe = [e["data"] for e in melding if e["data"]["luxeVerzuim"]]
    assert [d["categorie"] for d in luxe] == ["luxe_verzuim"]


async def test_no_pgn_or_note_in_any_log_line(
    clean_dbs: Any, app_client: Callable[..., Any], auth: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    school = auth("school", brins=["99AA"])
    pgn = make_bsn(4242)
    async with app_client("ingest") as client:
        await client.post(
            "/v1/registraties", json=registratie(pgn=pgn, notitie=NOTE), headers=school
        )
        await client.post(
            "/v1/registraties", json=registratie(pgn=pgn[:-1] + "0"), headers=school
        )  # invalid: rejected, but never logged
        await client.get("/v1/scholen/99AA/registraties", headers=school)
    logs = capsys.readouterr()
    captured = logs.out + logs.err
    assert "http_request" in captured  # the log was captured
    assert pgn not in captured
    assert pgn[:-1] + "0" not in captured
    assert NOTE not in captured
