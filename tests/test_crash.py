"""Crash tests with real processes on PostgreSQL: ``kill -9`` in the middle of the work,
then count. Nothing may be lost or duplicated."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from verzuimhub.cli import up_environment
from verzuimhub.hub import start_services, stop_all, wait_ready
from verzuimhub.services import service
from verzuimhub.testing import (
    eventually,
    fetch_rows,
    make_bsn,
    registratie,
    run_sync,
    truancy_week,
)
from verzuimhub_melding.repository import RULES_DONE_SQL
from verzuimhub_shared import devkeys
from verzuimhub_shared.migrations import upgrade
from verzuimhub_shared.testing.postgres import PostgresServer

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

BATCHES = 30
PER_BATCH = 200


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@dataclass
class Cluster:
    envs: dict[str, dict[str, str]]
    urls: dict[str, str]
    data_dir: Path
    procs: dict[str, subprocess.Popen[bytes]]

    def start(self, name: str) -> None:
        self.procs.update(start_services({name: self.envs[name]}, self.data_dir))
        failed = wait_ready(self.procs, {name: self.urls[name]}, 60)
        assert failed is None, (self.data_dir / f"{name}.log").read_text()[-3000:]

    def kill9(self, name: str) -> None:
        proc = self.procs.pop(name)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)

    def token(self, role: str, **kwargs: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {devkeys.mint(role, self.data_dir / 'keys', **kwargs)}"}


@pytest.fixture
def cluster(pg: PostgresServer, tmp_path: Path) -> Iterator[Cluster]:
    names = ("ingest", "melding")
    ports = dict(zip(names, _free_ports(2), strict=True))
    envs = up_environment(tmp_path, "127.0.0.1", ports | {"mock-duo": 1, "swv-aggregate": 2})
    envs = {name: envs[name] for name in names}
    for name in names:
        prefix = service(name).env_prefix
        database = run_sync(pg.create_database(f"vzh_crash_{name}"))
        envs[name][f"{prefix}DATABASE_URL"] = pg.url_for(database)
        envs[name][f"{prefix}ENV"] = "test"
        envs[name][f"{prefix}LOG_LEVEL"] = "WARNING"
        envs[name][f"{prefix}RATE_LIMIT_PER_MINUTE"] = "0"
    envs["melding"]["VZH_MELDING_FEED_BATCH_SIZE"] = "100"
    envs["melding"]["VZH_MELDING_WORKER_INTERVAL_SECONDS"] = "0.05"
    for name in names:
        _migrate(name, envs[name][f"{service(name).env_prefix}DATABASE_URL"])
    cluster = Cluster(envs, {n: f"http://127.0.0.1:{p}" for n, p in ports.items()}, tmp_path, {})
    try:
        yield cluster
    finally:
        stop_all(cluster.procs)


def _migrate(name: str, url: str) -> None:
    run_sync(upgrade(service(name).migrations_package or "", url))


def _batches() -> list[list[dict[str, Any]]]:
    """6,000 registrations; every 20th pupil a truant whose week makes a melding due."""
    items: list[dict[str, Any]] = []
    pupil = 0
    while len(items) < BATCHES * PER_BATCH:
        pgn = make_bsn(20_000 + pupil)
        if pupil % 20 == 0:
            items += truancy_week(pgn, prefix=f"c{pupil}")
        else:
            items.append(
                registratie(
                    schoolRegistratieId=f"c{pupil}",
                    pgn=pgn,
                    minuten=50,
                    categorie="ziekte" if pupil % 3 else "te_laat",
                )
            )
        pupil += 1
    items = items[: BATCHES * PER_BATCH]
    return [items[i : i + PER_BATCH] for i in range(0, len(items), PER_BATCH)]


async def _post_with_retries(cluster: Cluster, batches: list[list[dict[str, Any]]]) -> int:
    """Post every batch; on any failure retry with the same Idempotency-Key and body."""
    school = cluster.token("school", brins=["99AA"], subject="school-99AA")
    retries = 0
    async with httpx.AsyncClient(base_url=cluster.urls["ingest"], timeout=10) as client:
        for number, batch in enumerate(batches):
            while True:
                try:
                    response = await client.post(
                        "/v1/registratie-batches",
                        json={"registraties": batch},
                        headers=school | {"Idempotency-Key": f"crash-batch-{number}"},
                    )
                    if response.status_code == 200:
                        assert response.json()["afgewezen"] == 0
                        break
                except httpx.HTTPError:
                    pass
                retries += 1
                await asyncio.sleep(0.1)
    return retries


async def _scalar(url: str, sql: str) -> Any:
    return (await fetch_rows(url, sql))[0][0]


async def test_kill_9_ingest_in_the_middle_of_a_stream_of_batches(cluster: Cluster) -> None:
    cluster.start("ingest")
    batches = _batches()
    url = cluster.envs["ingest"]["VZH_INGEST_DATABASE_URL"]

    async def killer() -> int:
        kills = 0
        for threshold in (BATCHES // 4, BATCHES // 2, 3 * BATCHES // 4):

            async def reached(rows: int = threshold * PER_BATCH) -> bool:
                return bool(await _scalar(url, "SELECT count(*) FROM registraties") >= rows)

            await eventually(reached, seconds=120)
            cluster.kill9("ingest")
            kills += 1
            await asyncio.to_thread(cluster.start, "ingest")
        return kills

    retries, kills = await asyncio.gather(_post_with_retries(cluster, batches), killer())
    assert kills == 3
    assert retries > 0  # the kills really interrupted the stream
    total = BATCHES * PER_BATCH
    assert await _scalar(url, "SELECT count(*) FROM registraties") == total
    assert (
        await _scalar(url, "SELECT count(DISTINCT (brin, school_registratie_id)) FROM registraties")
        == total
    )
    # One event per registration per consumer, none twice, and no gap in the positions.
    assert await _scalar(url, "SELECT count(*) FROM feed_events WHERE consumer='melding'") == total
    assert (
        await _scalar(
            url, "SELECT count(DISTINCT subject) FROM feed_events WHERE consumer='melding'"
        )
        == total
    )
    assert await _scalar(url, "SELECT max(position) FROM feed_events") == await _scalar(
        url, "SELECT count(*) FROM feed_events"
    )


async def _meldingen(url: str) -> list[tuple[Any, ...]]:
    return await fetch_rows(
        url,
        "SELECT l.pgn_hash, m.soort, m.begindatum, m.einddatum FROM meldingen m "
        "JOIN leerlingen l ON l.id = m.leerling_id WHERE m.status <> 'vervallen' "
        "ORDER BY 1, 2, 3",
    )


async def test_kill_9_melding_during_a_replay(cluster: Cluster, pg: PostgresServer) -> None:
    cluster.start("ingest")
    await _post_with_retries(cluster, _batches())
    melding_url = cluster.envs["melding"]["VZH_MELDING_DATABASE_URL"]
    head = await _scalar(
        cluster.envs["ingest"]["VZH_INGEST_DATABASE_URL"],
        "SELECT max(position) FROM feed_events WHERE consumer='melding'",
    )
    events = await _scalar(
        cluster.envs["ingest"]["VZH_INGEST_DATABASE_URL"],
        "SELECT count(*) FROM feed_events WHERE consumer='melding'",
    )
    cursor_sql = "SELECT coalesce(max(position), 0) FROM feed_cursors WHERE feed='ingest'"

    cluster.start("melding")
    kills = 0
    for fraction in (0.2, 0.6):

        async def applied(events: float = fraction * head) -> bool:
            return bool(await _scalar(melding_url, cursor_sql) >= events)

        await eventually(applied, seconds=120)
        cluster.kill9("melding")
        kills += 1
        await asyncio.to_thread(cluster.start, "melding")
    for _ in range(600):
        done = await _scalar(melding_url, cursor_sql) == head
        if done and await _scalar(melding_url, RULES_DONE_SQL):
            break
        await asyncio.sleep(0.1)
    assert kills == 2
    assert await _scalar(melding_url, cursor_sql) == head
    # Every event applied exactly once: the cursor counts what it applied.
    assert (
        await _scalar(melding_url, "SELECT events_applied FROM feed_cursors WHERE feed='ingest'")
        == events
        == BATCHES * PER_BATCH
    )
    assert await _scalar(melding_url, "SELECT count(*) FROM ledger") == BATCHES * PER_BATCH
    crashed = await _meldingen(melding_url)
    assert crashed, "the data makes meldingen due"
    assert len(crashed) == len(set(crashed)), "a melding was duplicated"

    # The same feed replayed by a fresh melding that never crashed gives the same meldingen.
    cluster.kill9("melding")
    fresh = pg.url_for(run_sync(pg.create_database("vzh_crash_fresh")))
    cluster.envs["melding"]["VZH_MELDING_DATABASE_URL"] = fresh
    _migrate("melding", fresh)
    cluster.start("melding")
    for _ in range(600):
        if await _scalar(fresh, cursor_sql) == head and await _scalar(fresh, RULES_DONE_SQL):
            break
        await asyncio.sleep(0.1)
    assert await _meldingen(fresh) == crashed  # none lost
