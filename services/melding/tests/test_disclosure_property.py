"""Property: whatever a school registers, in every category and with any note, neither DUO
nor the gemeente ever receives a reason for authorised absence, a note, or a field outside
the legal list (Besluit register onderwijsdeelnemers art. 13 and 14)."""

from __future__ import annotations

import itertools
from datetime import date, timedelta
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from verzuimhub.testing import BEVESTIGING, make_bsn, registratie
from verzuimhub_melding.duo.contract import LEGAL_FIELDS, field_paths

CATEGORIES = [
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
AUTHORISED = {
    "ziekte",
    "medisch_bezoek",
    "schorsing",
    "godsdienst",
    "verlof_vakantie",
    "verlof_gewichtig",
    "school_gesloten",
    "afstandsonderwijs",
}
NOTES = ["NOTE-MARKER-diagnose", "NOTE-MARKER-thuissituatie", "NOTE-MARKER-moskee"]
_counter = itertools.count(900)

day_strategy = st.tuples(
    st.integers(0, 11),  # lesdag offset within the three weeks before last week
    st.sampled_from(CATEGORIES),
    st.integers(30, 400),
    st.one_of(st.none(), st.sampled_from(NOTES)),
)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(days=st.lists(day_strategy, min_size=4, max_size=14, unique_by=lambda d: d[0]))
async def test_nothing_beyond_the_legal_fields_leaves(hub: Any, auth: Any, days: list[Any]) -> None:
    school = auth("school", brins=["99AA"])
    pupil = next(_counter)
    pgn = make_bsn(pupil)
    today = date.today()
    monday = today - timedelta(days=today.weekday() + 28)
    lesdagen = [monday + timedelta(days=7 * (i // 4) + i % 4) for i in range(12)]
    items = [
        registratie(
            schoolRegistratieId=f"h{pupil}-{offset}",
            pgn=pgn,
            categorie=category,
            minuten=minutes,
            datum=lesdagen[offset].isoformat(),
            alleLessenGemist=minutes >= 300,
            **({"notitie": note} if note else {}),
        )
        for offset, category, minutes, note in days
    ]
    response = await hub.ingest.post(
        "/v1/registratie-batches", json={"registraties": items}, headers=school
    )
    assert response.json()["afgewezen"] == 0, response.text
    await hub.sync()
    mine = [
        m
        for m in (
            await hub.melding.get(
                "/v1/scholen/99AA/meldingen",
                params={"status": "concept", "limit": 500},
                headers=school,
            )
        ).json()["meldingen"]
        if m["pgn"] == pgn
    ]
    for concept in mine:
        await hub.melding.post(
            f"/v1/scholen/99AA/meldingen/{concept['id']}/bevestiging",
            json=BEVESTIGING,
            headers=school,
        )
    while await hub.forward():
        pass
    sent = [
        r
        for r in (await hub.duo.get("/v1/test/ontvangen")).json()["meldingen"]
        if orjson.loads(r["ruweInhoud"])["leerling"]["pgn"] == pgn
    ]
    gemeente = (
        await hub.melding.get(
            "/v1/meldingen", params={"limit": 500}, headers=auth("gemeente", gemeente="GM9901")
        )
    ).json()
    theirs = [m for m in gemeente["meldingen"] if m["melding"]["leerling"]["pgn"] == pgn]
    assert len(sent) == len(mine) == len(theirs)
    for body in [orjson.loads(r["ruweInhoud"]) for r in sent] + [m["melding"] for m in theirs]:
        assert field_paths(body) <= LEGAL_FIELDS
        text_ = orjson.dumps(body).decode()
        assert "NOTE-MARKER" not in text_
        for code in AUTHORISED:
            assert code not in text_
        assert body.get("vermoedelijkeReden") in (
            None,
            "te_laat",
            "spijbelen",
            "luxe_verzuim",
            "ongeoorloofd_overig",
        )
    for m in theirs:
        assert set(m) == {"id", "status", "duoMeldingsnummer", "melding"}
