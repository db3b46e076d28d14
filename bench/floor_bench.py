"""The floor under the batch and replay figures (issue 8: batch ingest ≥ 0.15 × COPY,
melding's replay ≥ 50,000 events/s).

What any implementation must at least spend, step by step, on this machine, with the
hub's own primitives (pydantic, HMAC-SHA256, AES-GCM, orjson, asyncpg's COPY):

- per registration of ``POST /v1/registratie-batches``: parse and validate the body, hash
  it for idempotent replays, give it an id, three pseudonyms, its two events (one sealed:
  it carries the PGN), the sealed PGN, the answer; in PostgreSQL, the stored row with its
  keys and the two feed rows with theirs;
- per event of melding's replay: decode and validate it with the pupil's link pseudonym,
  seal a new pupil's PGN; in PostgreSQL, the ledger row (with the feed position the rules
  are marked from, ADR 0024) and the pupil, with their keys. What checking each ledger
  row's pupil adds is measured beside it: by the trigger melding uses (ADR 0021), and by
  the foreign key it replaced (ADR 0015). The marks for the rules are the evaluator's,
  once per pupil a round, after the replay's figure (in its figure with the rules).

Left out, so the floor is lower than the truth: HTTP, authentication, the lookups,
commit and WAL flush, and ingest serving the feed.

It runs the benchmark's batch and replay phases first (the same dataset, through the real
services), then measures each step on what those runs stored, with the services stopped:

    uv run python bench/floor_bench.py [--json PATH]      # or: make bench-floor

Python steps are CPU of this process (with the collector settled as ``verzuimhub serve``
settles it); PostgreSQL steps are CPU of its backend (``/proc/<pid>/schedstat``). No
implementation doing these steps can do better than ``1 / max(Python, PostgreSQL)`` per
unit with one process, nor than ``cores / (Python + PostgreSQL)`` with any number of them;
the batch's figures are that, times the time of a ``COPY`` into a bare table. Other
libraries would move the Python half somewhat, the PostgreSQL half not at all.
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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import hub_bench
import orjson

from verzuimhub.cli import _settle_garbage_collector
from verzuimhub_ingest import service as ingest_service
from verzuimhub_ingest.app import create_app
from verzuimhub_ingest.schemas import RegistratieIn
from verzuimhub_ingest.service import LINK, IngestContext
from verzuimhub_ingest.settings import IngestSettings
from verzuimhub_melding import service as melding_service
from verzuimhub_melding.app import create_app as create_melding_app
from verzuimhub_melding.service import MeldingContext
from verzuimhub_melding.settings import MeldingSettings
from verzuimhub_shared import events as ev
from verzuimhub_shared.feed import Event
from verzuimhub_shared.ids import new_id
from verzuimhub_shared.testing.postgres import ensure_server

TARGET = 0.15
REPLAY_TARGET = 50_000
REPEAT = 3


def reachable(copy_us: float, python_us: float, postgres_us: float, cores: int) -> dict[str, float]:
    """The best batch/COPY ratios any implementation doing these steps could reach: with
    Python and PostgreSQL in turn (one batch at a time on one connection); with the two
    perfectly overlapped (one ingest process, PostgreSQL on another core); and with every
    core busy (any number of ingest processes, nothing else running)."""
    return {
        "in_turn": round(copy_us / (python_us + postgres_us), 3),
        "overlapped": round(copy_us / max(python_us, postgres_us), 3),
        "all_cores": round(copy_us * cores / (python_us + postgres_us), 3),
    }


def _cpu_us(run: Callable[[], Any], rows: int) -> float:
    """Median CPU µs per row of ``run()`` in this process over ``REPEAT`` runs."""
    taken = []
    for _ in range(REPEAT):
        started = time.process_time()
        run()
        taken.append((time.process_time() - started) * 1e6 / rows)
    return round(statistics.median(taken), 2)


def batch_python_steps(
    ctx: IngestContext, dataset: list[dict[str, Any]], size: int
) -> dict[str, float]:
    """CPU µs per registration of each step ingest cannot leave out, on the dataset."""
    bodies = [
        orjson.dumps({"registraties": dataset[i : i + size]}) for i in range(0, len(dataset), size)
    ]
    rows = len(dataset)
    vctx = ctx.validation_context()
    parsed = [orjson.loads(body)["registraties"] for body in bodies]
    validated = [item for raw in parsed for item in ingest_service._validated(raw, vctx)]
    items = [i for i in validated if isinstance(i, RegistratieIn)]
    assert len(items) == rows, "the dataset must be valid"
    ids = [new_id() for _ in items]
    categories = [ctx.catalogue.get(i.categorie) for i in items]
    assert None not in categories, "the dataset's categories are in the catalogue"
    pseudonymiser, sealer = ctx.pseudonymiser, ctx.sealer
    pgns = sorted({i.pgn for i in items})

    def events() -> list[Event]:
        projector = ingest_service._Projector(ctx)
        out: list[Event] = []
        for rid, item, category in zip(ids, items, categories, strict=True):
            assert category is not None
            out.extend(projector.events(rid, item, category))
        return out

    built = events()
    envelopes = [
        {
            "position": 0,  # the row's, written in as the feed is served (ADR 0026)
            "specversion": "1.0",
            "id": "0" * 32,
            "source": ev.SOURCE_INGEST,
            "type": e.type,
            "time": "2026-11-26T12:00:00.000000Z",
            "datacontenttype": "application/json",
            "data": e.data,
        }
        for e in built
    ]
    plaintexts = [orjson.dumps(env) for env, e in zip(envelopes, built, strict=True) if e.seal]
    answers = [
        ingest_service._confirm(rid, item, ctx.catalogue.version)
        for rid, item in zip(ids, items, strict=True)
    ]
    return {
        "parse JSON": _cpu_us(lambda: [orjson.loads(b) for b in bodies], rows),
        "validate (schema, catalogue, reference data, cross-field)": _cpu_us(
            lambda: (
                [ingest_service._validated(raw, vctx) for raw in parsed],
                [ingest_service._cross_field_problems(i) for i in items],
            ),
            rows,
        ),
        "payload hash (idempotent replays)": _cpu_us(
            lambda: [ingest_service.payload_hash(i) for i in items],
            rows,
        ),
        "id (UUIDv7)": _cpu_us(lambda: [new_id() for _ in items], rows),
        "pseudonym for linking (per pupil)": _cpu_us(
            lambda: [pseudonymiser.pseudonym(p, LINK) for p in pgns], rows
        ),
        "events built (projections, with swv-aggregate's two pseudonyms)": _cpu_us(events, rows),
        # As feed.rows_of makes them: an envelope to seal is sealed from orjson's bytes,
        # one kept is kept as a copy (orjson's own bytes, kept, fault a fresh page per
        # call: ~2.5 µs instead of ~0.7).
        "events serialised (two envelopes)": _cpu_us(
            lambda: [
                len(orjson.dumps(env)) if e.seal else bytes(memoryview(orjson.dumps(env)))
                for env, e in zip(envelopes, built, strict=True)
            ],
            rows,
        ),
        "sealed (PGN, melding's event)": _cpu_us(
            lambda: (
                [sealer.seal(i.pgn, context="pgn") for i in items],
                [sealer.seal_binary(p, context=ev.CONSUMER_MELDING) for p in plaintexts],
            ),
            rows,
        ),
        "answer serialised": _cpu_us(
            lambda: [
                orjson.dumps({"resultaten": answers[i : i + size]}) for i in range(0, rows, size)
            ],
            rows,
        ),
    }


class CopyFloor:
    """The CPU of copying rows into fresh tables with a real table's keys and indexes
    (``LIKE … INCLUDING ALL``; foreign keys are not copied, so the floor stays a floor),
    in batches of ``size``: PostgreSQL's (its backend's, from ``/proc``) and this
    process's (asyncpg encoding the rows), as µs per unit of work."""

    def __init__(self, conn: asyncpg.Connection, size: int, units: int) -> None:
        self.conn, self.size, self.units = conn, size, units
        self.server: dict[str, float] = {}
        self.client: dict[str, float] = {}
        #: Measured alongside, not part of the floor.
        self.extra: dict[str, float] = {}

    async def copy(self, label: str, like: str, records: Sequence[Any], *also: str) -> None:
        """``also``: more DDL for the fresh table (``{table}`` in it names the table)."""
        conn = self.conn
        backend = await conn.fetchval("SELECT pg_backend_pid()")
        columns = list(records[0].keys())
        used: list[tuple[float, float]] = []
        for _ in range(REPEAT):
            await conn.execute(f"DROP TABLE IF EXISTS floor_{like}")
            await conn.execute(f"CREATE TABLE floor_{like} (LIKE {like} INCLUDING ALL)")
            for ddl in also:
                await conn.execute(ddl.format(table=f"floor_{like}"))
            pg0, me0 = hub_bench.cpu_seconds(backend), time.process_time()
            for start in range(0, len(records), self.size):
                await conn.copy_records_to_table(
                    f"floor_{like}", records=records[start : start + self.size], columns=columns
                )
            used.append((hub_bench.cpu_seconds(backend) - pg0, time.process_time() - me0))
        await conn.execute(f"DROP TABLE floor_{like}")
        self.server[label] = round(statistics.median(u[0] for u in used) * 1e6 / self.units, 2)
        self.client[label] = round(statistics.median(u[1] for u in used) * 1e6 / self.units, 2)


