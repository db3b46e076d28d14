"""Melding's replay stage by stage (issue 8): the CPU per event of decoding ingest's
pages, planning each batch (its lookups included), and writing it, and of melding's
PostgreSQL meanwhile.

    make bench-replay-stages [ARGS="--rounds 3 --quick --json F"]

In the hub's replay (``hub_bench.py``, phase 3) these stages overlap:
- a page is fetched and decoded while the batch before it is planned, and the batch before
  that is written (ADR 0022, 0023);
- ingest serves the pages meanwhile.

A replay's rate says how the overlap went, not what each stage costs. Here the stages run
one after the other in this process, so each one's own CPU shows:
- the pages are the ones ingest served after the benchmark's batch phase (60,000
  registrations, or 10,000 with ``--quick``);
- each batch is planned with the plan of the batch before it, as the consumer plans ahead;
- every table of melding's database is emptied between rounds.

It leaves out the HTTP fetch, the cursor's update and the event loop's switching between
stages, so its figures are a little below what melding spends per event in the replay (the
hub's ``cpu_us_per_event``). Unlike the replay's rate, they do not move with how well the
stages happened to overlap.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hub_bench
from floor_bench import feed_pages, service_context

from verzuimhub.cli import _settle_garbage_collector
from verzuimhub.testing import truncate
from verzuimhub_melding import service as melding_service
from verzuimhub_melding.app import create_app as create_melding_app
from verzuimhub_melding.settings import MeldingSettings
from verzuimhub_shared.db import Database
from verzuimhub_shared.testing.postgres import ensure_server

STAGES = ("decode", "plan", "write")


async def replay_round(
    ctx: Any, db: Database, pages: Sequence[bytes], postgres_cpu: Any
) -> dict[str, float]:
    """One replay of ``pages`` into melding's emptied database, a stage at a time: CPU
    seconds of this process in each stage, and of melding's PostgreSQL over the round
    (``postgres_cpu()``: its backends' CPU seconds so far); and the events applied."""
    spent = dict.fromkeys(STAGES, 0.0)
    events = 0
    ahead = None
    backends = postgres_cpu()
    for content in pages:
        started = time.process_time()
        page = await melding_service.decode_ingest_feed_in_turns(ctx, content)
        decoded = time.process_time()
        async with db.transaction() as session:
            plan = await melding_service.plan_ingest_events(session, ctx, page.batch, ahead)
            planned = time.process_time()
            await melding_service.write_ingest_plan(session, plan)
        written = time.process_time()
        spent["decode"] += decoded - started
        spent["plan"] += planned - decoded
        spent["write"] += written - planned
        events += page.count
        ahead = plan
    return spent | {"postgres": postgres_cpu() - backends, "events": events}


def per_event(rounds: Sequence[dict[str, float]]) -> dict[str, float]:
    """Each stage's CPU µs per event, the median over the rounds; with the Python stages'
    sum (``python``) and PostgreSQL's (``postgres``)."""
    out = {}
    for key in (*STAGES, "postgres"):
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
    return "\n".join(lines)


async def run(scale: hub_bench.Scale, rounds: int) -> dict[str, Any]:
    pg = await ensure_server()
    work = Path(tempfile.mkdtemp(prefix="vzh-stages-"))
    hub = hub_bench.Hub(pg, work)
    db: Database | None = None
    try:
        await hub.create_databases()
        await hub.start("ingest")
        dataset = hub_bench.school_year_dataset(scale, random.Random(8))
        hub_bench.log("batch phase (ingest stores the dataset) …")
        await hub_bench.bench_batch(hub, scale, dataset)
        pages = await feed_pages(hub, scale.batch_size)
        hub.stop_all()
        ctx = service_context(
            hub, "melding", lambda: create_melding_app(MeldingSettings()).state.melding
        )
        db = Database(hub.db_urls["melding"])
        _settle_garbage_collector()  # as `verzuimhub serve` does

        def postgres_cpu() -> float:
            return hub_bench.cpu_now(hub)["postgres:melding"]

        done = []
        for n in range(1, rounds + 1):
            await truncate(hub.db_urls["melding"])
            hub_bench.log(f"round {n} of {rounds} …")
            done.append(await replay_round(ctx, db, pages, postgres_cpu))
    finally:
        if db is not None:
            await db.dispose()
        hub.stop_all()
        await pg.drop_databases()
        pg.stop()
        shutil.rmtree(work, ignore_errors=True)
    return {
        "events": int(done[0]["events"]),
        "rounds": rounds,
        "us_per_event": per_event(done),
        "per_round": done,
        "reference_python_us": hub_bench.python_reference(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="10,000 registrations")
    parser.add_argument("--json", type=Path, default=None, help="where to write the figures")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    figures = asyncio.run(run(hub_bench.QUICK if args.quick else hub_bench.FULL, args.rounds))
    print(report(figures))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + os.linesep)
        print(f"figures written to {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
