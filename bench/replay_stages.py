"""Melding's replay stage by stage (issue 8): the CPU per event of decoding ingest's
pages, planning each batch (its lookups included), and writing it, and of melding's
PostgreSQL meanwhile; and of ingest serving the pages (``feed.read_batch``), with its
PostgreSQL.

    make bench-replay-stages [ARGS="--rounds 3 --quick --json F"]
    make bench-replay-stages ARGS="--callgrind --quick [--callgrind-out DIR]"

In the hub's replay (``hub_bench.py``, phase 3) these stages overlap:
- a page is fetched and decoded while the batch before it is planned, and the batch before
  that is written (ADR 0022, 0023);
- ingest serves the pages meanwhile.

A replay's rate says how the overlap went, not what each stage costs. Here the stages run
one after the other in this process, so each one's own CPU shows:
- the pages are the ones ingest served after the benchmark's batch phase (60,000
  registrations, or 10,000 with ``--quick``);
- each batch is planned with the plan of the batch before it, as the consumer plans ahead;
- every table of melding's database is emptied between rounds;
- ingest's side is measured after melding's rounds, on the same pages (checked to be the
  bytes its feed route sent).

It leaves out the HTTP fetch, the cursor's update and the event loop's switching between
stages, so its figures are a little below what melding spends per event in the replay (the
hub's ``cpu_us_per_event``). Unlike the replay's rate, they do not move with how well the
stages happened to overlap.

CPU time still moves with the machine (1.25–1.6 times between two sessions' machines for
the same code). ``--callgrind`` counts instructions instead: one round to warm up, then
one counted, under valgrind's callgrind (``bench/callgrind.py``), each stage of each page
a segment of its own; ingest's side and melding's each in a child process of its own, as
in the hub (in one process, what serving left alive moved melding's garbage collections,
and its write read 9,339 instructions an event instead of 8,060). Run after run of the
same code, decoding read the same to ~0.1 % (26,966 and 26,944), planning to ~0.5 %, and
writing to ~2.5 % (8,032–8,238: where the garbage collector runs moves), twenty-fourth
session; a change of a per cent or two shows. It is ~60 times slower: ``--quick`` takes
about a minute.
``--callgrind-out DIR`` keeps the dumps, one a stage and page, for ``callgrind_annotate``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import callgrind
import hub_bench
import orjson
from floor_bench import feed_pages, service_context

from verzuimhub.cli import _settle_garbage_collector
from verzuimhub.testing import truncate
from verzuimhub_ingest.app import create_app as create_ingest_app
from verzuimhub_ingest.models import FEED as INGEST_FEED
from verzuimhub_ingest.settings import IngestSettings
from verzuimhub_melding import service as melding_service
from verzuimhub_melding.app import create_app as create_melding_app
from verzuimhub_melding.settings import MeldingSettings
from verzuimhub_shared import feed
from verzuimhub_shared.db import Database
from verzuimhub_shared.testing.postgres import ensure_server

STAGES = ("decode", "plan", "write")
#: Ingest's stage: serving melding's pages (``feed.read_batch``, what its feed route does).
SERVE = "serve"


async def serve_pages(
    sealer: Any, db: Database, size: int, enter: Callable[[str | None], None]
) -> list[bytes]:
    """Melding's pages read from ingest's database as ingest's feed route reads them, each
    a transaction of its own, up to the empty page at the head; ``enter(SERVE)`` before
    each and ``enter(None)`` after."""
    pages: list[bytes] = []
    after = 0
    while True:
        enter(SERVE)
        async with db.transaction() as session:
            content = await feed.read_batch(session, INGEST_FEED, "melding", after, size, sealer)
        enter(None)
        if content == b"[]":
            return pages
        pages.append(content)
        after = _last_position(content)


def _last_position(content: bytes) -> int:
    """The position of a page's last event: the page's last line starts with it (ADR
    0016, 0026). Read without decoding the page: 5,000 events decoded into dicts left
    garbage that moved the collector's work into the stages after it."""
    found = _POSITION.match(content, content.rfind(b"\n") + 1)
    if found is None:
        raise ValueError("a page's last line does not start with its event's position")
    return int(found.group(1))


_POSITION = re.compile(rb'\[?\{"position":(\d+),')


