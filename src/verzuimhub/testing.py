"""pytest fixtures shared by every test directory (registered in the root conftest.py).

A real PostgreSQL (see ``verzuimhub_shared.testing.postgres``), fresh databases per run
migrated with the real Alembic trees, development keys, tokens, and in-process clients
through ``httpx.ASGITransport``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib.util
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import date, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from sqlalchemy import text

from verzuimhub.services import DATABASE_SERVICES, service
from verzuimhub_shared import devkeys
from verzuimhub_shared.app import lifespan_context
from verzuimhub_shared.db import make_engine
from verzuimhub_shared.feed import FeedConsumer
from verzuimhub_shared.migrations import upgrade
from verzuimhub_shared.testing.postgres import PostgresServer, ensure_server

T = TypeVar("T")


async def eventually(check: Callable[[], Awaitable[bool] | bool], seconds: float = 10.0) -> None:
    """Wait until ``check()`` holds (polled every 10 ms), or fail after ``seconds``: for a
    test that must see a request arrive, without betting on how long a loaded machine
    takes."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        held = check()
        if held if isinstance(held, bool) else await held:
            return
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"not so within {seconds} s: {getattr(check, '__name__', check)}")
        await asyncio.sleep(0.01)


def bench_module(name: str) -> ModuleType:
    """A script of the checkout's ``bench/`` (``name``, without ``.py``) loaded as a module,
    for tests of its functions: registered in ``sys.modules`` (its dataclasses look
    themselves up there), with ``bench/`` on the path while it loads, as when it runs as a
    script (the scripts import one another)."""
    bench = Path(__file__).resolve().parents[2] / "bench"
    spec = importlib.util.spec_from_file_location(name, bench / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    sys.path.insert(0, str(bench))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(bench))
    return module


def run_sync(coro: Awaitable[T]) -> T:
    """Run a coroutine to completion on a private loop (safe from sync fixtures)."""

    async def _wrap() -> T:
        return await coro

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, _wrap()).result()


@pytest.fixture(scope="session")
def pg() -> Iterator[PostgresServer]:
    server = run_sync(ensure_server())
    try:
        yield server
    finally:
        run_sync(server.drop_databases())
        server.stop()


@pytest.fixture(scope="session")
def db_urls(pg: PostgresServer) -> dict[str, str]:
    """One fresh, migrated PostgreSQL database per service for this run."""
    urls = {}
    for name in DATABASE_SERVICES:
        entry = service(name)
        database = run_sync(pg.create_database(f"vzh_test_{name}"))
        url = pg.url_for(database)
        assert entry.migrations_package
        run_sync(upgrade(entry.migrations_package, url))
        urls[name] = url
    return urls


@pytest.fixture(scope="session")
def key_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("keys")
    devkeys.ensure_keypair(directory)
    return directory


@pytest.fixture(scope="session")
def mint(key_dir: Path) -> Callable[..., str]:
    def _mint(role: str, **kwargs: Any) -> str:
        return devkeys.mint(role, key_dir, **kwargs)

    return _mint


@pytest.fixture(scope="session")
def auth(mint: Callable[..., str]) -> Callable[..., dict[str, str]]:
    """``auth("school", brins=["12AB"])`` → an Authorization header."""

    def _auth(role: str, **kwargs: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {mint(role, **kwargs)}"}

    return _auth


def settings_for(name: str, db_urls: dict[str, str], key_dir: Path, **overrides: Any) -> Any:
    entry = service(name)
    base: dict[str, Any] = {
        "env": "test",
        "jwt_public_key_files": [key_dir / devkeys.PUBLIC_NAME],
        "run_workers": False,
        "log_json": True,
    }
    if name in db_urls:
        base["database_url"] = db_urls[name]
    base.update(overrides)
    return entry.settings(**base)


@asynccontextmanager
async def running_app(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


@pytest.fixture(scope="session")
def app_client(db_urls: dict[str, str], key_dir: Path) -> Callable[..., Any]:
    """``async with app_client("ingest", run_workers=True) as client: …``"""

    def _factory(name: str, **overrides: Any) -> Any:
        app = service(name).create_app(settings_for(name, db_urls, key_dir, **overrides))
        return running_app(app)

    return _factory


async def fetch_rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    """Every row of one query against a service database, on a connection of its own."""
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return [tuple(row) for row in await conn.execute(text(sql))]
    finally:
        await engine.dispose()


def feed_rows_made_during(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> list[bool]:
    """Watches the coroutine function ``owner.name`` (a statement of ingest's transaction)
    and ``feed.rows_of``. The list returned gets an entry each time feed rows are made:
    whether a call of ``owner.name`` was under way then (ADR 0029)."""
    from verzuimhub_shared import feed

    under_way = {"started": False, "ended": False}
    made: list[bool] = []
    watched, rows_of = getattr(owner, name), feed.rows_of

    async def call(*args: Any, **kwargs: Any) -> Any:
        under_way["started"] = True
        try:
            return await watched(*args, **kwargs)
        finally:
            under_way["ended"] = True

    def making(events: Any, **kwargs: Any) -> list[dict[str, Any]]:
        made.append(under_way["started"] and not under_way["ended"])
        return rows_of(events, **kwargs)

    monkeypatch.setattr(owner, name, call)
    monkeypatch.setattr(feed, "rows_of", making)
    return made


async def truncate(url: str) -> None:
    """Empty every table of a service database except Alembic's; reset feed counters."""
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            rows = await conn.execute(
                text(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                    "AND tablename <> 'alembic_version'"
                )
            )
            tables = [r[0] for r in rows]
            if tables:
                await conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables)))
            for table in tables:
                if table.endswith("_counter"):
                    await conn.execute(text(f'INSERT INTO "{table}" VALUES (1, 0)'))
    finally:
        await engine.dispose()


