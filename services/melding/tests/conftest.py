"""An in-process hub for melding's tests: ingest, melding and mock DUO over ASGI."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest_asyncio
from fastapi import FastAPI

from verzuimhub.services import service
from verzuimhub.testing import running_app, settings_for
from verzuimhub_melding.duo.client import DuoClient
from verzuimhub_melding.worker import catch_up, duo_client, forward_once, housekeeping_once


@dataclass
class Hub:
    ingest: httpx.AsyncClient
    melding: httpx.AsyncClient
    duo: httpx.AsyncClient
    melding_app: FastAPI
    duo_client: DuoClient
    mint: Callable[..., str]

    async def post_registraties(self, items: list[dict[str, Any]], brin: str = "99AA") -> None:
        response = await self.ingest.post(
            "/v1/registratie-batches",
            json={"registraties": items},
            headers={"Authorization": f"Bearer {self.mint('school', brins=[brin])}"},
        )
        assert response.status_code == 200
        assert response.json()["afgewezen"] == 0, response.text

    async def sync(self) -> int:
        """Let melding consume ingest's feed and evaluate, until idle; events applied."""
        return await catch_up(self.melding_app, self.ingest)

    async def forward(self) -> int:
        return await forward_once(self.melding_app, self.duo_client)

    async def housekeeping(self) -> None:
        await housekeeping_once(self.melding_app)


@pytest_asyncio.fixture
async def hub(
    clean_dbs: dict[str, str], key_dir: Path, mint: Callable[..., str], tmp_path: Path
) -> AsyncIterator[Hub]:
    token_file = tmp_path / "melding-consumer.jwt"
    token_file.write_text(mint("consumer", consumer="melding"))
    ingest_app = service("ingest").create_app(settings_for("ingest", clean_dbs, key_dir))
    duo_app = service("mock-duo").create_app(settings_for("mock-duo", clean_dbs, key_dir))
    melding_app = service("melding").create_app(
        settings_for(
            "melding",
            clean_dbs,
            key_dir,
            feed_token_file=token_file,
            duo_backoff_base_seconds=0.0,
            duo_backoff_cap_seconds=0.0,
            duo_max_attempts=4,
            duo_timeout_seconds=0.5,
            duo_breaker_reset_seconds=0.05,
        )
    )
    async with (
        running_app(ingest_app) as ingest,
        running_app(duo_app) as duo,
        running_app(melding_app) as melding,
        duo_client(melding_app, client=duo) as client,
    ):
        yield Hub(ingest, melding, duo, melding_app, client, mint)
