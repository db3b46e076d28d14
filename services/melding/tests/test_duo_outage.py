"""DUO failing half the time, with timeouts and dropped answers: every melding arrives once."""

from __future__ import annotations

from typing import Any

from verzuimhub.testing import BEVESTIGING, make_bsn, truancy_week
from verzuimhub_melding.duo.breaker import CircuitBreaker

PUPILS = 8


async def _confirm_all(hub: Any, auth: Any) -> list[str]:
    school = auth("school", brins=["99AA"])
    for i in range(PUPILS):
        await hub.post_registraties(truancy_week(make_bsn(700 + i), prefix=f"o{i}"))
    await hub.sync()
    concepts = (
        await hub.melding.get(
            "/v1/scholen/99AA/meldingen", params={"status": "concept"}, headers=school
        )
    ).json()["meldingen"]
    assert len(concepts) == PUPILS
    for concept in concepts:
        response = await hub.melding.post(
            f"/v1/scholen/99AA/meldingen/{concept['id']}/bevestiging",
            json=BEVESTIGING,
            headers=school,
        )
        assert response.status_code == 200
    return [c["id"] for c in concepts]


async def test_every_melding_is_delivered_exactly_once_through_an_outage(
    hub: Any, auth: Any
) -> None:
    hub.melding_app.state.settings.duo_max_attempts = 100
    ids = await _confirm_all(hub, auth)
    faults = {
        "errorRate": 0.4,
        "timeoutRate": 0.1,
        "hangMs": 700,
        "dropAfterCommitRate": 0.2,
        "seed": 11,
    }
    assert (await hub.duo.post("/v1/test/storingen", json=faults)).status_code == 200
    rounds = 0
    while rounds < 400:
        rounds += 1
        await hub.forward()
        school = auth("school", brins=["99AA"])
        pending = [
            m
            for m in (await hub.melding.get("/v1/scholen/99AA/meldingen", headers=school)).json()[
                "meldingen"
            ]
            if m["status"] != "geregistreerd"
        ]
        if not pending:
            break
    requests = (await hub.duo.get("/v1/test/verzoeken")).json()["verzoeken"]
    await hub.duo.delete("/v1/test/storingen")
    received = (await hub.duo.get("/v1/test/ontvangen")).json()["meldingen"]
    assert sorted(r["meldingId"] for r in received) == sorted(ids)  # each exactly once
    assert len(requests) > len(ids)  # the faults really forced retries
    assert any(r["storing"] == "verbroken" for r in requests)  # and dropped answers


async def test_dead_letter_after_the_configured_attempts_is_visible_in_metrics(
    hub: Any, auth: Any
) -> None:
    hub.melding_app.state.settings.duo_max_attempts = 2
    # A breaker that never opens, so every item spends its attempts within the test.
    hub.duo_client.breaker = CircuitBreaker(failure_threshold=10_000)
    await _confirm_all(hub, auth)
    await hub.duo.post("/v1/test/storingen", json={"errorRate": 1.0, "seed": 1})
    for _ in range(30):
        await hub.forward()
    await hub.housekeeping()
    metrics = (await hub.melding.get("/metrics")).text
    assert f"duo_outbox_dead {float(PUPILS)}" in metrics
    assert f"duo_outbox_dead_letters_total {float(PUPILS)}" in metrics
    assert "duo_outbox_depth 0.0" in metrics
    await hub.duo.delete("/v1/test/storingen")
    assert (await hub.duo.get("/v1/test/ontvangen")).json()["meldingen"] == []
