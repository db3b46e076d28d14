"""Micro-benchmark of the melding rules engine.

Single-pupil evaluation after one new registration, for a pupil with a long history: what the
melding service does for every incoming registration (window from ``ledger_window``, evaluate
that window). Full-history evaluation is measured for comparison.

    uv run python bench/rules_bench.py [--years 3] [--seconds 2] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from bisect import bisect_left
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

from verzuimhub_melding.rules import (
    ExistingMelding,
    LedgerDay,
    LedgerWindow,
    MeldingStatus,
    Pupil,
    RulesConfig,
    Sector,
    evaluate,
    ledger_window,
)
from verzuimhub_shared.calendar import SchoolCalendar, region_calendar


def build_ledger(calendar: SchoolCalendar, first: date, last: date, seed: int) -> list[LedgerDay]:
    """A realistic pupil: sickness now and then, late arrivals, truancy bouts, a luxe week."""
    rng = random.Random(seed)
    days: list[LedgerDay] = []
    bout = 0
    for day in calendar.lesdagen(first, last):
        roll = rng.random()
        if bout:
            bout -= 1
            days.append(LedgerDay(day, unauthorised_minutes=300, all_lessons_missed=True))
        elif roll < 0.01:
            bout = rng.randint(2, 8)
        elif roll < 0.06:
            days.append(LedgerDay(day, authorised_minutes=300, all_lessons_missed=True))
        elif roll < 0.16:
            days.append(LedgerDay(day, unauthorised_minutes=rng.choice([10, 50, 120])))
        elif roll < 0.162:
            days.append(LedgerDay(day, unauthorised_minutes=300, luxe_verzuim=True))
    return days


def measure(fn: Callable[[], object], seconds: float) -> tuple[int, float]:
    count = 0
    started = time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        fn()
        count += 1
    return count, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--years", type=int, default=3, help="history length in school years")
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args()

    calendar = region_calendar("midden")
    config = RulesConfig()
    pupil = Pupil(date(2011, 3, 14), Sector.PO, "GM0363")
    last = date(2027, 6, 30)
    first = date(last.year - args.years, 9, 1)
    ledger = sorted(build_ledger(calendar, first, last, seed=7), key=lambda d: d.datum)
    dates = [day.datum for day in ledger]
    existing = [
        ExistingMelding(m.kind, m.begindatum, m.einddatum, MeldingStatus.SENT, m.herhaalmelding)
        for m in evaluate(pupil, ledger, [], calendar, config).due
    ]
    recent = list(calendar.lesdagen(last - timedelta(days=60), last))
    rng = random.Random(1)

    def incremental() -> object:
        changed = rng.choice(recent)
        window = ledger_window(existing, changed, calendar, config)
        while True:
            loaded = ledger[bisect_left(dates, window.start) :]  # what the service would load
            result = evaluate(pupil, loaded, existing, calendar, config, window=window)
            if result.needs_history_from is None or window.start <= dates[0]:
                return result
            window = LedgerWindow(result.needs_history_from, window.anchor)

    def full() -> object:
        return evaluate(pupil, ledger, existing, calendar, config)

    windows = [ledger_window(existing, day, calendar, config) for day in recent]
    window_days = sum(len(dates) - bisect_left(dates, w.start) for w in windows) / len(windows)
    n_inc, t_inc = measure(incremental, args.seconds)
    n_full, t_full = measure(full, args.seconds)
    figures = {
        "history_school_years": args.years,
        "ledger_days": len(ledger),
        "stored_meldingen": len(existing),
        "mean_window_ledger_days": round(window_days, 1),
        "incremental_evaluations_per_second": round(n_inc / t_inc, 1),
        "full_evaluations_per_second": round(n_full / t_full, 1),
    }
    width = max(len(key) for key in figures)
    for key, value in figures.items():
        print(f"{key:<{width}}  {value}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
