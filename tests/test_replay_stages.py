"""``make bench-replay-stages`` (bench/replay_stages.py): melding's replay one stage after
the other, each stage's CPU per event."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import orjson
import pytest
from sqlalchemy import text

from verzuimhub.testing import bench_module, truncate
from verzuimhub_ingest.models import FEED as INGEST_FEED
from verzuimhub_shared import events as ev
from verzuimhub_shared import feed
from verzuimhub_shared.crypto import Pseudonymiser, Sealer
from verzuimhub_shared.db import Database
from verzuimhub_shared.testing.events import voor_melding

CTX: Any = SimpleNamespace(
    pseudonymiser=Pseudonymiser("test-secret"), sealer=Sealer({"k1": "secret-one"}, "k1")
)


@pytest.fixture(scope="module")
def replay_stages() -> ModuleType:
    return bench_module("replay_stages")


def page(*events: dict[str, Any]) -> bytes:
    """A page as ingest's feed serves it: one event per line."""
    return b"[" + b",\n".join(orjson.dumps(e) for e in events) + b"]"


def put(position: int, rid: str, pgn: str, day: int) -> dict[str, Any]:
    data = voor_melding(rid, pgn, datum=date(2026, 3, day))
    return {"position": position, "type": ev.REGISTRATIE_VASTGELEGD, "data": data}


async def test_a_round_applies_every_page_and_times_each_stage(
    replay_stages: ModuleType, db_urls: dict[str, str]
) -> None:
    pages = [
        page(put(1, "r1", "123456782", 2), put(2, "r2", "123456782", 3)),
        page(put(3, "r3", "234567891", 4), put(4, "r1", "123456782", 5)),  # r1 again
    ]
    await truncate(db_urls["melding"])
    db = Database(db_urls["melding"])
    readings = iter([1.0, 1.25])
    try:
        done = await replay_stages.replay_round(CTX, db, pages, lambda: next(readings))
        async with db.transaction() as session:
            ledger = (await session.execute(text("SELECT registratie_id, datum FROM ledger"))).all()
            pupils = (await session.execute(text("SELECT count(*) FROM leerlingen"))).scalar()
    finally:
        await db.dispose()
    assert done["events"] == 4
    assert done["postgres"] == 0.25  # the backends' CPU over the round
    assert all(done[stage] > 0 for stage in replay_stages.STAGES)
    # The second page's r1 is an update planned with the first page's plan ahead.
    assert sorted((rid, str(day)) for rid, day in ledger) == [
        ("r1", "2026-03-05"),
        ("r2", "2026-03-03"),
        ("r3", "2026-03-04"),
    ]
    assert pupils == 2


def test_each_stage_is_the_median_of_the_rounds_per_event(replay_stages: ModuleType) -> None:
    rounds = [
        {"decode": 0.2, "plan": 0.4, "write": 0.1, "postgres": 0.6, "events": 100_000},
        {"decode": 0.3, "plan": 0.5, "write": 0.1, "postgres": 0.5, "events": 100_000},
        {"decode": 0.25, "plan": 0.9, "write": 0.2, "postgres": 0.7, "events": 100_000},
    ]
    assert replay_stages.per_event(rounds) == {
        "decode": 2.5,
        "plan": 5.0,
        "write": 1.0,
        "postgres": 6.0,
        "python": 8.5,
    }


CPU_FIGURES = {
    "events": 60_000,
    "rounds": 3,
    "us_per_event": {
        "decode": 3.27,
        "plan": 6.48,
        "write": 1.57,
        "python": 11.32,
        "postgres": 10.73,
    },
}
COUNTED_FIGURES = {
    "events": 10_000,
    "instructions_per_event": {
        "decode": 25_769.0,
        "plan": 21_723.0,
        "write": 8_137.0,
        "python": 55_629.0,
        "serve": 29_062.0,
    },
}


@pytest.mark.parametrize(
    ("report", "figures", "shown"),
    [
        (
            "report",
            CPU_FIGURES,
            ["60,000 events, 3 rounds", "3.27", "6.48", "1.57", "11.32", "10.73"],
        ),
        (
            "callgrind_report",
            COUNTED_FIGURES,
            ["10,000 events", "25,769", "21,723", "8,137", "55,629", "29,062"],
        ),
    ],
)
def test_the_report_names_every_stage(
    replay_stages: ModuleType, report: str, figures: dict[str, Any], shown: list[str]
) -> None:
    text_ = getattr(replay_stages, report)(figures)
    for figure in shown:
        assert figure in text_


async def test_a_round_enters_each_stage_of_each_page_in_order(
    replay_stages: ModuleType, db_urls: dict[str, str]
) -> None:
    """The meters see each page's decode, plan and write, and the end of the write."""
    pages = [page(put(1, "r1", "123456782", 2)), page(put(2, "r2", "234567891", 3))]
    await truncate(db_urls["melding"])
    db = Database(db_urls["melding"])
    entered: list[str | None] = []
    try:
        events = await replay_stages.apply_pages(CTX, db, pages, entered.append)
    finally:
        await db.dispose()
    assert events == 2
    assert entered == ["decode", "plan", "write", None] * 2


