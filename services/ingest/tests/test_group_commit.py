"""Single registrations sent at the same moment share transactions (group commit), on
PostgreSQL with the real migrations: each request still gets exactly its own answer, and
the feed gets each registration's events once, at consecutive positions."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from sqlalchemy.exc import DBAPIError

from verzuimhub.testing import eventually, make_bsn, registratie
from verzuimhub_shared.group_commit import GroupCommit

CONCURRENT = 40


def _metric(text: str, name: str) -> float:
    [line] = [line for line in text.splitlines() if line.startswith(name + " ")]
    return float(line.split()[1])


async def _feed(client: Any, auth: Callable[..., dict[str, str]], consumer: str) -> list[Any]:
    response = await client.get(
        "/v1/feed", params={"limit": 5000}, headers=auth("consumer", consumer=consumer)
    )
    assert response.status_code == 200
    return list(orjson.loads(response.content))


async def test_concurrent_singles_share_transactions_and_each_gets_its_own_answer(
    clean_dbs: Any, app_client: Callable[..., Any], auth: Callable[..., dict[str, str]]
) -> None:
    school = auth("school", brins=["99AA"])
    bodies = [
        registratie(schoolRegistratieId=f"g-{i}", pgn=make_bsn(100 + i), minuten=10 + i)
        for i in range(CONCURRENT)
    ]
    async with app_client("ingest") as client:
        answers = await asyncio.gather(
            *(client.post("/v1/registraties", json=body, headers=school) for body in bodies)
        )
        metrics = (await client.get("/metrics")).text
        melding = await _feed(client, auth, "melding")
        swv = await _feed(client, auth, "swv-aggregate")

    assert [a.status_code for a in answers] == [201] * CONCURRENT
    assert [a.json()["schoolRegistratieId"] for a in answers] == [
        b["schoolRegistratieId"] for b in bodies
    ]
    ids = [a.json()["registratieId"] for a in answers]
    assert len(set(ids)) == CONCURRENT
    # Fewer transactions than requests: they were grouped.
    groups = _metric(metrics, "ingest_registratie_groups_total")
    assert _metric(metrics, "ingest_registratie_group_items_total") == CONCURRENT
    assert 1 <= groups < CONCURRENT
    # Each registration's event once per consumer; the feed's positions have no gap.
    assert sorted(e["data"]["registratieId"] for e in melding) == sorted(ids)
    assert len(swv) == CONCURRENT
    positions = sorted(e["position"] for e in melding + swv)
    assert positions == list(range(positions[0], positions[0] + 2 * CONCURRENT))


async def test_refusals_in_a_group_answer_only_their_own_request(
    clean_dbs: Any, app_client: Callable[..., Any], auth: Callable[..., dict[str, str]]
) -> None:
    school = auth("school", brins=["99AA"])
    async with app_client("ingest") as client:
        first = await client.post(
            "/v1/registraties", json=registratie(schoolRegistratieId="known"), headers=school
        )
        assert first.status_code == 201
        requests = {
            "new": registratie(schoolRegistratieId="new", pgn=make_bsn(7)),
            "replay": registratie(schoolRegistratieId="known"),
            "stale": registratie(schoolRegistratieId="known", minuten=61),
            "invalid": registratie(schoolRegistratieId="bad", pgn="123456789"),
            "other school": registratie(schoolRegistratieId="x", brin="99AB"),
            "twin a": registratie(schoolRegistratieId="twin", pgn=make_bsn(8)),
            "twin b": registratie(schoolRegistratieId="twin", pgn=make_bsn(8)),
        }
        answers = dict(
            zip(
                requests,
                await asyncio.gather(
                    *(
                        client.post("/v1/registraties", json=body, headers=school)
                        for body in requests.values()
                    )
                ),
                strict=True,
            )
        )
        melding = await _feed(client, auth, "melding")

    status = {name: answer.status_code for name, answer in answers.items()}
    assert status["new"] == 201
    assert status["replay"] == 200
    assert answers["replay"].json() == first.json()
    assert status["stale"] == 409
    assert status["invalid"] == 400
    assert answers["invalid"].json()["invalidParams"][0]["name"] == "pgn"
    assert status["other school"] == 403
    # The same registration twice at once: stored once, the other answered as unchanged.
    assert sorted([status["twin a"], status["twin b"]]) == [200, 201]
    assert answers["twin a"].json() == answers["twin b"].json()
    stored = {answers[n].json()["registratieId"] for n in ("new", "twin a")}
    assert sorted(e["data"]["registratieId"] for e in melding) == sorted(
        stored | {first.json()["registratieId"]}
    )


async def test_a_group_that_fails_is_retried_item_by_item(
    clean_dbs: Any,
    app_client: Callable[..., Any],
    auth: Callable[..., dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A database failure caused by one item (here: injected for one school id) rolls back
    its group; the others are stored when their items go again on their own."""
    from verzuimhub_ingest import repository

    real_insert = repository.insert_registraties

    async def insert_failing_for_one(session: Any, rows: Any) -> set[str]:
        if any(row["school_registratie_id"] == "poison" for row in rows):
            raise DBAPIError("INSERT INTO registraties", None, Exception("injected failure"))
        return await real_insert(session, rows)

    monkeypatch.setattr(repository, "insert_registraties", insert_failing_for_one)
    school = auth("school", brins=["99AA"])
    names = ["a", "poison", "b", "c"]
    async with app_client("ingest") as client:
        answers = await asyncio.gather(
            *(
                client.post(
                    "/v1/registraties",
                    json=registratie(schoolRegistratieId=name, pgn=make_bsn(20 + i)),
                    headers=school,
                )
                for i, name in enumerate(names)
            ),
            return_exceptions=True,  # the in-process transport re-raises the app's 500
        )
        metrics = (await client.get("/metrics")).text
        melding = await _feed(client, auth, "melding")

    # A database error that is not a lost connection stays a 500 (the in-process transport
    # re-raises it after the problem response), for its own request only.
    assert isinstance(answers[1], DBAPIError)
    assert not answers[1].connection_invalidated
    assert [a.status_code for a in answers if not isinstance(a, BaseException)] == [201] * 3
    stored = [a.json()["registratieId"] for a in answers if not isinstance(a, BaseException)]
    assert sorted(e["data"]["registratieId"] for e in melding) == sorted(stored)
    # The failed group, then each of its items alone: more groups than requests' groups.
    assert _metric(metrics, "ingest_registratie_group_items_total") > len(names)


