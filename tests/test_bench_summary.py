"""The benchmark's summary of repeated runs (``make bench ARGS="--repeat N"``): each target
judged on the median of the runs, with the range beside it."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "hub_bench.py"


@pytest.fixture(scope="module")
def hub_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("hub_bench", BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


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
