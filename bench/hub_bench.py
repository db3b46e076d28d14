"""End-to-end benchmark of the hub against PostgreSQL on this machine (issue 8).

Runs the three services as real processes (``python -m verzuimhub serve <service>``, uvicorn
with uvloop and httptools) on fresh, migrated PostgreSQL databases, drives them with
``httpx.AsyncClient`` (HTTP/1.1 keep-alive) from this process, prints a table (target /
measured / met) and writes every figure to ``bench/results/latest.json``.

1. batch ingest over HTTP (registrations/s) vs COPY of the same rows into a bare table;
2. single-registration POST (requests/s, p50/p99 at a fixed concurrency) vs a bare FastAPI
   endpoint that only validates the same body (``bench/bare_app.py``);
3. melding's consumer replaying ingest's feed from position 0 (events/s);
4. end-to-end latency from a registration accepted to its concept melding visible;
5. SWV aggregate queries on a one-school-year region dataset (p50/p95);
6. peak RSS (VmHWM) of each service process under all of the above;
and, for 1–3 and swv-aggregate's catch-up, the CPU each service process and each service's
PostgreSQL backends spend per registration, request or event (from /proc); each service's
start-up time; the rows each table had read by sequential scans.

    uv run python bench/hub_bench.py [--quick] [--json PATH] [--repeat N] [--only PHASES]
    make bench [ARGS="…"]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson

from verzuimhub.cli import up_environment
from verzuimhub.services import service
from verzuimhub.testing import make_bsn
from verzuimhub_melding.repository import RULES_DONE_SQL
from verzuimhub_shared import devkeys
from verzuimhub_shared.migrations import upgrade
from verzuimhub_shared.refdata import sample_refdata
from verzuimhub_shared.testing.postgres import PostgresServer, ensure_server

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results" / "latest.json"
SERVICES = ("ingest", "melding", "swv-aggregate")
REGION = "PO-99-01"
SCHOOL_YEAR = "2025-2026"
YEAR_START, YEAR_END = date(2025, 9, 1), date(2026, 7, 10)

#: (code, share, minutes, all lessons missed)
CATEGORY_MIX: tuple[tuple[str, float, tuple[int, ...], bool], ...] = (
    ("ziekte", 0.55, (300,), True),
    ("medisch_bezoek", 0.08, (60, 90, 120), False),
    ("te_laat", 0.22, (10, 15, 30, 50), False),
    ("spijbelen", 0.12, (60, 120, 300), False),
    ("luxe_verzuim", 0.01, (300,), True),
    ("afstandsonderwijs", 0.02, (300,), True),
)


@dataclass(frozen=True)
class Scale:
    batch_rows: int
    batch_size: int
    pupils: int
    single_requests: int
    concurrency: int
    e2e_probes: int
    swv_queries: int


FULL = Scale(60_000, 5_000, 15_000, 4_000, 8, 40, 200)
QUICK = Scale(10_000, 2_500, 2_500, 800, 8, 12, 60)


# --- helpers ---------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int | str) -> float:
    """CPU seconds a process's threads have run so far, to the nanosecond (0 if it is
    gone): the sum of ``/proc/<pid>/task/<tid>/schedstat``. ``/proc/<pid>/schedstat`` is
    the main thread's alone (a page decoded in a worker thread would go uncounted), and
    ``/proc/<pid>/stat`` counts in ticks of 10 ms, too coarse for one table's copy. A
    thread that has ended is not counted: the services' worker threads (the event loop's
    executor) live as long as the process."""
    total = 0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                total += int((task / "schedstat").read_text().split()[0])
            except OSError:
                continue  # the thread ended meanwhile
    except OSError:
        return 0.0
    return total / 1e9


def cpu_now(hub: Hub) -> dict[str, float]:
    """CPU seconds so far of each running service process, of the PostgreSQL backends
    connected to each service's database (from their process titles), and of this process
    (the load generator). Backends that ended are not counted: the services keep theirs
    in a pool, so a phase's figure is a close lower bound."""
    out = {name: cpu_seconds(proc.pid) for name, proc in hub.procs.items()}
    databases = {url.rsplit("/", 1)[1]: name for name, url in hub.db_urls.items()}
    for name in databases.values():
        out[f"postgres:{name}"] = 0.0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
        except OSError:
            continue
        # "postgres: [cluster name:] user database host(port) state"
        parts = title.split()
        if parts[:1] == ["postgres:"]:
            for word in parts[2:4]:
                if word in databases:
                    out[f"postgres:{databases[word]}"] += cpu_seconds(pid)
                    break
    out["bench"] = time.process_time()
    return out


def cpu_per_unit(before: dict[str, float], after: dict[str, float], units: int) -> dict[str, float]:
    """Microseconds of CPU per unit of work (registration, request, event) between two
    :func:`cpu_now` readings, for each process that used any."""
    used = {k: after[k] - before.get(k, after[k]) for k in after}
    return {k: round(v / units * 1e6, 1) for k, v in used.items() if v > 0}


def spawn(command: list[str], env: dict[str, str], log_path: Path | None) -> Any:
    """A child process in its own session, output to ``log_path`` (or discarded)."""
    out: Any = log_path.open("ab") if log_path else subprocess.DEVNULL
    return subprocess.Popen(
        command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
    )


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


