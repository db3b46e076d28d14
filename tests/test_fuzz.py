"""Schemathesis against each service's own OpenAPI document, in-process, with valid tokens.

For every documented operation: generated valid input (positive) and invalid input
(negative), each sent with a token that carries the operation's scope, half of the time
for the caller's own organisation. Every response must:

- never be a 5xx;
- use a documented status code and content type, and match the documented schema;
- be ``application/problem+json`` with type, title and status when it is an error;
- (negative input) be rejected with a 4xx.

The figures (cases per service) are printed at the end (``pytest -s`` shows them).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.python import asgi as schemathesis_asgi

from verzuimhub.services import service
from verzuimhub.testing import BEVESTIGING, make_bsn, running_app, settings_for, truancy_week
from verzuimhub_melding.worker import catch_up
from verzuimhub_shared.routes import iter_routes

pytestmark = pytest.mark.postgres

#: Examples per operation and generation mode; keeps the whole run well under a minute.
MAX_EXAMPLES = 20

OWN = {"brin": "99AA", "gemeente": "GM9901", "swv": "PO-99-01", "swvCode": "PO-99-01"}

SCOPE_ROLE = {
    "registraties:schrijven": "school",
    "registraties:lezen": "school",
    "meldingen:school": "school",
    "vrijstellingen:schrijven": "gemeente",
    "meldingen:gemeente": "gemeente",
    "aggregaten:lezen": "swv",
    "feed:lezen": "consumer",
    "beheer": "admin",
}

FIGURES: Counter[str] = Counter()


def _token_for(mint: Callable[..., str], role: str) -> str:
    options: dict[str, dict[str, Any]] = {
        "school": {"brins": [OWN["brin"]]},
        "gemeente": {"gemeente": OWN["gemeente"]},
        "swv": {"swv": OWN["swv"]},
        "consumer": {"consumer": "melding"},
        "admin": {},
    }
    kwargs = options[role]
    return mint(role, **kwargs)


def _problem_json(response: Any) -> None:
    if response.status_code < 400:
        return
    content_type = response.headers.get("content-type", [""])
    content_type = content_type[0] if isinstance(content_type, list) else content_type
    assert content_type.startswith("application/problem+json"), (
        f"{response.status_code} answered as {content_type!r}"
    )
    body = response.json()
    assert body["status"] == response.status_code
    assert body["title"]
    assert str(body["type"]).startswith("https://verzuimhub.nl/problemen/")


@pytest_asyncio.fixture
async def seeded(
    clean_dbs: dict[str, str], key_dir: Path, mint: Callable[..., str], tmp_path: Path
) -> dict[str, str]:
    """Real records to address: registrations and a vrijstelling of 99AA/GM9901 in ingest;
    a confirmed 16-uur melding and a concept in melding (through the real feed)."""
    token_file = tmp_path / "consumer.jwt"
    token_file.write_text(mint("consumer", consumer="melding"))
    school = {"Authorization": f"Bearer {mint('school', brins=[OWN['brin']])}"}
    gemeente = {"Authorization": f"Bearer {mint('gemeente', gemeente=OWN['gemeente'])}"}
    ingest_app = service("ingest").create_app(settings_for("ingest", clean_dbs, key_dir))
    melding_app = service("melding").create_app(
        settings_for("melding", clean_dbs, key_dir, feed_token_file=token_file)
    )
    async with running_app(ingest_app) as ingest, running_app(melding_app) as melding:
        items = truancy_week(make_bsn(61), prefix="a") + truancy_week(make_bsn(62), prefix="b")
        r = await ingest.post(
            "/v1/registratie-batches", json={"registraties": items}, headers=school
        )
        assert r.json()["afgewezen"] == 0, r.text
        r = await ingest.post(
            "/v1/vrijstellingen",
            json={
                "soort": "5a",
                "pgn": make_bsn(63),
                "geboortedatum": "2014-01-01",
                "begindatum": items[0]["datum"],
            },
            headers=gemeente,
        )
        assert r.status_code == 201, r.text
        vrijstelling = r.json()["id"]
        await catch_up(melding_app, ingest)
        r = await melding.get(f"/v1/scholen/{OWN['brin']}/meldingen", headers=school)
        meldingen = [m["id"] for m in r.json()["meldingen"]]
        assert len(meldingen) == 2, r.text
        r = await melding.post(
            f"/v1/scholen/{OWN['brin']}/meldingen/{meldingen[0]}/bevestiging",
            json=BEVESTIGING,
            headers=school,
        )
        assert r.status_code == 200, r.text
    return {"melding": meldingen[0], "concept": meldingen[1], "vrijstelling": vrijstelling}


@pytest.fixture
def fuzz_app(clean_dbs: dict[str, str], key_dir: Path) -> Iterator[Callable[[str], FastAPI]]:
    def _make(name: str) -> FastAPI:
        return service(name).create_app(
            settings_for(name, clean_dbs, key_dir, rate_limit_per_minute=0)
        )

    yield _make
    schemathesis_asgi.shutdown_lifespans()


def _rejected(ctx: Any, response: Any, case: Any) -> bool | None:
    """Schemathesis' negative-data check, with 413 (too large: a huge generated batch) and
    408 counted as rejections too."""
    if response.status_code in (408, 413):
        return None
    return negative_data_rejection(ctx, response, case)


def _only_idempotency_key_mutated(case: Any) -> bool:
    data = getattr(getattr(getattr(case, "meta", None), "phase", None), "data", None)
    mutations = getattr(data, "mutations", None) or []
    parameter = getattr(data, "parameter", None)
    names = {m.parameter for m in mutations} | ({parameter} if parameter else set())
    return names == {"Idempotency-Key"}


def _fuzz_operation(
    name: str,
    operation: Any,
    mode: GenerationMode,
    token: str | None,
    own_params: dict[str, str],
    failures: list[str],
) -> int:
    """Run one operation in one generation mode; returns the number of cases sent."""
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ]
    if mode is GenerationMode.NEGATIVE:
        checks.append(_rejected)
    sent = 0

    @seed(random.Random(f"{name}{operation.label}{mode}").randint(0, 2**32))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode), own=st.booleans())
    def run(case: Any, own: bool) -> None:
        nonlocal sent
        sent += 1
        if own:  # half of the cases address the caller's own, existing records
            for key, value in own_params.items():
                if key in (case.path_parameters or {}):
                    case.path_parameters[key] = value
        headers = dict(case.headers or {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        case.headers = headers
        response = case.call()
        case_checks = checks
        if _only_idempotency_key_mutated(case):
            # Any 1-128 printable characters make a valid key, so a "negative" key the
            # generator derives from the schema's type is usually a valid one.
            case_checks = [c for c in checks if c is not _rejected]
        try:
            case.validate_response(response, checks=case_checks)
            _problem_json(response)
        except (Exception, BaseExceptionGroup) as exc:
            failures.append(
                f"{operation.label} [{mode.value}] {response.status_code}: "
                + " ".join(str(exc).split())[:700]
            )
            raise

    try:
        run()
    except (Exception, BaseExceptionGroup) as exc:  # recorded; fuzz the other operations
        if not failures or operation.label not in failures[-1]:
            failures.append(f"{operation.label} [{mode.value}]: {exc!r}"[:300])
    return sent


@pytest.mark.parametrize("name", ["ingest", "melding", "swv-aggregate"])
def test_fuzz_service(
    name: str,
    seeded: dict[str, str],
    fuzz_app: Callable[[str], FastAPI],
    mint: Callable[..., str],
) -> None:
    app = fuzz_app(name)
    schema = schemathesis.openapi.from_asgi("/v1/openapi.json", app)
    scopes = {(r.method, r.path): r.scope for r in iter_routes(app)}
    tokens = {role: _token_for(mint, role) for role in set(SCOPE_ROLE.values())}
    own_params = {
        "brin": OWN["brin"],
        "swvCode": OWN["swvCode"],
        "schoolRegistratieId": "a-0",
        "id": seeded["vrijstelling"] if name == "ingest" else seeded["melding"],
    }
    failures: list[str] = []
    cases = 0
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]
        scope = scopes[(operation.method.upper(), operation.path)]
        token = tokens[SCOPE_ROLE[scope]] if scope else None
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            cases += _fuzz_operation(name, operation, mode, token, own_params, failures)
    FIGURES[f"{name}:cases"] = cases
    print(f"\nfuzz {name}: {cases} cases")
    assert not failures, "\n".join(dict.fromkeys(failures))
