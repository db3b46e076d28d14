"""The benchmark's summary of repeated runs (``make bench ARGS="--repeat N"``): each target
judged on the median of the runs, with the range beside it."""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any

import pytest

from verzuimhub.testing import bench_module


@pytest.fixture(scope="module")
def hub_bench() -> ModuleType:
    return bench_module("hub_bench")


def run(replay: float, p99: float, *, batch: float | None = None) -> dict[str, Any]:
    results: dict[str, Any] = {
        "command": "make bench",
        "replay": {"events_per_s": replay},
        "single": {"ratio": 0.1, "hub": {"p99_ms": p99}},
    }
    if batch is not None:
        results["batch"] = {"ratio": batch}
    return results


def test_each_target_is_judged_on_the_median_of_the_runs(hub_bench: ModuleType) -> None:
    # One lucky replay (60,000) and one unlucky p99 (70 ms) decide nothing.
    runs = [run(60_000, 20), run(30_000, 70), run(35_000, 30)]
    record, text = hub_bench.summary(runs)
    assert record["figures"]["replay"] == {
        "median": 35_000,
        "min": 30_000,
        "max": 60_000,
        "runs": [60_000, 30_000, 35_000],
    }
    assert record["met"]["replay"] is False
    assert record["figures"]["single_p99"]["median"] == 30
    assert record["met"]["single_p99"] is True
    assert record["runs"] == runs
    assert record["repeat"] == 3
    line = next(line for line in text.splitlines() if line.startswith("melding replay"))
    assert "35,000" in line
    assert "30,000 – 60,000" in line
    assert line.endswith("False")


def test_a_figure_no_run_measured_is_left_out(hub_bench: ModuleType) -> None:
    record, text = hub_bench.summary([run(1, 1), run(2, 2, batch=0.2)])
    assert record["figures"]["batch"]["runs"] == [0.2]  # measured in one run only
    assert "swv" not in record["figures"]
    assert "swv" not in record["met"]
    assert "SWV aggregate" not in text


def test_cpu_per_unit_is_the_difference_per_unit_for_processes_that_used_any(
    hub_bench: ModuleType,
) -> None:
    before = {"ingest": 10.0, "postgres:ingest": 4.0, "melding": 2.0, "bench": 1.0}
    after = {"ingest": 13.0, "postgres:ingest": 5.5, "melding": 2.0, "bench": 1.25, "swv": 0.5}
    assert hub_bench.cpu_per_unit(before, after, 50_000) == {
        "ingest": 60.0,
        "postgres:ingest": 30.0,
        "bench": 5.0,
        # A process started after the first reading counts from the first reading of its own.
    }


def test_the_summary_gives_each_process_its_median_cpu(hub_bench: ModuleType) -> None:
    runs = [run(30_000, 10), run(31_000, 10), run(32_000, 10)]
    for results, melding in zip(runs, (20.0, 30.0, 25.0), strict=True):
        results["replay"]["cpu_us_per_event"] = {"melding": melding, "postgres:melding": 18.0}
    record, text = hub_bench.summary(runs)
    assert record["figures"]["replay_cpu_us_per_event"] == {
        "melding": 25.0,
        "postgres:melding": 18.0,
    }
    assert "CPU µs per event (replay, medians): melding 25.0, postgres:melding 18.0" in text


def test_the_summary_gives_each_service_its_median_startup(hub_bench: ModuleType) -> None:
    runs = [run(30_000, 10), run(31_000, 10), run(32_000, 10)]
    for results, ingest in zip(runs, (1.5, 4.0, 1.25), strict=True):
        results["startup"] = {
            "ingest": {"seconds": ingest, "cpu_seconds": 1.0},
            "melding": {"seconds": 2.0, "cpu_seconds": 1.0},
        }
    record, text = hub_bench.summary(runs)
    assert record["figures"]["startup_seconds"] == {"ingest": 1.5, "melding": 2.0}
    assert "start-up to ready, s (medians): ingest 1.50, melding 2.00" in text
    table, _ = hub_bench.table({"startup": runs[1]["startup"]})
    assert "start-up to ready: ingest 4.0 s (1.0 s CPU), melding 2.0 s (1.0 s CPU)" in table


