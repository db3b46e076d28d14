"""A group of single registrations is two round trips to PostgreSQL (ADR 0019, 0026), with
the meaning of the seven it used to be: the day totals are read after the row locks are
held; the writes go with the commit, the feed's positions taken there without ever leaving
a gap; and a registration that a concurrent twin committed first makes the group run
again."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import asyncpg
import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from verzuimhub.testing import feed_rows_made_during, fetch_rows, make_bsn, registratie, truncate
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


async def test_the_writes_go_with_the_commit_and_the_positions_leave_no_gap(
    db: Database,
) -> None:
    """The rows and the feed's events go with the commit; the counter advances there, by
    the events' number, and each event is served with its row's position."""
    start = await _counter(db)
    events = [feed.Event("melding", "t", {"n": n}) for n in range(4)]
    async with db.direct_transaction() as tx:
        rows = [_row("id-a", "a", 10), _row("id-b", "b", 10)]
        inserted = await repo.insert_registraties(tx, rows)
        assert inserted == {"id-a", "id-b"}
        await feed.append(tx, FEED, events, source="test")
        assert await _counter(db) == start, "the counter moved before the commit"
        [[seen]] = await pg_fetch(tx, "SELECT count(*) FROM registraties")
        assert seen == 0, "the rows were written before the commit"
    async with db.direct_transaction() as tx:
        await feed.append(tx, FEED, events[:2], source="test")
    assert await _counter(db) == start + 6
    async with db.transaction() as session:
        served = orjson.loads(await feed.read_batch(session, FEED, "melding", start, 10))
        stored = await session.execute(
            text("SELECT position FROM feed_events WHERE consumer = 'melding' ORDER BY 1")
        )
        positions = [row[0] for row in stored]
    assert positions == list(range(start + 1, start + 7))
    assert [e["position"] for e in served] == positions
    assert [e["data"]["n"] for e in served] == [0, 1, 2, 3, 0, 1]
    assert len({e["id"] for e in served}) == 6


async def test_a_registration_a_twin_committed_first_fails_the_commit(
    db: Database, db_urls: dict[str, str]
) -> None:
    """The insert goes with the commit and waits there for a concurrent transaction that
    inserted the same registration; once that one commits, the commit fails with the
    registration's unique key (repo.is_twin), and nothing of it is written: not the other
    row, not the counter, not the events."""
    start = await _counter(db)
    other = await asyncpg.connect(db_urls["ingest"].replace("postgresql+asyncpg", "postgresql"))

    async def group() -> None:
        async with db.direct_transaction() as tx:
            await repo.insert_registraties(tx, [_row("id-a2", "a", 10), _row("id-c", "c", 10)])
            await feed.append(tx, FEED, [feed.Event("melding", "t", {"n": 1})], source="test")

    try:
        async with other.transaction():
            await other.execute(
                "INSERT INTO registraties SELECT * FROM json_populate_record("
                "NULL::registraties, $1::json)",
                orjson.dumps(_row("id-a", "a", 10)).decode(),
            )
            waiting = asyncio.create_task(group())
            await asyncio.sleep(0.3)
            assert not waiting.done(), "the commit did not wait for the twin"
        with pytest.raises(IntegrityError) as failed:
            await asyncio.wait_for(waiting, 10)
    finally:
        await other.close()
    assert repo.is_twin(failed.value)
    rows = await fetch_rows(db_urls["ingest"], "SELECT id FROM registraties ORDER BY 1")
    assert rows == [("id-a",)]
    assert await _counter(db) == start
    assert await fetch_rows(db_urls["ingest"], "SELECT 1 FROM feed_events") == []


def _as_run(messages: list[str]) -> list[list[str]]:
    """Each message's statements as PostgreSQL runs them: a prepared statement's text where
    it is executed by name (``EXECUTE name(…)``), the ``PREPARE`` itself left out."""
    prepared: dict[str, str] = {}
    run: list[list[str]] = []
    for message in messages:
        statements = []
        for part in message.split(";\n"):
            words = part.split(maxsplit=3)
            if words[:1] == ["PREPARE"]:
                prepared[words[1].removesuffix("(text)")] = words[3]
            elif words[:1] == ["EXECUTE"]:
                statements.append(prepared[words[1].split("(", 1)[0]])
            else:
                statements.append(part)
        run.append(statements)
    return run


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What the group commit's task (and a task it runs meanwhile, ``db.meanwhile``) sends to
    PostgreSQL, one entry per round trip."""
    sent: list[str] = []
    for name in ("fetch", "execute"):
        original = getattr(asyncpg.Connection, name)

        def counting(original: Any = original) -> Callable[..., Any]:
            async def call(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
                task = asyncio.current_task()
                if task is not None and task.get_name().startswith("group-commit"):
                    sent.append(query)
                return await original(self, query, *args, **kwargs)

            return call

        monkeypatch.setattr(asyncpg.Connection, name, counting())
    return sent


async def test_a_group_of_single_registrations_is_two_round_trips_on_a_writers_connection(
    clean_dbs: Any,
    app_client: Callable[..., Any],
    auth: Callable[..., dict[str, str]],
    statements: list[str],
) -> None:
    """The first group begins its transaction; its commit begins the next one, and the
    writer lingers with it: the next group's round trips are the lookups, and its writes
    with the commit (the rows, then the counter and the feed's rows in one statement). At
    shutdown the writer gives its connection back, the transaction it began rolled back."""
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
            sent.append(list(statements))
        statements.clear()
    lookup = "SELECT * FROM ingest_lock_and_day_totals(string_to_array($1::text,"
    assert [" ".join(sql.split()[:4]) for sql in sent[0][-3:-1]] == ["BEGIN", lookup]
    assert [" ".join(sql.split()[:4]) for sql in sent[1][:1]] == [lookup]
    assert len(sent[1]) == 2
    # The first group prepares the rows' insert and the feed's statement on the writer's
    # connection, first in its commit's message; the second executes them by name.
    first, second = (commit.split(";\n") for commit in (sent[0][-1], sent[1][-1]))
    assert [part.split()[0] for part in first] == [
        *["PREPARE"] * 2,
        *["EXECUTE"] * 2,
        "COMMIT",
        "BEGIN",
    ]
    assert [part.split()[0] for part in second] == ["EXECUTE", "EXECUTE", "COMMIT", "BEGIN"]
    assert [part.split("(")[0] for part in first[2:4]] == [
        part.split("(")[0] for part in second[:2]
    ]
    for commit in _as_run([sent[0][-1], sent[1][-1]]):
        assert [" ".join(part.split()[:3]) for part in commit] == [
            'INSERT INTO "registraties"',
            "WITH adv AS",
            "COMMIT",
            "BEGIN",
        ]
    assert statements == ["ROLLBACK"]  # the app stopped: the lingering writer's


async def test_a_correction_in_a_group_is_written_with_the_commit(
    clean_dbs: Any,
    db_urls: dict[str, str],
    app_client: Callable[..., Any],
    auth: Callable[..., dict[str, str]],
    statements: list[str],
) -> None:
    """A higher versie of a stored registration: its update goes with the commit, beside
    the counter and the feed's rows, and the stored row has the new minutes."""
    school = auth("school", brins=["99AA"])
    async with app_client("ingest") as client:
        first = await client.post("/v1/registraties", json=registratie(), headers=school)
        assert first.status_code == 201
        corrected = await client.post(
            "/v1/registraties", json=registratie(versie=2, minuten=90), headers=school
        )
        assert corrected.status_code == 200
        sent = list(statements)
    commit = _as_run([sql for sql in sent if "COMMIT" in sql.split(";\n")])[-1]
    assert [" ".join(part.split()[:2]) for part in commit] == [
        'UPDATE "registraties"',
        "WITH adv",
        "COMMIT",
        "BEGIN",
    ]
    stored = await fetch_rows(db_urls["ingest"], "SELECT versie, minuten FROM registraties")
    assert stored == [(2, 90)]
    # Made ahead as if it were new, with an id of its own (ADR 0029); answered and published
    # with the stored one.
    rid = first.json()["registratieId"]
    assert corrected.json()["registratieId"] == rid
    subjects = await fetch_rows(
        db_urls["ingest"], "SELECT subject, count(*) FROM feed_events GROUP BY 1 ORDER BY 1"
    )
    assert subjects == [(rid, 2), (None, 2)]  # melding's events; swv-aggregate's have none


async def test_a_groups_rows_and_feed_rows_are_made_while_its_lookup_runs(
    clean_dbs: Any,
    db_urls: dict[str, str],
    app_client: Callable[..., Any],
    auth: Callable[..., dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ADR 0029: while PostgreSQL locks and reads what a group's registrations need, ingest
    makes their rows and feed rows, as if each were new; new ones are then stored and
    published with what was made."""
    overlapped = feed_rows_made_during(monkeypatch, repo, "lock_and_day_totals")
    school = auth("school", brins=["99AA"])
    async with app_client("ingest") as client:
        answer = await client.post(
            "/v1/registraties", json=registratie(schoolRegistratieId="ahead"), headers=school
        )
    assert answer.status_code == 201, answer.text
    assert overlapped == [True]  # made once, while the lookup ran
    rid = answer.json()["registratieId"]
    assert await fetch_rows(db_urls["ingest"], "SELECT id FROM registraties") == [(rid,)]
    subjects = await fetch_rows(
        db_urls["ingest"], "SELECT subject, count(*) FROM feed_events GROUP BY 1 ORDER BY 1"
    )
    assert subjects == [(rid, 1), (None, 1)]


async def test_a_group_that_meets_a_twin_runs_again_and_finds_its_row(
    clean_dbs: Any,
    db_urls: dict[str, str],
    app_client: Callable[..., Any],
    auth: Callable[..., dict[str, str]],
) -> None:
    """A registration is stored by a concurrent transaction that commits while the group's
    commit waits: the commit fails on the unique key, the group runs again, and its lookup
    finds the stored registration. An identical one is answered as unchanged, with the
    stored id, and the failed run left no event and no gap behind."""
    school = auth("school", brins=["99AA"])
    payload = registratie(schoolRegistratieId="twin", pgn=make_bsn(4))
    url = db_urls["ingest"].replace("postgresql+asyncpg", "postgresql")
    async with app_client("ingest") as client:
        first = await client.post("/v1/registraties", json=payload, headers=school)
        assert first.status_code == 201
        other = await asyncpg.connect(url)
        try:
            # The stored row taken away, and put back by a transaction that has not
            # committed yet: the next lookup does not see it, the next insert meets it.
            await other.execute(
                "CREATE TEMP TABLE kept AS SELECT * FROM registraties;DELETE FROM registraties"
            )
            async with other.transaction():
                await other.execute("INSERT INTO registraties SELECT * FROM kept")
                again = asyncio.create_task(
                    client.post("/v1/registraties", json=payload, headers=school)
                )
                await asyncio.sleep(0.3)
                assert not again.done(), "the group did not wait for the twin"
            answer = await asyncio.wait_for(again, 10)
        finally:
            await other.close()
    assert answer.status_code == 200, answer.text
    assert answer.json()["registratieId"] == first.json()["registratieId"]
    events = await fetch_rows(db_urls["ingest"], "SELECT position FROM feed_events ORDER BY 1")
    assert events == [(1,), (2,)]  # the first request's two, nothing of the failed run
    assert await fetch_rows(db_urls["ingest"], "SELECT last_position FROM feed_counter") == [(2,)]
