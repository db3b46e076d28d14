"""Registrations through ingest's HTTP API, on PostgreSQL with the real migrations."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import orjson
import pytest

from verzuimhub.testing import make_bsn, registratie

School = dict[str, str]


@pytest.fixture
def school(auth: Callable[..., dict[str, str]]) -> School:
    return auth("school", brins=["99AA", "99AB"])


async def _feed(client: Any, auth: Callable[..., dict[str, str]], consumer: str) -> list[Any]:
    response = await client.get(
        "/v1/feed", params={"limit": 5000}, headers=auth("consumer", consumer=consumer)
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/cloudevents-batch+json"
    return list(orjson.loads(response.content))


async def test_create_replay_correct_and_conflict(
    clean_dbs: Any, app_client: Callable[..., Any], school: School, auth: Any
) -> None:
    async with app_client("ingest") as client:
        first = await client.post("/v1/registraties", json=registratie(), headers=school)
        assert first.status_code == 201, first.text
        body = first.json()
        assert body["versie"] == 1
        assert body["catalogusVersie"]

        replay = await client.post("/v1/registraties", json=registratie(), headers=school)
        assert replay.status_code == 200
        assert replay.json() == body
        assert len(await _feed(client, auth, "melding")) == 1  # the replay added nothing

        corrected = await client.post(
            "/v1/registraties", json=registratie(versie=2, minuten=90), headers=school
        )
        assert corrected.status_code == 200
        assert corrected.json()["registratieId"] == body["registratieId"]
        assert len(await _feed(client, auth, "melding")) == 2

        for versie in (1, 2):
            stale = await client.post(
                "/v1/registraties", json=registratie(versie=versie, minuten=30), headers=school
            )
            assert stale.status_code == 409
            assert stale.headers["content-type"] == "application/problem+json"


async def test_idempotency_key_replays_the_stored_answer_and_refuses_another_payload(
    clean_dbs: Any, app_client: Callable[..., Any], school: School, auth: Any
) -> None:
    headers = school | {"Idempotency-Key": "k-123"}
    async with app_client("ingest") as client:
        first = await client.post("/v1/registraties", json=registratie(), headers=headers)
        again = await client.post("/v1/registraties", json=registratie(), headers=headers)
        other = await client.post("/v1/registraties", json=registratie(minuten=61), headers=headers)
        events = await _feed(client, auth, "melding")
    assert first.status_code == again.status_code == 201
    assert first.content == again.content
    assert other.status_code == 422
    assert len(events) == 1


async def test_validation_names_every_bad_field_at_once(
    clean_dbs: Any, app_client: Callable[..., Any], school: School
) -> None:
    bad = registratie(
        pgn="123456789",  # fails the elfproef
        brin="9AA",
        woongemeente="GM0001",  # unknown gemeente
        categorie="vakantie_op_mars",
        datum=(date.today() + timedelta(days=2)).isoformat(),
        minuten=0,
        onbekendVeld="x",
    )
    async with app_client("ingest") as client:
        response = await client.post("/v1/registraties", json=bad, headers=school)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    names = {p["name"] for p in problem["invalidParams"]}
    assert names == {"pgn", "brin", "woongemeente", "categorie", "datum", "minuten", "onbekendVeld"}
    assert "123456789" not in response.text  # a BSN-like value is never echoed


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"datum": "2001-09-03"}, "datum"),
        ({"minuten": 601}, "minuten"),
        ({"geboortedatum": "2008-01-01"}, "startkwalificatie"),  # 16+ needs it
        ({"sector": "hbo"}, "sector"),
        ({"vestiging": "A1"}, "vestiging"),
    ],
)
async def test_single_field_rules(
    clean_dbs: Any,
    app_client: Callable[..., Any],
    school: School,
    change: dict[str, Any],
    field: str,
) -> None:
    async with app_client("ingest") as client:
        response = await client.post("/v1/registraties", json=registratie(**change), headers=school)
    assert response.status_code == 400
    assert [p["name"] for p in response.json()["invalidParams"]] == [field]


async def test_a_pupils_day_cannot_exceed_24_hours(
    clean_dbs: Any, app_client: Callable[..., Any], school: School
) -> None:
    async with app_client("ingest") as client:
        for i in range(2):
            ok = await client.post(
                "/v1/registraties",
                json=registratie(schoolRegistratieId=f"d-{i}", minuten=600),
                headers=school,
            )
            assert ok.status_code == 201
        over = await client.post(
            "/v1/registraties",
            json=registratie(schoolRegistratieId="d-3", minuten=241, brin="99AB"),
            headers=school,
        )
        # correcting an existing one does not count it twice
        fine = await client.post(
            "/v1/registraties",
            json=registratie(schoolRegistratieId="d-1", versie=2, minuten=240),
            headers=school,
        )
    assert over.status_code == 400
    assert over.json()["invalidParams"][0]["name"] == "minuten"
    assert fine.status_code == 200


async def test_a_school_writes_and_reads_only_its_own_brins(
    clean_dbs: Any, app_client: Callable[..., Any], auth: Any
) -> None:
    other = auth("school", brins=["99AC"])
    async with app_client("ingest") as client:
        write = await client.post("/v1/registraties", json=registratie(), headers=other)
        read = await client.get("/v1/scholen/99AA/registraties", headers=other)
        gemeente = await client.post(
            "/v1/registraties", json=registratie(), headers=auth("gemeente", gemeente="GM9901")
        )
    assert write.status_code == 403
    assert read.status_code == 403
    assert gemeente.status_code == 403


async def test_batch_keeps_valid_items_and_answers_each(
    clean_dbs: Any, app_client: Callable[..., Any], school: School, auth: Any
) -> None:
    items = [registratie(schoolRegistratieId=f"b-{i}", pgn=make_bsn(100 + i)) for i in range(50)]
    items[3]["pgn"] = "111111111"
    items[7]["brin"] = "99ZZ"  # not this token's
    items[9] = registratie(schoolRegistratieId="b-0", pgn=make_bsn(100), minuten=5)  # conflict
    items.append(dict(items[0]))  # identical twin of item 0: unchanged
    async with app_client("ingest") as client:
        response = await client.post(
            "/v1/registratie-batches", json={"registraties": items}, headers=school
        )
        events = await _feed(client, auth, "swv-aggregate")
    assert response.status_code == 200
    body = response.json()
    outcome = {r["index"]: r for r in body["resultaten"]}
    assert outcome[3]["uitkomst"] == "afgewezen"
    assert outcome[3]["probleem"]["invalidParams"][0]["name"] == "pgn"
    assert outcome[7]["probleem"]["status"] == 403
    assert outcome[9]["probleem"]["status"] == 409
    assert outcome[50]["uitkomst"] == "ongewijzigd"
    assert (body["aangemaakt"], body["afgewezen"], body["ongewijzigd"]) == (47, 3, 1)
    assert len(events) == 47


async def test_batch_limits(clean_dbs: Any, app_client: Callable[..., Any], school: School) -> None:
    async with app_client("ingest") as client:
        empty = await client.post(
            "/v1/registratie-batches", json={"registraties": []}, headers=school
        )
        too_big = await client.post(
            "/v1/registratie-batches", json={"registraties": [{}] * 5001}, headers=school
        )
    assert empty.status_code == 400
    assert too_big.status_code == 400
    assert too_big.json()["invalidParams"][0]["name"] == "registraties"


async def test_list_own_registrations_cursor_paged(
    clean_dbs: Any, app_client: Callable[..., Any], school: School
) -> None:
    base = date.today() - timedelta(days=30)
    items = [
        registratie(
            schoolRegistratieId=f"l-{i}",
            datum=(base + timedelta(days=i % 10)).isoformat(),
            notitie="belde moeder",
        )
        for i in range(25)
    ]
    async with app_client("ingest") as client:
        await client.post("/v1/registratie-batches", json={"registraties": items}, headers=school)
        seen: list[str] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 10, "vanaf": base.isoformat()}
            if cursor:
                params["cursor"] = cursor
            page = await client.get("/v1/scholen/99AA/registraties", params=params, headers=school)
            assert page.status_code == 200
            data = page.json()
            seen += [r["schoolRegistratieId"] for r in data["registraties"]]
            cursor = data["volgende"]
            if not cursor:
                break
        one = await client.get("/v1/scholen/99AA/registraties/l-3", headers=school)
    assert sorted(seen) == sorted(f"l-{i}" for i in range(25))
    assert one.json()["notitie"] == "belde moeder"
    assert one.json()["pgn"] == items[3]["pgn"]


async def test_retraction_is_an_event_once(
    clean_dbs: Any, app_client: Callable[..., Any], school: School, auth: Any
) -> None:
    async with app_client("ingest") as client:
        await client.post("/v1/registraties", json=registratie(), headers=school)
        first = await client.delete("/v1/scholen/99AA/registraties/reg-1", headers=school)
        second = await client.delete("/v1/scholen/99AA/registraties/reg-1", headers=school)
        missing = await client.delete("/v1/scholen/99AA/registraties/nope", headers=school)
        gone = await client.get("/v1/scholen/99AA/registraties/reg-1", headers=school)
        events = await _feed(client, auth, "melding")
    assert (first.status_code, second.status_code, missing.status_code) == (204, 204, 404)
    assert gone.status_code == 404
    assert [e["type"] for e in events] == [
        "nl.verzuimhub.registratie.vastgelegd.v1",
        "nl.verzuimhub.registratie.ingetrokken.v1",
    ]


async def test_catalogue_is_served_with_its_version(
    app_client: Callable[..., Any], school: School
) -> None:
    async with app_client("ingest") as client:
        response = await client.get("/v1/categorieen", headers=school)
    codes = {c["code"]: c for c in response.json()["categorieen"]}
    assert codes["luxe_verzuim"]["duoVerzuimsoort"] == "L"
    assert codes["afstandsonderwijs"]["deelname"] is True
    assert response.json()["versie"] == "2026.1"
