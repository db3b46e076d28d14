"""Rollups equal a ground truth computed independently, in plain Python, from the same events;
corrections and retractions are deltas; replaying from zero rebuilds the same rollups."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import select, text

from verzuimhub.services import service
from verzuimhub.testing import run_sync
from verzuimhub_shared import events as ev
from verzuimhub_shared.calendar import region_calendar
from verzuimhub_shared.db import Database
from verzuimhub_shared.migrations import upgrade
from verzuimhub_shared.refdata import sample_refdata
from verzuimhub_swv_aggregate import repository as repo
from verzuimhub_swv_aggregate.models import Rollup
from verzuimhub_swv_aggregate.periods import parse_period, school_year_label, week_label
from verzuimhub_swv_aggregate.service import (
    AggregateContext,
    apply_ingest_events,
    apply_melding_events,
)

MINUTES = {"po": 300, "sbo": 300, "so": 300, "vo": 330, "vso": 330, "mbo": 330}
STATE_TABLES = (
    "rollups",
    "swv_registraties",
    "leerling_perioden",
    "swv_meldingen",
    "swv_vrijstellingen",
    "vrijstelling_stromen",
)


def context() -> AggregateContext:
    return AggregateContext(refdata=sample_refdata(), minutes_per_lesdag=MINUTES)


@pytest.fixture(params=["postgresql", "sqlite"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """swv-aggregate's database, on PostgreSQL and on the embedded default (SQLite): the two
    write their state with different statements."""
    if request.param == "postgresql":
        return str(request.getfixturevalue("clean_dbs")["swv-aggregate"])
    url = f"sqlite+aiosqlite:///{tmp_path / 'swv.db'}"
    run_sync(upgrade(service("swv-aggregate").migrations_package or "", url))
    return url


@pytest_asyncio.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database(db_url)
    yield database
    await database.dispose()


# --- synthetic feeds -----------------------------------------------------------------------

# Every SWV used here follows holiday region "midden" in the sample data (as does the default).
PUPIL_PLACES: list[tuple[str, str | None]] = [
    ("po", "PO-99-01"),
    ("sbo", "PO-99-01"),
    ("po", "PO-99-02"),
    ("vo", "VO-99-01"),
]
PUPIL_PLACES += [("vso", "VO-99-01"), ("mbo", None)]
GROEPEN = ["geoorloofd", "ongeoorloofd", "luxe", "deelname"]


def _event(kind: str, position: int, data: dict[str, Any]) -> dict[str, Any]:
    return {"type": kind, "position": position, "id": f"e{position}", "data": data}


def registration_feed(seed: int, n: int = 500) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Registrations with corrections and retractions; returns the events and the final state."""
    rng = random.Random(seed)
    pupils = {f"leerling-{i:03d}": rng.choice(PUPIL_PLACES) for i in range(60)}
    days = [date(2025, 9, 1) + timedelta(days=d) for d in range(0, 150)]
    days = [d for d in days if d.weekday() < 5]
    live: dict[str, dict[str, Any]] = {}
    events: list[dict[str, Any]] = []

    def payload(rid: str, leerling: str) -> dict[str, Any]:
        sector, swv = pupils[leerling]
        day = rng.choice(days)
        return {
            "registratieId": rid,
            "leerling": leerling,
            "swv": swv,
            "sector": sector,
            "datumWeek": week_label(day),
            "maand": day.strftime("%Y-%m"),
            "schooljaar": school_year_label(day),
            "leeftijdsband": "6-11",
            "minuten": rng.choice([30, 60, 120, 300, 330]),
            "groep": rng.choice(GROEPEN),
        }

    for i in range(n):
        roll = rng.random()
        if live and roll < 0.1:
            rid = rng.choice(sorted(live))
            del live[rid]
            data: dict[str, Any] = {"registratieId": rid}
            events.append(_event(ev.REGISTRATIE_INGETROKKEN, i + 1, data))
            continue
        if live and roll < 0.3:
            rid = rng.choice(sorted(live))
            data = payload(rid, live[rid]["leerling"])  # a correction: same pupil, new facts
        else:
            rid = f"reg-{i}"
            data = payload(rid, rng.choice(sorted(pupils)))
        live[rid] = data
        events.append(_event(ev.REGISTRATIE_VASTGELEGD, i + 1, data))
    # An identical replay and a retraction of something unknown change nothing.
    some = next(iter(live.values()))
    events.append(_event(ev.REGISTRATIE_VASTGELEGD, n + 1, some))
    events.append(_event(ev.REGISTRATIE_INGETROKKEN, n + 2, {"registratieId": "onbekend"}))
    return events, live