async def apply_pages(
    ctx: Any, db: Database, pages: Sequence[bytes], enter: Callable[[str | None], None]
) -> int:
    """Apply ``pages`` to melding's database one stage after the other, as the consumer
    would (each batch planned with the plan of the batch before it); ``enter(stage)`` at
    the start of each stage, ``enter(None)`` after the last. The events applied."""
    events = 0
    ahead = None
    for content in pages:
        enter("decode")
        page = await melding_service.decode_ingest_feed_in_turns(ctx, content)
        enter("plan")
        async with db.transaction() as session:
            plan = await melding_service.plan_ingest_events(session, ctx, page.batch, ahead)
            enter("write")
            await melding_service.write_ingest_plan(session, plan)
        enter(None)
        events += page.count
        ahead = plan
    return events


class CpuMeter:
    """CPU seconds of this process in each stage (``enter`` as :func:`apply_pages` and
    :func:`serve_pages` call it)."""

    def __init__(self, stages: Sequence[str] = STAGES) -> None:
        self.spent = dict.fromkeys(stages, 0.0)
        self._stage: str | None = None
        self._since = 0.0

    def enter(self, stage: str | None) -> None:
        now = time.process_time()
        if self._stage is not None:
            self.spent[self._stage] += now - self._since
        self._stage, self._since = stage, now


class CallgrindMeter:
    """Counts each stage's instructions under callgrind: on at a stage's start; at its end
    off, and a dump named after it (``callgrind.segments`` reads them)."""

    def __init__(self) -> None:
        self._stage: str | None = None

    def enter(self, stage: str | None) -> None:
        if self._stage is not None:
            callgrind.control("-i", "off")
            callgrind.control(f"--dump={self._stage}")
        if stage is not None:
            callgrind.control("-i", "on")
        self._stage = stage


async def replay_round(
    ctx: Any, db: Database, pages: Sequence[bytes], postgres_cpu: Any
) -> dict[str, float]:
    """One replay of ``pages`` into melding's emptied database, a stage at a time: CPU
    seconds of this process in each stage, and of melding's PostgreSQL over the round
    (``postgres_cpu()``: its backends' CPU seconds so far); and the events applied."""
    meter = CpuMeter()
    backends = postgres_cpu()
    events = await apply_pages(ctx, db, pages, meter.enter)
    return meter.spent | {"postgres": postgres_cpu() - backends, "events": events}


async def serve_round(
    sealer: Any, db: Database, size: int, postgres_cpu: Any
) -> tuple[list[bytes], dict[str, float]]:
    """Ingest's side of one replay: the pages (:func:`serve_pages`), the CPU seconds this
    process spent serving them, and ingest's PostgreSQL meanwhile (``postgres_cpu()``)."""
    meter = CpuMeter((SERVE,))
    backends = postgres_cpu()
    pages = await serve_pages(sealer, db, size, meter.enter)
    return pages, {SERVE: meter.spent[SERVE], "serve_postgres": postgres_cpu() - backends}


def per_event(rounds: Sequence[dict[str, float]]) -> dict[str, float]:
    """Each stage's CPU µs per event, the median over the rounds; with melding's Python
    stages' sum (``python``) and its PostgreSQL's (``postgres``); and ingest's serving of
    the pages with its PostgreSQL's, where the rounds have them."""
    out = {}
    keys = (*STAGES, "postgres", SERVE, "serve_postgres")
    for key in (k for k in keys if k in rounds[0]):
        out[key] = round(statistics.median(r[key] / r["events"] * 1e6 for r in rounds), 2)
    out["python"] = round(sum(out[stage] for stage in STAGES), 2)
    return out


def report(figures: dict[str, Any]) -> str:
    us = figures["us_per_event"]
    lines = [
        f"melding's replay, stage by stage: {figures['events']:,} events, "
        f"{figures['rounds']} rounds (medians)",
        f"{'stage':<52}{'CPU µs/event':>14}",
        "-" * 66,
        f"{'Python: decode (and the pupils link pseudonyms)':<52}{us['decode']:>14.2f}",
        f"{'Python: plan (lookups, pupils, ledger rows)':<52}{us['plan']:>14.2f}",
        f"{'Python: write (COPY encoding, commit)':<52}{us['write']:>14.2f}",
        f"{'Python, in all':<52}{us['python']:>14.2f}",
        f"{'PostgreSQL (lookups, writes, checks, commits)':<52}{us['postgres']:>14.2f}",
    ]
    if SERVE in us:
        lines += [
            f"{'ingest: serve the pages (feed.read_batch)':<52}{us[SERVE]:>14.2f}",
            f"{'ingest: its PostgreSQL meanwhile':<52}{us['serve_postgres']:>14.2f}",
        ]
    return "\n".join(lines)


