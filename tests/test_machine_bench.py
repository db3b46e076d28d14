"""``make bench-machine`` (bench/machine_bench.py): how steady the machine's speed is and
what a fault and a round trip cost, for reading the hub's figures."""

from __future__ import annotations

from types import ModuleType

import pytest

from verzuimhub.testing import bench_module


@pytest.fixture(scope="module")
def machine_bench() -> ModuleType:
    return bench_module("machine_bench")


def test_the_speed_is_read_again_and_again_and_summed_up_per_two_seconds(
    machine_bench: ModuleType,
) -> None:
    speed = machine_bench.speed_over_time(0.3)
    assert speed["readings"] >= 3
    assert 0 < speed["fastest_us"] <= speed["median_us"] <= speed["slowest_us"]
    assert 0 <= speed["slow_share"] <= 1
    assert list(speed["median_per_2_s"]) == [0]


def test_a_page_fault_costs_some_cpu(machine_bench: ModuleType) -> None:
    assert 0 < machine_bench.page_fault_us(megabytes=8, rounds=1)["cpu_us_per_fault"] < 1_000


def test_the_report_names_every_figure(machine_bench: ModuleType) -> None:
    text = machine_bench.report(
        {
            "speed_over_time": {
                "readings": 1000,
                "fastest_us": 4.0,
                "median_us": 7.5,
                "slowest_us": 12.0,
                "slow_share": 0.7,
                "median_per_2_s": {0: 7.5, 2: 4.1},
            },
            "other_cpu_busy": {"alone_us": 4.2, "other_cpu_busy_us": 7.6, "factor": 1.81},
            "page_fault": {"cpu_us_per_fault": 5.7},
            "postgres": {
                "select_1": {"server_cpu_us": 40.0, "client_cpu_us": 90.0, "wall_us": 120.0}
            },
        }
    )
    assert "fastest 4.00, median 7.50, slowest 12.00; 70% of 1,000 readings" in text
    assert "median per 2 s: 7.5 4.1" in text
    assert "4.20 → 7.60 µs (× 1.81)" in text
    assert "a page fault: 5.70 µs of CPU" in text
    assert "PostgreSQL select_1: server 40.0 µs CPU" in text
