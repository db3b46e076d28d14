"""What a transaction costs the service's process: the session, its begin and commit, and
statements around SQLAlchemy (``db.pg_fetch``); the same without a session
(``Database.direct_transaction``, ADR 0017); and on a bare asyncpg connection (ADR 0010).
CPU µs of this process per transaction, on a fresh database:

    uv run python bench/transaction_bench.py [--transactions 3000]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Awaitable, Callable

import asyncpg
import uvloop

from verzuimhub_shared.db import Database, pg_fetch
from verzuimhub_shared.testing.postgres import ensure_server

STATEMENTS = (1, 6)  # 6: a group of single registrations (lookups, insert, feed, …)
REPEAT = 3


async def _cpu_us(run: Callable[[], Awaitable[None]], count: int) -> float:
    """Median CPU µs of this process per call of ``run`` over ``REPEAT`` rounds."""
    taken = []
    for _ in range(REPEAT):
        started = time.process_time()
        for _ in range(count):
            await run()
        taken.append((time.process_time() - started) * 1e6 / count)
    return round(statistics.median(taken), 1)


async def main(count: int) -> None:
    pg = await ensure_server()
    name = await pg.create_database("vzh_bench_transactions")
    db = Database(pg.url_for(name))
    raw = await asyncpg.connect(pg.url_for(name, driver="postgresql"))
    try:
        print(f"{'transaction':48} {'CPU µs':>8}")
        for statements in STATEMENTS:

            async def session(n: int = statements) -> None:
                async with db.transaction() as s:
                    for _ in range(n):
                        await pg_fetch(s, "SELECT 1")

            async def direct(n: int = statements) -> None:
                async with db.direct_transaction() as tx:
                    for _ in range(n):
                        await pg_fetch(tx, "SELECT 1")

            async def bare(n: int = statements) -> None:
                async with raw.transaction():
                    for _ in range(n):
                        await raw.fetch("SELECT 1")

            await session()  # the pool's connection and the prepared statement
            await direct()
            for label, run in (
                ("session, db.pg_fetch", session),
                ("direct_transaction, db.pg_fetch", direct),
                ("bare asyncpg", bare),
            ):
                used = await _cpu_us(run, count)
                print(f"{f'{label}, {statements} statement(s)':48} {used:>8,.1f}")
    finally:
        await raw.close()
        await db.dispose()
        await pg.drop_databases()
        pg.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=3000)
    # The services' event loop (uvicorn's default where uvloop is installed).
    uvloop.run(main(parser.parse_args().transactions))