class Hub:
    """The service processes and their databases."""

    def __init__(self, pg: PostgresServer, work: Path) -> None:
        self.pg = pg
        self.work = work
        self.ports = {name: free_port() for name in ("mock-duo", *SERVICES)}
        self.envs = up_environment(work, "127.0.0.1", self.ports)
        for name in SERVICES:
            # One load generator is one caller: lift the per-caller rate limit far above what
            # is measured (the limiter itself stays in the request path).
            self.envs[name][f"{service(name).env_prefix}RATE_LIMIT_PER_MINUTE"] = "100000000"
            self.envs[name][f"{service(name).env_prefix}RATE_LIMIT_BURST"] = "100000"
        self.urls: dict[str, str] = {}
        self.db_urls: dict[str, str] = {}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        #: Per service: wall-clock seconds from spawn to ready, and the CPU seconds it took.
        self.startup: dict[str, dict[str, float]] = {}
        self.key_dir = work.resolve() / "keys"

    def base(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    async def create_databases(self) -> None:
        for name in SERVICES:
            entry = service(name)
            database = await self.pg.create_database(f"vzh_bench_{name}")
            url = self.pg.url_for(database)
            assert entry.migrations_package
            await upgrade(entry.migrations_package, url)
            self.db_urls[name] = url
            self.envs[name][f"{entry.env_prefix}DATABASE_URL"] = url

    def dsn(self, name: str) -> str:
        return self.db_urls[name].replace("postgresql+asyncpg", "postgresql")

    async def start(self, name: str, **extra_env: str) -> None:
        env = {**os.environ, **self.envs[name], **extra_env}
        command = [sys.executable, "-m", "verzuimhub", "serve", name]
        started = time.monotonic()
        self.procs[name] = spawn(command, env, self.work / f"{name}.log")
        await wait_ready(self.base(name) + "/health/ready", self.procs[name], name)
        self.startup[name] = {
            "seconds": round(time.monotonic() - started, 2),
            "cpu_seconds": round(cpu_seconds(self.procs[name].pid), 2),
        }

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def token(self, role: str, **kwargs: Any) -> str:
        return devkeys.mint(role, self.key_dir, ttl=6 * 3600, **kwargs)


async def wait_ready(url: str, proc: subprocess.Popen[bytes] | None, name: str) -> None:
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}")
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{name} did not become ready")


# --- the dataset -------------------------------------------------------------------------


@dataclass(frozen=True)
class Pupil:
    pgn: str
    brin: str
    vestiging: str
    gemeente: str
    geboortedatum: str


def region_schools() -> list[Any]:
    ref = sample_refdata()
    return [s for s in ref.schools.values() if "po" in s.sectors and s.swv_po]


def make_pupils(count: int, seed_base: int, rng: random.Random) -> list[Pupil]:
    schools = region_schools()
    pupils = []
    for i in range(count):
        school = schools[i % len(schools)]
        born = date(2014, 1, 1) + timedelta(days=rng.randrange(6 * 365))
        pupils.append(
            Pupil(
                make_bsn(seed_base + i), school.brin, school.vestiging, school.gemeente, str(born)
            )
        )
    return pupils


def lesdagen(first: date, last: date) -> list[date]:
    days, day = [], first
    while day <= last:
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    return days


def registration(
    rid: str, pupil: Pupil, day: date, rng: random.Random, category: str | None = None
) -> dict[str, Any]:
    if category is None:
        roll, acc = rng.random(), 0.0
        chosen = CATEGORY_MIX[-1]
        for entry in CATEGORY_MIX:
            acc += entry[1]
            if roll < acc:
                chosen = entry
                break
    else:
        chosen = next(c for c in CATEGORY_MIX if c[0] == category)
    code, _, minutes, all_missed = chosen
    m = rng.choice(minutes)
    return {
        "schoolRegistratieId": rid,
        "versie": 1,
        "brin": pupil.brin,
        "vestiging": pupil.vestiging,
        "pgn": pupil.pgn,
        "geboortedatum": pupil.geboortedatum,
        "woongemeente": pupil.gemeente,
        "sector": "po",
        "datum": day.isoformat(),
        "minuten": m,
        "eenheid": "klokuur",
        "aantalEenheden": round(m / 60, 2),
        "alleLessenGemist": all_missed,
        "categorie": code,
        **({"notitie": "gebeld met ouders"} if rng.random() < 0.2 else {}),
    }


def school_year_dataset(scale: Scale, rng: random.Random) -> list[dict[str, Any]]:
    """Many pupils with few registrations each, spread over one school year."""
    pupils = make_pupils(scale.pupils, 1, rng)
    days = lesdagen(YEAR_START, YEAR_END)
    rows: list[dict[str, Any]] = []
    per_pupil = scale.batch_rows // scale.pupils
    for p_index, pupil in enumerate(pupils):
        for n, day in enumerate(sorted(rng.sample(days, per_pupil))):
            rows.append(registration(f"j{p_index}-{n}", pupil, day, rng))
    rng.shuffle(rows)
    return rows


# --- 1. batch ingest vs COPY --------------------------------------------------------------


#: The reference ``COPY`` is timed this many times, on fresh bare tables; its figure is the
#: median (one copy of 60,000 rows takes 0.15–0.3 s, and a single reading moved by ±20 %).
COPY_ROUNDS = 3