async def batch_postgres_steps(dsn: str, size: int) -> tuple[CopyFloor, float]:
    """The stored registrations and their feed rows copied (``CopyFloor``), and the wall
    µs per row of the target's reference COPY (a bare table of the same columns, in one
    go, as ``hub_bench`` does)."""
    conn = await asyncpg.connect(dsn)
    try:
        registraties = await conn.fetch("SELECT * FROM registraties")
        floor = CopyFloor(conn, size, len(registraties))
        await floor.copy("registration stored, with its keys", "registraties", registraties)
        await floor.copy(
            "two feed rows, with their keys",
            "feed_events",
            await conn.fetch("SELECT * FROM feed_events"),
        )
        walls = [await hub_bench.bare_copy_seconds(conn, registraties) for _ in range(REPEAT)]
        return floor, round(statistics.median(walls) * 1e6 / len(registraties), 2)
    finally:
        await conn.close()


async def feed_pages(hub: hub_bench.Hub, size: int) -> list[bytes]:
    """Ingest's feed as melding's consumer reads it: every page, as sent."""
    token_file = Path(hub.envs["melding"]["VZH_MELDING_FEED_TOKEN_FILE"])
    token = (await asyncio.to_thread(token_file.read_text)).strip()
    pages: list[bytes] = []
    after = 0
    async with httpx.AsyncClient(base_url=hub.base("ingest"), timeout=60) as client:
        while True:
            response = await client.get(
                "/v1/feed",
                params={"after": after, "limit": size},
                headers={"authorization": f"Bearer {token}"},
            )
            response.raise_for_status()
            events = orjson.loads(response.content)
            if not events:
                return pages
            pages.append(response.content)
            after = events[-1]["position"]


