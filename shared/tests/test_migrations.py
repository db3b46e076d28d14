"""Each service's models and its Alembic tree agree, on PostgreSQL and on SQLite."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from verzuimhub.services import DATABASE_SERVICES, service
from verzuimhub.testing import fetch_rows
from verzuimhub_shared.db import make_engine
from verzuimhub_shared.migrations import at_head, upgrade
from verzuimhub_shared.testing.postgres import PostgresServer


def _metadata(name: str):  # type: ignore[no-untyped-def]
    import importlib

    package = service(name).migrations_package
    return importlib.import_module(f"{package}.models").Base.metadata


@pytest.mark.parametrize("name", DATABASE_SERVICES)
async def test_models_match_migrations_on_postgres(db_urls: dict[str, str], name: str) -> None:
    engine = make_engine(db_urls[name])
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda c: compare_metadata(MigrationContext.configure(c), _metadata(name))
            )
        assert diff == [], f"{name}: models and migrations differ: {diff}"
        assert await at_head(service(name).migrations_package or "", engine)
    finally:
        await engine.dispose()


@pytest.mark.parametrize("name", DATABASE_SERVICES)
async def test_migrations_run_on_sqlite(tmp_path: Path, name: str) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / name}.db"
    package = service(name).migrations_package or ""
    await upgrade(package, url)
    await upgrade(package, url)  # idempotent: a second run is a no-op
    engine = make_engine(url)
    try:
        assert await at_head(package, engine)
    finally:
        await engine.dispose()


@pytest.mark.parametrize("name", DATABASE_SERVICES)
async def test_every_string_column_compares_bytewise(db_urls: dict[str, str], name: str) -> None:
    """Alembic's comparison does not look at collations: this does, both ways. Every string
    column of the models is an identifier or a code (``db.code``), and the migrated database
    gives each of them ``COLLATE "C"`` (ADR 0012)."""
    from sqlalchemy import String, Text
    from sqlalchemy.dialects import postgresql

    dialect = postgresql.dialect()
    models = {
        (table.name, column.name): getattr(column.type.dialect_impl(dialect), "collation", None)
        for table in _metadata(name).sorted_tables
        for column in table.columns
        if isinstance(column.type, String) and not isinstance(column.type, Text)
    }
    assert models
    assert {k: v for k, v in models.items() if v != "C"} == {}
    assert await _collations(db_urls[name]) == models


async def _collations(url: str) -> dict[tuple[str, str], str | None]:
    """(table, column) → collation of every varchar column of a migrated database."""
    rows = await fetch_rows(
        url,
        "SELECT table_name, column_name, collation_name FROM information_schema.columns"
        " WHERE table_schema = 'public' AND data_type = 'character varying'"
        " AND table_name <> 'alembic_version'",
    )
    return {(table, column): collation for table, column, collation in rows}


async def test_bytewise_migration_goes_down_and_up_again(pg: PostgresServer) -> None:
    """Melding's keys carry foreign keys (up to revision 0005; since 0006 triggers check
    the pupil references, ADR 0021): the collation changes with them, both ways, on a
    database that holds rows, and the references go from triggers to keys and back."""
    package = service("melding").migrations_package or ""
    url = pg.url_for(await pg.create_database("vzh_test_collation"))
    await upgrade(package, url)
    mark = "INSERT INTO te_evalueren VALUES ('p1', '2026-01-05', now())"
    await _melding_at(url, "0004", PUPIL, mark, down=True)  # before the collation (0005)
    assert set((await _collations(url)).values()) == {None}
    assert await _pupil_references(url) == ({"ledger", "meldingen", "te_evalueren"}, set())
    await upgrade(package, url)
    assert set((await _collations(url)).values()) == {"C"}
    assert await _pupil_references(url) == (
        {"meldingen"},
        {"ledger", "leerlingen", "te_evalueren"},
    )


async def _pupil_references(url: str) -> tuple[set[str], set[str]]:
    """The tables with a foreign key to ``leerlingen``, and those with one of revision
    0006's triggers."""
    keys = await fetch_rows(
        url,
        "SELECT conrelid::regclass::text FROM pg_constraint"
        " WHERE contype = 'f' AND confrelid = 'leerlingen'::regclass",
    )
    triggers = await fetch_rows(
        url,
        "SELECT tgrelid::regclass::text FROM pg_trigger"
        " WHERE tgname ~ '_(pupil_exists_on_insert|pupil_exists_on_update|key_fixed"
        "|unreferenced_on_delete)$'",
    )
    return {row[0] for row in keys}, {row[0] for row in triggers}


#: A pupil, as melding's database holds one from revision 0004 on.
PUPIL = (
    "INSERT INTO leerlingen VALUES ('p1', 'h', 's', '12AB', '00', '2012-01-01', 'GM0363',"
    " 'po', NULL, CURRENT_TIMESTAMP)"
)