async def bench_batch(hub: Hub, scale: Scale, rows: list[dict[str, Any]]) -> dict[str, Any]:
    token = hub.token("school", brins=sorted({r["brin"] for r in rows}))
    headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
    # The bodies are made before the clock starts, as the single POST's are, and the answers
    # read with orjson: the load generator's JSON is not ingest's work (stdlib json through
    # httpx, both ways, took ~4.6 µs of this process's CPU a registration, between batches,
    # while ingest waited).
    bodies = [
        orjson.dumps({"registraties": rows[start : start + scale.batch_size]})
        for start in range(0, len(rows), scale.batch_size)
    ]
    accepted = 0
    async with httpx.AsyncClient(base_url=hub.base("ingest"), timeout=300) as client:
        cpu_before = cpu_now(hub)
        started = time.perf_counter()
        for content in bodies:
            response = await client.post(
                "/v1/registratie-batches", content=content, headers=headers
            )
            response.raise_for_status()
            body = orjson.loads(response.content)
            if body["afgewezen"]:
                bad = next(r for r in body["resultaten"] if r["uitkomst"] == "afgewezen")
                raise RuntimeError(f"batch item rejected: {bad}")
            accepted += body["aangemaakt"]
        http_seconds = time.perf_counter() - started
        cpu = cpu_per_unit(cpu_before, cpu_now(hub), accepted)

    # COPY the very same rows (as ingest stored them) into a bare table with the same columns.
    conn = await asyncpg.connect(hub.dsn("ingest"))
    try:
        records = await conn.fetch("SELECT * FROM registraties")
        copies = [await bare_copy_seconds(conn, records) for _ in range(COPY_ROUNDS)]
    finally:
        await conn.close()
    copy_seconds = statistics.median(copies)
    http_rate = accepted / http_seconds
    copy_rate = len(records) / copy_seconds
    return {
        "rows": accepted,
        "batch_size": scale.batch_size,
        "http_seconds": round(http_seconds, 3),
        "http_per_s": round(http_rate),
        "copy_seconds": round(copy_seconds, 3),
        "copy_seconds_each": [round(seconds, 3) for seconds in copies],
        "copy_per_s": round(copy_rate),
        "ratio": round(http_rate / copy_rate, 3),
        "cpu_us_per_registration": cpu,
    }


async def bare_copy_seconds(conn: asyncpg.Connection, records: Sequence[Any]) -> float:
    """Wall seconds of ``COPY`` of ingest's stored registrations into a bare table with the
    same columns (no index, no constraint): the batch target's reference."""
    await conn.execute("DROP TABLE IF EXISTS bench_copy")
    await conn.execute("CREATE TABLE bench_copy (LIKE registraties)")
    try:
        started = time.perf_counter()
        await conn.copy_records_to_table(
            "bench_copy", records=records, columns=list(records[0].keys())
        )
        return time.perf_counter() - started
    finally:
        await conn.execute("DROP TABLE bench_copy")


# --- 2. single POST vs a bare validating endpoint ----------------------------------------


@dataclass
class Driven:
    """What :func:`drive` measured: each request's latency, the wall time, and the load
    generator's CPU over it."""

    latencies: list[float]
    seconds: float
    client_cpu: float


async def drive(
    base_url: str,
    bodies: list[dict[str, Any]],
    headers: dict[str, str],
    concurrency: int,
    expect: int = 201,
) -> Driven:
    """POST every body, ``concurrency`` at a time over keep-alive HTTP/1.1 connections.

    The load generator shares the machine's two cores with what it measures: a client of
    a few lines on asyncio streams costs ~0.1 ms of CPU per request where httpx cost ~3.5 ms
    (a third of all CPU at this rate), so the figures are the services', not the client's.
    The bodies are serialised before the clock starts."""
    host, port = base_url.removeprefix("http://").split(":")
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    requests = []
    for body in bodies:
        payload = json.dumps(body).encode()
        head = (
            f"POST /v1/registraties HTTP/1.1\r\nHost: {host}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n{extra}\r\n"
        )
        requests.append(head.encode() + payload)
    latencies: list[float] = []
    queue = iter(requests)

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            for request in queue:
                t0 = time.perf_counter()
                writer.write(request)
                status, body = await _read_response(reader)
                latencies.append(time.perf_counter() - t0)
                if status != expect:
                    raise RuntimeError(f"{status}: {body[:300]!r}")
        finally:
            writer.close()

    cpu0 = time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Driven(latencies, time.perf_counter() - started, time.process_time() - cpu0)