@asynccontextmanager
async def ingested(scale: hub_bench.Scale) -> AsyncIterator[tuple[hub_bench.Hub, list[bytes]]]:
    """Fresh databases, the benchmark's dataset stored by ingest, and ingest's feed as
    melding's consumer reads it (every page, as sent); ingest stopped again."""
    pg = await ensure_server()
    work = Path(tempfile.mkdtemp(prefix="vzh-stages-"))
    hub = hub_bench.Hub(pg, work)
    try:
        await hub.create_databases()
        await hub.start("ingest")
        dataset = hub_bench.school_year_dataset(scale, random.Random(8))
        hub_bench.log("batch phase (ingest stores the dataset) …")
        await hub_bench.bench_batch(hub, scale, dataset)
        pages = await feed_pages(hub, scale.batch_size)
        hub.stop_all()
        yield hub, pages
    finally:
        hub.stop_all()
        await pg.drop_databases()
        pg.stop()
        shutil.rmtree(work, ignore_errors=True)


def melding_context() -> Any:
    return create_melding_app(MeldingSettings()).state.melding


def ingest_sealer() -> Any:
    return create_ingest_app(IngestSettings()).state.sealer


async def run(scale: hub_bench.Scale, rounds: int) -> dict[str, Any]:
    async with ingested(scale) as (hub, pages):
        ctx = service_context(hub, "melding", melding_context)
        sealer = service_context(hub, "ingest", ingest_sealer)
        db = Database(hub.db_urls["melding"])
        ingest_db = Database(hub.db_urls["ingest"])
        _settle_garbage_collector()  # as `verzuimhub serve` does

        def postgres_cpu(name: str) -> Callable[[], float]:
            return lambda: hub_bench.cpu_now(hub)[f"postgres:{name}"]

        done = []
        try:
            for n in range(1, rounds + 1):
                await truncate(hub.db_urls["melding"])
                hub_bench.log(f"round {n} of {rounds} …")
                done.append(await replay_round(ctx, db, pages, postgres_cpu("melding")))
            # Ingest's side after melding's: what it leaves alive would change when
            # melding's collector runs (the process is one here, two in the hub).
            gc.collect()
            for n in range(rounds):
                served, serving = await serve_round(
                    sealer, ingest_db, scale.batch_size, postgres_cpu("ingest")
                )
                if served != pages:
                    raise AssertionError("the pages served differ from those ingest sent")
                done[n] |= serving
        finally:
            await db.dispose()
            await ingest_db.dispose()
    return {
        "events": int(done[0]["events"]),
        "rounds": rounds,
        "us_per_event": per_event(done),
        "per_round": done,
        "reference_python_us": hub_bench.python_reference(),
    }


async def count_instructions(scale: hub_bench.Scale, keep: Path | None = None) -> dict[str, Any]:
    """Each stage's instructions per event, under callgrind: ingest serving the pages,
    and melding's stages. This process stores the dataset and reads the feed, then runs
    :func:`counted_round` under callgrind on the same pages and databases, in a child
    process for each side (as the hub runs them: what one side leaves alive would change
    when the other's garbage collector runs). ``keep``: a directory to copy callgrind's
    dumps to (one a stage and page, for ``callgrind_annotate``)."""
    async with ingested(scale) as (hub, pages):
        spec = {
            **{f"{side}_env": hub.envs[side] for side in SIDES},
            **{f"{side}_db_url": hub.db_urls[side] for side in SIDES},
            "size": scale.batch_size,
        }
        hub_bench.log("replay under callgrind (a round to warm up, then the counted one) …")
        counts = await asyncio.to_thread(_under_callgrind, spec, pages, keep)
    events = sum(len(orjson.loads(content)) for content in pages)
    per = callgrind.per_unit(counts, events)
    per_event_ = {stage: per[stage] for stage in STAGES}
    return {
        "events": events,
        "instructions_per_event": per_event_
        | {"python": round(sum(per_event_.values()), 1), SERVE: per[SERVE]},
        "switching_instructions": counts.get(callgrind.EMPTY, []),
    }


