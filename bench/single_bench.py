"""A single registration's own work in ingest, in one process: ingest's ASGI app on a fresh,
migrated PostgreSQL database, ``POST /v1/registraties`` driven straight into the app (no
HTTP server or client), ``--concurrency`` at a time. With eight at a time, every group
commit carries eight requests.

    make bench-single                                    # CPU µs of this process per request
    make bench-single ARGS=--callgrind                   # instructions per request
    make bench-single ARGS="--callgrind --bare"          # the same for bench/bare_app.py

CPU time moves with whatever else the machine runs (the same code measured 535–797 µs in
one afternoon). ``--callgrind`` runs the same under valgrind's callgrind, counting only the
measured requests (``callgrind_control`` switches it on and off around them): instructions
per request, the same to within 0.2 % run after run, whatever the machine does. It is ~60
times slower, so it sends 500 requests after 300 of warm-up. Each change of the eleventh
session was judged with it (docs/benchmarks-journal.md).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections import Counter
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import callgrind
import orjson
import uvloop
from hub_bench import group_counts_of

from verzuimhub.services import service
from verzuimhub.testing import make_bsn, registratie, settings_for
from verzuimhub_shared import devkeys
from verzuimhub_shared.app import lifespan_context
from verzuimhub_shared.migrations import upgrade
from verzuimhub_shared.testing.postgres import ensure_server

WARMUP = 300


def body(i: int) -> bytes:
    """A valid registration: 2,000 pupils, five school days a week, one week per round."""
    j = i % 20_000
    day = date(2026, 9, 1) + timedelta(days=(j // 2000) * 7 + j % 5)
    return orjson.dumps(
        registratie(
            schoolRegistratieId=f"r{i}", pgn=make_bsn(1000 + i % 2000), datum=day.isoformat()
        )
    )


async def post(
    app: Any, payload: bytes, headers: list[tuple[bytes, bytes]], seen: Counter[int]
) -> None:
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": payload, "more_body": False}
        await asyncio.sleep(3600)  # no disconnect while the app runs
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            seen[message["status"]] += 1

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/registraties",
        "raw_path": b"/v1/registraties",
        "root_path": "",
        "query_string": b"",
        "headers": [*headers, (b"content-length", str(len(payload)).encode())],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8001),
        "app": app,
        "state": {},
    }
    await app(scope, receive, send)


async def drive(
    app: Any,
    start: int,
    count: int,
    concurrency: int,
    headers: Any,
    seen: Any,
    measured: bool = False,
) -> tuple[float, float]:
    """Wall and CPU seconds of posting ``count`` bodies (made before the clock starts)."""
    payloads = iter([body(i) for i in range(start, start + count)])

    async def worker() -> None:
        for payload in payloads:
            await post(app, payload, headers, seen)

    if measured:
        callgrind.switch(on=True)
    wall, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if measured:
        callgrind.switch(on=False)
    return wall, cpu


async def measure(requests: int, concurrency: int, bare: bool, quiet: Any) -> None:
    pg = await ensure_server()
    database = await pg.create_database("vzh_bench_single")
    url = pg.url_for(database)
    ingest = service("ingest")
    assert ingest.migrations_package
    await upgrade(ingest.migrations_package, url)
    key_dir = Path(tempfile.mkdtemp())
    token = devkeys.mint("school", key_dir, brins=["99AA"], ttl=3600)
    settings = settings_for(  # one caller: the limiter stays in the path, far above the load
        "ingest",
        {"ingest": url},
        key_dir,
        rate_limit_per_minute=100_000_000,
        rate_limit_burst=100_000,
    )
    app: Any = ingest.create_app(settings)
    headers = [
        (b"host", b"ingest"),
        (b"content-type", b"application/json"),
        (b"authorization", f"Bearer {token}".encode()),
    ]
    seen: Counter[int] = Counter()
    real_stderr = sys.stderr
    try:
        async with lifespan_context(app):
            if bare:
                import bare_app  # beside this script, as hub_bench

                app = bare_app.app
            sys.stderr = quiet  # the access log: one line per request
            await drive(app, 0, WARMUP, concurrency, headers, seen)
            wall, cpu = await drive(
                app, 1_000_000, requests, concurrency, headers, seen, measured=True
            )
            sys.stderr = real_stderr
    finally:
        sys.stderr = real_stderr
        await pg.drop_databases()
        pg.stop()
    groups = ""
    if not bare:
        made, items = group_counts_of(app.state.metrics.render().decode())
        groups = f", {items / made:.1f} per transaction"
    print(
        f"{'bare endpoint' if bare else 'ingest'}: {requests} requests, {concurrency} at a time: "
        f"{cpu * 1e6 / requests:.1f} µs CPU per request, {requests / wall:,.0f} req/s "
        f"(answers {dict(seen)}{groups})"
    )


def under_callgrind(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as work:
        done = callgrind.run(
            [
                __file__,
                f"--requests={args.requests}",
                f"--concurrency={args.concurrency}",
                *(["--bare"] if args.bare else []),
            ],
            Path(work) / "callgrind.out",
        )
    print(done.stdout.strip())
    print(f"instructions per request: {callgrind.collected(done.stderr) / args.requests:,.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=None)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--bare", action="store_true", help="bench/bare_app.py instead")
    parser.add_argument("--callgrind", action="store_true", help="count instructions")
    args = parser.parse_args()
    if args.requests is None:
        args.requests = 500 if args.callgrind else 4000
    if args.callgrind:
        under_callgrind(args)
        return
    with open(os.devnull, "w") as quiet:  # where the access log goes while measured
        uvloop.run(measure(args.requests, args.concurrency, args.bare, quiet))


if __name__ == "__main__":
    main()
