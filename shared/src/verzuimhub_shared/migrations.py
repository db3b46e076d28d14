"""Alembic wiring: one migration tree per service, run programmatically or by ``alembic``.

Each service's ``migrations/env.py`` calls :func:`run_env` with its metadata. Upgrades run
on a connection handed over through ``config.attributes`` so they work on an async engine.
"""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import command, context
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, MetaData
from sqlalchemy.ext.asyncio import AsyncEngine

from verzuimhub_shared.db import make_engine


def alembic_config(package: str, url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", f"{package}:migrations")
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.set_main_option("file_template", "%%(year)d_%%(month).2d_%%(day).2d_%%(slug)s")
    return cfg


def head_revisions(package: str) -> set[str]:
    script = ScriptDirectory.from_config(alembic_config(package, "sqlite://"))
    return set(script.get_heads())


async def upgrade(package: str, url: str, engine: AsyncEngine | None = None) -> None:
    own = engine is None
    engine = engine or make_engine(url)
    cfg = alembic_config(package, url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade_sync, cfg)
    finally:
        if own:
            await engine.dispose()


def _upgrade_sync(conn: Connection, cfg: Config) -> None:
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, "head")


def upgrade_blocking(package: str, url: str) -> None:
    asyncio.run(upgrade(package, url))


async def current_revisions(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return await conn.run_sync(lambda c: set(MigrationContext.configure(c).get_current_heads()))


async def at_head(package: str, engine: AsyncEngine) -> bool:
    return await current_revisions(engine) == head_revisions(package)


def run_env(target_metadata: MetaData) -> None:
    """Body of every service's env.py."""
    config = context.config
    connection: Connection | None = config.attributes.get("connection")
    opts: dict[str, Any] = {
        "target_metadata": target_metadata,
        "compare_type": True,
        "render_as_batch": True,
    }
    if connection is not None:
        context.configure(connection=connection, **opts)
        with context.begin_transaction():
            context.run_migrations()
        return
    if context.is_offline_mode():
        context.configure(url=config.get_main_option("sqlalchemy.url"), **opts)
        with context.begin_transaction():
            context.run_migrations()
        return

    async def _online() -> None:
        engine = make_engine(str(config.get_main_option("sqlalchemy.url")))
        async with engine.connect() as conn:
            await conn.run_sync(_with_connection, opts)
        await engine.dispose()

    asyncio.run(_online())


def _with_connection(connection: Connection, opts: dict[str, Any]) -> None:
    context.configure(connection=connection, **opts)
    with context.begin_transaction():
        context.run_migrations()


def set_collation(columns: dict[str, dict[str, int]], collation: str | None) -> None:
    """For a migration: give string columns (``{table: {column: length}}``) a collation
    on PostgreSQL, or the database's default with ``None``: one ``ALTER TABLE`` per table,
    in the given order. Between two tables a key and a foreign key referring to it differ
    in collation for a moment; PostgreSQL accepts that for deterministic collations (equal
    means byte-equal in both) and checks the key again. SQLite compares bytewise already:
    nothing to do there."""
    from alembic import op

    if op.get_bind().dialect.name != "postgresql":
        return
    clause = f' COLLATE "{collation}"' if collation else ' COLLATE "default"'
    for table, cols in columns.items():
        parts = [f'ALTER COLUMN "{c}" TYPE varchar({n}){clause}' for c, n in cols.items()]
        op.execute(f'ALTER TABLE "{table}" ' + ", ".join(parts))


#: A sealed body as text (``<kid>.<base64>``) made binary (``<kid>.`` and the raw bytes),
#: and back; an unsealed one is its UTF-8 (the URL-safe base64 of values sealed before
#: 2026-11-27 is read as the standard one).
_BODY_TO_BINARY = (
    "CASE WHEN sealed THEN convert_to(split_part(body, '.', 1) || '.', 'UTF8')"
    " || decode(translate(substr(body, strpos(body, '.') + 1), '-_', '+/'), 'base64')"
    " ELSE convert_to(body, 'UTF8') END"
)
_BODY_TO_TEXT = (
    "CASE WHEN sealed THEN convert_from(substr(body, 1, position('.'::bytea IN body)), 'UTF8')"
    " || translate(encode(substr(body, position('.'::bytea IN body) + 1), 'base64'), E'\\n', '')"
    " ELSE convert_from(body, 'UTF8') END"
)


def feed_body_binary(table: str, binary: bool = True) -> None:
    """For a migration: a feed table's ``body`` becomes binary (``bytea``; a BLOB on
    SQLite), each row converted (ADR 0031); with ``binary=False``, text again."""
    import base64

    import sqlalchemy as sa
    from alembic import op

    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        kind, using = ("bytea", _BODY_TO_BINARY) if binary else ("text", _BODY_TO_TEXT)
        op.execute(f'ALTER TABLE "{table}" ALTER COLUMN body TYPE {kind} USING {using}')
        return

    def to_binary(sealed: bool, body: str) -> bytes:
        if not sealed:
            return body.encode()
        kid, _, blob = body.partition(".")
        return kid.encode() + b"." + base64.b64decode(blob.translate(_STANDARD))

    def to_text(sealed: bool, body: bytes) -> str:
        if not sealed:
            return body.decode()
        kid, _, raw = body.partition(b".")
        return f"{kid.decode()}.{base64.b64encode(raw).decode()}"

    convert: Any = to_binary if binary else to_text
    rows = bind.execute(sa.text(f'SELECT position, sealed, body FROM "{table}"')).all()
    update = sa.text(f'UPDATE "{table}" SET body = :body WHERE position = :position')
    if rows:  # one executemany
        bind.execute(update, [{"body": convert(bool(s), b), "position": p} for p, s, b in rows])
    with op.batch_alter_table(table) as batch:
        new, old = (sa.LargeBinary(), sa.Text()) if binary else (sa.Text(), sa.LargeBinary())
        batch.alter_column("body", type_=new, existing_type=old, existing_nullable=False)


_STANDARD = str.maketrans("-_", "+/")