def _under_callgrind(
    spec: dict[str, Any], pages: Sequence[bytes], keep: Path | None
) -> dict[str, list[int]]:
    """:func:`counted_round` under callgrind for each side, given ``spec`` and ``pages``
    in files; the counts of their segments."""
    counts: dict[str, list[int]] = {}
    with tempfile.TemporaryDirectory(prefix="vzh-stages-callgrind-") as tmp:
        work = Path(tmp)
        spec = spec | {"pages": [str(work / f"page-{n:04d}") for n in range(len(pages))]}
        for path, content in zip(spec["pages"], pages, strict=True):
            Path(path).write_bytes(content)
        (work / "spec.json").write_text(json.dumps(spec))
        for side in SIDES:
            out_file = work / f"callgrind-{side}.out"
            child = ["--callgrind-child", str(work / "spec.json"), "--side", side]
            callgrind.run([__file__, *child], out_file)
            for name, each in callgrind.segments(out_file).items():
                counts.setdefault(name, []).extend(each)
        if keep is not None:
            keep.mkdir(parents=True, exist_ok=True)
            for dump in work.glob("callgrind-*.out.*"):
                shutil.copy(dump, keep / dump.name)
    return counts


#: The two sides of a replay, each counted in a process of its own.
SIDES = ("ingest", "melding")


async def counted_round(spec: dict[str, Any], pages: list[bytes], side: str) -> None:
    """Under callgrind (:func:`count_instructions`), one side: ingest serving the pages,
    or melding's replay of them. A round uncounted (for the caches filled once:
    statements, plans, decoders), then a counted one with each stage a segment of its own;
    and three empty segments, to take off what switching costs."""
    os.environ.update(spec[f"{side}_env"])
    url = spec[f"{side}_db_url"]
    db = Database(url)
    if side == "ingest":
        sealer = ingest_sealer()

        async def one_round(enter: Callable[[str | None], None]) -> None:
            if await serve_pages(sealer, db, spec["size"], enter) != pages:
                raise AssertionError("the pages served differ from those ingest sent")

    else:
        ctx = melding_context()

        async def one_round(enter: Callable[[str | None], None]) -> None:
            await truncate(url)
            await apply_pages(ctx, db, pages, enter)

    _settle_garbage_collector()  # as `verzuimhub serve` does
    meter = CallgrindMeter()
    try:
        for enter in (lambda stage: None, meter.enter):  # to warm up, then counted
            await one_round(enter)
        for _ in range(3):
            meter.enter(callgrind.EMPTY)
            meter.enter(None)
    finally:
        await db.dispose()


def callgrind_report(figures: dict[str, Any]) -> str:
    per = figures["instructions_per_event"]
    lines = [
        f"melding's replay under callgrind: {figures['events']:,} events, one counted round",
        f"{'stage':<52}{'instructions/event':>18}",
        "-" * 70,
        *(f"{'Python: ' + stage:<52}{per[stage]:>18,.0f}" for stage in STAGES),
        f"{'Python, in all':<52}{per['python']:>18,.0f}",
        f"{'ingest: serve the pages (feed.read_batch)':<52}{per[SERVE]:>18,.0f}",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="10,000 registrations")
    parser.add_argument("--json", type=Path, default=None, help="where to write the figures")
    parser.add_argument(
        "--callgrind", action="store_true", help="count instructions (one round, valgrind)"
    )
    parser.add_argument(
        "--callgrind-out", type=Path, default=None, help="keep callgrind's dumps in this directory"
    )
    parser.add_argument("--callgrind-child", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--side", choices=SIDES, default="melding", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.callgrind_child is not None:
        spec = json.loads(args.callgrind_child.read_text())
        pages = [Path(path).read_bytes() for path in spec["pages"]]
        asyncio.run(counted_round(spec, pages, args.side))
        return
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    scale = hub_bench.QUICK if args.quick else hub_bench.FULL
    if args.callgrind:
        figures = asyncio.run(count_instructions(scale, args.callgrind_out))
        print(callgrind_report(figures))
    else:
        figures = asyncio.run(run(scale, args.rounds))
        print(report(figures))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + os.linesep)
        print(f"figures written to {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