def drive_figures(parts: Sequence[Driven]) -> dict[str, Any]:
    """Requests/s, p50/p99 and the load generator's share of a CPU over one or more
    :func:`drive` runs taken together (their requests over their summed time)."""
    latencies = [x for part in parts for x in part.latencies]
    seconds = sum(part.seconds for part in parts)
    return {
        "requests": len(latencies),
        "per_s": round(len(latencies) / seconds),
        "p50_ms": round(percentile(latencies, 50) * 1000, 2),
        "p99_ms": round(percentile(latencies, 99) * 1000, 2),
        "load_generator_cpu_share": round(sum(p.client_cpu for p in parts) / seconds, 2),
    }


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """Status and body of one HTTP/1.1 response with a Content-Length (what uvicorn sends
    for these answers)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    fields = dict(line.split(":", 1) for line in lines[1:] if ":" in line)
    length = {k.strip().lower(): v.strip() for k, v in fields.items()}.get("content-length")
    if length is None:
        raise RuntimeError("a response without Content-Length")
    return status, await reader.readexactly(int(length))


async def bench_single(hub: Hub, scale: Scale, rng: random.Random) -> dict[str, Any]:
    pupils = make_pupils(scale.single_requests // 2, 500_000, rng)
    days = lesdagen(date(2026, 9, 1), date(2026, 11, 20))
    warmup = 200

    def bodies(prefix: str, n: int) -> list[dict[str, Any]]:
        return [
            registration(f"{prefix}{i}", pupils[i % len(pupils)], days[i // len(pupils)], rng)
            for i in range(n)
        ]

    token = hub.token("school", brins=sorted({p.brin for p in pupils}))
    headers = {"authorization": f"Bearer {token}"}
    port = free_port()
    bare = spawn(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bare_app:app",
            "--app-dir",
            str(ROOT),
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        dict(os.environ),
        None,
    )
    try:
        await _wait_port(port)
        bare_base = f"http://127.0.0.1:{port}"
        await drive(hub.base("ingest"), bodies("w", warmup), headers, scale.concurrency)
        await drive(bare_base, bodies("w", warmup), {}, scale.concurrency)
        measured = bodies("s", scale.single_requests)
        hub_parts: list[Driven] = []
        bare_parts: list[Driven] = []
        groups_before = await group_counts(hub)
        used: dict[str, float] = {}
        for first, chunk in interleaved(measured, SINGLE_SLICES):
            for side in ("hub", "bare") if first == "hub" else ("bare", "hub"):
                if side == "bare":
                    bare_parts.append(await drive(bare_base, chunk, {}, scale.concurrency))
                    continue
                before = cpu_now(hub)
                hub_parts.append(await drive(hub.base("ingest"), chunk, headers, scale.concurrency))
                for process, value in cpu_now(hub).items():
                    used[process] = used.get(process, 0.0) + value - before.get(process, value)
        groups_after = await group_counts(hub)
    finally:
        bare.send_signal(signal.SIGTERM)
        bare.wait(10)
    hubfig = drive_figures(hub_parts)
    barefig = drive_figures(bare_parts)
    hubfig["mean_group_size"] = round(
        (groups_after[1] - groups_before[1]) / max(groups_after[0] - groups_before[0], 1), 2
    )
    return {
        "concurrency": scale.concurrency,
        "slices": SINGLE_SLICES,
        "hub": hubfig,
        "bare": barefig,
        "ratio": round(hubfig["per_s"] / barefig["per_s"], 3),
        "cpu_us_per_request": cpu_per_unit(dict.fromkeys(used, 0.0), used, scale.single_requests),
    }


#: The single POST's two sides take turns in this many slices of the requests each.
SINGLE_SLICES = 8


def interleaved(items: list[Any], slices: int) -> list[tuple[str, list[Any]]]:
    """``items`` cut into ``slices`` chunks, each with the side that goes first on it, in
    turns: hub then bare, bare then hub, hub then bare, … This machine's speed moves by up
    to 2× from one second to the next (docs/benchmarks-journal.md, nineteenth session): two sides
    measured one after the other, each a few seconds long, could land on different speeds;
    in turns they share them, and a drift over the run weighs on both alike."""
    size = max(1, -(-len(items) // slices))
    chunks = [items[start : start + size] for start in range(0, len(items), size)]
    return [(("hub", "bare")[i % 2], chunk) for i, chunk in enumerate(chunks)]


async def group_counts(hub: Hub) -> tuple[float, float]:
    """Ingest's groups of single registrations written so far, and the items in them (from
    its /metrics): items ÷ groups is how many requests shared a transaction."""
    async with httpx.AsyncClient() as client:
        return group_counts_of((await client.get(hub.base("ingest") + "/metrics")).text)


def group_counts_of(metrics: str) -> tuple[float, float]:
    """(groups, items) from ingest's metrics in the Prometheus text format."""
    values = dict(
        line.rsplit(" ", 1) for line in metrics.splitlines() if line.startswith("ingest_")
    )
    return (
        float(values.get("ingest_registratie_groups_total", 0)),
        float(values.get("ingest_registratie_group_items_total", 0)),
    )


async def _wait_port(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.1)
    raise RuntimeError("bare app did not start")


# --- 3. melding replay from 0 ------------------------------------------------------------


async def consumer_head(hub: Hub, producer: str, consumer: str) -> tuple[int, int]:
    conn = await asyncpg.connect(hub.dsn(producer))
    try:
        row = await conn.fetchrow(
            "SELECT coalesce(max(position), 0) AS head, count(*) AS n FROM feed_events "
            "WHERE consumer = $1",
            consumer,
        )
    finally:
        await conn.close()
    assert row is not None
    return int(row["head"]), int(row["n"])


async def wait_cursor(
    hub: Hub, service_name: str, feed: str, head: int, limit_s: float = 900
) -> list[tuple[float, int]]:
    """Poll the consumer's cursor row until it reaches ``head``; (time, applied) samples."""
    samples: list[tuple[float, int]] = []
    conn = await asyncpg.connect(hub.dsn(service_name))
    try:
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            row = await conn.fetchrow(
                "SELECT position, events_applied FROM feed_cursors WHERE feed = $1", feed
            )
            now = time.perf_counter()
            if row is not None:
                samples.append((now, int(row["events_applied"])))
                if int(row["position"]) >= head:
                    return samples
            await asyncio.sleep(0.02)
    finally:
        await conn.close()
    raise RuntimeError(f"{service_name} did not catch up on {feed}")


