"""End to end: every service as its own uvicorn process on PostgreSQL, a small demo year
driven through HTTP, the final state checked against the generator's ground truth.

Processes: ingest, melding and swv-aggregate (each with its workers and its own fresh,
migrated PostgreSQL database) and mock DUO, started as ``python -m verzuimhub serve <name>``
with the settings ``verzuimhub up`` gives them, on free ports.
"""

from __future__ import annotations

import socket
from collections import Counter
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest

from verzuimhub.cli import up_environment
from verzuimhub.demo_data import DemoYear, generate_year
from verzuimhub.demo_driver import DemoOutcome, HubUrls, drive
from verzuimhub.demo_truth import check_outcome, expected_meldingen, expected_swv_figures
from verzuimhub.hub import UP_ORDER, running_hub
from verzuimhub.services import DATABASE_SERVICES, service
from verzuimhub.testing import run_sync
from verzuimhub_shared.periods import school_year_of
from verzuimhub_shared.testing.postgres import PostgresServer

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

PUPILS = 300
WEEKS = 9
SEED = 7


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.fixture(scope="module")
def year() -> DemoYear:
    today = date.today()
    end = today - timedelta(days=1)
    return generate_year(PUPILS, SEED, start=end - timedelta(weeks=WEEKS), end=end, today=today)


@pytest.fixture(scope="module")
def run(
    pg: PostgresServer, tmp_path_factory: pytest.TempPathFactory, year: DemoYear
) -> Iterator[tuple[DemoOutcome, HubUrls, Path]]:
    data_dir = tmp_path_factory.mktemp("e2e-hub")
    ports = dict(zip(UP_ORDER, _free_ports(len(UP_ORDER)), strict=True))
    envs = up_environment(data_dir, "127.0.0.1", ports)
    for name in DATABASE_SERVICES:
        prefix = service(name).env_prefix
        database = run_sync(pg.create_database(f"vzh_e2e_{name.replace('-', '_')}"))
        envs[name][f"{prefix}DATABASE_URL"] = pg.url_for(database)
        envs[name][f"{prefix}ENV"] = "test"
        envs[name][f"{prefix}LOG_LEVEL"] = "WARNING"
    envs["melding"]["VZH_MELDING_WORKER_INTERVAL_SECONDS"] = "0.2"
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    hub_urls = HubUrls(urls["ingest"], urls["melding"], urls["swv-aggregate"], urls["mock-duo"])
    with running_hub(envs, urls, log_dir=data_dir / "logs", timeout=60) as hub:
        outcome = drive(year, hub_urls, data_dir / "keys", timeout=120)
        assert hub.exited() is None, f"{hub.exited()} exited during the demo"
        yield outcome, hub_urls, data_dir


def test_every_registration_is_accepted(run: tuple[DemoOutcome, HubUrls, Path]) -> None:
    outcome, _, _ = run
    assert outcome.registratie_problemen == []
    assert outcome.registratie_uitkomsten["aangemaakt"] == outcome.registraties_sent > 0
    assert outcome.vrijstellingen_recorded > 0


def test_hub_state_equals_ground_truth(
    run: tuple[DemoOutcome, HubUrls, Path], year: DemoYear
) -> None:
    outcome, _, _ = run
    expected = expected_meldingen(year)
    # The small year must exercise the rules: 16 uur and luxe verzuim at least.
    kinds = Counter(m.kind for m in expected)
    assert kinds["V3"] > 0
    assert kinds["L"] > 0
    check = check_outcome(
        year,
        expected,
        outcome.school_meldingen,
        outcome.duo_ontvangen,
        outcome.gemeente_meldingen,
        outcome.swv_cijfers,
        outcome.schooljaar,
        date.today(),
    )
    assert check.problems == []
    # The checks compared something on every side.
    assert outcome.confirmed == outcome.concepts_found == len(expected)
    assert len(outcome.duo_ontvangen) == len(expected)
    assert sum(len(v) for v in outcome.gemeente_meldingen.values()) == len(expected)
    assert check.swv_shown > 0
    assert check.swv_withheld > 0


def test_meldingen_due_match_the_rules(
    run: tuple[DemoOutcome, HubUrls, Path], year: DemoYear
) -> None:
    """The hub's concepts + sent meldingen are exactly what the rules give, per pupil."""
    outcome, _, _ = run
    truth = sorted(
        (m.pgn, m.kind, m.begindatum.isoformat(), m.einddatum.isoformat())
        for m in expected_meldingen(year)
    )
    hub = sorted(
        (m["pgn"], m["soort"], m["begindatum"], m["einddatum"])
        for m in outcome.school_meldingen
        if m["status"] != "vervallen"
    )
    assert hub == truth
    assert {m["status"] for m in outcome.school_meldingen} <= {"geregistreerd", "vervallen"}


def test_duo_received_exactly_the_confirmed_meldingen_once(
    run: tuple[DemoOutcome, HubUrls, Path],
) -> None:
    outcome, _, _ = run
    sent = {m["id"] for m in outcome.school_meldingen if m["status"] == "geregistreerd"}
    received = [m["meldingId"] for m in outcome.duo_ontvangen]
    assert sorted(received) == sorted(sent)
    numbers = {m["duoMeldingsnummer"] for m in outcome.school_meldingen if m["id"] in sent}
    assert numbers == {m["meldingsnummer"] for m in outcome.duo_ontvangen}


def test_each_gemeente_pulls_exactly_its_inwoners(
    run: tuple[DemoOutcome, HubUrls, Path], year: DemoYear
) -> None:
    outcome, _, _ = run
    woongemeente = {p.pgn: p.woongemeente for p in year.pupils}
    for gemeente, pulled in outcome.gemeente_meldingen.items():
        expected = {
            m["id"]
            for m in outcome.school_meldingen
            if m["status"] == "geregistreerd" and woongemeente[m["pgn"]] == gemeente
        }
        assert {m["id"] for m in pulled} == expected, gemeente
        assert all(m["melding"]["woongemeente"] == gemeente for m in pulled)
        assert all(woongemeente[m["melding"]["leerling"]["pgn"]] == gemeente for m in pulled)


def test_swv_figures_equal_the_generated_counts(
    run: tuple[DemoOutcome, HubUrls, Path], year: DemoYear
) -> None:
    outcome, _, _ = run
    figures = expected_swv_figures(
        year, expected_meldingen(year), school_year_of(year.end), date.today()
    )
    compared = 0
    for scope, cijfers in outcome.swv_cijfers.items():
        k = cijfers["drempel"]
        for tabel in cijfers["tabellen"]:
            if tabel["naam"] not in ("verzuim-geoorloofd", "verzuim-ongeoorloofd", "meldingen"):
                continue
            truth = figures.get(scope, {}).get(tabel["naam"], {})
            for cell in tabel["cellen"]:
                true_value = truth.get(tuple(sorted(cell["categorieen"].items())), 0)
                if cell["onderdrukt"]:
                    assert cell["waarde"] is None
                    if cell["reden"] == "primary":
                        assert true_value < k
                else:
                    assert cell["waarde"] == true_value, (scope, tabel["naam"], cell)
                    assert true_value >= k
                    compared += 1
    assert compared > 0
