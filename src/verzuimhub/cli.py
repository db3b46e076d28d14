"""The ``verzuimhub`` command: up, demo, serve, migrate, token, settings, bench."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

from verzuimhub.hub import UP_ORDER
from verzuimhub.services import DATABASE_SERVICES, service, services
from verzuimhub_shared import devkeys

DEFAULT_DATA_DIR = Path(".verzuimhub")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bench"]:  # every argument after it is the benchmark's own, --help too
        raise SystemExit(run_bench(argv[1:]))
    parser = _parser()
    args = parser.parse_args(argv)
    code = args.func(args)
    raise SystemExit(code or 0)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="verzuimhub", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="start the whole hub on the embedded default (SQLite)")
    up.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    up.add_argument("--host", default="127.0.0.1")
    for name in UP_ORDER:
        up.add_argument(
            f"--{name}-port", type=int, default=service(name).default_port, dest=_port_dest(name)
        )
    up.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for ready")
    up.set_defaults(func=cmd_up)

    demo = sub.add_parser(
        "demo", help="simulate a school year of a fictional region through the real APIs"
    )
    demo.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    demo.add_argument("--pupils", type=int, default=20_000, help="number of pupils")
    demo.add_argument("--seed", type=int, default=2026, help="same seed, same year")
    hub_mode = demo.add_mutually_exclusive_group()
    hub_mode.add_argument(
        "--start-hub",
        dest="hub",
        action="store_const",
        const="start-hub",
        help="start the hub (embedded default); refuse if the ports are taken",
    )
    hub_mode.add_argument(
        "--use-running",
        dest="hub",
        action="store_const",
        const="use-running",
        help="use the hub already running on the ports (its --data-dir holds the keys)",
    )
    demo.set_defaults(hub="auto")
    demo.add_argument(
        "--stop", action="store_true", help="stop the hub it started after the summary"
    )
    demo.add_argument("--concurrency", type=int, default=4, help="parallel requests")
    demo.add_argument("--host", default="127.0.0.1")
    for name in UP_ORDER:
        demo.add_argument(
            f"--{name}-port", type=int, default=service(name).default_port, dest=_port_dest(name)
        )
    demo.add_argument("--timeout", type=float, default=900.0, help="seconds to wait per step")
    demo.set_defaults(func=cmd_demo)

    serve = sub.add_parser("serve", help="run one service the production way")
    serve.add_argument("service", choices=list(services()))
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    serve.set_defaults(func=cmd_serve)

    migrate = sub.add_parser("migrate", help="upgrade a service's database to head")
    migrate.add_argument("service", choices=[*DATABASE_SERVICES, "all"])
    migrate.set_defaults(func=cmd_migrate)

    token = sub.add_parser("token", help="mint a development JWT")
    token.add_argument("--role", required=True, choices=list(devkeys.ROLE_SCOPES))
    token.add_argument("--brin", action="append", default=[])
    token.add_argument("--gemeente")
    token.add_argument("--swv")
    token.add_argument("--consumer", choices=["melding", "swv-aggregate"])
    token.add_argument("--ttl", type=int, default=3600, help="seconds")
    token.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    token.set_defaults(func=cmd_token)

    refdata = sub.add_parser("refdata", help="load and check reference data files")
    refdata_sub = refdata.add_subparsers(dest="refdata_command", required=True)
    load = refdata_sub.add_parser("load", help="validate an official file and install it")
    load.add_argument("kind", choices=sorted(REFDATA_KINDS))
    load.add_argument("file", type=Path)
    load.add_argument(
        "--dir",
        type=Path,
        default=DEFAULT_DATA_DIR / "refdata",
        help="reference data directory the services read (…_REFDATA_DIR)",
    )
    load.set_defaults(func=cmd_refdata_load)
    check = refdata_sub.add_parser("check", help="load a reference data directory and summarise")
    check.add_argument("--dir", type=Path, default=DEFAULT_DATA_DIR / "refdata")
    check.set_defaults(func=cmd_refdata_check)

    settings = sub.add_parser("settings", help="print every setting of every service")
    settings.add_argument("--markdown", action="store_true")
    settings.set_defaults(func=cmd_settings)

    # Listed here for the overview only: main() hands every argument after ``bench`` to
    # the benchmark before this parser runs.
    sub.add_parser(
        "bench",
        help="performance figures against PostgreSQL (bench/hub_bench.py of the source tree)",
    )
    return parser


def run_bench(bench_args: list[str], script: Path | None = None) -> int:
    """The benchmark lives beside the code it measures, not in the installed package: it
    runs from a source checkout (``make bench`` is the same)."""
    import subprocess

    script = script or BENCH_SCRIPT
    if not script.is_file():
        print(
            f"verzuimhub bench: no {script} here; the benchmark runs from a source checkout "
            "of the hub (make bench)",
            file=sys.stderr,
        )
        return 2
    return subprocess.call([sys.executable, str(script), *bench_args])


#: src/verzuimhub/cli.py → the checkout's bench/hub_bench.py
BENCH_SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "hub_bench.py"


def _port_dest(name: str) -> str:
    return name.replace("-", "_") + "_port"


# --- demo ------------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace) -> int:
    from verzuimhub import demo

    if args.pupils < 1:
        print("verzuimhub demo: --pupils must be at least 1", file=sys.stderr)
        return 2
    ports = {name: getattr(args, _port_dest(name)) for name in UP_ORDER}
    return demo.run(args, ports)


# --- token -----------------------------------------------------------------------------


def cmd_token(args: argparse.Namespace) -> int:
    try:
        print(
            devkeys.mint(
                args.role,
                args.data_dir / "keys",
                brins=args.brin or None,
                gemeente=args.gemeente,
                swv=args.swv,
                consumer=args.consumer,
                ttl=args.ttl,
            )
        )
    except ValueError as exc:
        print(f"verzuimhub token: {exc}", file=sys.stderr)
        return 2
    return 0


# --- refdata ---------------------------------------------------------------------------

#: kind → (file name in the refdata directory, parser that validates it)
REFDATA_KINDS = {
    "gemeenten": "gemeenten.csv",
    "swv-gemeenten": "swv_gemeenten.csv",
    "swv-postcodes": "swv_postcodes.csv",
    "vestigingen": "vestigingen.csv",
    "schoolvakanties": "schoolvakanties",
}


def cmd_refdata_load(args: argparse.Namespace) -> int:
    from verzuimhub_shared import refdata
    from verzuimhub_shared.calendar import load_holidays
    from verzuimhub_shared.refdata._csv import decode

    raw = args.file.read_bytes()
    target_dir: Path = args.dir
    try:
        if args.kind == "schoolvakanties":
            years = load_holidays(raw)
            target_dir = target_dir / "schoolvakanties"
            summary = (
                f"{len(years)} schooljaar/jaren, {sum(len(y.vacations) for y in years)} vakanties"
            )
            name = f"schoolvakanties-{years[0].first_year}-{years[0].first_year + 1}.json"
        else:
            parser: Any = {
                "gemeenten": refdata.parse_gemeenten,
                "swv-gemeenten": refdata.parse_swv_gemeenten,
                "swv-postcodes": refdata.parse_swv_postcodes,
                "vestigingen": refdata.parse_schools,
            }[args.kind]
            records = parser(decode(raw))
            summary = f"{len(records)} regels"
            name = REFDATA_KINDS[args.kind]
    except (ValueError, KeyError) as exc:
        print(
            f"verzuimhub refdata: {args.file} is not a valid {args.kind} file:\n{exc}",
            file=sys.stderr,
        )
        return 2
    target_dir.mkdir(parents=True, exist_ok=True)
    tmp = target_dir / (name + ".tmp")
    tmp.write_bytes(raw)
    tmp.replace(target_dir / name)
    print(f"{args.kind}: {summary} → {target_dir / name}")
    return 0


def cmd_refdata_check(args: argparse.Namespace) -> int:
    from verzuimhub_shared.refdata import RefDataError, load_refdata

    try:
        ref = load_refdata(args.dir)
    except RefDataError as exc:
        print(f"verzuimhub refdata: {exc}", file=sys.stderr)
        return 2
    print(
        f"{args.dir}: {len(ref.gemeenten)} gemeenten, {len(ref.swvs)} samenwerkingsverbanden, "
        f"{len(ref.schools)} vestigingen — consistent"
    )
    return 0


# --- serve / migrate -------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    entry = service(args.service)
    settings = entry.settings()
    app = entry.create_app(settings)
    _settle_garbage_collector()
    uvicorn.run(
        app,
        host=args.host or settings.host,
        port=args.port or settings.port,
        log_config=None,
        access_log=False,
        timeout_keep_alive=5,
        timeout_graceful_shutdown=10,
    )
    return 0


#: Young collections wait for this many more container objects allocated than freed: more
#: than a batch of 5,000 registrations or events keeps alive at its peak, so none runs
#: in the middle of one (ADR 0025).
YOUNG_GENERATION = 200_000


def _settle_garbage_collector() -> None:
    """What was built to start (modules, models, schemas: long-lived) is moved out of the
    collector's way, and young collections run less often: a batch of thousands of events
    makes dicts by the ten thousand, and the collector spent ~15 % of ingest's CPU on a
    batch walking objects that live as long as the process. The objects of a batch are
    freed by their reference counts once it is written; a young collection that runs
    while they are alive walks them all for nothing (~10 ms each in melding's replay,
    ~16 of them: ~1.5 µs of CPU per event)."""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_GENERATION, 20, 20)


def cmd_migrate(args: argparse.Namespace) -> int:
    from verzuimhub_shared.migrations import upgrade_blocking

    names = DATABASE_SERVICES if args.service == "all" else (args.service,)
    for name in names:
        entry = service(name)
        assert entry.migrations_package
        url = entry.settings().database_url
        upgrade_blocking(entry.migrations_package, url)
        print(f"{name}: migrated to head")
    return 0


# --- settings --------------------------------------------------------------------------


def settings_rows() -> list[tuple[str, str, str]]:
    rows = []
    for name, entry in services().items():
        cls: Any = entry.settings_cls
        for field_name, field in cls.model_fields.items():
            default = field.get_default(call_default_factory=True)
            if isinstance(default, list):
                default = ",".join(map(str, default)) or "(none)"
            shown = "(none)" if default is None else str(default)
            rows.append(
                (f"{entry.env_prefix}{field_name.upper()}", shown, field.description or name)
            )
    return rows


def cmd_settings(args: argparse.Namespace) -> int:
    rows = settings_rows()
    if args.markdown:
        print(settings_markdown(rows))
    else:
        for env, default, doc in rows:
            print(f"{env:38} {default:44} {doc}")
    return 0


def settings_markdown(rows: list[tuple[str, str, str]] | None = None) -> str:
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    for env, default, doc in rows or settings_rows():
        lines.append(f"| `{env}` | `{default}` | {doc} |")
    return "\n".join(lines)


# --- up --------------------------------------------------------------------------------


def up_environment(data_dir: Path, host: str, ports: dict[str, int]) -> dict[str, dict[str, str]]:
    """The settings each service process gets under ``verzuimhub up``."""
    data_dir = data_dir.resolve()
    key_dir = data_dir / "keys"
    _, public = devkeys.ensure_keypair(key_dir)
    token_dir = data_dir / "tokens"
    token_dir.mkdir(parents=True, exist_ok=True)
    url = {name: f"http://{host}:{port}" for name, port in ports.items()}
    envs: dict[str, dict[str, str]] = {}
    for name in UP_ORDER:
        entry = service(name)
        p = entry.env_prefix
        env = {
            f"{p}ENV": "development",
            f"{p}HOST": host,
            f"{p}PORT": str(ports[name]),
            f"{p}JWT_PUBLIC_KEY_FILES": json.dumps([str(public)]),
            f"{p}LOG_JSON": "true",
        }
        if name in DATABASE_SERVICES:
            env[f"{p}DATABASE_URL"] = f"sqlite+aiosqlite:///{data_dir / name}.db"
        envs[name] = env
    envs["ingest"]["VZH_INGEST_PSEUDONYM_SECRET"] = devkeys.ensure_secret(key_dir, "pseudonym")
    envs["ingest"]["VZH_INGEST_ENCRYPTION_KEYS"] = "dev1=" + devkeys.ensure_secret(
        key_dir, "encryption"
    )
    for consumer, prefix in (("melding", "VZH_MELDING_"), ("swv-aggregate", "VZH_SWV_")):
        token_file = token_dir / f"{consumer}-consumer.jwt"
        token_file.write_text(
            devkeys.mint("consumer", key_dir, consumer=consumer, ttl=30 * 24 * 3600)
        )
        envs[consumer][f"{prefix}FEED_TOKEN_FILE"] = str(token_file)
        envs[consumer][f"{prefix}INGEST_URL"] = url["ingest"]
    envs["melding"]["VZH_MELDING_DUO_URL"] = url["mock-duo"]
    refdata_dir = data_dir / "refdata"
    if (refdata_dir / REFDATA_KINDS["gemeenten"]).is_file():  # loaded with `refdata load`
        for name in DATABASE_SERVICES:
            envs[name][f"{service(name).env_prefix}REFDATA_DIR"] = str(refdata_dir)
    envs["swv-aggregate"]["VZH_SWV_MELDING_URL"] = url["melding"]
    return envs


def cmd_up(args: argparse.Namespace) -> int:
    from verzuimhub.hub import HubNotReady, running_hub

    data_dir: Path = args.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    log_dir = data_dir / "logs"
    ports = {name: getattr(args, _port_dest(name)) for name in UP_ORDER}
    envs = up_environment(data_dir, args.host, ports)
    urls = {name: f"http://{args.host}:{ports[name]}" for name in UP_ORDER}

    stopping = {"signal": 0}

    def _on_signal(signum: int, _frame: Any) -> None:
        stopping["signal"] = signum

    def _migrated(name: str) -> None:
        print(f"  {name:14} database migrated ({data_dir / name}.db)", flush=True)
        signal.signal(signal.SIGINT, _on_signal)
        signal.signal(signal.SIGTERM, _on_signal)

    try:
        with running_hub(
            envs, urls, log_dir=log_dir, timeout=args.timeout, on_migrated=_migrated
        ) as hub:
            _print_welcome(data_dir, urls, log_dir)
            try:
                while not stopping["signal"]:
                    exited = hub.exited()
                    if exited:
                        code = hub.procs[exited].returncode
                        print(f"verzuimhub up: {exited} exited ({code}); stopping the hub")
                        stopping["signal"] = -1
                    time.sleep(0.3)
            finally:
                print("\nstopping …", flush=True)
        print("stopped; data kept in", data_dir, flush=True)
    except HubNotReady as exc:
        print(f"verzuimhub up: {exc.name} did not become ready; see {log_dir / exc.name}.log")
        return 1
    return 0 if stopping["signal"] != -1 else 1


def _sample_ids() -> tuple[str, str, str]:
    try:
        from verzuimhub_shared.refdata import sample_refdata

        ref = sample_refdata()
        school = next(iter(ref.schools.values()))
        swv = school.swv_po or school.swv_vo or "PO-99-01"
        return school.brin, school.gemeente, swv
    except Exception:
        return "12AB", "GM0363", "PO-22-02"


def _print_welcome(data_dir: Path, urls: dict[str, str], log_dir: Path) -> None:
    key_dir = data_dir / "keys"
    brin, gemeente, swv = _sample_ids()
    tokens = {
        f"school {brin}": devkeys.mint("school", key_dir, brins=[brin], ttl=8 * 3600),
        f"gemeente {gemeente}": devkeys.mint("gemeente", key_dir, gemeente=gemeente, ttl=8 * 3600),
        f"swv {swv}": devkeys.mint("swv", key_dir, swv=swv, ttl=8 * 3600),
        "admin": devkeys.mint("admin", key_dir, ttl=8 * 3600),
    }
    print("\nVerzuimhub is up (embedded default: SQLite, mock DUO). Every /health/ready is 200.\n")
    for name, url in urls.items():
        print(f"  {name:14} {url}   (API docs: {url}/v1/openapi.json)")
    print(f"\n  SWV dashboard: {urls['swv-aggregate']}/dashboard  (development sign-in offered)")
    print(f"\n  logs: {log_dir}/<service>.log     data: {data_dir}")
    print("\nDevelopment tokens (8 hours; more with `verzuimhub token --help`):")
    for who, token in tokens.items():
        print(f"\n  {who}:\n  {token}")
    print("\nReady. Press Ctrl-C to stop.", flush=True)