async def bench_replay(hub: Hub) -> dict[str, Any]:
    head, events = await consumer_head(hub, "ingest", "melding")
    await hub.start("melding")
    cpu_before = cpu_now(hub)  # after start-up: imports and migrations checks are not the replay
    samples = await wait_cursor(hub, "melding", "ingest", head)
    cpu = cpu_per_unit(cpu_before, cpu_now(hub), events)
    # From the first applied batch to the last: the rate of applying, not of process start.
    first = next(s for s in samples if s[1] > 0)
    last = samples[-1]
    seconds = last[0] - first[0]
    applied = last[1] - first[1]
    conn = await asyncpg.connect(hub.dsn("melding"))
    try:
        # The rules run after the ledger (pupils marked from the ledger's rows, deferred
        # while catching up, ADR 0024): the replay is complete when no pupil waits for them.
        while True:  # polling another process's database: no event to wait on
            if await conn.fetchval(RULES_DONE_SQL):
                break
            await asyncio.sleep(0.02)
        with_rules = time.perf_counter() - first[0]
        meldingen = int(await conn.fetchval("SELECT count(*) FROM meldingen"))
        pupils = int(await conn.fetchval("SELECT count(*) FROM leerlingen"))
    finally:
        await conn.close()
    return {
        "events": events,
        "pupils": pupils,
        "meldingen": meldingen,
        "seconds": round(seconds, 3),
        "events_per_s": round(applied / seconds) if seconds > 0 else None,
        "with_rules_seconds": round(with_rules, 3),
        "with_rules_events_per_s": round(applied / with_rules),
        "cpu_us_per_event": cpu,
    }


# --- 4. registration accepted → concept melding visible ---------------------------------


async def bench_e2e(hub: Hub, scale: Scale, rng: random.Random) -> dict[str, Any]:
    """Each probe: a pupil already has 3 days of truancy (15 h); the 4th day (20 h ≥ 16 h
    in 4 lesweken) makes a V3 melding due. t0 is the 201 of that 4th registration; the
    melding is visible once it is committed in melding's database (what its API serves)."""
    school = region_schools()[0]
    pupils = [
        Pupil(make_bsn(900_000 + i), school.brin, school.vestiging, school.gemeente, "2016-05-05")
        for i in range(scale.e2e_probes)
    ]
    monday = date(2026, 11, 9)
    token = hub.token("school", brins=[school.brin])
    headers = {"authorization": f"Bearer {token}"}

    def truant(i: int, d: int) -> dict[str, Any]:
        body = registration(f"e{i}-{d}", pupils[i], monday + timedelta(days=d), rng, "spijbelen")
        return body | {"minuten": 300, "aantalEenheden": 5, "alleLessenGemist": True}

    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=hub.base("ingest"), timeout=30) as client:
        first = [truant(i, d) for i in range(len(pupils)) for d in range(3)]
        (
            await client.post(
                "/v1/registratie-batches", json={"registraties": first}, headers=headers
            )
        ).raise_for_status()
        head, _ = await consumer_head(hub, "ingest", "melding")
        await wait_cursor(hub, "melding", "ingest", head)
        conn = await asyncpg.connect(hub.dsn("melding"))
        try:
            query = "SELECT count(*) FROM meldingen WHERE brin = $1 AND soort = 'V3'"
            for i in range(len(pupils)):
                await asyncio.sleep(rng.uniform(0.05, 0.3))
                before = int(await conn.fetchval(query, school.brin))
                response = await client.post("/v1/registraties", json=truant(i, 3), headers=headers)
                t0 = time.perf_counter()
                response.raise_for_status()
                while int(await conn.fetchval(query, school.brin)) <= before:
                    if time.perf_counter() - t0 > 30:
                        raise RuntimeError("melding did not appear within 30 s")
                    await asyncio.sleep(0.005)
                latencies.append(time.perf_counter() - t0)
        finally:
            await conn.close()
    return {
        "probes": len(latencies),
        "p50_ms": round(percentile(latencies, 50) * 1000, 1),
        "p95_ms": round(percentile(latencies, 95) * 1000, 1),
        "max_ms": round(max(latencies) * 1000, 1),
    }


# --- 5. SWV aggregate queries ------------------------------------------------------------


async def bench_swv(hub: Hub, scale: Scale) -> dict[str, Any]:
    await hub.start("swv-aggregate")
    cpu_before = cpu_now(hub)
    started = time.perf_counter()
    ingest_head, ingest_events = await consumer_head(hub, "ingest", "swv-aggregate")
    melding_head, melding_events = await consumer_head(hub, "melding", "swv-aggregate")
    await wait_cursor(hub, "swv-aggregate", "ingest", ingest_head)
    if melding_head:
        await wait_cursor(hub, "swv-aggregate", "melding", melding_head)
    catch_up = time.perf_counter() - started
    events = ingest_events + melding_events
    cpu = cpu_per_unit(cpu_before, cpu_now(hub), events)
    token = hub.token("swv", swv=REGION)
    headers = {"authorization": f"Bearer {token}"}
    paths = [
        f"/v1/regios/{REGION}/cijfers?periode={SCHOOL_YEAR}",
        f"/v1/regios/{REGION}/cijfers/niveaus?periode={SCHOOL_YEAR}",
        f"/v1/regios/{REGION}/cijfers/meldingen?periode={SCHOOL_YEAR}&formaat=csv",
        f"/v1/regios/{REGION}/cijfers?periode=2026-03",
        f"/v1/landelijk/cijfers?periode={SCHOOL_YEAR}",
    ]
    latencies: dict[str, list[float]] = {p: [] for p in paths}
    async with httpx.AsyncClient(base_url=hub.base("swv-aggregate"), timeout=30) as client:
        cold: dict[str, float] = {}
        for path in paths:  # the first answer for these figures: disclosure control runs
            t0 = time.perf_counter()
            (await client.get(path, headers=headers)).raise_for_status()
            cold[path] = round((time.perf_counter() - t0) * 1000, 2)
        for i in range(scale.swv_queries):
            path = paths[i % len(paths)]
            t0 = time.perf_counter()
            response = await client.get(path, headers=headers)
            latencies[path].append(time.perf_counter() - t0)
            response.raise_for_status()
    everything = [x for v in latencies.values() for x in v]
    return {
        "catch_up_seconds": round(catch_up, 2),
        "catch_up_events": events,
        "catch_up_events_per_s": round(events / catch_up),
        "cpu_us_per_event": cpu,
        "queries": len(everything),
        "p50_ms": round(percentile(everything, 50) * 1000, 2),
        "p95_ms": round(percentile(everything, 95) * 1000, 2),
        "per_query_p95_ms": {p: round(percentile(v, 95) * 1000, 2) for p, v in latencies.items()},
        "first_query_ms": cold,
    }