async def test_cpu_now_reads_the_service_processes_and_their_database_backends(
    hub_bench: ModuleType, pg: Any
) -> None:
    """Against this machine's /proc: a busy child counts as a service, and the PostgreSQL
    backend of a service's database (found by its process title) counts for that service."""
    import asyncio
    from types import SimpleNamespace

    import asyncpg

    script = (
        "import sys, time\nt = time.process_time()\n"
        "while time.process_time() - t < 0.3: pass\nprint('done', flush=True)\nsys.stdin.read()\n"
    )
    busy = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
    )
    database = await pg.create_database("vzh_test_cpu")
    conn = await asyncpg.connect(pg.url_for(database, driver="postgresql"))
    try:
        assert busy.stdout is not None
        await busy.stdout.readline()  # it has burnt its CPU, and lives
        hub = SimpleNamespace(
            procs={"ingest": busy}, db_urls={"ingest": pg.url_for(database), "melding": "x/y"}
        )
        before = hub_bench.cpu_now(hub)
        await conn.fetchval("SELECT count(*) FROM generate_series(1, 3000000)")
        after = hub_bench.cpu_now(hub)
    finally:
        await conn.close()
        busy.kill()
        await busy.communicate()
    assert before["ingest"] >= 0.25
    assert after["postgres:ingest"] - before["postgres:ingest"] >= 0.05
    assert after["postgres:melding"] == 0.0  # no backend of that database


async def test_seq_scanned_rows_counts_what_ended_backends_read(
    hub_bench: ModuleType, pg: Any
) -> None:
    """Against a real server: a backend that scanned a table and ended counts; a lookup
    through the key's index does not."""
    from types import SimpleNamespace

    import asyncpg

    database = await pg.create_database("vzh_test_seq")
    dsn = pg.url_for(database, driver="postgresql")
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "CREATE TABLE things (id int PRIMARY KEY, n int);"
            "INSERT INTO things SELECT g, g FROM generate_series(1, 5000) AS g; ANALYZE things"
        )
        assert await conn.fetchval("SELECT count(*) FROM things WHERE n > 10") == 4990
        assert await conn.fetchval("SELECT n FROM things WHERE id = 7") == 7
    finally:
        await conn.close()
    hub = SimpleNamespace(db_urls={"ingest": pg.url_for(database)}, dsn=lambda _name: dsn)
    found = await hub_bench.seq_scanned_rows(hub)
    assert found == {"ingest": {"things": 5000}}
    text, _ = hub_bench.table({"seq_scanned_rows": found})
    assert "rows read by sequential scans (ingest, whole run): things 5,000" in text


def test_the_floor_bounds_the_batch_ratio_three_ways() -> None:
    floor = bench_module("floor_bench")
    # COPY 3 µs a row; 40 µs of Python and 20 of PostgreSQL per registration; 2 cores.
    assert floor.reachable(3.0, 40.0, 20.0, 2) == {
        "in_turn": 0.05,
        "overlapped": 0.075,
        "all_cores": 0.1,
    }


def test_a_process_cpu_counts_all_its_threads(hub_bench: ModuleType) -> None:
    """A service's CPU includes its worker threads' (a page decoded off the event loop)."""
    import os
    import threading
    import time

    spun = threading.Event()
    release = threading.Event()

    def spin() -> None:
        end = time.thread_time() + 0.05
        while time.thread_time() < end:
            pass
        spun.set()
        release.wait(10)  # alive, so its task is still listed when the CPU is read

    before = hub_bench.cpu_seconds(os.getpid())
    worker = threading.Thread(target=spin)
    worker.start()
    try:
        assert spun.wait(30)  # however loaded the machine, the worker has had 50 ms of CPU
        during = hub_bench.cpu_seconds(os.getpid())
    finally:
        release.set()
        worker.join()
    assert during - before >= 0.04  # the worker's 50 ms, less a tick not yet accounted
    assert hub_bench.cpu_seconds(2**22 + 12345) == 0.0  # no such process


