"""Each service's models and its Alembic tree agree, on PostgreSQL and on SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from verzuimhub.services import DATABASE_SERVICES, service
from verzuimhub_shared.db import make_engine
from verzuimhub_shared.migrations import at_head, upgrade


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