# --- the run -----------------------------------------------------------------------------


TARGETS: list[tuple[str, str, str, Callable[[dict[str, Any]], float | None], str, float]] = [
    # (key, label, unit, getter, comparison, target)
    ("batch", "batch ingest / COPY", "×", lambda r: r["batch"]["ratio"], ">=", 0.15),
    ("single", "single POST / bare endpoint", "×", lambda r: r["single"]["ratio"], ">=", 0.33),
    ("single_p99", "single POST p99", "ms", lambda r: r["single"]["hub"]["p99_ms"], "<=", 50),
    ("replay", "melding replay", "ev/s", lambda r: r["replay"]["events_per_s"], ">=", 50_000),
    ("e2e", "accepted → melding p95", "ms", lambda r: r["e2e"]["p95_ms"], "<=", 1000),
    ("swv", "SWV aggregate query p95", "ms", lambda r: r["swv"]["p95_ms"], "<=", 50),
    *[
        (f"rss_{name}", f"RSS peak {name}", "MB", (lambda r, n=name: r["rss_mb"][n]), "<=", 300)
        for name in SERVICES
    ],
]


#: (phase, key, unit): CPU per unit of work, by process, read from /proc: what a target's
#: ratio or rate is made of, and steadier than either on a machine shared with others.
CPU_FIGURES = (
    ("batch", "cpu_us_per_registration", "registration"),
    ("single", "cpu_us_per_request", "request"),
    ("replay", "cpu_us_per_event", "event"),
    ("swv", "cpu_us_per_event", "event"),
)


def table(results: dict[str, Any]) -> tuple[str, dict[str, bool]]:
    lines = [f"{'figure':30} {'target':>12} {'measured':>12}  met", "-" * 62]
    met: dict[str, bool] = {}
    for key, label, unit, get, op, target in TARGETS:
        try:
            value = get(results)
        except (KeyError, TypeError):
            value = None
        ok = value is not None and (value >= target if op == ">=" else value <= target)
        met[key] = ok
        shown = "—" if value is None else f"{value:,.3f}" if unit == "×" else f"{value:,.0f}"
        lines.append(f"{label:30} {op + ' ' + f'{target:,g}':>12} {shown:>12} {unit:4} {ok}")
    b, s = results.get("batch", {}), results.get("single", {})
    if b:
        lines.append(
            f"  batch: {b['http_per_s']:,} reg/s over HTTP, {b['copy_per_s']:,} rows/s COPY"
        )
    if s:
        lines.append(
            f"  single: hub {s['hub']['per_s']:,} req/s p50 {s['hub']['p50_ms']} ms, "
            f"bare {s['bare']['per_s']:,} req/s p50 {s['bare']['p50_ms']} ms "
            f"(concurrency {s['concurrency']}; {s['hub'].get('mean_group_size', '?')} "
            "requests per transaction)"
        )
    if "replay" in results:
        r = results["replay"]
        lines.append(
            f"  replay: {r['events']:,} events in {r['seconds']} s; with the rules for "
            f"{r['pupils']:,} pupils {r['with_rules_seconds']} s "
            f"({r['with_rules_events_per_s']:,} events/s)"
        )
    for phase, key, unit in CPU_FIGURES:
        if key in results.get(phase, {}):
            used = ", ".join(f"{k} {v:,}" for k, v in results[phase][key].items())
            lines.append(f"  CPU µs per {unit} ({phase}): {used}")
    if startup := results.get("startup"):
        shown = ", ".join(
            f"{k} {v['seconds']} s ({v['cpu_seconds']} s CPU)" for k, v in startup.items()
        )
        lines.append(f"  start-up to ready: {shown}")
    if reference := results.get("reference"):
        lines.append(_reference_line(**reference))
    around = [
        f"{name} {results[name]['reference_python_us']['before']:.1f}/"
        f"{results[name]['reference_python_us']['after']:.1f}"
        for name in PHASES
        if "reference_python_us" in results.get(name, {})
    ]
    if around:
        lines.append(f"  Python reference before/after each phase, µs: {', '.join(around)}")
    for name, tables in results.get("seq_scanned_rows", {}).items():
        read = ", ".join(f"{t} {n:,}" for t, n in tables.items()) or "none"
        lines.append(f"  rows read by sequential scans ({name}, whole run): {read}")
    if "e2e" in results:
        lines.append(f"  e2e: p50 {results['e2e']['p50_ms']} ms")
    if "swv" in results:
        w = results["swv"]
        lines.append(
            f"  swv: p50 {w['p50_ms']} ms; caught up on {w['catch_up_events']:,} events in "
            f"{w['catch_up_seconds']} s ({w['catch_up_events_per_s']:,} events/s)"
        )
    return "\n".join(lines), met


