"""The authorisation matrix: every route each service actually serves × every kind of caller.

Routes are enumerated from the apps themselves (``verzuimhub_shared.routes.iter_routes``), so
a new route without a rule below fails :func:`test_every_route_has_a_rule`. For each route and
caller the expected status follows from the rule:

- anonymous → 401 (public routes: their status);
- a token without the route's scope → 403;
- a token with the scope, for the organisation that owns the addressed data → ``own``;
- a token with the scope, for another organisation → ``other`` (403 for a BRIN in the path,
  404 where the hub does not even confirm that the record exists), and nothing of the own
  organisation's data may appear in that answer.

Mutating routes address seeded records; callers are tried in a fixed order with the owning
organisation last, so a denied caller always meets the record intact.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from verzuimhub.services import service
from verzuimhub.testing import BEVESTIGING, make_bsn, running_app, settings_for, truancy_week
from verzuimhub_melding.worker import catch_up
from verzuimhub_shared.auth import ROLE_SCOPES
from verzuimhub_shared.routes import iter_routes

pytestmark = pytest.mark.postgres

#: caller → (role, token claims); None is anonymous. The "own" organisation is 99AA (in
#: GM9901, in PO-99-01); "other" is 99AF (in GM9902), GM9902 and PO-99-02.
CALLERS: dict[str, tuple[str, dict[str, Any]] | None] = {
    "anonymous": None,
    "school_own": ("school", {"brins": ["99AA"]}),
    "school_other": ("school", {"brins": ["99AF"]}),
    "gemeente_own": ("gemeente", {"gemeente": "GM9901"}),
    "gemeente_other": ("gemeente", {"gemeente": "GM9902"}),
    "swv_own": ("swv", {"swv": "PO-99-01"}),
    "swv_other": ("swv", {"swv": "PO-99-02"}),
    "consumer_melding": ("consumer", {"consumer": "melding"}),
    "consumer_swv": ("consumer", {"consumer": "swv-aggregate"}),
    "admin": ("admin", {}),
}
OWN_CALLERS = {"school_own", "gemeente_own", "swv_own", "consumer_melding", "consumer_swv"}
SERVICES = ("ingest", "melding", "swv-aggregate")


@dataclass(frozen=True)
class Rule:
    own: int
    other: int | None = None  # None: other organisations are treated like the own one
    path: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    body: Any = None
    #: Extra assertion on another organisation's answer (e.g. a batch with every item refused).
    other_check: Callable[[httpx.Response], None] | None = None


PUBLIC = Rule(200)


def _all_refused(response: httpx.Response) -> None:
    body = response.json()
    assert body["afgewezen"] == len(body["resultaten"]) > 0
    assert {r["probleem"]["status"] for r in body["resultaten"]} == {403}


def _day(offset: int) -> str:
    return (date.today() - timedelta(days=offset)).isoformat()


def _vrijstelling(soort: str | None) -> dict[str, Any]:
    body = {"pgn": make_bsn(77), "geboortedatum": "2014-01-01", "begindatum": _day(30)}
    return {"soort": soort, **body} if soort else body


def rules(ids: dict[str, str]) -> dict[tuple[str, str, str], Rule]:
    """(service, METHOD, path) → rule. ``ids`` are the seeded records."""
    registratie = truancy_week(make_bsn(50), prefix="mx")[0] | {"schoolRegistratieId": "mx-new"}
    public = {
        (name, "GET", path): PUBLIC
        for name in SERVICES
        for path in ("/health/live", "/health/ready", "/metrics", "/v1/openapi.json")
    }
    brin = {"brin": "99AA"}
    school_melding = {"brin": "99AA", "id": ids["concept"]}
    return public | {
        # --- ingest ---------------------------------------------------------------------
        ("ingest", "GET", "/v1/audit"): Rule(200),
        ("ingest", "GET", "/v1/feed"): Rule(200),
        ("ingest", "GET", "/v1/categorieen"): Rule(200),
        ("ingest", "POST", "/v1/registraties"): Rule(201, 403, body=registratie),
        ("ingest", "POST", "/v1/registratie-batches"): Rule(
            200,
            200,
            body={"registraties": [registratie | {"schoolRegistratieId": "mx-batch"}]},
            other_check=_all_refused,
        ),
        ("ingest", "GET", "/v1/scholen/{brin}/registraties"): Rule(200, 403, path=brin),
        ("ingest", "GET", "/v1/scholen/{brin}/registraties/{schoolRegistratieId}"): Rule(
            200, 403, path=brin | {"schoolRegistratieId": "a-0"}
        ),
        ("ingest", "DELETE", "/v1/scholen/{brin}/registraties/{schoolRegistratieId}"): Rule(
            204, 403, path=brin | {"schoolRegistratieId": "mx-new"}
        ),
        **{
            ("ingest", method, f"/v1/{collection}{suffix}"): rule
            for collection, soort in (("vrijstellingen", "5a"), ("absoluut-verzuim", None))
            for method, suffix, rule in (
                ("GET", "", Rule(200, 200)),
                ("POST", "", Rule(201, 201, body=_vrijstelling(soort))),
                (
                    "PATCH",
                    "/{id}",
                    Rule(200, 404, path={"id": ids[collection]}, body={"einddatum": _day(1)}),
                ),
                ("DELETE", "/{id}", Rule(204, 404, path={"id": ids[collection]})),
            )
        },
        # --- melding --------------------------------------------------------------------
        ("melding", "GET", "/v1/audit"): Rule(200),
        ("melding", "GET", "/v1/feed"): Rule(200),
        ("melding", "GET", "/v1/feed-cursors"): Rule(200),
        ("melding", "GET", "/v1/meldingen"): Rule(200, 200),
        ("melding", "GET", "/v1/meldingen/{id}"): Rule(200, 404, path={"id": ids["ingediend"]}),
        ("melding", "POST", "/v1/meldingen/{id}/status"): Rule(
            200, 404, path={"id": ids["ingediend"]}, body={"status": "in_behandeling"}
        ),
        ("melding", "GET", "/v1/scholen/{brin}/beleid"): Rule(200, 403, path=brin),
        ("melding", "PUT", "/v1/scholen/{brin}/beleid"): Rule(
            200, 403, path=brin, body={"automatischDoorsturen": False}
        ),
        ("melding", "GET", "/v1/scholen/{brin}/leerlingen"): Rule(200, 403, path=brin),
        ("melding", "GET", "/v1/scholen/{brin}/meldingen"): Rule(200, 403, path=brin),
        ("melding", "POST", "/v1/scholen/{brin}/meldingen"): Rule(
            201,
            403,
            path=brin,
            body=BEVESTIGING
            | {
                "pgn": ids["pgn"],
                "vestiging": "00",
                "begindatum": ids["begindatum"],
                "einddatum": ids["begindatum"],
            },
        ),
        ("melding", "GET", "/v1/scholen/{brin}/meldingen/{id}"): Rule(
            200, 403, path=school_melding
        ),
        ("melding", "POST", "/v1/scholen/{brin}/meldingen/{id}/bevestiging"): Rule(
            200, 403, path=school_melding, body=BEVESTIGING
        ),
        ("melding", "POST", "/v1/scholen/{brin}/meldingen/{id}/intrekking"): Rule(
            200, 403, path=school_melding, body={"reden": "onterecht_gemeld"}
        ),
        # --- swv-aggregate --------------------------------------------------------------
        # The dashboard shell and its assets hold no figures; the development sign-in
        # answers 404 outside env=development with the development key pair.
        ("swv-aggregate", "GET", "/dashboard"): PUBLIC,
        ("swv-aggregate", "GET", "/dashboard/static/{bestand}"): Rule(
            200, path={"bestand": "dashboard.js"}
        ),
        ("swv-aggregate", "GET", "/dashboard/ontwikkel-aanmelding"): Rule(404),
        ("swv-aggregate", "POST", "/dashboard/ontwikkel-aanmelding"): Rule(
            404, body={"swvCode": "PO-99-01"}
        ),
        ("swv-aggregate", "GET", "/v1/feed-cursors"): Rule(200),
        ("swv-aggregate", "GET", "/v1/landelijk/cijfers"): Rule(
            200, query={"periode": "2025-2026"}
        ),
        ("swv-aggregate", "GET", "/v1/landelijk/cijfers/{tabel}"): Rule(
            200, path={"tabel": "verzuim-ongeoorloofd"}, query={"periode": "2025-2026"}
        ),
        ("swv-aggregate", "GET", "/v1/regios/{swvCode}/cijfers"): Rule(
            200, 404, path={"swvCode": "PO-99-01"}, query={"periode": "2025-2026"}
        ),
        ("swv-aggregate", "GET", "/v1/regios/{swvCode}/cijfers/{tabel}"): Rule(
            200,
            404,
            path={"swvCode": "PO-99-01", "tabel": "verzuim-ongeoorloofd"},
            query={"periode": "2025-2026"},
        ),
    }


def expected(scope: str | None, rule: Rule, caller: str) -> int:
    if scope is None:
        return rule.own
    claims = CALLERS[caller]
    if claims is None:
        return 401
    if scope not in ROLE_SCOPES[claims[0]]:
        return 403
    if caller in OWN_CALLERS or caller == "admin" or rule.other is None:
        return rule.own
    return rule.other


def _caller_order(caller: str) -> int:
    return 1 if caller in OWN_CALLERS else 0  # the owner last: it may change the record


_METHOD_ORDER = {"GET": 0, "PUT": 1, "PATCH": 2, "POST": 3, "DELETE": 4}


@pytest_asyncio.fixture
async def seeded(
    clean_dbs: dict[str, str], key_dir: Path, mint: Callable[..., str], tmp_path: Path
) -> AsyncIterator[dict[str, str]]:
    """Two pupils of 99AA (GM9901) with a 16-uur concept each, one confirmed; a vrijstelling
    and an absoluut-verzuim record of GM9901."""
    token_file = tmp_path / "consumer.jwt"
    token_file.write_text(mint("consumer", consumer="melding"))
    school = {"Authorization": f"Bearer {mint('school', brins=['99AA'])}"}
    gemeente = {"Authorization": f"Bearer {mint('gemeente', gemeente='GM9901')}"}
    ingest_app = service("ingest").create_app(settings_for("ingest", clean_dbs, key_dir))
    melding_app = service("melding").create_app(
        settings_for("melding", clean_dbs, key_dir, feed_token_file=token_file)
    )
    ids: dict[str, str] = {}
    async with running_app(ingest_app) as ingest, running_app(melding_app) as melding:
        pgn = make_bsn(41)
        items = truancy_week(pgn, prefix="a") + truancy_week(make_bsn(42), prefix="b")
        r = await ingest.post(
            "/v1/registratie-batches", json={"registraties": items}, headers=school
        )
        assert r.json()["afgewezen"] == 0, r.text
        await catch_up(melding_app, ingest)
        r = await melding.get(
            "/v1/scholen/99AA/meldingen", params={"status": "concept"}, headers=school
        )
        concepts = r.json()["meldingen"]
        assert len(concepts) == 2, r.text
        ids["ingediend"], ids["concept"] = concepts[0]["id"], concepts[1]["id"]
        r = await melding.post(
            f"/v1/scholen/99AA/meldingen/{ids['ingediend']}/bevestiging",
            json=BEVESTIGING,
            headers=school,
        )
        assert r.status_code == 200, r.text
        ids["pgn"], ids["begindatum"] = pgn, items[0]["datum"]
        for collection, soort in (("vrijstellingen", "5a"), ("absoluut-verzuim", None)):
            r = await ingest.post(f"/v1/{collection}", json=_vrijstelling(soort), headers=gemeente)
            assert r.status_code == 201, r.text
            ids[collection] = r.json()["id"]
    yield ids


def test_every_route_has_a_rule() -> None:
    placeholder = {
        k: "x" for k in ("concept", "ingediend", "vrijstellingen", "absoluut-verzuim", "pgn")
    }
    known = rules(placeholder | {"begindatum": "2025-11-03"})
    missing = []
    for name in SERVICES:
        app = service(name).create_app(service(name).settings())
        for route in iter_routes(app):
            if (name, route.method, route.path) not in known:
                missing.append(f"{name} {route.method} {route.path} (scope {route.scope})")
    assert not missing, "routes without a rule in the authorisation matrix:\n" + "\n".join(missing)


async def test_authorisation_matrix(
    seeded: dict[str, str], clean_dbs: dict[str, str], key_dir: Path, mint: Callable[..., str]
) -> None:
    table = rules(seeded)
    tokens = {
        caller: {"Authorization": f"Bearer {mint(spec[0], **spec[1])}"} if spec else {}
        for caller, spec in CALLERS.items()
    }
    own_ids = [seeded[k] for k in ("concept", "ingediend", "vrijstellingen", "absoluut-verzuim")]
    failures: list[str] = []
    cells = 0
    for name in SERVICES:
        app = service(name).create_app(settings_for(name, clean_dbs, key_dir))
        routes = sorted(iter_routes(app), key=lambda r: (_METHOD_ORDER[r.method], r.path))
        async with running_app(app) as client:
            for route in routes:
                rule = table[(name, route.method, route.path)]
                url = route.path.format(**rule.path)
                for caller in sorted(CALLERS, key=_caller_order):
                    want = expected(route.scope, rule, caller)
                    response = await client.request(
                        route.method,
                        url,
                        params=rule.query,
                        json=rule.body,
                        headers=tokens[caller],
                    )
                    cells += 1
                    where = f"{name} {route.method} {route.path} as {caller}"
                    if response.status_code != want:
                        failures.append(f"{where}: {response.status_code}, want {want}")
                        continue
                    if want >= 400:
                        assert response.headers["content-type"] == "application/problem+json"
                    is_other = route.scope is not None and caller not in OWN_CALLERS
                    if is_other and want < 400 and caller != "admin":
                        leaked = [i for i in own_ids if i in response.text]
                        if leaked:
                            failures.append(f"{where}: shows another organisation's {leaked}")
                        if rule.other_check is not None:
                            rule.other_check(response)
    print(f"\nauthorisation matrix: {cells} cells ({len(CALLERS)} callers)")
    assert cells >= 400
    assert not failures, "\n".join(failures)
