"""``verzuimhub demo``: a school year of a fictional region, through the real REST APIs.

Generates the year (``demo_data``), starts the hub on the embedded default unless one is
already running on the given ports, drives the year through HTTP (``demo_driver``) with a
progress bar on stderr, prints a summary a person can read, checks the hub's answers against
the ground truth (``demo_truth``), and keeps the hub running for exploring (Ctrl-C stops it;
``--stop`` stops it right after the summary).
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any, TextIO

import httpx

from verzuimhub.demo_data import DemoYear, generate_year
from verzuimhub.demo_driver import DemoError, DemoOutcome, HubUrls, drive
from verzuimhub.demo_truth import Check, check_outcome, expected_meldingen
from verzuimhub.hub import UP_ORDER, HubNotReady, running_hub

SOORTEN = ("V3", "V4", "LRV", "RMC", "L")
SOORT_NAMEN = {
    "V3": "16 uur in 4 lesweken",
    "V4": "16 uur, 18+",
    "LRV": "langdurig relatief verzuim",
    "RMC": "18-23 zonder startkwalificatie",
    "L": "luxe verzuim",
}


# --------------------------------------------------------------------------- progress


class ProgressBar:
    """A one-line progress bar on a terminal; plain progress lines otherwise."""

    WIDTH = 30

    def __init__(self, stream: TextIO = sys.stderr) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.label = ""
        self.total: int | None = None
        self.done = 0
        self.started = 0.0
        self._last_draw = 0.0
        self._last_step = -1

    def start(self, label: str, total: int | None) -> None:
        self.label, self.total, self.done = label, total, 0
        self.started = self._last_draw = time.perf_counter()
        self._last_step = -1
        if not self.tty:
            size = f" ({total:,})" if total else ""
            self.stream.write(f"  … {label}{size}\n")
            self.stream.flush()
        self._draw(force=True)

    def advance(self, n: int = 1, *, to: int | None = None) -> None:
        self.done = to if to is not None else self.done + n
        self._draw()

    def finish(self, note: str = "") -> None:
        elapsed = time.perf_counter() - self.started
        if self.total:
            self.done = self.total
        if self.tty:
            self._draw(force=True)
            self.stream.write(f"  {elapsed:6.1f} s {note}\n")
        else:
            self.stream.write(f"  ✓ {self.label}: {elapsed:.1f} s {note}\n")
        self.stream.flush()

    def _draw(self, force: bool = False) -> None:
        now = time.perf_counter()
        elapsed = now - self.started
        if self.tty:
            if not force and now - self._last_draw < 0.1:
                return
            self._last_draw = now
            if self.total:
                share = min(1.0, self.done / self.total)
                filled = int(share * self.WIDTH)
                bar = "█" * filled + "·" * (self.WIDTH - filled)
                count = f"{self.done:>9,}/{self.total:,}"
            else:
                spin = "|/-\\"[int(elapsed * 4) % 4]
                bar, count = f"{spin:<{self.WIDTH}}", ""
            self.stream.write(f"\r  {self.label:42.42} {bar} {count} {elapsed:5.1f} s ")
            self.stream.flush()
        elif self.total:
            step = int(10 * min(1.0, self.done / self.total))
            if step > self._last_step and 0 < step < 10:
                self._last_step = step
                self.stream.write(f"    {self.done:,}/{self.total:,} ({elapsed:.1f} s)\n")
                self.stream.flush()


# --------------------------------------------------------------------------- summary


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], indent: str = "  ") -> str:
    cells = [[str(c) for c in header]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = []
    for n, row in enumerate(cells):
        parts = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append(indent + "  ".join(parts).rstrip())
        if n == 0:
            lines.append(indent + "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _cell(cijfers: Mapping[str, Any], tabel: str, **categorieen: str) -> str:
    for table in cijfers["tabellen"]:
        if table["naam"] != tabel:
            continue
        for cell in table["cellen"]:
            if cell["categorieen"] == categorieen:
                return "x" if cell["onderdrukt"] else f"{cell['waarde']:,}"
    return "-"


def summary(
    year: DemoYear, outcome: DemoOutcome, check: Check, timings: Mapping[str, float]
) -> str:
    ref = year.refdata
    out: list[str] = []
    pupils_per_sector = Counter(p.sector for p in year.pupils)
    out.append(
        f"\nVerzuimhub demo: schooljaar {outcome.schooljaar}, "
        f"{year.start:%d-%m-%Y} t/m {year.end:%d-%m-%Y} (seed {year.seed})"
    )
    out.append(
        f"Regio 'Proefland' (fictief): {len(ref.gemeenten)} gemeenten, {len(ref.swvs)} SWV's, "
        f"{len(ref.schools)} vestigingen, {len(year.pupils):,} leerlingen ("
        + ", ".join(f"{s} {n:,}" for s, n in pupils_per_sector.most_common())
        + ")"
    )

    out.append("\nRegistraties (scholen → ingest, batches van ten hoogste 5.000)")
    u = outcome.registratie_uitkomsten
    out.append(
        _table(
            ["uitkomst", "aantal"],
            [
                ["verstuurd", outcome.registraties_sent],
                ["aangemaakt (nieuw)", u["aangemaakt"]],
                ["ongewijzigd (al eerder ontvangen)", u["ongewijzigd"]],
                ["bijgewerkt", u["bijgewerkt"]],
                ["afgewezen", u["afgewezen"]],
            ],
        )
    )
    for problem in outcome.registratie_problemen[:5]:
        out.append(f"    afgewezen: {problem}")
    categories = Counter(r.categorie for r in year.registraties)
    out.append("")
    out.append(_table(["categorie", "registraties"], categories.most_common()))
    out.append(
        f"\n  5-onder-a vrijstellingen vastgelegd door gemeenten: {outcome.vrijstellingen_recorded}"
    )

    out.append("\nMeldingen (melding → school bevestigt → DUO)")
    expected = Counter(m.kind for m in check.expected)
    live = [m for m in outcome.school_meldingen if m["status"] != "vervallen"]
    found = Counter(m["soort"] for m in live)
    sent = Counter(m["soort"] for m in live if m["status"] == "geregistreerd")
    duo = Counter(m["melding"]["verzuimsoort"] for m in outcome.duo_ontvangen)
    rows: list[list[Any]] = [
        [f"{k} {SOORT_NAMEN[k]}", expected[k], found[k], sent[k], duo[k]] for k in SOORTEN
    ]
    rows.append(
        [
            "totaal",
            sum(expected.values()),
            len(live),
            sum(sent.values()),
            len(outcome.duo_ontvangen),
        ]
    )
    out.append(
        _table(
            ["soort", "verschuldigd (regels)", "in de hub", "bevestigd+doorgestuurd", "bij DUO"],
            rows,
        )
    )
    out.append(
        f"  {outcome.concepts_found:,} conceptmeldingen gevonden, {outcome.confirmed:,} bevestigd "
        "door de scholen (ondernomen actie, contactpersoon, gewenste gemeentelijke actie)."
    )

    out.append("\nGemeenten: wat elke leerplichtambtenaar ophaalt (GET /v1/meldingen)")
    rows = []
    for code, pulled in outcome.gemeente_meldingen.items():
        kinds = Counter(m["melding"]["verzuimsoort"] for m in pulled)
        rows.append(
            [f"{code} {ref.gemeente_name(code) or ''}", *(kinds[k] for k in SOORTEN), len(pulled)]
        )
    out.append(_table(["gemeente", *SOORTEN, "totaal"], rows))

    out.append(
        f"\nSWV-cijfers schooljaar {outcome.schooljaar} "
        "(x = onderdrukt: minder dan k leerlingen, of af te leiden uit andere cijfers)"
    )
    for code, cijfers in outcome.swv_cijfers.items():
        sectors = sorted(
            {
                cell["categorieen"]["sector"]
                for table in cijfers["tabellen"]
                if table["naam"] == "verzuim-geoorloofd"
                for cell in table["cellen"]
                if "sector" in cell["categorieen"]
            }
        )
        region = ref.swv(code)
        name = "landelijk" if code == "NL" else (region.name if region else "")
        out.append(f"\n  {code}  {name}  (k = {cijfers['drempel']})")
        rows = []
        for label, tabel in (
            ("leerlingen met geoorloofd verzuim", "verzuim-geoorloofd"),
            ("leerlingen met ongeoorloofd verzuim", "verzuim-ongeoorloofd"),
            ("leerlingen met afstandsonderwijs", "afstandsonderwijs"),
        ):
            rows.append(
                [label, *(_cell(cijfers, tabel, sector=s) for s in sectors), _cell(cijfers, tabel)]
            )
        for soort in SOORTEN:
            rows.append(
                [
                    f"meldingen {soort}",
                    *(_cell(cijfers, "meldingen", soort=soort, sector=s) for s in sectors),
                    _cell(cijfers, "meldingen", soort=soort),
                ]
            )
        out.append(_table(["", *sectors, "totaal"], rows, indent="    "))
        bands = ("0-5", "6-11", "12-15", "16+")
        active = "  ".join(
            f"{b}: {_cell(cijfers, 'vrijstellingen-actief', leeftijdsband=b)}" for b in bands
        )
        out.append(
            f"    vrijstellingen 5 onder a van kracht: {active}  "
            f"totaal: {_cell(cijfers, 'vrijstellingen-actief')}"
        )

    out.append("\nControle tegen de grondwaarheid (regels direct op de gegenereerde data)")
    if check.problems:
        out.append(f"  {len(check.problems)} verschil(len):")
        out.extend(f"    - {p}" for p in check.problems[:20])
    else:
        out.append(
            "  klopt: meldingen per leerling (soort, begin- en einddatum), DUO ontving precies de "
            "bevestigde meldingen, één keer elk, elke gemeente precies die van haar inwoners; "
            f"{check.swv_shown} gepubliceerde SWV-cijfers gelijk aan de telling, "
            f"{check.swv_withheld} onderdrukt."
        )

    out.append("\nLooptijd")
    out.append(_table(["stap", "seconden"], [[k, f"{v:.1f}"] for k, v in timings.items()]))
    return "\n".join(out)


# --------------------------------------------------------------------------- the command


def _all_ready(urls: Mapping[str, str]) -> bool:
    try:
        with httpx.Client(timeout=2.0) as client:
            return all(client.get(u + "/health/ready").status_code == 200 for u in urls.values())
    except httpx.HTTPError:
        return False


def _any_listening(urls: Mapping[str, str]) -> bool:
    with httpx.Client(timeout=1.0) as client:
        for url in urls.values():
            try:
                client.get(url + "/health/live")
                return True
            except httpx.HTTPError:
                continue
    return False


def run(args: argparse.Namespace, ports: Mapping[str, int]) -> int:
    from verzuimhub.cli import up_environment

    data_dir: Path = args.data_dir
    urls = {name: f"http://{args.host}:{ports[name]}" for name in UP_ORDER}
    hub_urls = HubUrls(urls["ingest"], urls["melding"], urls["swv-aggregate"], urls["mock-duo"])
    timings: dict[str, float] = {}
    started = time.perf_counter()

    print(
        f"verzuimhub demo: een schooljaar voor {args.pupils:,} leerlingen genereren …", flush=True
    )
    year = generate_year(args.pupils, args.seed)
    timings["genereren"] = time.perf_counter() - started
    print(
        f"  {len(year.registraties):,} registraties, {len(year.vrijstellingen)} vrijstellingen, "
        f"{year.start:%d-%m-%Y} t/m {year.end:%d-%m-%Y} ({timings['genereren']:.1f} s)",
        flush=True,
    )

    use_running = args.hub == "use-running" or (args.hub == "auto" and _all_ready(urls))
    if use_running:
        if not _all_ready(urls):
            print("verzuimhub demo: no running hub answers on " + ", ".join(urls.values()))
            return 2
        print(f"  de draaiende hub gebruiken (sleutels uit {data_dir / 'keys'})", flush=True)
        return _simulate(year, hub_urls, data_dir, args, timings, started)
    if _any_listening(urls):
        print(
            "verzuimhub demo: a service already listens on one of the ports but the hub is not "
            "ready; stop it or choose other ports (--ingest-port …)"
        )
        return 2

    data_dir.mkdir(parents=True, exist_ok=True)
    envs = up_environment(data_dir, args.host, dict(ports))
    log_dir = data_dir / "logs"
    stopping = {"signal": 0}

    def _on_signal(signum: int, _frame: Any) -> None:
        stopping["signal"] = signum
        raise KeyboardInterrupt

    print(f"  de hub starten (SQLite in {data_dir}, logs in {log_dir}) …", flush=True)
    t = time.perf_counter()
    try:
        with running_hub(envs, urls, log_dir=log_dir, timeout=args.timeout) as hub:
            timings["hub starten"] = time.perf_counter() - t
            signal.signal(signal.SIGTERM, _on_signal)
            code = _simulate(year, hub_urls, data_dir, args, timings, started)
            if args.stop or code:
                print("\nstopping …", flush=True)
                return code
            print(
                "\nDe hub draait door met de demodata (zie `verzuimhub token --help` voor "
                "tokens, API-documentatie op <url>/v1/openapi.json):"
            )
            for name, url in urls.items():
                print(f"  {name:14} {url}")
            print("Press Ctrl-C to stop.", flush=True)
            try:
                while not hub.exited():
                    time.sleep(0.3)
                print(f"verzuimhub demo: {hub.exited()} exited; stopping the hub")
                return 1
            except KeyboardInterrupt:
                print("\nstopping …", flush=True)
                return 0
    except HubNotReady as exc:
        print(f"verzuimhub demo: {exc}")
        return 1
    except KeyboardInterrupt:
        print("\nstopped", flush=True)
        return 130


def _simulate(
    year: DemoYear,
    urls: HubUrls,
    data_dir: Path,
    args: argparse.Namespace,
    timings: dict[str, float],
    started: float,
) -> int:
    try:
        outcome = drive(
            year,
            urls,
            data_dir / "keys",
            ProgressBar(),
            concurrency=args.concurrency,
            timeout=args.timeout,
        )
    except DemoError as exc:
        print(f"verzuimhub demo: {exc}")
        if " 401" in str(exc):
            print("  (the running hub uses other keys: pass its --data-dir)")
        return 1
    timings.update(outcome.timings)
    t = time.perf_counter()
    expected = expected_meldingen(year)
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
    timings["grondwaarheid"] = time.perf_counter() - t
    timings["totaal"] = time.perf_counter() - started
    print(summary(year, outcome, check, timings), flush=True)
    return 0 if not check.problems else 3