async def _melding_at(url: str, revision: str, *statements: str, down: bool = False) -> None:
    """Run ``statements`` on melding's database, then migrate it up (or down) to
    ``revision``, in one transaction."""
    from alembic import command
    from sqlalchemy import text

    from verzuimhub_shared.migrations import alembic_config

    migrate = command.downgrade if down else command.upgrade
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            for statement in statements:
                await conn.execute(text(statement))

            def run(c: Any) -> None:
                cfg = alembic_config(service("melding").migrations_package or "", url)
                cfg.attributes["connection"] = c
                migrate(cfg, revision)

            await conn.run_sync(run)
    finally:
        await engine.dispose()


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
async def test_ledger_positions_migrate_both_ways(
    pg: PostgresServer, tmp_path: Path, dialect: str
) -> None:
    """Melding's revision 0007 (ADR 0024): rows written before it carry position 0 (they
    were marked when written, and are not marked again); going down, rows past the stand
    are marked as the consumer marked them before, so no change is left unevaluated."""
    from sqlalchemy import text

    from verzuimhub_melding import repository as repo
    from verzuimhub_shared.db import Database

    if dialect == "postgresql":
        url = pg.url_for(await pg.create_database("vzh_test_positions"))
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'melding.db'}"
    row = "'{r}', 'p1', 1, '{day}', 60, 'klokuur', 1.0, false, 'ongeoorloofd', NULL, false"
    await _melding_at(url, "0006")
    early = f"INSERT INTO ledger VALUES ({row.format(r='r1', day='2026-01-05')})"
    await _melding_at(url, "head", PUPIL, early)
    db = Database(url)
    try:
        async with db.transaction() as session:
            await session.execute(
                text("INSERT INTO feed_cursors VALUES ('ingest', 9, 9, '2026-01-05')")
            )
            assert await repo.mark_ledger_changes(session, "ingest", 100)
            assert (await session.execute(text("SELECT positie FROM ledger"))).scalar_one() == 0
            assert await repo.waiting_count(session) == 0  # marked when it was written
            late = row.format(r="r2", day="2026-01-07") + ", 12"  # a batch after the stand
            await session.execute(text(f"INSERT INTO ledger VALUES ({late})"))
    finally:
        await db.dispose()
    await _melding_at(url, "0006", down=True)
    marks = await fetch_rows(url, "SELECT leerling_id, vanaf FROM te_evalueren")
    assert [(m[0], str(m[1])) for m in marks] == [("p1", "2026-01-07")]


async def test_the_pupil_check_in_one_statement_migrates_both_ways(pg: PostgresServer) -> None:
    """Melding's revision 0008 rewrites the referring side's check (ADR 0021, addendum);
    going down gives back revision 0006's function as it was."""
    url = pg.url_for(await pg.create_database("vzh_test_pupil_check"))
    source = "SELECT prosrc FROM pg_proc WHERE proname = 'pupil_references_exist'"
    await _melding_at(url, "0007")
    [(before,)] = await fetch_rows(url, source)
    await upgrade(service("melding").migrations_package or "", url)
    [(after,)] = await fetch_rows(url, source)
    await _melding_at(url, "0007", down=True)
    [(again,)] = await fetch_rows(url, source)
    assert "count(DISTINCT leerling_id)" in before
    assert "LEFT JOIN LATERAL" in after
    assert "count(DISTINCT" not in after
    assert again == before


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
async def test_feed_bodies_become_binary_and_text_again(
    pg: PostgresServer, tmp_path: Path, dialect: str
) -> None:
    """Revision 0009 of melding (0006 of ingest, the same helper; ADR 0031): each stored
    body is converted: a sealed one, in either base64 alphabet it was stored in, opens
    to the same plaintext, and an unsealed one is served as it was. Going down gives the
    text back (a URL-safe one in the standard alphabet)."""
    import base64

    from verzuimhub_melding.models import FEED
    from verzuimhub_shared import feed
    from verzuimhub_shared.crypto import Sealer
    from verzuimhub_shared.db import Database

    if dialect == "postgresql":
        url = pg.url_for(await pg.create_database("vzh_test_feed_body"))
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'melding.db'}"
    sealer = Sealer({"k1": "one"}, "k1")
    # (no ":" before a value: text() would take it for a parameter)
    envelopes = [f'{{"position": {n}, "data": {{"n": {n}, "naam": "Zoë"}}}}' for n in (1, 2, 3)]

    def urlsafe(envelope: str) -> str:
        """Sealed as before 2026-11-27: the URL-safe alphabet."""
        kid, _, blob = sealer.seal(envelope, context="gemeente").partition(".")
        return f"{kid}." + base64.urlsafe_b64encode(base64.b64decode(blob)).decode()

    own = urlsafe(envelopes[1])
    while "-" not in own and "_" not in own:  # one the standard alphabet cannot read
        own = urlsafe(envelopes[1])
    standard = sealer.seal(envelopes[2], context="gemeente")
    rows = [(envelopes[0], "false"), (own, "true"), (standard, "true")]
    inserts = [
        f"INSERT INTO feed_events VALUES ({n}, 'gemeente', 'e{n}', 't', NULL,"
        f" CURRENT_TIMESTAMP, {sealed}, '{body}')"
        for n, (body, sealed) in enumerate(rows, 1)
    ]
    await _melding_at(url, "0008")
    await _melding_at(url, "0009", *inserts)
    db = Database(url)
    try:
        async with db.transaction() as session:
            served = await feed.read_batch(session, FEED, "gemeente", 0, 10, sealer)
    finally:
        await db.dispose()
    assert served == ("[" + ",\n".join(envelopes) + "]").encode()
    await _melding_at(url, "0008", down=True)
    stored = await fetch_rows(url, "SELECT sealed, body FROM feed_events ORDER BY position")
    assert stored[0][1] == envelopes[0]
    assert stored[2][1] == standard
    for (sealed, body), envelope in zip(stored[1:], envelopes[1:], strict=True):
        assert sealed
        assert body.startswith("k1.")
        assert "-" not in body
        assert "_" not in body
        assert sealer.open(body, context="gemeente") == envelope