def expected_rollups(live: dict[str, dict[str, Any]]) -> dict[tuple[str, ...], int]:
    """The ground truth, from the final registrations only (no deltas, no state)."""
    calendar = region_calendar("midden")
    minutes: dict[tuple[str, ...], int] = defaultdict(int)
    pupils: dict[tuple[str, ...], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for reg in live.values():
        scopes = [reg["swv"], "NL"] if reg["swv"] else ["NL"]
        periods = [("week", reg["datumWeek"]), ("maand", reg["maand"])]
        periods.append(("schooljaar", reg["schooljaar"]))
        for scope in scopes:
            for kind, label in periods:
                cell = (scope, reg["sector"], kind, label)
                minutes[(*cell, "minuten", reg["groep"])] += reg["minuten"]
                kind_of = "ongeoorloofd" if reg["groep"] == "luxe" else reg["groep"]
                pupils[(*cell, reg["leerling"])][kind_of] += reg["minuten"]
    out = {k: v for k, v in minutes.items() if v}
    for (scope, sector, kind, label, _), totals in pupils.items():
        cell = (scope, sector, kind, label)
        period = parse_period(label)
        scheduled = calendar.count_lesdagen(period.start, period.end) * MINUTES[sector]
        absent = totals["geoorloofd"] + totals["ongeoorloofd"]
        share = absent / scheduled if scheduled else (1.0 if absent else 0.0)
        tier = "3" if share >= 0.10 else "2" if share >= 0.05 else "1"
        flags = [("leerlingen_niveau", tier)]
        for groep, metric in (
            ("geoorloofd", "leerlingen_geoorloofd"),
            ("ongeoorloofd", "leerlingen_ongeoorloofd"),
            ("deelname", "leerlingen_afstandsonderwijs"),
        ):
            if totals[groep] > 0:
                flags.append((metric, ""))
        for metric, category in flags:
            out[(*cell, metric, category)] = out.get((*cell, metric, category), 0) + 1
    return out


async def stored_rollups(db: Database) -> dict[tuple[str, ...], int]:
    t = Rollup.__table__
    async with db.transaction() as session:
        rows = await session.execute(select(t))
        return {
            (r.scope, r.sector, r.period_kind, r.period, r.metric, r.category): r.value
            for r in rows
            if r.value != 0
        }


async def apply_in_batches(
    db: Database, events: list[dict[str, Any]], size: int, handler: Any = apply_ingest_events
) -> None:
    ctx = context()
    for start in range(0, len(events), size):
        async with db.transaction() as session:
            await handler(session, events[start : start + size], ctx)


async def wipe(db: Database) -> None:
    async with db.transaction() as session:
        if session.get_bind().dialect.name == "postgresql":
            await session.execute(text("TRUNCATE " + ", ".join(STATE_TABLES)))
            return
        for table in STATE_TABLES:
            await session.execute(text(f"DELETE FROM {table}"))


# --- tests -------------------------------------------------------------------------------


async def test_registration_rollups_match_the_ground_truth(db: Database) -> None:
    events, live = registration_feed(seed=7)
    await apply_in_batches(db, events, size=97)
    assert await stored_rollups(db) == expected_rollups(live)


async def test_replay_from_zero_in_other_batches_rebuilds_the_same_rollups(db: Database) -> None:
    events, live = registration_feed(seed=11, n=300)
    await apply_in_batches(db, events, size=300)
    first = await stored_rollups(db)
    await wipe(db)
    await apply_in_batches(db, events, size=1)
    assert await stored_rollups(db) == first == expected_rollups(live)


async def test_a_malformed_event_is_skipped_and_the_rest_of_its_batch_applied(
    db: Database,
) -> None:
    events, live = registration_feed(seed=5, n=80)
    bad = dict(events[10]["data"], registratieId="kapot", minuten="veel")
    no_data = {"type": ev.REGISTRATIE_VASTGELEGD, "position": 0, "id": "x"}
    broken = [*events[:20], _event(ev.REGISTRATIE_VASTGELEGD, 0, bad), no_data, *events[20:]]
    await apply_in_batches(db, broken, size=len(broken))  # one batch
    assert await stored_rollups(db) == expected_rollups(live)


async def test_a_retraction_removes_every_trace(db: Database) -> None:
    events, _ = registration_feed(seed=3, n=40)
    retractions = [
        _event(ev.REGISTRATIE_INGETROKKEN, 1000 + i, {"registratieId": rid})
        for i, rid in enumerate(
            sorted({e["data"]["registratieId"] for e in events if "leerling" in e["data"]})
        )
    ]
    await apply_in_batches(db, events + retractions, size=50)
    assert await stored_rollups(db) == {}
    async with db.transaction() as session:
        # Per-registration and per-pupil state is gone; aggregates may keep rows of zero.
        for table in ("swv_registraties", "leerling_perioden"):
            assert (await session.execute(text(f"SELECT count(*) FROM {table}"))).scalar() == 0


def vrijstelling_feed(seed: int) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    rng = random.Random(seed)
    live: dict[str, dict[str, Any]] = {}
    events: list[dict[str, Any]] = []
    for i in range(150):
        roll = rng.random()
        if live and roll < 0.1:
            vid = rng.choice(sorted(live))
            soort = live.pop(vid)["soort"]
            kind = (
                ev.ABSOLUUT_VERZUIM_INGETROKKEN
                if soort == "absoluut_verzuim"
                else ev.VRIJSTELLING_INGETROKKEN
            )
            events.append(_event(kind, i + 1, {"vrijstellingId": vid}))
            continue
        if live and roll < 0.3:
            vid = rng.choice(sorted(live))
            data = dict(live[vid])
            begin = date.fromisoformat(data["begindatum"])
            data["einddatum"] = (begin + timedelta(days=rng.randint(0, 300))).isoformat()
        else:
            vid = f"vr-{i}"
            begin = date(2025, 8, 1) + timedelta(days=rng.randint(0, 300))
            end = begin + timedelta(days=rng.randint(0, 200)) if rng.random() < 0.5 else None
            po, vo = rng.choice([("PO-99-01", "VO-99-01"), ("PO-99-02", "VO-99-02")])
            data = {
                "vrijstellingId": vid,
                "leerling": f"ll-{i}",
                "soort": rng.choice(["5a", "5a", "5b", "absoluut_verzuim"]),
                "begindatum": begin.isoformat(),
                "einddatum": end.isoformat() if end else None,
                "swvPo": po,
                "swvVo": vo,
                "leeftijdsband": rng.choice(["4-5", "6-11", "12-15", "16-17"]),
            }
        live[vid] = data
        kind = (
            ev.ABSOLUUT_VERZUIM_VASTGELEGD
            if data["soort"] == "absoluut_verzuim"
            else ev.VRIJSTELLING_VASTGELEGD
        )
        events.append(_event(kind, i + 1, data))
    return events, live


@pytest.mark.parametrize("label", ["2025-2026", "2025-11", "2026-02", "2025-W47", "2026-W10"])
async def test_vrijstelling_flows_match_the_ground_truth(db: Database, label: str) -> None:
    events, live = vrijstelling_feed(seed=5)
    await apply_in_batches(db, events, size=40)
    period = parse_period(label)
    peildatum = period.end
    for scope in ("PO-99-01", "VO-99-02", "NL"):
        expected: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
        for v in live.values():
            if scope not in (v["swvPo"], v["swvVo"], "NL"):
                continue
            begin = date.fromisoformat(v["begindatum"])
            end = date.fromisoformat(v["einddatum"]) if v["einddatum"] else None
            figures = expected[(v["soort"], v["leeftijdsband"])]
            figures[0] += begin <= peildatum and (end is None or end >= peildatum)
            figures[1] += period.start <= begin <= period.end
            figures[2] += end is not None and period.start <= end <= period.end
        async with db.transaction() as session:
            stored = await repo.flows_for(session, scope, period.start, period.end, peildatum)
        got = {k: [f.actief, f.gestart, f.beeindigd] for k, f in stored.items()}
        assert {k: v for k, v in got.items() if any(v)} == {
            k: v for k, v in expected.items() if any(v)
        }


async def test_melding_rollups_count_each_melding_once_and_drop_withdrawn(db: Database) -> None:
    rng = random.Random(9)
    live: dict[str, dict[str, Any]] = {}
    events = []
    for i in range(120):
        mid = f"m-{rng.randint(0, 50)}"
        data = live.get(mid) or {
            "meldingId": mid,
            "soort": rng.choice(["V3", "V4", "LRV", "L", "O", "RMC"]),
            "sector": "po",
            "swv": rng.choice(["PO-99-01", "PO-99-02"]),
            "schoolweek": "2025-W47",
            "maand": "2025-11",
            "schooljaar": "2025-2026",
            "leeftijdsband": "6-11",
        }
        status = rng.choice(
            ["concept", "vervallen", "ingediend", "geregistreerd", "in_behandeling", "ingetrokken"]
        )
        data = data | {"status": status}
        live[mid] = data
        events.append(_event(ev.MELDING_GEWIJZIGD, i + 1, data))
    await apply_in_batches(db, events, size=25, handler=apply_melding_events)
    expected: dict[tuple[str, ...], int] = defaultdict(int)
    for m in live.values():
        if m["status"] in ("concept", "vervallen", "ingetrokken"):
            continue  # only meldingen the school sent, and did not withdraw, count
        for scope in (m["swv"], "NL"):
            for kind, label in (("week", "2025-W47"), ("maand", "2025-11")):
                expected[(scope, "po", kind, label, "meldingen", m["soort"])] += 1
            expected[(scope, "po", "schooljaar", "2025-2026", "meldingen", m["soort"])] += 1
    assert await stored_rollups(db) == dict(expected)
