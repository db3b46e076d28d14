"""How this machine behaves, for reading the hub's figures: how steady its speed is, what
the other CPU's work costs a process, and the price of the kernel's and PostgreSQL's
per-operation work that the services' CPU figures include.

    make bench-machine                     # = uv run python bench/machine_bench.py
    uv run python bench/machine_bench.py --seconds 60 --json /tmp/machine.json

It prints, and writes as JSON:
- **speed over time**: the Python reference of ``hub_bench`` (µs an iteration; lower is
  faster) taken again and again for ``--seconds``, its median per two seconds, and the share
  of readings more than 1.5× the fastest. On the machine the nineteenth session measured,
  the same code ran at 4.2 and at 8.0 µs in turns of seconds, with nothing else of the
  project running: every rate the hub measures moves with that.
- **the other CPU busy**: the reference while a second process spins (pinned to the other
  CPU where ``taskset`` is there), against the reference alone just before.
- **a page fault**: CPU µs per first touch of a fresh 4 KiB page (``mmap``, touch,
  ``munmap``): what a process pays for memory it gets back from the kernel.
- **PostgreSQL round trips**: server and client CPU µs of ``SELECT 1``, and of a one-row
  ``UPDATE`` with its ``COMMIT`` (the WAL flush), over a TCP connection.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import mmap
import os
import resource
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

import asyncpg
from hub_bench import cpu_seconds, other_cpu_busy, python_reference

from verzuimhub_shared.testing.postgres import ensure_server


def speed_over_time(seconds: float) -> dict[str, Any]:
    """The reference again and again (500 iterations a reading, ~2–4 ms): medians per two
    seconds, the fastest reading, and the share of readings at least 1.5× as slow."""
    readings: list[tuple[float, float]] = []
    start = time.perf_counter()
    while (at := time.perf_counter() - start) < seconds:
        readings.append((at, python_reference(rounds=1, iterations=500)))
    fastest = min(r for _, r in readings)
    buckets: dict[int, list[float]] = {}
    for at, r in readings:
        buckets.setdefault(int(at // 2) * 2, []).append(r)
    return {
        "readings": len(readings),
        "fastest_us": fastest,
        "median_us": statistics.median(r for _, r in readings),
        "slowest_us": max(r for _, r in readings),
        "slow_share": round(sum(r >= 1.5 * fastest for _, r in readings) / len(readings), 3),
        "median_per_2_s": {at: round(statistics.median(v), 2) for at, v in buckets.items()},
    }


def busy_other_cpu() -> dict[str, float]:
    """The reference alone, then while another process spins on the other CPU (both pinned
    where ``taskset`` is there)."""
    pin = shutil.which("taskset") is not None and (os.cpu_count() or 1) > 1
    alone = _pinned_reference(pin)
    with other_cpu_busy(1 if pin else None):
        busy = _pinned_reference(pin)
    return {"alone_us": alone, "other_cpu_busy_us": busy, "factor": round(busy / alone, 2)}


def _pinned_reference(pin: bool) -> float:
    if pin:
        os.sched_setaffinity(0, {0})
    try:
        return python_reference(rounds=9, iterations=1_000)
    finally:
        if pin:
            os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))


def page_fault_us(megabytes: int = 64, rounds: int = 5) -> dict[str, float]:
    """CPU µs per first touch of a fresh page, the median of ``rounds``."""
    page = mmap.PAGESIZE
    taken = []
    for _ in range(rounds):
        before = resource.getrusage(resource.RUSAGE_SELF)
        region = mmap.mmap(-1, megabytes << 20)
        for offset in range(0, megabytes << 20, page):
            region[offset] = 1
        region.close()
        after = resource.getrusage(resource.RUSAGE_SELF)
        faults = after.ru_minflt - before.ru_minflt
        cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        taken.append(cpu / max(faults, 1) * 1e6)
    return {"cpu_us_per_fault": round(statistics.median(taken), 2)}


async def postgres_round_trips(dsn: str, n: int = 2_000) -> dict[str, Any]:
    conn = await asyncpg.connect(dsn)
    try:
        pid = await conn.fetchval("SELECT pg_backend_pid()")
        # A logged table: the commit flushes the WAL (a temporary table writes none).
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS machine_probe (id int PRIMARY KEY, n bigint)"
        )
        await conn.execute("INSERT INTO machine_probe VALUES (1, 0)")
        out: dict[str, Any] = {}
        statements = {
            "select_1": "SELECT 1",
            "update_commit": "BEGIN; UPDATE machine_probe SET n = n + 1 WHERE id = 1; COMMIT",
        }
        for name, sql in statements.items():
            server0, client0, wall0 = cpu_seconds(pid), time.process_time(), time.perf_counter()
            for _ in range(n):
                await conn.execute(sql)
            out[name] = {
                "server_cpu_us": round((cpu_seconds(pid) - server0) / n * 1e6, 1),
                "client_cpu_us": round((time.process_time() - client0) / n * 1e6, 1),
                "wall_us": round((time.perf_counter() - wall0) / n * 1e6, 1),
            }
        await conn.execute("DROP TABLE machine_probe")
        return out
    finally:
        await conn.close()


async def run(seconds: float) -> dict[str, Any]:
    results: dict[str, Any] = {"cpus": os.cpu_count()}
    print(f"speed over {seconds:g} s …", flush=True)
    results["speed_over_time"] = speed_over_time(seconds)
    results["other_cpu_busy"] = busy_other_cpu()
    results["page_fault"] = page_fault_us()
    pg = await ensure_server()
    try:
        database = await pg.create_database("vzh_machine")
        results["postgres"] = await postgres_round_trips(pg.url_for(database, driver="postgresql"))
    finally:
        await pg.drop_databases()
        pg.stop()
    return results


def report(results: dict[str, Any]) -> str:
    s, o, p = results["speed_over_time"], results["other_cpu_busy"], results["postgres"]
    per_2_s = " ".join(f"{v:.1f}" for v in s["median_per_2_s"].values())
    return "\n".join(
        [
            f"Python reference, µs an iteration (lower is faster): fastest {s['fastest_us']:.2f}, "
            f"median {s['median_us']:.2f}, slowest {s['slowest_us']:.2f}; "
            f"{s['slow_share']:.0%} of {s['readings']:,} readings ≥ 1.5× the fastest",
            f"  median per 2 s: {per_2_s}",
            f"the other CPU busy: {o['alone_us']:.2f} → {o['other_cpu_busy_us']:.2f} µs "
            f"(× {o['factor']})",
            f"a page fault: {results['page_fault']['cpu_us_per_fault']:.2f} µs of CPU",
            *(
                f"PostgreSQL {name}: server {v['server_cpu_us']} µs CPU, client "
                f"{v['client_cpu_us']} µs CPU, {v['wall_us']} µs wall"
                for name, v in p.items()
            ),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="how long to watch the speed")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    results = asyncio.run(run(args.seconds))
    print(report(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
