"""Micro-benchmark of key columns in PostgreSQL: what ADR 0012 and 0013 rest on.

1. Collation: 12 batches of 5,000 ledger rows (the ledger's columns, its two indexes and
   its foreign key to the pupils) are copied into a table whose string columns use the
   database's default collation, and into the same table with ``COLLATE "C"``.
2. Id order: ``--rows`` rows (3 million by default) are loaded into a table keyed by
   random (version 4) ids and into one keyed by ``new_id()``'s time-ordered (version 7)
   ids; then 10 batches of 5,000 more are copied into each.

Each figure is the median time of one batch's ``COPY`` (its own transaction); each
variant runs twice, alternating. Figures are printed and written as JSON.

    uv run python bench/keys_bench.py [--rows 3000000] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from verzuimhub_shared.ids import new_id
from verzuimhub_shared.testing.postgres import ensure_server

LEDGER = """
CREATE TABLE pupils_{v} (id varchar(36){c} PRIMARY KEY, x int);
CREATE TABLE ledger_{v} (
    registratie_id varchar(36){c} PRIMARY KEY,
    leerling_id varchar(36){c} REFERENCES pupils_{v} (id),
    versie int, datum date, minuten int, eenheid varchar(8){c}, aantal_eenheden float8,
    alle_lessen_gemist bool, soort varchar(12){c}, categorie varchar(40){c}, luxe_verzuim bool);
CREATE INDEX ix_ledger_{v} ON ledger_{v} (leerling_id, datum);
"""
KEYED = 'CREATE TABLE keyed_{v} (id varchar(36) COLLATE "C" PRIMARY KEY, d date, n int);'


async def timed_copy(conn: Any, table: str, rows: list[tuple[Any, ...]]) -> float:
    start = time.perf_counter()
    async with conn.transaction():
        await conn.copy_records_to_table(table, records=rows)
    return time.perf_counter() - start


async def collation(conn: Any, rng: random.Random) -> dict[str, Any]:
    for variant, clause in (("default", ""), ("c", ' COLLATE "C"')):
        await conn.execute(LEDGER.format(v=variant, c=clause))
    pupils = [new_id() for _ in range(17_000)]
    for variant in ("default", "c"):
        await conn.copy_records_to_table(f"pupils_{variant}", records=[(p, 1) for p in pupils])
    batches = [
        [
            (
                str(uuid.uuid4()),
                rng.choice(pupils),
                1,
                date(2025, 9, 1) + timedelta(days=rng.randrange(300)),
                300,
                "klokuur",
                5.0,
                True,
                "ongeoorloofd",
                "spijbelen",
                False,
            )
            for _ in range(5000)
        ]
        for _ in range(12)
    ]
    times: dict[str, list[float]] = {"default": [], "c": []}
    for variant in ("default", "c", "default", "c"):
        await conn.execute(f"TRUNCATE ledger_{variant}")
        for rows in batches:
            times[variant].append(await timed_copy(conn, f"ledger_{variant}", rows))
    collate = await conn.fetchval(
        "SELECT datcollate FROM pg_database WHERE datname = current_database()"
    )
    return {
        "database_collation": collate,
        "copy_5000_ms": {k: round(statistics.median(v) * 1000, 1) for k, v in times.items()},
    }


async def id_order(conn: Any, rows: int) -> dict[str, Any]:
    makers = {"v4": lambda: str(uuid.uuid4()), "v7": new_id}
    result: dict[str, Any] = {"rows_before": rows, "load_s": {}, "copy_5000_ms": {}, "index_mb": {}}
    day = date(2026, 1, 5)
    for variant, make in makers.items():
        await conn.execute(KEYED.format(v=variant))
        start = time.perf_counter()
        for done in range(0, rows, 50_000):
            batch = [(make(), day, 1) for _ in range(min(50_000, rows - done))]
            await conn.copy_records_to_table(f"keyed_{variant}", records=batch)
        result["load_s"][variant] = round(time.perf_counter() - start, 1)
        print(
            f"  loaded {rows:,} rows with {variant} ids in {result['load_s'][variant]} s",
            flush=True,
        )
    times: dict[str, list[float]] = {"v4": [], "v7": []}
    for variant in ("v4", "v7", "v4", "v7"):
        for _ in range(5):
            batch = [(makers[variant](), day, 1) for _ in range(5000)]
            times[variant].append(await timed_copy(conn, f"keyed_{variant}", batch))
    for variant in makers:
        result["copy_5000_ms"][variant] = round(statistics.median(times[variant]) * 1000, 1)
        size = await conn.fetchval(f"SELECT pg_relation_size('keyed_{variant}_pkey')")
        result["index_mb"][variant] = round(size / 2**20)
    return result


async def run(rows: int) -> dict[str, Any]:
    pg = await ensure_server()
    try:
        database = await pg.create_database("vzh_keys_bench")
        conn = await asyncpg.connect(pg.url_for(database, driver="postgresql"))
        try:
            print("collation …", flush=True)
            figures = {"collation": await collation(conn, random.Random(8))}
            print(f"  {figures['collation']}", flush=True)
            print("id order …", flush=True)
            figures["id_order"] = await id_order(conn, rows)
            print(f"  {figures['id_order']}", flush=True)
        finally:
            await conn.close()
    finally:
        await pg.drop_databases()
        pg.stop()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=3_000_000, help="rows before the timed batches")
    parser.add_argument("--json", type=Path, default=None, help="where to write the figures")
    args = parser.parse_args()
    figures = asyncio.run(run(args.rows))
    c, o = figures["collation"], figures["id_order"]
    print(
        f"ledger COPY of 5,000 rows: {c['copy_5000_ms']['default']} ms with the database's"
        f' collation ({c["database_collation"]}), {c["copy_5000_ms"]["c"]} ms with "C"\n'
        f"COPY of 5,000 rows into {o['rows_before']:,}: {o['copy_5000_ms']['v4']} ms with"
        f" random ids, {o['copy_5000_ms']['v7']} ms with time-ordered ids; key index"
        f" {o['index_mb']['v4']} / {o['index_mb']['v7']} MB; load {o['load_s']['v4']} /"
        f" {o['load_s']['v7']} s"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
