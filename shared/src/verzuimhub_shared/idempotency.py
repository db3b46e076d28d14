"""Idempotency-Key (IETF draft) for mutating requests, kept in the service's own database.

The key row is inserted in the request's own transaction, before the work, and completed
with the response at the end of it: if the work rolls back, so does the key. Outcomes:

- first use: the request runs; its status and body are stored with the payload's hash;
- replay with the same payload: the stored response, byte for byte, and nothing runs again;
- the same key with another payload: 422;
- a replay while the first is still running: 409 (PostgreSQL waits at most
  ``LOCK_WAIT`` for the first transaction's key row, then gives up).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    and_,
    select,
    text,
    update,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from verzuimhub_shared.db import code, insert_ignore, is_postgresql
from verzuimhub_shared.errors import BadRequest, Conflict, UnprocessableIdempotencyKey

LOCK_WAIT = "2s"
MAX_KEY_LENGTH = 128


def idempotency_table(metadata: MetaData) -> Table:
    return Table(
        "idempotency_keys",
        metadata,
        Column("owner", code(200), primary_key=True),
        Column("key", code(MAX_KEY_LENGTH), primary_key=True),
        Column("request_hash", code(64), nullable=False),
        Column("status_code", Integer, nullable=True),
        Column("body", LargeBinary, nullable=True),
        Column("created_at", DateTime(timezone=True), nullable=False),
    )


@dataclass(frozen=True)
class StoredResponse:
    status_code: int
    body: bytes


def request_hash(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + body).hexdigest()


async def claim(
    session: AsyncSession, table: Table, owner: str, key: str, digest: str
) -> StoredResponse | None:
    """Claim ``key`` for this request; a stored response when it is a replay."""
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise BadRequest("Idempotency-Key moet 1 tot 128 leesbare tekens zijn")
    postgres = is_postgresql(session)
    row = {"owner": owner, "key": key, "request_hash": digest, "created_at": datetime.now(UTC)}
    try:
        if postgres:
            await session.execute(text(f"SET LOCAL lock_timeout = '{LOCK_WAIT}'"))
        inserted = await insert_ignore(session, table, [row])
        if postgres:
            await session.execute(text("SET LOCAL lock_timeout = 0"))
    except DBAPIError as exc:
        if "lock" in str(exc.orig).lower():
            raise Conflict("Een verzoek met deze Idempotency-Key is nog in behandeling") from exc
        raise
    if inserted:
        return None
    stored = (
        await session.execute(
            select(table.c.request_hash, table.c.status_code, table.c.body).where(
                and_(table.c.owner == owner, table.c.key == key)
            )
        )
    ).one()
    if stored.request_hash != digest:
        raise UnprocessableIdempotencyKey(
            "Deze Idempotency-Key is eerder gebruikt voor een ander verzoek"
        )
    if stored.status_code is None:
        raise Conflict("Een verzoek met deze Idempotency-Key is nog in behandeling")
    return StoredResponse(int(stored.status_code), bytes(stored.body or b""))


async def complete(
    session: AsyncSession, table: Table, owner: str, key: str, response: StoredResponse
) -> None:
    await session.execute(
        update(table)
        .where(and_(table.c.owner == owner, table.c.key == key))
        .values(status_code=response.status_code, body=response.body)
    )
