"""A batch of ingest's events planned while the batch before it is still being written (ADR
0022) leaves melding exactly as applying the batches one after the other does: pupils,
ledger and marks. On PostgreSQL each batch is planned before the one before it commits (its
writes unseen); SQLite takes a transaction's write lock at its start, so there each batch
is planned after the one before it committed (its writes seen)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from sqlalchemy import text

from verzuimhub.testing import truncate
from verzuimhub_melding import repository as repo
from verzuimhub_melding.service import (
    IngestBatch,
    IngestPlan,
    decode_ingest_events,
    plan_ingest_events,
    write_ingest_plan,
)
from verzuimhub_shared import events as ev
from verzuimhub_shared.crypto import Pseudonymiser, Sealer
from verzuimhub_shared.db import Database
from verzuimhub_shared.migrations import upgrade
from verzuimhub_shared.testing.events import ingetrokken_voor_melding, voor_melding
from verzuimhub_shared.testing.loop import turns_given

CTX: Any = SimpleNamespace(
    pseudonymiser=Pseudonymiser("test-secret"), sealer=Sealer({"k1": "secret-one"}, "k1")
)


def put(rid: str, pgn: str, versie: int, day: int, gemeente: str = "GM9901") -> dict[str, Any]:
    data = voor_melding(rid, pgn, versie=versie, datum=date(2026, 3, day), woongemeente=gemeente)
    return {"type": ev.REGISTRATIE_VASTGELEGD, "data": data}


def gone(rid: str) -> dict[str, Any]:
    return {"type": ev.REGISTRATIE_INGETROKKEN, "data": ingetrokken_voor_melding(rid, versie=9)}


A, B, C = "123456782", "234567891", "345678900"
#: Each batch leans on the one before: a pupil it made, a registration it wrote or withdrew.
BATCHES = [
    [put("r1", A, 1, 2), put("r2", A, 1, 3), put("r3", B, 1, 4)],
    [
        put("r1", A, 2, 5, gemeente="GM9902"),  # a newer version, and the pupil moved
        gone("r2"),
        put("r4", C, 1, 6),  # a new pupil
        put("r5", B, 1, 1),
    ],
    [
        put("r2", A, 3, 9),  # withdrawn in the batch before: written again
        put("r1", A, 1, 2),  # older than the ledger's: skipped (the pupil moves back)
        gone("r3"),
        put("r6", C, 1, 7, gemeente="GM9903"),
    ],
]


def batches() -> list[IngestBatch]:
    """The batches, their events at positions 1–11 of the feed."""
    numbered = iter(range(1, 100))
    return [
        decode_ingest_events(CTX, [event | {"position": next(numbered)} for event in events])
        for events in BATCHES
    ]


async def state(db: Database) -> dict[str, Any]:
    """Pupils, ledger and marks by the pupil's pseudonym (ids and times are made anew)."""
    async with db.transaction() as session:
        pupils = (
            await session.execute(
                text("SELECT id, pgn_hash, brin, woongemeente, vestiging FROM leerlingen")
            )
        ).all()
        hash_of = {p.id: p.pgn_hash for p in pupils}
        ledger = (
            await session.execute(
                text(
                    "SELECT registratie_id, leerling_id, versie, datum, minuten, positie"
                    " FROM ledger"
                )
            )
        ).all()
        marks = (await session.execute(text("SELECT leerling_id, vanaf FROM te_evalueren"))).all()
    return {
        "pupils": sorted(tuple(p)[1:] for p in pupils),
        "ledger": sorted((r[0], hash_of[r[1]], *r[2:]) for r in ledger),
        "marks": sorted((hash_of[m[0]], m[1]) for m in marks),
    }


async def applied_in_turn(db: Database) -> dict[str, Any]:
    for batch in batches():
        async with db.transaction() as session:
            await write_ingest_plan(session, await plan_ingest_events(session, CTX, batch))
    return await state(db)


async def applied_planning_ahead(db: Database) -> dict[str, Any]:
    first, *rest = batches()
    async with db.transaction() as session:
        plan = await plan_ingest_events(session, CTX, first)
    for batch in rest:
        async with db.transaction() as writing:
            await write_ingest_plan(writing, plan)
            if db.dialect == "postgresql":
                async with db.transaction() as session:  # the batch before not committed yet
                    following = await plan_ingest_events(session, CTX, batch, plan)
                    if batch is rest[0]:  # without the plan ahead, pupil A would be made again
                        unseen = await plan_ingest_events(session, CTX, batch)
                        assert len(unseen.new_pupils) == 3
                        assert len(following.new_pupils) == 1
        if db.dialect != "postgresql":
            async with db.transaction() as session:
                following = await plan_ingest_events(session, CTX, batch, plan)
        plan = following
    async with db.transaction() as writing:
        await write_ingest_plan(writing, plan)
    return await state(db)


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
async def test_planning_ahead_leaves_what_applying_in_turn_leaves(
    dialect: str, db_urls: dict[str, str], tmp_path: Path
) -> None:
    outcomes = []
    for way in (applied_in_turn, applied_planning_ahead):
        if dialect == "postgresql":
            await truncate(db_urls["melding"])
            url = db_urls["melding"]
        else:
            url = f"sqlite+aiosqlite:///{tmp_path}/{way.__name__}.db"
            await upgrade("verzuimhub_melding", url)
        db = Database(url)
        try:
            outcomes.append(await way(db))
        finally:
            await db.dispose()
    in_turn, ahead = outcomes
    assert ahead == in_turn
    link = CTX.pseudonymiser.pseudonym
    a, c = link(A, "melding-link"), link(C, "melding-link")
    b = link(B, "melding-link")
    # What that state is: r1 at version 2 (the older version 1 skipped), r2 written again,
    # r3 withdrawn; A back in GM9901, C moved to GM9903. Each row carries the position of
    # its batch (7, 11); marks only for what the rows do not show (ADR 0024): r1's earlier
    # date (2 March, now the 5th), and the withdrawn r2's (A, 3 March) and r3's (B, 4 March).
    assert [(*r[:3], r[-1]) for r in in_turn["ledger"]] == [
        ("r1", a, 2, 7),
        ("r2", a, 3, 11),
        ("r4", c, 1, 7),
        ("r5", b, 1, 7),
        ("r6", c, 1, 11),
    ]
    assert {p[0]: p[2] for p in in_turn["pupils"]}[a] == "GM9901"
    assert {p[0]: p[2] for p in in_turn["pupils"]}[c] == "GM9903"
    assert [(m, str(day)) for m, day in in_turn["marks"]] == sorted(  # text on SQLite
        [(a, "2026-03-02"), (b, "2026-03-04")]
    )