async def test_when_too_many_wait_a_request_is_answered_503_at_once(
    clean_dbs: Any,
    app_client: Callable[..., Any],
    auth: Callable[..., dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The database stalls (a group never finishes): requests beyond the bound are refused
    with Retry-After instead of queueing without end."""
    from verzuimhub_ingest import api

    stalled = asyncio.Event()
    writing = asyncio.Event()

    async def stuck(items: list[Any]) -> list[Any]:
        writing.set()
        await stalled.wait()
        raise RuntimeError("released at the end of the test")

    groups: Any = GroupCommit(stuck, max_waiting=1)
    monkeypatch.setattr(api, "_registratie_groups", lambda request: groups)
    school = auth("school", brins=["99AA"])
    async with app_client("ingest") as client:

        def post(i: int) -> Any:
            body = registratie(schoolRegistratieId=f"s{i}", pgn=make_bsn(30 + i))
            return client.post("/v1/registraties", json=body, headers=school)

        pending = [asyncio.create_task(post(0))]
        await eventually(writing.is_set)  # the first is being written
        pending.append(asyncio.create_task(post(1)))
        await eventually(lambda: groups.waiting == 1)  # the second waits
        try:
            refused = await asyncio.wait_for(post(9), timeout=10)
        finally:
            stalled.set()
            await asyncio.gather(*pending, return_exceptions=True)
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "1"
    assert refused.headers["content-type"] == "application/problem+json"
