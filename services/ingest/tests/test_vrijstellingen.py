"""Vrijstellingen and absoluut verzuim: only the recording gemeente changes them; no cause."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest

from verzuimhub.testing import make_bsn


def _exemption(**overrides: Any) -> dict[str, Any]:
    return {
        "soort": "5a",
        "pgn": make_bsn(77),
        "geboortedatum": "2017-02-01",
        "begindatum": "2025-09-01",
    } | overrides


@pytest.mark.parametrize("field", ["oorzaak", "diagnose", "toelichting", "notitie"])
async def test_a_cause_field_is_refused_and_nothing_is_stored(
    clean_dbs: Any, app_client: Callable[..., Any], auth: Any, field: str
) -> None:
    gemeente = auth("gemeente", gemeente="GM9901")
    async with app_client("ingest") as client:
        response = await client.post(
            "/v1/vrijstellingen", json=_exemption(**{field: "autisme"}), headers=gemeente
        )
        listed = await client.get("/v1/vrijstellingen", headers=gemeente)
        feed = await client.get("/v1/feed", headers=auth("consumer", consumer="swv-aggregate"))
    assert response.status_code == 400
    assert response.json()["invalidParams"] == [
        {"name": field, "reason": "Extra inputs are not permitted"}
    ]
    assert listed.json()["items"] == []
    assert orjson.loads(feed.content) == []


async def test_lifecycle_and_only_the_recording_gemeente(
    clean_dbs: Any, app_client: Callable[..., Any], auth: Any
) -> None:
    own = auth("gemeente", gemeente="GM9901")
    other = auth("gemeente", gemeente="GM9902")
    async with app_client("ingest") as client:
        created = await client.post("/v1/vrijstellingen", json=_exemption(), headers=own)
        assert created.status_code == 201
        vid = created.json()["id"]
        assert created.json()["gemeente"] == "GM9901"
        assert "pgn" not in created.json()

        assert (
            await client.patch(
                f"/v1/vrijstellingen/{vid}", json={"einddatum": "2026-07-01"}, headers=other
            )
        ).status_code == 404
        assert (await client.delete(f"/v1/vrijstellingen/{vid}", headers=other)).status_code == 404
        extended = await client.patch(
            f"/v1/vrijstellingen/{vid}", json={"einddatum": "2026-07-31"}, headers=own
        )
        assert extended.json()["einddatum"] == "2026-07-31"
        backwards = await client.patch(
            f"/v1/vrijstellingen/{vid}", json={"einddatum": "2020-01-01"}, headers=own
        )
        assert backwards.status_code == 400
        assert (await client.delete(f"/v1/vrijstellingen/{vid}", headers=own)).status_code == 204
        assert (await client.delete(f"/v1/vrijstellingen/{vid}", headers=own)).status_code == 204
        school = await client.post(
            "/v1/vrijstellingen", json=_exemption(), headers=auth("school", brins=["99AA"])
        )
        feed = orjson.loads(
            (
                await client.get("/v1/feed", headers=auth("consumer", consumer="swv-aggregate"))
            ).content
        )
    assert school.status_code == 403
    assert [e["type"].split(".")[-2] for e in feed] == ["vastgelegd", "vastgelegd", "ingetrokken"]
    data = feed[0]["data"]
    assert data["soort"] == "5a"
    assert data["swvPo"] == "PO-99-01"
    assert data["leeftijdsband"]
    assert "pgn" not in data
    assert "geboortedatum" not in data


async def test_absoluut_verzuim_has_the_same_rules(
    clean_dbs: Any, app_client: Callable[..., Any], auth: Any
) -> None:
    own = auth("gemeente", gemeente="GM9903")
    body = {"pgn": make_bsn(88), "geboortedatum": "2014-01-01", "begindatum": "2025-10-01"}
    async with app_client("ingest") as client:
        cause = await client.post("/v1/absoluut-verzuim", json=body | {"reden": "x"}, headers=own)
        created = await client.post("/v1/absoluut-verzuim", json=body, headers=own)
        aid = created.json()["id"]
        cross = await client.patch(
            f"/v1/vrijstellingen/{aid}", json={"einddatum": None}, headers=own
        )
        other = await client.delete(
            f"/v1/absoluut-verzuim/{aid}", headers=auth("gemeente", gemeente="GM9904")
        )
        ended = await client.patch(
            f"/v1/absoluut-verzuim/{aid}", json={"einddatum": "2025-12-01"}, headers=own
        )
        feed = orjson.loads(
            (
                await client.get("/v1/feed", headers=auth("consumer", consumer="swv-aggregate"))
            ).content
        )
    assert cause.status_code == 400
    assert created.json()["soort"] == "absoluut_verzuim"
    assert cross.status_code == 404
    assert other.status_code == 404
    assert ended.status_code == 200
    assert [e["data"]["soort"] for e in feed] == ["absoluut_verzuim", "absoluut_verzuim"]
    assert feed[-1]["type"] == "nl.verzuimhub.absoluut-verzuim.vastgelegd.v1"


async def test_a_nul_in_a_path_or_query_parameter_is_refused_naming_it(
    clean_dbs: Any, app_client: Callable[..., Any], auth: Any
) -> None:
    """PostgreSQL refuses a NUL in text: it used to reach the database and answer 500
    (found by the fuzz test: a cursor with ``%00``)."""
    gemeente = auth("gemeente", gemeente="GM9901")
    async with app_client("ingest") as client:
        listed = await client.get("/v1/absoluut-verzuim?cursor=a%00b", headers=gemeente)
        withdrawn = await client.delete("/v1/vrijstellingen/a%00b", headers=gemeente)
    for response, name in ((listed, "cursor"), (withdrawn, "id")):
        assert response.status_code == 400, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["invalidParams"] == [{"name": name, "reason": "bevat een NUL-teken"}]
