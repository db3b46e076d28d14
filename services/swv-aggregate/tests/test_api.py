"""End to end: registrations and a vrijstelling posted to a real ingest, consumed over its feed,
published by the API with disclosure control. What an SWV sees, and what it never sees."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from verzuimhub.testing import make_bsn, registratie, seed_swv_aggregate
from verzuimhub_shared.db import Database

# PO-99-01: 99AA is po, 99BD sbo, 99BF so (+vso). 99AM is po in PO-99-02.
GROUPS = [("99AA", "po", 14), ("99BD", "sbo", 12), ("99BF", "so", 11)]


def _day() -> date:
    day = date.today() - timedelta(days=7)
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    return day


async def _scenario(app_client: Callable[..., Any], auth: Any, mint: Any, db_url: str) -> None:
    day = _day().isoformat()
    items = []
    seed = 100
    for brin, sector, pupils in GROUPS:
        for _ in range(pupils):
            seed += 1
            items.append(
                registratie(
                    schoolRegistratieId=f"r{seed}",
                    brin=brin,
                    sector=sector,
                    pgn=make_bsn(seed),
                    datum=day,
                    categorie="spijbelen",
                )
            )
    # One pupil alone in digital distance education in the region, one in another region.
    items.append(
        registratie(
            schoolRegistratieId="afstand", pgn=make_bsn(7), datum=day, categorie="afstandsonderwijs"
        )
    )
    items.append(registratie(schoolRegistratieId="elders", brin="99AM", pgn=make_bsn(8), datum=day))
    await seed_swv_aggregate(
        app_client,
        auth,
        mint,
        db_url,
        items,
        brins=["99AA", "99BD", "99BF", "99AM"],
        exemption_from=date(2025, 9, 1),
        batch_size=10,
    )


@pytest.fixture
async def loaded(
    clean_dbs: dict[str, str], app_client: Callable[..., Any], auth: Any, mint: Any
) -> dict[str, str]:
    await _scenario(app_client, auth, mint, clean_dbs["swv-aggregate"])
    return clean_dbs


def _cells(body: dict[str, Any], name: str) -> dict[tuple[tuple[str, str], ...], Any]:
    [table] = [t for t in body["tabellen"] if t["naam"] == name]
    return {tuple(sorted(c["categorieen"].items())): c for c in table["cellen"]}


async def test_own_region_in_detail_with_suppression_marked(
    loaded: Any, app_client: Callable[..., Any], auth: Any
) -> None:
    month = _day().strftime("%Y-%m")
    async with app_client("swv-aggregate") as client:
        response = await client.get(
            "/v1/regios/PO-99-01/cijfers",
            params={"periode": month},
            headers=auth("swv", swv="PO-99-01"),
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["gebied"] == "PO-99-01"
    assert body["periode"]["soort"] == "maand"
    assert body["drempel"] == 10
    ongeoorloofd = _cells(body, "verzuim-ongeoorloofd")
    # The ground truth, from what was posted: every group is at least k, so all visible.
    for _, sector, pupils in GROUPS:
        cell = ongeoorloofd[(("sector", sector),)]
        assert (cell["waarde"], cell["onderdrukt"], cell["reden"]) == (pupils, False, None)
    assert ongeoorloofd[()]["waarde"] == sum(n for _, _, n in GROUPS)
    # One pupil in distance education forms a category alone: never visible.
    for cell in _cells(body, "afstandsonderwijs").values():
        assert cell["waarde"] is None
        assert cell["onderdrukt"] is True
        assert cell["reden"] in ("primary", "secondary")
    # The single 5-onder-a exemption: never visible, in no table.
    for name in ("vrijstellingen-actief", "vrijstellingen-gestart"):
        assert all(c["onderdrukt"] for c in _cells(body, name).values())
    uren = {(u["soort"], u["sector"]): u for u in body["uren"]}
    assert uren[("ongeoorloofd", "po")]["uren"] == 14  # 14 pupils x 60 minutes
    assert uren[("geoorloofd", "po")]["uren"] is None
    assert body["vorigJaar"]["periode"]["waarde"] == f"{_day().year - 1}-{_day().month:02d}"


async def test_csv_export_of_a_table(
    loaded: Any, app_client: Callable[..., Any], auth: Any
) -> None:
    month = _day().strftime("%Y-%m")
    headers = auth("swv", swv="PO-99-01")
    async with app_client("swv-aggregate") as client:
        by_param = await client.get(
            "/v1/regios/PO-99-01/cijfers/verzuim-ongeoorloofd",
            params={"periode": month, "formaat": "csv"},
            headers=headers,
        )
        by_accept = await client.get(
            "/v1/regios/PO-99-01/cijfers/afstandsonderwijs",
            params={"periode": month},
            headers=headers | {"Accept": "text/csv"},
        )
        as_json = await client.get(
            "/v1/regios/PO-99-01/cijfers/niveaus", params={"periode": month}, headers=headers
        )
        uren = await client.get(
            "/v1/regios/PO-99-01/cijfers/uren",
            params={"periode": month, "formaat": "csv"},
            headers=headers,
        )
    assert by_param.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(by_param.text)))
    assert rows[0] == ["sector", "value", "suppression"]
    assert ["po", "14", ""] in rows
    assert ["totaal", "37", ""] in rows
    afstand = list(csv.reader(io.StringIO(by_accept.text)))
    assert all(row[1] == "x" and row[2] for row in afstand[1:])
    assert as_json.json()["naam"] == "niveaus"
    assert ["ongeoorloofd", "po", "14", ""] in list(csv.reader(io.StringIO(uren.text)))


async def test_national_figures_for_everyone(
    loaded: Any, app_client: Callable[..., Any], auth: Any
) -> None:
    month = _day().strftime("%Y-%m")
    async with app_client("swv-aggregate") as client:
        response = await client.get(
            "/v1/landelijk/cijfers", params={"periode": month}, headers=auth("swv", swv="VO-99-02")
        )
    assert response.status_code == 200
    body = response.json()
    assert body["gebied"] == "NL"
    cells = _cells(body, "verzuim-ongeoorloofd")
    assert set(cells) >= {(("sector", s),) for s in ("po", "sbo", "so", "vo", "vso", "mbo")}
    # po nationally: 14 in PO-99-01 and 1 in PO-99-02.
    assert cells[(("sector", "po"),)]["waarde"] in (15, None)


@pytest.mark.parametrize("region", ["PO-99-02", "VO-99-01", "XX-00-00", "po-99-02"])
async def test_another_region_is_not_found(
    loaded: Any, app_client: Callable[..., Any], auth: Any, region: str
) -> None:
    async with app_client("swv-aggregate") as client:
        response = await client.get(
            f"/v1/regios/{region}/cijfers",
            params={"periode": "2025-2026"},
            headers=auth("swv", swv="PO-99-01"),
        )
        table = await client.get(
            f"/v1/regios/{region}/cijfers/meldingen",
            params={"periode": "2025-2026", "formaat": "csv"},
            headers=auth("swv", swv="PO-99-01"),
        )
    for answer in (response, table):
        assert answer.status_code == 404
        assert answer.headers["content-type"] == "application/problem+json"
        # The same answer as for a region that does not exist: nothing leaks.
        assert answer.json()["detail"] == "Deze regio bestaat niet"


@pytest.mark.parametrize("periode", ["2025-11-01", "2025-11-01..2025-11-30", "2025-W60", "x"])
async def test_only_fixed_periods(
    clean_dbs: Any, app_client: Callable[..., Any], auth: Any, periode: str
) -> None:
    async with app_client("swv-aggregate") as client:
        response = await client.get(
            "/v1/landelijk/cijfers",
            params={"periode": periode},
            headers=auth("swv", swv="PO-99-01"),
        )
    assert response.status_code == 400
    assert [p["name"] for p in response.json()["invalidParams"]] == ["periode"]


async def test_no_token_no_figures(
    clean_dbs: Any, app_client: Callable[..., Any], auth: Any
) -> None:
    async with app_client("swv-aggregate") as client:
        anonymous = await client.get("/v1/landelijk/cijfers", params={"periode": "2025-2026"})
        school = await client.get(
            "/v1/landelijk/cijfers",
            params={"periode": "2025-2026"},
            headers=auth("school", brins=["99AA"]),
        )
    assert (anonymous.status_code, school.status_code) == (401, 403)


async def test_no_response_carries_a_person_level_identifier(
    loaded: dict[str, str], app_client: Callable[..., Any], auth: Any
) -> None:
    """Scan every answer for every pseudonym and id swv-aggregate holds."""
    db = Database(loaded["swv-aggregate"])
    async with db.transaction() as session:
        secrets: set[str] = set()
        for query in (
            "SELECT leerling, id FROM swv_registraties",
            "SELECT id, id FROM swv_vrijstellingen",
        ):
            for row in await session.execute(text(query)):
                secrets.update(row)
    await db.dispose()
    assert len(secrets) > 30
    month = _day().strftime("%Y-%m")
    headers = auth("swv", swv="PO-99-01")
    async with app_client("swv-aggregate") as client:
        paths = ["/v1/regios/PO-99-01/cijfers", "/v1/landelijk/cijfers"]
        paths += [f"/v1/regios/PO-99-01/cijfers/{t}" for t in ("niveaus", "uren", "meldingen")]
        bodies = []
        for path in paths:
            formats = ("json", "csv") if path.count("/") == 5 else (None,)  # tables only
            for periode in (month, _day().strftime("%G-W%V")):
                for formaat in formats:
                    params = {"periode": periode} | ({"formaat": formaat} if formaat else {})
                    response = await client.get(path, params=params, headers=headers)
                    assert response.status_code == 200, (path, response.text)
                    bodies.append(response.text)
    leaked = [s for s in secrets if any(s in body for body in bodies)]
    assert leaked == []