async def replay_postgres_steps(dsn: str, size: int, events: int) -> CopyFloor:
    """What melding stored, copied: the ledger rows and the pupils."""
    conn = await asyncpg.connect(dsn)
    try:
        floor = CopyFloor(conn, size, events)
        ledger = await conn.fetch("SELECT * FROM ledger")
        await floor.copy("ledger rows, with their keys", "ledger", ledger)
        # Not in the floor: what checking each row's pupil adds to it, by melding's trigger
        # (ADR 0021; its function is in the migrated database) and by a foreign key.
        checked = CopyFloor(conn, size, events)
        await checked.copy(
            "with the trigger",
            "ledger",
            ledger,
            "CREATE TRIGGER {table}_pupil_exists AFTER INSERT ON {table}"
            " REFERENCING NEW TABLE AS new_rows"
            " FOR EACH STATEMENT EXECUTE FUNCTION pupil_references_exist()",
        )
        await checked.copy(
            "with a foreign key",
            "ledger",
            ledger,
            "ALTER TABLE {table} ADD FOREIGN KEY (leerling_id) REFERENCES leerlingen (id)",
        )
        bare = floor.server["ledger rows, with their keys"]
        floor.extra["ledger's pupil check, by trigger (PostgreSQL)"] = round(
            checked.server["with the trigger"] - bare, 2
        )
        floor.extra["the same, by a foreign key (PostgreSQL)"] = round(
            checked.server["with a foreign key"] - bare, 2
        )
        pupils = await conn.fetch("SELECT * FROM leerlingen")
        await floor.copy("pupils, with their keys", "leerlingen", pupils)
        return floor
    finally:
        await conn.close()


def replay_python_steps(ctx: MeldingContext, pages: list[bytes], events: int) -> dict[str, float]:
    """CPU µs per event of what melding cannot leave out: decoding and validating the
    events (with the link pseudonym of each pupil), and sealing each new pupil's PGN."""
    decoded = [melding_service.decode_ingest_feed(ctx, page) for page in pages]
    pgns = sorted({pgn for page in decoded for pgn in page.batch.link})
    return {
        "events decoded and validated, link pseudonyms": _cpu_us(
            lambda: [melding_service.decode_ingest_feed(ctx, page) for page in pages], events
        ),
        "PGN sealed (per new pupil)": _cpu_us(
            lambda: [ctx.sealer.seal(pgn, context="pgn") for pgn in pgns], events
        ),
    }


def service_context(hub: hub_bench.Hub, name: str, make: Callable[[], Any]) -> Any:
    """A service's context as its app builds it, from the settings the hub gives it."""
    saved = dict(os.environ)
    os.environ.update(hub.envs[name])
    try:
        return make()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _floor(python: dict[str, float], floor: CopyFloor) -> dict[str, Any]:
    python = python | {f"COPY encoding: {k}": v for k, v in floor.client.items()}
    return {
        "python_us": python,
        "postgres_us": floor.server,
        "python_total_us": round(sum(python.values()), 2),
        "postgres_total_us": round(sum(floor.server.values()), 2),
        "not_in_the_floor_us": floor.extra,
    }


