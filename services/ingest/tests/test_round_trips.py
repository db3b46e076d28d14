"""A group of single registrations is three round trips to PostgreSQL (ADR 0019), with the
meaning of the seven it used to be: the day totals are read after the row locks are held,
and the feed's positions are taken in the insert's statement without ever leaving a gap."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import asyncpg
import pytest

from verzuimhub.testing import make_bsn, registratie, truncate
from verzuimhub_ingest import repository as repo
from verzuimhub_ingest.models import FEED
from verzuimhub_shared import feed
from verzuimhub_shared.db import Database, pg_fetch

DAY = date(2026, 1, 5)
NOW = datetime(2026, 1, 5, 12, tzinfo=UTC)


def _row(rid: str, sid: str, minuten: int, *, ingetrokken: bool = False) -> dict[str, Any]:
    """A stored row as the service builds it (placeholder sealed values)."""
    return {
        "id": rid,
        "brin": "99AA",
        "school_registratie_id": sid,
        "versie": 1,
        "vestiging": "00",
        "pgn_hash": "pupil-1",
        "pgn_sealed": "sealed",
        "pgn_soort": "bsn",
        "geboortedatum": date(2012, 1, 1),
        "woongemeente": "GM0363",
        "sector": "po",
        "datum": DAY,
        "minuten": minuten,
        "eenheid": "klokuur",
        "aantal_eenheden": 1.0,
        "alle_lessen_gemist": False,
        "categorie": "spijbelen",
        "catalogus_versie": "2026.1",
        "payload_hash": "ph",
        "ingetrokken": ingetrokken,
        "gewijzigd_op": NOW,
        "vastgelegd_op": NOW,
    }


@pytest.fixture
async def db(db_urls: dict[str, str]) -> Any:
    await truncate(db_urls["ingest"])
    database = Database(db_urls["ingest"])
    try:
        yield database
    finally:
        await database.dispose()
        await truncate(db_urls["ingest"])  # placeholder rows: leave no test meeting them


async def _counter(db: Database) -> int:
    async with db.direct_transaction() as tx:
        [row] = await pg_fetch(tx, f'SELECT last_position FROM "{FEED.counter.name}"')
    return int(row[0])


async def test_the_day_totals_are_read_after_the_row_locks_are_held(
    db: Database, db_urls: dict[str, str]
) -> None:
    """Another transaction holds a registration's lock, changes its minutes and brings back
    a retracted registration of the same pupil on the same day. The lookup waits for the
    lock, and then sees both: one statement would have read the day totals with the
    snapshot it took before it waited (the old minutes, and no second registration)."""
    async with db.direct_transaction() as tx:
        await repo.insert_registraties(
            tx, [_row("id-x", "x", 60), _row("id-y", "y", 30, ingetrokken=True)]
        )

    async def lookup() -> Any:
        async with db.direct_transaction() as tx:
            return await repo.lock_and_day_totals(tx, [("99AA", "x")], [("pupil-1", DAY)])

    other = await asyncpg.connect(db_urls["ingest"].replace("postgresql+asyncpg", "postgresql"))
    try:
        async with other.transaction():
            await other.execute("UPDATE registraties SET minuten = 120 WHERE id = 'id-x'")
            await other.execute("UPDATE registraties SET ingetrokken = false WHERE id = 'id-y'")
            waiting = asyncio.create_task(lookup())
            await asyncio.sleep(0.3)
            assert not waiting.done(), "the lookup did not wait for the row lock"
        locked, days = await asyncio.wait_for(waiting, 10)
    finally:
        await other.close()
    assert locked["99AA", "x"].minuten == 120
    assert sorted((d.id, d.minuten) for d in days) == [("id-x", 120), ("id-y", 30)]


async def test_the_insert_takes_the_feeds_positions_unless_a_twin_won_a_row(
    db: Database,
) -> None:
    """Every row inserted: the counter advances in the insert's own statement, and the
    append uses those positions. A row already there: the counter is left alone, and the
    append takes positions for the events that remain. No gap either way."""
    start = await _counter(db)
    events = [feed.Event("melding", "t", {"n": n}) for n in range(4)]
    async with db.direct_transaction() as tx:
        inserted, last = await repo.insert_registraties(
            tx, [_row("id-a", "a", 10), _row("id-b", "b", 10)], reserve=4
        )
        assert inserted == {"id-a", "id-b"}
        assert last == start + 4
        positions = await feed.append(tx, FEED, events, source="test", advanced_to=last)
    assert positions == list(range(start + 1, start + 5))
    assert await _counter(db) == start + 4

    async with db.direct_transaction() as tx:
        inserted, last = await repo.insert_registraties(
            tx,
            [_row("id-a2", "a", 10), _row("id-c", "c", 10)],
            reserve=4,  # "a" is taken
        )
        assert inserted == {"id-c"}
        assert last is None
        positions = await feed.append(tx, FEED, events[:2], source="test", advanced_to=last)
    assert positions == [start + 5, start + 6]
    assert await _counter(db) == start + 6


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What the group commit's task sends to PostgreSQL, one entry per round trip."""
    sent: list[str] = []
    for name in ("fetch", "execute"):
        original = getattr(asyncpg.Connection, name)

        def counting(original: Any = original) -> Callable[..., Any]:
            async def call(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
                task = asyncio.current_task()
                if task is not None and task.get_name() == "group-commit":
                    sent.append(query)
                return await original(self, query, *args, **kwargs)

            return call

        monkeypatch.setattr(asyncpg.Connection, name, counting())
    return sent


async def test_a_group_of_single_registrations_is_three_round_trips_on_a_writers_connection(
    clean_dbs: Any,
    app_client: Callable[..., Any],
    auth: Callable[..., dict[str, str]],
    statements: list[str],
) -> None:
    """The first group begins its transaction; its commit begins the next one, and the
    writer lingers with it: the next group's round trips are the lookups, the insert with
    the feed's positions, and the feed's rows with the commit. At shutdown the writer gives
    its connection back, the transaction it began rolled back."""
    school = auth("school", brins=["99AA"])
    async with app_client("ingest") as client:
        sent: list[list[str]] = []
        for n in range(2):
            statements.clear()
            answer = await client.post(
                "/v1/registraties",
                json=registratie(schoolRegistratieId=f"r{n}", pgn=make_bsn(3)),
                headers=school,
            )
            assert answer.status_code == 201
            sent.append([" ".join(sql.split()[:4]) for sql in statements])
        last = statements[-1]
        statements.clear()
    group = [
        "SELECT * FROM ingest_lock_and_day_totals(string_to_array($1::text,",
        "WITH ins AS (INSERT",
        'INSERT INTO "feed_events" ("position",',
    ]
    assert sent[0][-4:] == ["BEGIN", *group]  # after the pool's first connect
    assert sent[1] == group
    assert last.endswith(";\nCOMMIT;\nBEGIN")  # the feed's rows, the commit, the next begin
    assert statements == ["ROLLBACK"]  # the app stopped: the lingering writer's
