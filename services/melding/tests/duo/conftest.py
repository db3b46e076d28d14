"""Fixtures of the DUO tests: a valid melding factory and an in-process mock DUO."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from verzuimhub.mock_duo import MockDuoSettings, create_app
from verzuimhub_melding.duo.contract import Verzuimmelding
from verzuimhub_shared.app import lifespan_context

BASE_URL = "http://duo.test"

#: Valid PGNs: a BSN (elfproef remainder 0) and an onderwijsnummer (leading 1, remainder 5).
BSN = "111222333"
ONDERWIJSNUMMER = "101222331"

MeldingFactory = Callable[..., Verzuimmelding]


def _melding_data(**overrides: Any) -> dict[str, Any]:
    """A valid melding as JSON data (camelCase), top-level fields replaced by ``overrides``."""
    data: dict[str, Any] = {
        "meldingId": "melding-1",
        "woongemeente": "GM0363",
        "leerling": {"pgn": BSN, "geboortedatum": "2011-03-14"},
        "startkwalificatie": False,
        "begindatum": "2025-01-13",
        "einddatum": "2025-02-04",
        "verzuimsoort": "V3",
        "vermoedelijkeReden": "spijbelen",
        "alleLessenVerzuimd": False,
        "ondernomenActie": "Mentor sprak twee keer met ouders; zorgoverleg gepland.",
        "gemeentelijkeActie": {"gewenst": True, "prioriteit": "normaal"},
        "leslocatie": {"brin": "12AB", "vestigingsnummer": "01"},
        "contactpersoon": {
            "naam": "J. de Vries",
            "functie": "verzuimcoördinator",
            "telefoon": "020-1234567",
            "email": "verzuim@school.example.nl",
        },
        "telefoonLeerlingOfOuder": "06-12345678",
        "verzuimdagen": [
            {"datum": "2025-01-13", "uren": 6.0, "geoorloofd": False},
            {"datum": "2025-01-20", "uren": 2.5, "geoorloofd": True},
            {"datum": "2025-02-04", "uren": 8.0, "geoorloofd": False},
        ],
    }
    data.update(overrides)
    return data


@pytest.fixture(scope="session")
def melding_data() -> Callable[..., dict[str, Any]]:
    """``melding_data(**overrides)``: a valid melding as JSON data (camelCase)."""
    return _melding_data


@pytest.fixture(scope="session")
def make_melding() -> MeldingFactory:
    """``make_melding(**overrides)``: a valid ``Verzuimmelding``."""

    def _make(**overrides: Any) -> Verzuimmelding:
        return Verzuimmelding.model_validate(_melding_data(**overrides))

    return _make


@pytest_asyncio.fixture
async def duo_app() -> AsyncIterator[FastAPI]:
    """A fresh mock DUO (no database needed: its state is in memory), lifespan running."""
    app = create_app(MockDuoSettings(env="test", run_workers=False))
    async with lifespan_context(app):
        yield app


@pytest_asyncio.fixture
async def duo_http(duo_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client over ASGITransport; app exceptions (a simulated drop) are raised."""
    transport = httpx.ASGITransport(app=duo_app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        yield client


class DuoTestApi:
    """The mock's test routes: what it received, and which faults it injects."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def storingen(self, **storingen: Any) -> None:
        response = await self.client.post("/v1/test/storingen", json=storingen)
        assert response.status_code == 200, response.text

    async def geen_storingen(self) -> None:
        response = await self.client.delete("/v1/test/storingen")
        assert response.status_code == 204, response.text

    async def ontvangen(self, **params: str) -> list[dict[str, Any]]:
        response = await self.client.get("/v1/test/ontvangen", params=params)
        assert response.status_code == 200, response.text
        meldingen: list[dict[str, Any]] = response.json()["meldingen"]
        return meldingen

    async def verzoeken(self) -> list[dict[str, Any]]:
        response = await self.client.get("/v1/test/verzoeken")
        assert response.status_code == 200, response.text
        verzoeken: list[dict[str, Any]] = response.json()["verzoeken"]
        return verzoeken


@pytest.fixture
def duo_test(duo_http: httpx.AsyncClient) -> DuoTestApi:
    return DuoTestApi(duo_http)