async def run() -> dict[str, Any]:
    scale = hub_bench.FULL
    cores = os.cpu_count() or 1
    pg = await ensure_server()
    work = Path(tempfile.mkdtemp(prefix="vzh-floor-"))
    hub = hub_bench.Hub(pg, work)
    try:
        await hub.create_databases()
        await hub.start("ingest")
        dataset = hub_bench.school_year_dataset(scale, random.Random(8))
        hub_bench.log("batch phase (the measured figure) …")
        batch_measured = await hub_bench.bench_batch(hub, scale, dataset)
        hub_bench.log("replay phase (the measured figure) …")
        replay_measured = await hub_bench.bench_replay(hub)
        pages = await feed_pages(hub, scale.batch_size)
        hub.stop_all()
        hub_bench.log("PostgreSQL steps …")
        batch_pg, copy_us = await batch_postgres_steps(hub.dsn("ingest"), scale.batch_size)
        events = sum(len(orjson.loads(page)) for page in pages)
        replay_pg = await replay_postgres_steps(hub.dsn("melding"), scale.batch_size, events)
        hub_bench.log("Python steps …")
        ingest_ctx: IngestContext = service_context(
            hub, "ingest", lambda: create_app(IngestSettings()).state.ingest
        )
        melding_ctx: MeldingContext = service_context(
            hub, "melding", lambda: create_melding_app(MeldingSettings()).state.melding
        )
        _settle_garbage_collector()  # as `verzuimhub serve` does
        batch_python = batch_python_steps(ingest_ctx, dataset, scale.batch_size)
        replay_python = replay_python_steps(melding_ctx, pages, events)
    finally:
        hub.stop_all()
        await pg.drop_databases()
        pg.stop()
        shutil.rmtree(work, ignore_errors=True)
    batch = _floor(batch_python, batch_pg)
    replay = _floor(replay_python, replay_pg)
    py, db = replay["python_total_us"], replay["postgres_total_us"]
    return {
        "command": "uv run python bench/floor_bench.py",
        "cores": cores,
        "batch": {
            "rows": len(dataset),
            "measured": batch_measured,
            **batch,
            "copy_us_per_row": copy_us,
            "budget_us_per_registration": round(copy_us / TARGET, 2),
            "reachable_ratio": reachable(
                copy_us, batch["python_total_us"], batch["postgres_total_us"], cores
            ),
        },
        "replay": {
            "events": events,
            "measured": replay_measured,
            **replay,
            "budget_us_per_event": round(1e6 / REPLAY_TARGET, 2),
            # The same bounds as for the batch, in events/s (1 µs "COPY" = 1,000,000/s).
            "reachable_events_per_s": {
                k: round(v * 1e6) for k, v in reachable(1.0, py, db, cores).items()
            },
        },
    }


def report(r: dict[str, Any]) -> str:
    lines: list[str] = []
    for phase, unit in (("batch", "registration"), ("replay", "event")):
        f = r[phase]
        lines += [f"{phase}: {'step':54} {'µs/' + unit:>16}", "-" * 79]
        for side, key in (("Python", "python_us"), ("PostgreSQL", "postgres_us")):
            for step, us in f[key].items():
                lines.append(f"{side + ': ' + step:62} {us:>16.2f}")
        lines += [
            "-" * 79,
            f"{'floor, Python':62} {f['python_total_us']:>16.2f}",
            f"{'floor, PostgreSQL':62} {f['postgres_total_us']:>16.2f}",
        ]
        for step, us in f["not_in_the_floor_us"].items():
            lines.append(f"{'not in the floor: ' + step:62} {us:>16.2f}")
        if phase == "batch":
            bound, measured = f["reachable_ratio"], f["measured"]["ratio"]
            lines += [
                f"{'reference: COPY into a bare table (wall)':62} {f['copy_us_per_row']:>16.2f}",
                f"{'budget at 0.15 × COPY (wall)':62} {f['budget_us_per_registration']:>16.2f}",
                f"best reachable batch/COPY (target {TARGET}; measured in this run {measured}):",
            ]
        else:
            bound, measured = f["reachable_events_per_s"], f["measured"]["events_per_s"]
            lines += [
                f"{'budget at 50,000 events/s (wall)':62} {f['budget_us_per_event']:>16.2f}",
                f"best reachable replay, events/s (target {REPLAY_TARGET:,}; measured in "
                f"this run {measured:,}):",
            ]
        lines += [
            f"  {bound['in_turn']:,} with Python and PostgreSQL in turn",
            f"  {bound['overlapped']:,} with the two perfectly overlapped",
            f"  {bound['all_cores']:,} with all {r['cores']} cores busy and nothing else",
            "",
        ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=Path("bench/results/floor.json"))
    args = parser.parse_args()
    results = asyncio.run(run())
    print(report(results))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2, ensure_ascii=False))
    print(f"figures written to {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