def summary(runs: Sequence[dict[str, Any]]) -> tuple[dict[str, Any], str]:
    """Several runs as one: each target's figure as the median of the runs (a target is met
    when its median meets it: one lucky or unlucky run on a noisy machine decides nothing),
    with the lowest and highest. Returns the JSON record and the table."""
    lines = [f"{'figure':30} {'target':>12} {'median':>12} {'':5} {'range':>21}  met", "-" * 90]
    figures: dict[str, Any] = {}
    met: dict[str, bool] = {}
    for key, label, unit, get, op, target in TARGETS:
        values = []
        for results in runs:
            try:
                value = get(results)
            except (KeyError, TypeError):
                continue
            if value is not None:
                values.append(float(value))
        if not values:
            continue
        middle = statistics.median(values)
        ok = middle >= target if op == ">=" else middle <= target
        met[key] = ok
        figures[key] = {"median": middle, "min": min(values), "max": max(values), "runs": values}
        fmt = "{:,.3f}" if unit == "×" else "{:,.0f}"
        spread = f"{fmt.format(min(values))} – {fmt.format(max(values))}"
        lines.append(
            f"{label:30} {op + ' ' + f'{target:,g}':>12} {fmt.format(middle):>12} {unit:5} "
            f"{spread:>21}  {ok}"
        )
    for phase, key, unit in CPU_FIGURES:
        per_process: dict[str, list[float]] = {}
        for results in runs:
            for process, value in results.get(phase, {}).get(key, {}).items():
                per_process.setdefault(process, []).append(value)
        if per_process:
            figures[f"{phase}_{key}"] = {k: statistics.median(v) for k, v in per_process.items()}
            used = ", ".join(f"{k} {statistics.median(v):,.1f}" for k, v in per_process.items())
            lines.append(f"  CPU µs per {unit} ({phase}, medians): {used}")
    startups: dict[str, list[float]] = {}
    for results in runs:
        for name, took in results.get("startup", {}).items():
            startups.setdefault(name, []).append(took["seconds"])
    if startups:
        figures["startup_seconds"] = {k: statistics.median(v) for k, v in startups.items()}
        shown = ", ".join(f"{k} {statistics.median(v):.2f}" for k, v in startups.items())
        lines.append(f"  start-up to ready, s (medians): {shown}")
    references = [results["reference"] for results in runs if "reference" in results]
    if references:
        figures["reference"] = {
            key: statistics.median(r[key] for r in references)
            for key in ("python_us", "postgres_ms", "python_us_other_cpu_busy")
            if all(key in r for r in references)
        }
        lines.append(_reference_line(**figures["reference"]))
    lines.append(f"  {len(runs)} runs; every figure of every run is in the JSON")
    record = {
        "command": runs[0]["command"],
        "repeat": len(runs),
        "figures": figures,
        "met": met,
        "runs": runs,
    }
    return record, "\n".join(lines)


def _reference_line(
    python_us: float, postgres_ms: float, python_us_other_cpu_busy: float | None = None
) -> str:
    busy = (
        ""
        if python_us_other_cpu_busy is None
        else f" ({python_us_other_cpu_busy:.2f} with the other CPU busy)"
    )
    return (
        f"  machine reference (lower is faster): Python {python_us:.2f} µs an iteration{busy}, "
        f"PostgreSQL {postgres_ms:.1f} ms a query"
    )


PHASES = ("batch", "single", "replay", "e2e", "swv")


