"""Fixtures for the dashboard tests: seeded figures and swv-aggregate as a real HTTP server."""

from __future__ import annotations

import functools
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from verzuimhub.testing import make_bsn, registratie, seed_swv_aggregate, settings_for
from verzuimhub_shared import events as ev
from verzuimhub_shared.db import Database
from verzuimhub_swv_aggregate.app import create_app
from verzuimhub_swv_aggregate.periods import school_year_label, week_label
from verzuimhub_swv_aggregate.service import (
    apply_melding_events,
)

REGION = "PO-99-01"


def _weekday_before(day: date) -> date:
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    return day


@dataclass(frozen=True)
class Seeded:
    """What was seeded, so a test can compare the page with the ground truth."""

    day: date  # the later week
    earlier: date  # one week before
    #: week label -> pupils with unauthorised absence in the region (po + sbo + so)
    ongeoorloofd: dict[str, int]

    @property
    def schooljaar(self) -> str:
        return school_year_label(self.day)

    @property
    def weeks_in_school_year(self) -> set[str]:
        """The seeded weeks the page shows for the school year of ``day``."""
        days = (self.day, self.earlier)
        return {week_label(d) for d in days if school_year_label(d) == self.schooljaar}


# (brin, sector, pupils) per week; every group at least k = 10, so these totals are visible.
WEEKS = {
    0: [("99AA", "po", 14), ("99BD", "sbo", 12), ("99BF", "so", 11)],
    1: [("99AA", "po", 20), ("99BD", "sbo", 15), ("99BF", "so", 13)],
}


async def seed(app_client: Callable[..., Any], auth: Any, mint: Any, db_url: str) -> Seeded:
    """Registrations and a 5-onder-a vrijstelling through a real ingest and its feed; meldingen
    applied as melding's feed would deliver them. Some figures visible, others suppressed."""
    day = _weekday_before(date.today() - timedelta(days=7))
    earlier = _weekday_before(day - timedelta(days=7))
    items = []
    seq = 1000
    truth: dict[str, int] = {}
    for weeks_back, groups in WEEKS.items():
        when = earlier if weeks_back else day
        truth[week_label(when)] = sum(n for _, _, n in groups)
        for brin, sector, pupils in groups:
            for _ in range(pupils):
                seq += 1
                items.append(
                    registratie(
                        schoolRegistratieId=f"d{seq}",
                        brin=brin,
                        sector=sector,
                        pgn=make_bsn(seq),
                        datum=when.isoformat(),
                        categorie="spijbelen",
                    )
                )
    for i in range(12):  # authorised absence in po only: the other sectors are suppressed
        items.append(
            registratie(
                schoolRegistratieId=f"z{i}",
                pgn=make_bsn(5000 + i),
                datum=day.isoformat(),
                categorie="ziekte",
            )
        )
    items.append(
        registratie(
            schoolRegistratieId="afstand",
            pgn=make_bsn(7),
            datum=day.isoformat(),
            categorie="afstandsonderwijs",
        )
    )
    ctx = await seed_swv_aggregate(
        app_client,
        auth,
        mint,
        db_url,
        items,
        brins=["99AA", "99BD", "99BF"],
        exemption_from=day - timedelta(days=60),
    )
    db = Database(db_url)
    try:
        meldingen = [("V3", 15), ("LRV", 3)]
        melding_events = [
            {
                "type": ev.MELDING_GEWIJZIGD,
                "data": {
                    "meldingId": f"m-{soort}-{i}",
                    "soort": soort,
                    "status": "geregistreerd",
                    "sector": "po",
                    "swv": REGION,
                    "schoolweek": week_label(day),
                    "maand": day.strftime("%Y-%m"),
                    "schooljaar": school_year_label(day),
                    "leeftijdsband": "6-11",
                },
            }
            for soort, count in meldingen
            for i in range(count)
        ]
        async with db.transaction() as session:
            await apply_melding_events(session, melding_events, ctx)
    finally:
        await db.dispose()
    return Seeded(day=day, earlier=earlier, ongeoorloofd=truth)


@pytest.fixture
async def seeded(
    clean_dbs: dict[str, str], app_client: Callable[..., Any], auth: Any, mint: Any
) -> Seeded:
    return await seed(app_client, auth, mint, clean_dbs["swv-aggregate"])


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _live_server(db_urls: dict[str, str], key_dir: Path, **overrides: Any) -> Iterator[str]:
    """swv-aggregate served by uvicorn on a free local port, in a thread; yields its base URL."""
    app = create_app(settings_for("swv-aggregate", db_urls, key_dir, **overrides))
    port = _free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="swv-aggregate-live", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("swv-aggregate did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture
def live_server(db_urls: dict[str, str], key_dir: Path) -> Callable[..., Any]:
    """``with live_server(env="development") as base_url: …``"""
    return functools.partial(_live_server, db_urls, key_dir)