async def test_a_pupil_a_batch_makes_has_the_facts_of_its_last_event(
    db_urls: dict[str, str],
) -> None:
    """A pupil seen for the first time in a batch, with other facts in a later event of it
    (it moved), and the same again after that."""
    await truncate(db_urls["melding"])
    events = [put("r1", A, 1, 2), put("r2", A, 1, 3, "GM9904"), put("r3", A, 1, 4, "GM9904")]
    events = [event | {"position": n} for n, event in enumerate(events, 1)]
    db = Database(db_urls["melding"])
    try:
        async with db.transaction() as session:
            plan = await plan_ingest_events(session, CTX, decode_ingest_events(CTX, events))
            await write_ingest_plan(session, plan)
        pupils = (await state(db))["pupils"]
    finally:
        await db.dispose()
    assert [p[2] for p in pupils] == ["GM9904"]


async def test_the_plan_ahead_answers_for_its_own_pupils_and_registrations(
    db_urls: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the plan ahead writes is not read again: the next plan looks up only the
    pupils and registrations the batch before it did not have."""

    asked: dict[str, set[Any]] = {"ledger": set(), "pupils": set()}
    ledger_versions, leerlingen_by_key = repo.ledger_versions, repo.leerlingen_by_key

    async def reading_ledger(session: Any, ids: Any) -> Any:
        asked["ledger"] |= set(ids)
        return await ledger_versions(session, ids)

    async def reading_pupils(session: Any, keys: Any) -> Any:
        asked["pupils"] |= {pseudonym for pseudonym, _ in keys}
        return await leerlingen_by_key(session, keys)

    monkeypatch.setattr(repo, "ledger_versions", reading_ledger)
    monkeypatch.setattr(repo, "leerlingen_by_key", reading_pupils)
    await truncate(db_urls["melding"])
    first, second, _ = batches()
    db = Database(db_urls["melding"])
    try:
        async with db.transaction() as session:
            plan = await plan_ingest_events(session, CTX, first)
            for found in asked.values():
                found.clear()
            following = await plan_ingest_events(session, CTX, second, plan)
    finally:
        await db.dispose()
    link = CTX.pseudonymiser.pseudonym
    # The second batch: r1 (A) and r2 from the first; r4 (C) and r5 (B, known from the first).
    assert asked == {"ledger": {"r4", "r5"}, "pupils": {link(C, "melding-link")}}
    # And it counts on what the first writes: r1 updated, r2 withdrawn, A and B not made again.
    assert [row[0] for row in following.updates] == ["r1"]
    assert following.deletions == ["r2"]
    pgn_hash = repo.NEW_PUPIL_COLUMNS.index("pgn_hash")
    assert [p[pgn_hash] for p in following.new_pupils] == [link(C, "melding-link")]


async def test_a_large_batch_is_planned_in_turns_of_the_event_loop() -> None:
    """Planning gives the event loop a turn every hundred registrations, so that the write
    of the batch before it sends its next statement meanwhile (ADR 0022, 0023). The plan
    ahead holds every registration and pupil here, so nothing is read: each turn is one
    the planning gave."""
    events = [
        put(f"r{n:04d}", f"{100_000_000 + n // 2}", 1, 1 + n % 28) | {"position": n}
        for n in range(1, 1051)
    ]
    batch = decode_ingest_events(CTX, events)
    regs = [reg for _, reg in batch.final.values()]
    ahead = IngestPlan(
        new_pupils=[],
        pupil_updates=[],
        inserts=[],
        updates=[],
        deletions=[],
        changed={},
        ledger=dict.fromkeys(batch.final),  # withdrawn: inserted again
        pupils={(batch.link[r.pgn], r.brin): ("l-known", ()) for r in regs},
    )
    async with turns_given() as turns:
        plan = await plan_ingest_events(cast(Any, None), CTX, batch, ahead)
    seen = turns()
    assert len(plan.inserts) == 1050
    assert len(plan.pupil_updates) == 1  # every pupil known, as "l-known"
    assert seen >= 1050 // 100