def test_the_machine_reference_is_the_median_of_the_runs(hub_bench: ModuleType) -> None:
    """Figures of two sessions compare only through how fast the machine was: the summary
    keeps the reference's median, and prints it."""
    runs = [run(50_000, 10), run(50_000, 10), run(50_000, 10)]
    measured = [(8.0, 200), (9.5, 260), (7.0, 230)]
    for results, (python_us, postgres_ms) in zip(runs, measured, strict=True):
        results["reference"] = {"python_us": python_us, "postgres_ms": postgres_ms}
    record, text = hub_bench.summary(runs)
    assert record["figures"]["reference"] == {"python_us": 8.0, "postgres_ms": 230}
    assert "machine reference (lower is faster): Python 8.00 µs" in text
    assert "PostgreSQL 230.0 ms" in text


def test_the_python_reference_counts_cpu_per_iteration(hub_bench: ModuleType) -> None:
    taken = hub_bench.python_reference(rounds=1, iterations=200)
    assert 0.1 < taken < 1_000


def test_the_single_posts_sides_take_turns_on_every_request_once(hub_bench: ModuleType) -> None:
    """The machine's speed moves from second to second: the hub and the bare endpoint are
    measured in turns (hub then bare, bare then hub, …) on the same requests."""
    items = list(range(10))
    slices = hub_bench.interleaved(items, 4)
    assert [first for first, _ in slices] == ["hub", "bare", "hub", "bare"]
    assert [x for _, chunk in slices for x in chunk] == items
    assert [len(chunk) for _, chunk in slices] == [3, 3, 3, 1]
    assert [first for first, _ in hub_bench.interleaved(items, 20)] == ["hub", "bare"] * 5


def test_the_figures_of_a_sides_slices_are_taken_together(hub_bench: ModuleType) -> None:
    parts = [
        hub_bench.Driven([0.010] * 100, 1.0, 0.1),
        hub_bench.Driven([0.030] * 100, 3.0, 0.3),
    ]
    figures = hub_bench.drive_figures(parts)
    assert figures["requests"] == 200
    assert figures["per_s"] == 50  # 200 requests in 4 s, not the mean of 100 and 33
    assert figures["p50_ms"] == 20.0
    assert figures["p99_ms"] == 30.0
    assert figures["load_generator_cpu_share"] == 0.1


def test_the_reference_with_the_other_cpu_busy_is_kept_and_printed(
    hub_bench: ModuleType,
) -> None:
    runs = [run(50_000, 10), run(50_000, 10), run(50_000, 10)]
    for results, busy in zip(runs, (7.0, 8.5, 7.5), strict=True):
        results["reference"] = {
            "python_us": 4.5,
            "python_us_other_cpu_busy": busy,
            "postgres_ms": 120,
        }
    record, text = hub_bench.summary(runs)
    assert record["figures"]["reference"]["python_us_other_cpu_busy"] == 7.5
    assert "Python 4.50 µs an iteration (7.50 with the other CPU busy)" in text
    single = {
        "concurrency": 8,
        "ratio": 0.25,
        "hub": {"per_s": 700, "p50_ms": 10.0, "p99_ms": 16.0},
        "bare": {"per_s": 2800, "p50_ms": 2.5},
        "reference_python_us": {"before": 4.4, "after": 8.1},
    }
    text, _ = hub_bench.table({"single": single, "reference": runs[0]["reference"]})
    assert "Python reference before/after each phase, µs: single 4.4/8.1" in text