def test_the_cpu_meter_adds_each_stage_up(
    replay_stages: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = iter([10.0, 10.5, 11.0, 13.0, 20.0, 20.25, 21.0])
    monkeypatch.setattr(replay_stages.time, "process_time", lambda: next(clock))
    meter = replay_stages.CpuMeter()
    for stage in ("decode", "plan", "write", None, "decode", "plan", "write"):
        meter.enter(stage)
    assert meter.spent == {"decode": 0.75, "plan": 1.25, "write": 2.0}  # the last still open


def test_switching_is_taken_off_each_segment(replay_stages: ModuleType) -> None:
    counts = {"decode": [1_300, 2_300], "plan": [5_300], "empty": [300, 310, 290]}
    assert replay_stages.callgrind.per_unit(counts, 10) == {"decode": 300.0, "plan": 500.0}


async def test_ingests_side_serves_the_pages_its_feed_route_serves(
    replay_stages: ModuleType, db_urls: dict[str, str]
) -> None:
    """Melding's pages, read from ingest's database a page at a time up to the head, each
    read a segment of the serve stage; the same bytes ingest's route answers with, sealed
    rows opened."""
    await truncate(db_urls["ingest"])
    sealer = Sealer({"k1": "secret-one"}, "k1")
    db = Database(db_urls["ingest"])
    entered: list[str | None] = []
    try:
        async with db.transaction() as session:
            events = [
                feed.Event("melding", "t", {"n": n, "s": "é"}, seal=n % 2 == 0) for n in range(5)
            ]
            await feed.append(session, INGEST_FEED, events, source="u", sealer=sealer)
        pages = await replay_stages.serve_pages(sealer, db, 2, entered.append)
        async with db.transaction() as session:
            expected = [
                await feed.read_batch(session, INGEST_FEED, "melding", after, 2, sealer)
                for after in (0, 2, 4)
            ]
    finally:
        await db.dispose()
        await truncate(db_urls["ingest"])
    assert pages == expected
    assert [[e["data"]["n"] for e in orjson.loads(p)] for p in pages] == [[0, 1], [2, 3], [4]]
    assert entered == ["serve", None] * 4  # three pages and the empty one at the head


def test_a_pages_last_position_is_read_from_its_last_line(replay_stages: ModuleType) -> None:
    assert replay_stages._last_position(page(put(7, "r1", "123456782", 2))) == 7
    assert replay_stages._last_position(page(put(7, "r1", "1", 2), put(12, "r2", "2", 3))) == 12
    with pytest.raises(ValueError, match="position"):
        replay_stages._last_position(b'[{"type":"t","position":3}]')


def test_ingests_stage_is_reported_beside_meldings(replay_stages: ModuleType) -> None:
    rounds = [
        {"decode": 0.2, "plan": 0.4, "write": 0.1, "postgres": 0.6, "events": 100_000}
        | {"serve": 0.5, "serve_postgres": 0.2},
    ]
    figures = replay_stages.per_event(rounds)
    assert (figures["serve"], figures["serve_postgres"], figures["python"]) == (5.0, 2.0, 7.0)
    text_ = replay_stages.report({"events": 100_000, "rounds": 1, "us_per_event": figures})
    assert "serve the pages" in text_
    assert "5.00" in text_


TOY = """
import sys
sys.path.insert(0, {bench!r})
import callgrind

def spin(n):
    total = 0
    for i in range(n):
        total += i
    return total

for name, n in (("small", 20_000), ("large", 60_000), ("small", 20_000)):
    callgrind.switch(on=True)
    spin(n)
    callgrind.switch(on=False)
    callgrind.control(f"--dump={{name}}")
for _ in range(3):
    callgrind.switch(on=True)
    callgrind.switch(on=False)
    callgrind.control("--dump=empty")
print("done")
"""


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_segments_count_what_ran_between_the_switches(
    replay_stages: ModuleType, tmp_path: Path
) -> None:
    """A real run under callgrind: each named dump holds its segment's count, in order, and
    a loop three times as long counts about three times as many instructions once the
    switching is taken off."""
    callgrind = replay_stages.callgrind
    bench = Path(callgrind.__file__).parent
    script = tmp_path / "toy.py"
    script.write_text(TOY.format(bench=str(bench)))
    done = callgrind.run([str(script)], tmp_path / "callgrind.out")
    assert done.stdout.strip() == "done"
    counts = callgrind.segments(tmp_path / "callgrind.out")
    assert sorted(counts) == ["empty", "large", "small"]
    assert [len(counts[name]) for name in ("small", "large", "empty")] == [2, 1, 3]
    per = callgrind.per_unit(counts, 1)
    small = per["small"] / 2
    assert 2.7 < per["large"] / small < 3.3
    assert callgrind.collected(done.stderr) >= sum(map(sum, counts.values()))
