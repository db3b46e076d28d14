"""The mock DUO over HTTP: strict contract, idempotency, filing, test routes, faults."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from verzuimhub.mock_duo import SimulatedConnectionDrop

MeldingData = Callable[..., dict[str, Any]]
PROBLEM = "application/problem+json"


async def _post(
    client: httpx.AsyncClient, body: dict[str, Any], key: str | None = None
) -> httpx.Response:
    headers = {"Idempotency-Key": key or str(body["meldingId"])}
    return await client.post("/v1/verzuimmeldingen", json=body, headers=headers)


def _invalid(response: httpx.Response) -> set[str]:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == PROBLEM
    return {p["name"] for p in response.json()["invalidParams"]}


async def test_a_valid_melding_is_registered(
    duo_http: httpx.AsyncClient, melding_data: MeldingData
) -> None:
    response = await _post(duo_http, melding_data())
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["meldingId"] == "melding-1"
    assert body["status"] == "Geregistreerd"
    assert re.fullmatch(r"DUO-\d{8}", body["meldingsnummer"])
    assert "idempotent-replayed" not in response.headers


async def test_unknown_and_invalid_fields_are_all_listed_in_one_400(
    duo_http: httpx.AsyncClient, duo_test: Any, melding_data: MeldingData
) -> None:
    body = melding_data(geslachtsnaam="Jansen", startkwalificatie="nee")
    body["leerling"] = body["leerling"] | {"adres": "Dorpsstraat 1"}
    body["verzuimdagen"][0]["reden"] = "ziekte"
    names = _invalid(await _post(duo_http, body))
    assert names == {
        "geslachtsnaam",
        "startkwalificatie",
        "leerling.adres",
        "verzuimdagen.0.reden",
    }
    assert await duo_test.ontvangen() == []


async def test_python_names_are_not_wire_names(
    duo_http: httpx.AsyncClient, melding_data: MeldingData
) -> None:
    body = melding_data()
    body["alle_lessen_verzuimd"] = body.pop("alleLessenVerzuimd")
    assert _invalid(await _post(duo_http, body)) == {"alle_lessen_verzuimd"}


async def test_the_idempotency_key_is_required_and_is_the_melding_id(
    duo_http: httpx.AsyncClient, melding_data: MeldingData
) -> None:
    missing = await duo_http.post("/v1/verzuimmeldingen", json=melding_data())
    assert _invalid(missing) == {"Idempotency-Key"}
    assert _invalid(await _post(duo_http, melding_data(), key="iets-anders")) == {"Idempotency-Key"}


async def test_same_key_same_payload_replays_and_other_payload_is_422(
    duo_http: httpx.AsyncClient, duo_test: Any, melding_data: MeldingData
) -> None:
    first = await _post(duo_http, melding_data())
    # The same melding, keys in another order and without the optional null: same payload.
    reordered = dict(reversed(list(melding_data(vermoedelijkeReden="spijbelen").items())))
    replay = await _post(duo_http, reordered)
    assert replay.status_code == 201
    assert replay.json() == first.json()
    assert replay.headers["idempotent-replayed"] == "true"

    other = await _post(duo_http, melding_data(ondernomenActie="Niets"))
    assert other.status_code == 422
    assert other.headers["content-type"] == PROBLEM
    assert {"type", "title", "status", "detail"} <= other.json().keys()
    assert len(await duo_test.ontvangen()) == 1


async def test_meldingen_are_filed_under_the_woongemeente_with_the_raw_body(
    duo_http: httpx.AsyncClient, duo_test: Any, melding_data: MeldingData
) -> None:
    raw = json.dumps(melding_data(meldingId="a", woongemeente="GM0363"), indent=3)
    response = await duo_http.post(
        "/v1/verzuimmeldingen",
        content=raw,
        headers={"Idempotency-Key": "a", "Content-Type": "application/json"},
    )
    assert response.status_code == 201
    assert (await _post(duo_http, melding_data(meldingId="b", woongemeente="GM0599"))).is_success
    assert (await _post(duo_http, melding_data(meldingId="c", woongemeente="GM0363"))).is_success

    amsterdam = await duo_test.ontvangen(woongemeente="GM0363")
    assert [m["meldingId"] for m in amsterdam] == ["a", "c"]
    assert amsterdam[0]["ruweInhoud"] == raw  # byte for byte as it arrived
    assert [m["meldingId"] for m in await duo_test.ontvangen(woongemeente="GM0599")] == ["b"]
    assert await duo_test.ontvangen(woongemeente="GM0014") == []
    assert len(await duo_test.ontvangen()) == 3

    bad = await duo_http.get("/v1/test/ontvangen", params={"woongemeente": "Amsterdam"})
    assert _invalid(bad) == {"woongemeente"}

    assert (await duo_http.delete("/v1/test/ontvangen")).status_code == 204
    assert await duo_test.ontvangen() == []


async def test_withdrawal(
    duo_http: httpx.AsyncClient, duo_test: Any, melding_data: MeldingData
) -> None:
    await _post(duo_http, melding_data())
    url = "/v1/verzuimmeldingen/melding-1/intrekking"
    first = await duo_http.post(url, json={"reden": "alsnog_geoorloofd"})
    assert first.status_code == 200
    assert first.json()["status"] == "Ingetrokken"
    again = await duo_http.post(url, json={"reden": "alsnog_geoorloofd"})
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert (await duo_http.post(url, json={"reden": "dubbele_melding"})).status_code == 422
    assert _invalid(await duo_http.post(url, json={"reden": "x", "toelichting": "ziek"})) == {
        "reden",
        "toelichting",
    }
    unknown = await duo_http.post(
        "/v1/verzuimmeldingen/onbekend/intrekking", json={"reden": "dubbele_melding"}
    )
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == PROBLEM
    (stored,) = await duo_test.ontvangen()
    assert stored["status"] == "Ingetrokken"
    assert stored["intrekking"] == {"reden": "alsnog_geoorloofd"}


async def test_storingen_are_set_read_and_reset(duo_http: httpx.AsyncClient) -> None:
    response = await duo_http.post("/v1/test/storingen", json={"errorRate": 0.25, "seed": 7})
    assert response.status_code == 200
    assert response.json() == {
        "errorRate": 0.25,
        "latencyMs": 0,
        "timeoutRate": 0.0,
        "hangMs": 30_000,
        "dropAfterCommitRate": 0.0,
        "seed": 7,
    }
    assert (await duo_http.get("/v1/test/storingen")).json()["errorRate"] == 0.25
    bad = await duo_http.post("/v1/test/storingen", json={"errorRate": 2, "onbekend": 1})
    assert _invalid(bad) == {"errorRate", "onbekend"}
    assert (await duo_http.delete("/v1/test/storingen")).status_code == 204
    assert (await duo_http.get("/v1/test/storingen")).json()["errorRate"] == 0.0


async def test_errors_are_503_problems_and_follow_the_seed(
    duo_http: httpx.AsyncClient, duo_test: Any, melding_data: MeldingData
) -> None:
    async def run() -> list[httpx.Response]:
        await duo_http.delete("/v1/test/ontvangen")
        await duo_test.storingen(errorRate=0.5, seed=99)
        return [await _post(duo_http, melding_data(meldingId=f"m{i}")) for i in range(20)]

    first = await run()
    statuses = [r.status_code for r in first]
    assert set(statuses) == {201, 503}
    assert [r.status_code for r in await run()] == statuses  # same seed, same faults
    verzoeken = await duo_test.verzoeken()
    assert [v["storing"] == "fout" for v in verzoeken] == [s == 503 for s in statuses]
    unavailable = next(r for r in first if r.status_code == 503)
    assert unavailable.headers["content-type"] == PROBLEM
    assert unavailable.json()["status"] == 503
    assert len(await duo_test.ontvangen()) == statuses.count(201)


async def test_latency_delays_every_request(
    duo_http: httpx.AsyncClient, duo_test: Any, melding_data: MeldingData
) -> None:
    await duo_test.storingen(latencyMs=60)
    started = time.perf_counter()
    assert (await _post(duo_http, melding_data())).status_code == 201
    assert time.perf_counter() - started >= 0.06


async def test_commit_then_drop_stores_but_never_answers(
    duo_app: FastAPI, duo_http: httpx.AsyncClient, duo_test: Any, melding_data: MeldingData
) -> None:
    await duo_test.storingen(dropAfterCommitRate=1.0)
    # In process the caller sees what a dropped connection looks like to httpx ...
    with pytest.raises(httpx.RemoteProtocolError):
        await _post(duo_http, melding_data(meldingId="a"))
    # ... and behind a real server the shared error handler answers 500 problem+json.
    transport = httpx.ASGITransport(app=duo_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://duo.test") as server:
        response = await _post(server, melding_data(meldingId="b"))
    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM
    assert SimulatedConnectionDrop.__name__ not in response.text
    assert sorted(m["meldingId"] for m in await duo_test.ontvangen()) == ["a", "b"]
    assert [v["storing"] for v in await duo_test.verzoeken()] == ["verbroken", "verbroken"]


async def test_the_openapi_document_follows_the_api_rules(duo_http: httpx.AsyncClient) -> None:
    doc = (await duo_http.get("/v1/openapi.json")).json()
    paths = doc["paths"]
    assert "/v1/verzuimmeldingen" in paths
    assert "/v1/verzuimmeldingen/{meldingId}/intrekking" in paths
    for path, item in paths.items():
        for segment in path.strip("/").split("/"):
            assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*|\{[a-zA-Z]+\}", segment), path
        for method, op in item.items():
            assert op["operationId"]
            if method in {"post", "put", "patch"} or op.get("parameters"):
                assert "400" in op["responses"], (path, method)
    assert {"Verzuimmelding", "DuoReceipt", "Intrekking"} <= doc["components"]["schemas"].keys()