@pytest_asyncio.fixture
async def clean_dbs(db_urls: dict[str, str]) -> dict[str, str]:
    """Every service database emptied before the test."""
    for url in db_urls.values():
        await truncate(url)
    return db_urls


# --- factories ---------------------------------------------------------------------------


def make_bsn(seed: int) -> str:
    """A valid BSN (elfproef) derived from ``seed``; different seeds, different BSNs."""
    base = 10_000_000 + (seed * 7919) % 89_999_999
    for bump in range(100):
        digits = f"{base + bump:08d}"
        total = sum(int(d) * w for d, w in zip(digits, range(9, 1, -1), strict=True))
        last = total % 11
        if last < 10:
            return digits + str(last)
    raise AssertionError("unreachable")


def registratie(**overrides: Any) -> dict[str, Any]:
    """A valid registration payload (camelCase) for the sample region's school 99AA."""
    day = date.today() - timedelta(days=7)
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    payload: dict[str, Any] = {
        "schoolRegistratieId": "reg-1",
        "versie": 1,
        "brin": "99AA",
        "vestiging": "00",
        "pgn": make_bsn(1),
        "geboortedatum": "2015-03-04",
        "woongemeente": "GM9901",
        "sector": "po",
        "datum": day.isoformat(),
        "minuten": 60,
        "eenheid": "klokuur",
        "aantalEenheden": 1,
        "alleLessenGemist": False,
        "categorie": "spijbelen",
    }
    payload.update(overrides)
    return payload


BEVESTIGING = {
    "ondernomenActie": "Gesprek met ouders op 3 november; afspraken gemaakt.",
    "gemeentelijkeActie": {"gewenst": True, "prioriteit": "normaal"},
    "contactpersoon": {
        "naam": "J. de Vries",
        "functie": "verzuimcoördinator",
        "telefoon": "030-1234567",
        "email": "verzuim@school.example",
    },
}


def truancy_week(
    pgn: str, *, minutes: int = 300, days: int = 4, prefix: str = "t"
) -> list[dict[str, Any]]:
    """``days`` school days of unauthorised absence, starting the Monday two weeks ago."""
    today = date.today()
    monday = today - timedelta(days=today.weekday() + 14)
    return [
        registratie(
            schoolRegistratieId=f"{prefix}-{i}",
            pgn=pgn,
            minuten=minutes,
            datum=(monday + timedelta(days=i)).isoformat(),
            categorie="spijbelen",
            alleLessenGemist=True,
            notitie="zat in het winkelcentrum",
        )
        for i in range(days)
    ]


#: Minutes per lesdag for swv-aggregate's tiers in tests (every sector alike).
SWV_MINUTES = dict.fromkeys(("po", "sbo", "so", "vo", "vso", "mbo"), 300)


def ingest_feed_consumer(
    client: Any,
    *,
    token: str | Callable[[], str],
    cursors: Any,
    transaction: Callable[[], Any],
    handler: Callable[..., Any],
    **options: Any,
) -> FeedConsumer:
    """A ``FeedConsumer`` of ingest's feed through ``client`` (an ``app_client("ingest")``),
    named and addressed as the services' workers name and address theirs; its cursor in
    ``cursors``. ``options``: the consumer's other keyword arguments (``batch_size``, …)."""
    return FeedConsumer(
        name="ingest",
        url="/v1/feed",
        token=token if callable(token) else lambda: token,
        cursors=cursors,
        transaction=transaction,
        handler=handler,
        client=client,
        **options,
    )


async def seed_swv_aggregate(
    app_client: Callable[..., Any],
    auth: Callable[..., dict[str, str]],
    mint: Callable[..., str],
    db_url: str,
    items: list[dict[str, Any]],
    *,
    brins: list[str],
    exemption_from: date,
    batch_size: int = 100,
) -> Any:
    """Post registrations and one 5-onder-a vrijstelling to a real ingest, and apply ingest's
    feed to swv-aggregate's database at ``db_url`` until idle, as its consumer does. Returns
    the ``AggregateContext`` used (for applying melding events the same way)."""
    from verzuimhub_shared.db import Database
    from verzuimhub_shared.refdata import sample_refdata
    from verzuimhub_swv_aggregate.models import CURSORS
    from verzuimhub_swv_aggregate.service import AggregateContext, apply_ingest_events

    ctx = AggregateContext(refdata=sample_refdata(), minutes_per_lesdag=SWV_MINUTES)
    token = mint("consumer", consumer="swv-aggregate")

    async def handler(session: Any, events: list[dict[str, Any]]) -> None:
        await apply_ingest_events(session, events, ctx)

    db = Database(db_url)
    try:
        async with app_client("ingest") as ingest:
            posted = await ingest.post(
                "/v1/registratie-batches",
                json={"registraties": items},
                headers=auth("school", brins=brins),
            )
            assert posted.json()["aangemaakt"] == len(items), posted.text
            exemption = {
                "soort": "5a",
                "pgn": make_bsn(9),
                "geboortedatum": "2016-02-01",
                "begindatum": exemption_from.isoformat(),
            }
            created = await ingest.post(
                "/v1/vrijstellingen", json=exemption, headers=auth("gemeente", gemeente="GM9901")
            )
            assert created.status_code == 201, created.text
            consumer = ingest_feed_consumer(
                ingest,
                token=token,
                cursors=CURSORS,
                transaction=db.transaction,
                handler=handler,
                batch_size=batch_size,
            )
            while await consumer.step():
                pass
    finally:
        await db.dispose()
    return ctx
