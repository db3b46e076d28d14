"""When PostgreSQL drops the service's connections (a restart, a failover), the pool does
not ping before each use (ADR 0010): the first request after it may find its connection
gone and is then answered 503 with Retry-After (never 500); SQLAlchemy discards the pool's
connections, and the retry works on a new one. Nothing half-done is stored."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import asyncpg
import pytest

from verzuimhub.testing import make_bsn, registratie
from verzuimhub_shared.testing.postgres import PostgresServer


async def _drop_connections(pg: PostgresServer, database_url: str) -> int:
    database = database_url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(pg.dsn)
    try:
        return int(
            await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = $1 AND pid <> pg_backend_pid()",
                database,
            )
        )
    finally:
        await admin.close()


@pytest.mark.parametrize("keyed", [False, True], ids=["grouped", "idempotency-key"])
async def test_a_dropped_connection_costs_one_503_then_the_service_recovers(
    clean_dbs: dict[str, str],
    app_client: Callable[..., Any],
    auth: Callable[..., dict[str, str]],
    pg: PostgresServer,
    keyed: bool,
) -> None:
    school = auth("school", brins=["99AA"])

    def headers(key: str) -> dict[str, str]:
        return school | ({"Idempotency-Key": key} if keyed else {})

    async with app_client("ingest") as client:
        before = await client.post(
            "/v1/registraties", json=registratie(schoolRegistratieId="r0"), headers=headers("0")
        )
        assert before.status_code == 201
        assert await _drop_connections(pg, clean_dbs["ingest"]) >= 1

        statuses = []
        for _ in range(2):  # a client that honours Retry-After
            answer = await client.post(
                "/v1/registraties",
                json=registratie(schoolRegistratieId="r1", pgn=make_bsn(2)),
                headers=headers("1"),
            )
            statuses.append(answer.status_code)
            if answer.status_code != 503:
                break
            assert answer.headers["content-type"] == "application/problem+json"
            assert answer.headers["retry-after"] == "1"
        assert statuses in ([201], [503, 201]), statuses
        listed = await client.get("/v1/scholen/99AA/registraties", headers=school)
        assert listed.status_code == 200
        assert sorted(r["schoolRegistratieId"] for r in listed.json()["registraties"]) == [
            "r0",
            "r1",
        ]
