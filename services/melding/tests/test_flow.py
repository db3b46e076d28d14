"""From registrations to a concept, the school's confirmation, DUO, and the woongemeente."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import orjson
from sqlalchemy import text

from verzuimhub.testing import BEVESTIGING, make_bsn, registratie, truancy_week
from verzuimhub_melding.duo.contract import LEGAL_FIELDS, field_paths
from verzuimhub_shared.db import make_engine


async def test_sixteen_hours_to_duo_and_the_right_gemeente(
    hub: Any, auth: Any, clean_dbs: Any
) -> None:
    school = auth("school", brins=["99AA"])
    pgn = make_bsn(31)
    await hub.post_registraties(truancy_week(pgn))
    # Authorised absence the week before: goes along as "geoorloofd", never with its reason.
    monday = date.today() - timedelta(days=date.today().weekday() + 14)
    await hub.post_registraties(
        [
            registratie(
                schoolRegistratieId="z-1",
                pgn=pgn,
                categorie="ziekte",
                datum=(monday - timedelta(days=7)).isoformat(),
                minuten=120,
                notitie="griep",
            )
        ]
    )
    assert await hub.sync() == 5

    concepts = (
        await hub.melding.get(
            "/v1/scholen/99AA/meldingen", params={"status": "concept"}, headers=school
        )
    ).json()
    [concept] = concepts["meldingen"]
    assert concept["soort"] == "V3"
    assert concept["begindatum"] == monday.isoformat()
    assert concept["einddatum"] == (monday + timedelta(days=3)).isoformat()
    assert concept["uren"] == 20.0
    assert concept["pgn"] == pgn

    # Nothing leaves before the school confirms (no automatic sending without deliberation).
    assert await hub.forward() == 0
    gemeente = auth("gemeente", gemeente="GM9901")
    assert (await hub.melding.get("/v1/meldingen", headers=gemeente)).json()["meldingen"] == []

    confirmed = await hub.melding.post(
        f"/v1/scholen/99AA/meldingen/{concept['id']}/bevestiging", json=BEVESTIGING, headers=school
    )
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["status"] == "ingediend"
    again = await hub.melding.post(
        f"/v1/scholen/99AA/meldingen/{concept['id']}/bevestiging", json=BEVESTIGING, headers=school
    )
    assert again.status_code == 200

    assert await hub.forward() == 1
    assert await hub.forward() == 0
    received = (await hub.duo.get("/v1/test/ontvangen")).json()["meldingen"]
    assert len(received) == 1
    raw = orjson.loads(received[0]["ruweInhoud"])
    assert field_paths(raw) <= LEGAL_FIELDS
    assert raw["leerling"] == {"pgn": pgn, "geboortedatum": "2015-03-04"}
    assert raw["verzuimsoort"] == "V3"
    assert raw["woongemeente"] == "GM9901"
    text_sent = received[0]["ruweInhoud"]
    for forbidden in ("winkelcentrum", "griep", "ziekte", "notitie"):
        assert forbidden not in text_sent
    assert {
        "datum": (monday - timedelta(days=7)).isoformat(),
        "uren": 2.0,
        "geoorloofd": True,
    } not in raw["verzuimdagen"]  # before the begindatum: not part of this melding

    detail = (
        await hub.melding.get(f"/v1/scholen/99AA/meldingen/{concept['id']}", headers=school)
    ).json()
    assert detail["status"] == "geregistreerd"
    assert detail["duoMeldingsnummer"] == received[0]["meldingsnummer"]

    listed = (await hub.melding.get("/v1/meldingen", headers=gemeente)).json()["meldingen"]
    assert [m["id"] for m in listed] == [concept["id"]]
    assert field_paths(orjson.loads(orjson.dumps(listed[0]["melding"]))) <= LEGAL_FIELDS
    other = auth("gemeente", gemeente="GM9902")
    assert (await hub.melding.get("/v1/meldingen", headers=other)).json()["meldingen"] == []
    assert (
        await hub.melding.get(f"/v1/meldingen/{concept['id']}", headers=other)
    ).status_code == 404

    status = await hub.melding.post(
        f"/v1/meldingen/{concept['id']}/status", json={"status": "in_behandeling"}, headers=gemeente
    )
    assert status.json()["status"] == "in_behandeling"
    closed = await hub.melding.post(
        f"/v1/meldingen/{concept['id']}/status", json={"status": "afgesloten"}, headers=gemeente
    )
    assert closed.status_code == 400  # a reason is required
    closed = await hub.melding.post(
        f"/v1/meldingen/{concept['id']}/status",
        json={"status": "afgesloten", "reden": "verzuim_gestopt", "opmerking": "Goed gesprek"},
        headers=gemeente,
    )
    assert closed.json()["status"] == "afgesloten"

    engine = make_engine(clean_dbs["melding"])
    async with engine.connect() as conn:
        audited = {
            tuple(r)
            for r in await conn.execute(
                text("SELECT organisation, action, record_id FROM audit_log")
            )
        }
        stored = " ".join(str(r) for r in await conn.execute(text("SELECT * FROM leerlingen")))
    await engine.dispose()
    assert ("gemeente:GM9901", "lezen", concept["id"]) in audited
    assert ("gemeente:GM9901", "status:afgesloten", concept["id"]) in audited
    assert ("verzuimhub", "doorsturen:indienen", concept["id"]) in audited
    assert pgn not in stored


async def test_correction_makes_a_concept_no_longer_due(hub: Any, auth: Any) -> None:
    school = auth("school", brins=["99AA"])
    pgn = make_bsn(32)
    await hub.post_registraties(truancy_week(pgn))
    await hub.sync()
    [concept] = (await hub.melding.get("/v1/scholen/99AA/meldingen", headers=school)).json()[
        "meldingen"
    ]
    # The school corrects two days to illness: below 16 hours now.
    fixes = [dict(item, versie=2, categorie="ziekte") for item in truancy_week(pgn)[:2]]
    await hub.post_registraties(fixes)
    await hub.sync()
    after = (
        await hub.melding.get(f"/v1/scholen/99AA/meldingen/{concept['id']}", headers=school)
    ).json()
    assert after["status"] == "vervallen"
    assert await hub.forward() == 0


async def test_withdrawal_reaches_duo(hub: Any, auth: Any) -> None:
    school = auth("school", brins=["99AA"])
    await hub.post_registraties(truancy_week(make_bsn(33)))
    await hub.sync()
    [concept] = (await hub.melding.get("/v1/scholen/99AA/meldingen", headers=school)).json()[
        "meldingen"
    ]
    mid = concept["id"]
    await hub.melding.post(
        f"/v1/scholen/99AA/meldingen/{mid}/bevestiging", json=BEVESTIGING, headers=school
    )
    assert await hub.forward() == 1
    withdrawn = await hub.melding.post(
        f"/v1/scholen/99AA/meldingen/{mid}/intrekking",
        json={"reden": "alsnog_geoorloofd"},
        headers=school,
    )
    assert withdrawn.json()["status"] == "ingetrokken"
    assert await hub.forward() == 1
    [received] = (await hub.duo.get("/v1/test/ontvangen")).json()["meldingen"]
    assert received["status"] == "Ingetrokken"


async def test_a_school_sees_only_its_own_meldingen(hub: Any, auth: Any) -> None:
    await hub.post_registraties(truancy_week(make_bsn(34)))
    await hub.sync()
    [concept] = (
        await hub.melding.get("/v1/scholen/99AA/meldingen", headers=auth("school", brins=["99AA"]))
    ).json()["meldingen"]
    other = auth("school", brins=["99AB"])
    assert (await hub.melding.get("/v1/scholen/99AA/meldingen", headers=other)).status_code == 403
    assert (
        await hub.melding.get(f"/v1/scholen/99AB/meldingen/{concept['id']}", headers=other)
    ).status_code == 404
    confirm = await hub.melding.post(
        f"/v1/scholen/99AB/meldingen/{concept['id']}/bevestiging", json=BEVESTIGING, headers=other
    )
    assert confirm.status_code == 404


async def test_overig_verzuim_and_the_attendance_overview(hub: Any, auth: Any) -> None:
    school = auth("school", brins=["99AA"])
    pgn = make_bsn(35)
    await hub.post_registraties(truancy_week(pgn, minutes=60, days=3))  # 3 hours: nothing due
    await hub.sync()
    assert (await hub.melding.get("/v1/scholen/99AA/meldingen", headers=school)).json()[
        "meldingen"
    ] == []
    monday = date.today() - timedelta(days=date.today().weekday() + 14)
    overig = await hub.melding.post(
        "/v1/scholen/99AA/meldingen",
        json=BEVESTIGING
        | {
            "pgn": pgn,
            "vestiging": "00",
            "begindatum": monday.isoformat(),
            "einddatum": (monday + timedelta(days=4)).isoformat(),
        },
        headers=school,
    )
    assert overig.status_code == 201, overig.text
    assert overig.json()["soort"] == "O"
    assert overig.json()["status"] == "ingediend"
    unknown = await hub.melding.post(
        "/v1/scholen/99AA/meldingen",
        json=BEVESTIGING
        | {
            "pgn": make_bsn(36),
            "vestiging": "00",
            "begindatum": monday.isoformat(),
            "einddatum": monday.isoformat(),
        },
        headers=school,
    )
    assert unknown.status_code == 404
    overview = (await hub.melding.get("/v1/scholen/99AA/leerlingen", headers=school)).json()
    [pupil] = overview["leerlingen"]
    assert pupil["pgn"] == pgn
    assert pupil["ongeoorloofdMinuten"] == 180
    assert pupil["niveau"] in (1, 2, 3)


async def test_overdue_concepts_and_the_opt_in_auto_forward_policy(hub: Any, auth: Any) -> None:
    school = auth("school", brins=["99AA"])
    await hub.post_registraties(truancy_week(make_bsn(37)))
    await hub.sync()
    [concept] = (await hub.melding.get("/v1/scholen/99AA/meldingen", headers=school)).json()[
        "meldingen"
    ]
    assert concept["teLaat"] is True  # two weeks ago + 5 working days has passed
    await hub.housekeeping()
    assert "meldingen_overdue 1.0" in (await hub.melding.get("/metrics")).text
    assert await hub.forward() == 0  # off by default: nothing leaves without deliberation

    policy = await hub.melding.get("/v1/scholen/99AA/beleid", headers=school)
    assert policy.json() == {"automatischDoorsturen": False, "standaardBevestiging": None}
    incomplete = await hub.melding.put(
        "/v1/scholen/99AA/beleid", json={"automatischDoorsturen": True}, headers=school
    )
    assert incomplete.status_code == 400
    other = await hub.melding.put(
        "/v1/scholen/99AA/beleid",
        json={"automatischDoorsturen": True, "standaardBevestiging": BEVESTIGING},
        headers=auth("school", brins=["99AB"]),
    )
    assert other.status_code == 403
    on = await hub.melding.put(
        "/v1/scholen/99AA/beleid",
        json={"automatischDoorsturen": True, "standaardBevestiging": BEVESTIGING},
        headers=school,
    )
    assert on.status_code == 200
    await hub.housekeeping()
    assert await hub.forward() == 1
    after = (
        await hub.melding.get(f"/v1/scholen/99AA/meldingen/{concept['id']}", headers=school)
    ).json()
    assert after["status"] == "geregistreerd"