async def seq_scanned_rows(hub: Hub) -> dict[str, dict[str, int]]:
    """Rows read by sequential scans over the whole run, per table of each service's
    database, largest first: where a plan went bad (a lookup by key that scans the table)
    it shows here before it shows in a rate. Read once the services have stopped and their
    backends are gone (a backend hands in its statistics when it ends). Includes the
    benchmark's own reads: ingest's registrations once (copied for the COPY figure), one
    count each of melding's pupils and meldingen."""
    found: dict[str, dict[str, int]] = {}
    for name in hub.db_urls:
        conn = await asyncpg.connect(hub.dsn(name))
        try:
            for _ in range(250):  # the services' backends end a moment after them
                others = await conn.fetchval(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
                if not others:
                    break
                await asyncio.sleep(0.02)
            rows = await conn.fetch(
                "SELECT relname, seq_tup_read FROM pg_stat_user_tables"
                " WHERE seq_tup_read > 0 ORDER BY seq_tup_read DESC, relname"
            )
        finally:
            await conn.close()
        found[name] = {r["relname"]: int(r["seq_tup_read"]) for r in rows}
    return found


#: A registration-like document for the machine's Python reference.
_REFERENCE_DOC = {
    "schoolRegistratieId": "reg-000001",
    "versie": 1,
    "brin": "99AA",
    "vestiging": "00",
    "pgn": "123456782",
    "datum": "2026-01-05",
    "minuten": 60,
    "categorie": "spijbelen",
    "data": {"n": list(range(20)), "tekst": "x" * 200},
}


def python_reference(rounds: int = 5, iterations: int = 2_000) -> float:
    """The machine's speed for Python work like the services': microseconds of this
    process's CPU for one fixed iteration (JSON out and in, a SHA-256, a dict and a string
    built), the median of ``rounds``. Lower is faster; the same code's CPU figures move
    with it from machine to machine (a figure of one session against another's)."""
    import hashlib

    import orjson

    taken = []
    for _ in range(rounds):
        start = time.process_time()
        for i in range(iterations):
            body = orjson.dumps(_REFERENCE_DOC)
            doc = orjson.loads(body)
            digest = hashlib.sha256(body).hexdigest()
            row = {key: value for key, value in doc.items() if key != "data"}
            row["hash"] = f"{digest[:16]}-{i}"
        taken.append((time.process_time() - start) / iterations * 1e6)
    return round(statistics.median(taken), 2)


@contextmanager
def other_cpu_busy(cpu: int | None = None) -> Iterator[None]:
    """Another process spinning while the block runs (pinned to ``cpu`` if given)."""
    spin = [sys.executable, "-c", "import time\nend = time.time() + 60\nwhile time.time() < end: 0"]
    if cpu is not None:
        spin = ["taskset", "-c", str(cpu), *spin]
    process = subprocess.Popen(spin)
    try:
        time.sleep(0.1)  # started
        yield
    finally:
        process.kill()
        process.wait()


def python_reference_other_cpu_busy() -> float:
    """:func:`python_reference` while another process keeps a CPU busy. On the machine of
    the nineteenth session a process at times ran ~1.8× slower while the other of its two
    CPUs was busy, and at times not at all: how much the services' work slows one another
    down depends on the machine (``make bench-machine``)."""
    with other_cpu_busy():
        return python_reference()


def quick_reference() -> float:
    """A short :func:`python_reference` (~30 ms), taken before and after each phase: the
    machine's speed moves within a run."""
    return python_reference(rounds=3, iterations=500)


async def postgres_reference(dsn: str, rounds: int = 3) -> float:
    """The same for PostgreSQL: milliseconds for one fixed query that only computes (50,000
    MD5s of generated rows), the median of ``rounds``; the server's CPU, nearly all of it."""
    conn = await asyncpg.connect(dsn)
    try:
        taken = []
        for _ in range(rounds):
            start = time.perf_counter()
            await conn.fetchval(
                "SELECT count(DISTINCT md5(i::text)) FROM generate_series(1, 50000) AS i"
            )
            taken.append((time.perf_counter() - start) * 1000)
    finally:
        await conn.close()
    return round(statistics.median(taken), 1)


async def run(quick: bool, only: Sequence[str] = PHASES) -> dict[str, Any]:
    scale = QUICK if quick else FULL
    rng = random.Random(8)
    pg = await ensure_server()
    work = Path(tempfile.mkdtemp(prefix="vzh-bench-"))
    hub = Hub(pg, work)
    results: dict[str, Any] = {
        "command": "make bench" + (" ARGS=--quick" if quick else ""),
        "quick": quick,
        "phases": list(only),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "scale": scale.__dict__,
        # Other work on the machine skews every figure: recorded so a reader can tell.
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    steps: list[tuple[str, Callable[[], Awaitable[dict[str, Any]]]]] = []
    try:
        # Before anything runs: how fast this machine is now. One reading, and the speed
        # moves within a run (docs/benchmarks-journal.md, nineteenth session): each phase gets a
        # short reading before and after, and `make bench-machine` watches it for longer.
        results["reference"] = {
            "python_us": python_reference(),
            "python_us_other_cpu_busy": python_reference_other_cpu_busy(),
            "postgres_ms": await postgres_reference(pg.dsn),
        }
        log(f"machine reference: {json.dumps(results['reference'])}")
        await hub.create_databases()
        log(f"databases migrated on {pg.dsn.rsplit('@', 1)[-1]}; starting ingest")
        await hub.start("ingest")
        dataset = school_year_dataset(scale, rng)
        steps = [
            ("batch", lambda: bench_batch(hub, scale, dataset)),
            ("single", lambda: bench_single(hub, scale, rng)),
            ("replay", lambda: bench_replay(hub)),
            ("e2e", lambda: bench_e2e(hub, scale, rng)),
            ("swv", lambda: bench_swv(hub, scale)),
        ]
        for name, step in steps:
            if name not in only:
                continue
            log(f"{name} …")
            before = quick_reference()
            results[name] = await step()
            results[name]["reference_python_us"] = {"before": before, "after": quick_reference()}
            log(f"{name}: {json.dumps(results[name])}")
        results["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
        results["rss_mb"] = {
            name: round(rss_peak_mb(proc.pid), 1) for name, proc in hub.procs.items()
        }
        results["startup"] = hub.startup
        hub.stop_all()
        results["seq_scanned_rows"] = await seq_scanned_rows(hub)
    finally:
        hub.stop_all()
        await pg.drop_databases()
        pg.stop()
        shutil.rmtree(work, ignore_errors=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small run (about a minute)")
    parser.add_argument("--json", type=Path, default=RESULTS, help="where to write the figures")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run everything this many times (fresh databases and processes each time) and "
        "judge each figure on its median; the table shows the median and the range",
    )
    parser.add_argument(
        "--only",
        default=",".join(PHASES),
        help="comma-separated phases to run, in the usual order (for profiling one of them; "
        "replay applies what the phases before it stored, e2e needs replay): " + ", ".join(PHASES),
    )
    args = parser.parse_args()
    only = [name.strip() for name in args.only.split(",") if name.strip()]
    if unknown := set(only) - set(PHASES):
        parser.error(f"unknown phase(s): {', '.join(sorted(unknown))}")
    if "e2e" in only and "replay" not in only:
        parser.error("e2e needs replay (it starts melding)")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    runs = []
    for i in range(args.repeat):
        if args.repeat > 1:
            log(f"run {i + 1} of {args.repeat}")
        runs.append(asyncio.run(run(args.quick, only)))
    command = "make bench" + (f' ARGS="{" ".join(sys.argv[1:])}"' if sys.argv[1:] else "")
    for results in runs:
        results["command"] = command
    if len(runs) == 1:
        results = runs[0]
        text, met = table(results)
        results["met"] = met
    else:
        results, text = summary(runs)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(text)
    print(f"figures written to {args.json}")


if __name__ == "__main__":
    main()
