"""The feed never skips an event, and a consumer applies each exactly once (PostgreSQL)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any

import httpx
import orjson
from sqlalchemy import text

from verzuimhub.testing import ingest_feed_consumer, truncate
from verzuimhub_ingest.models import FEED
from verzuimhub_melding.models import CURSORS
from verzuimhub_shared import feed
from verzuimhub_shared.crypto import Sealer
from verzuimhub_shared.db import Database, pg_fetch

WRITERS = 8
TRANSACTIONS_PER_WRITER = 40


async def test_concurrent_writers_never_make_a_reader_skip(db_urls: dict[str, str]) -> None:
    await truncate(db_urls["ingest"])
    db = Database(db_urls["ingest"], pool_size=WRITERS + 2)
    rng = random.Random(7)
    committed: set[str] = set()
    done = asyncio.Event()

    async def writer(w: int) -> None:
        for t in range(TRANSACTIONS_PER_WRITER):
            n = rng.randint(1, 4)
            events = [
                feed.Event("melding", "nl.verzuimhub.test.v1", {"w": w, "t": t, "i": i})
                for i in range(n)
            ]
            ids = []
            async with db.transaction() as session:
                # Work before the append, then hold the transaction open after it, so
                # commits interleave in every order the scheduler allows.
                await asyncio.sleep(rng.random() / 500)
                await feed.append(session, FEED, events, source="urn:test")
                ids = [f"{w}-{t}-{i}" for i in range(n)]
                await asyncio.sleep(rng.random() / 200)
            committed.update(ids)

    seen: list[tuple[int, str]] = []

    async def reader() -> None:
        cursor = 0
        while True:
            finished = done.is_set()
            async with db.transaction() as session:
                batch = await feed.read_batch(session, FEED, "melding", cursor, 50)

            events = orjson.loads(batch)
            for event in events:
                data = event["data"]
                seen.append((event["position"], f"{data['w']}-{data['t']}-{data['i']}"))
            if events:
                cursor = events[-1]["position"]
            elif finished:
                return
            else:
                await asyncio.sleep(0.001)

    reading = asyncio.create_task(reader())
    await asyncio.gather(*(writer(w) for w in range(WRITERS)))
    done.set()
    await reading
    await db.dispose()

    positions = [p for p, _ in seen]
    keys = [k for _, k in seen]
    assert positions == sorted(positions), "events arrived out of position order"
    assert len(keys) == len(set(keys)), "an event arrived twice"
    assert set(keys) == committed, f"{len(committed - set(keys))} committed events skipped"
    assert len(committed) > WRITERS * TRANSACTIONS_PER_WRITER


async def test_rolled_back_append_leaves_no_gap_visible(db_urls: dict[str, str]) -> None:
    await truncate(db_urls["ingest"])
    db = Database(db_urls["ingest"])
    try:
        async with db.transaction() as session:
            await feed.append(session, FEED, [feed.Event("melding", "t", {"n": 1})], source="u")

        class Boom(Exception):
            pass

        try:
            async with db.transaction() as session:
                await feed.append(session, FEED, [feed.Event("melding", "t", {"n": 2})], source="u")
                raise Boom
        except Boom:
            pass
        async with db.transaction() as session:
            await feed.append(session, FEED, [feed.Event("melding", "t", {"n": 3})], source="u")
            body = await feed.read_batch(session, FEED, "melding", 0, 10)
    finally:
        await db.dispose()

    events = orjson.loads(body)
    assert [e["data"]["n"] for e in events] == [1, 3]
    assert [e["position"] for e in events] == [1, 2]


async def test_sealed_events_are_not_readable_at_rest(db_urls: dict[str, str]) -> None:
    await truncate(db_urls["ingest"])
    sealer = Sealer({"k1": "secret-one"}, "k1")
    db = Database(db_urls["ingest"])
    try:
        async with db.transaction() as session:
            event = feed.Event("melding", "t", {"pgn": "123456782"}, seal=True)
            await feed.append(session, FEED, [event], source="u", sealer=sealer)
        async with db.transaction() as session:
            raw = (await session.execute(text("SELECT body FROM feed_events"))).scalar_one()
            served = await feed.read_batch(session, FEED, "melding", 0, 10, sealer)
    finally:
        await db.dispose()
    assert b"123456782" not in raw
    assert raw.startswith(b"k1.")  # ADR 0031: binary, the key id then the raw ciphertext
    assert b"123456782" in served


async def test_an_envelope_is_stored_unpositioned_and_served_with_its_rows_position(
    db_urls: dict[str, str],
) -> None:
    """ADR 0026: an envelope is made (and sealed) before its position is known, stored with
    position 0, and served with its row's; an envelope stored before, which carries its own
    position, is served as it was stored. On both kinds of transaction."""
    await truncate(db_urls["ingest"])
    sealer = Sealer({"k1": "secret-one"}, "k1")
    db = Database(db_urls["ingest"])
    old = (
        b'{"specversion":"1.0","id":"old","source":"u","type":"t","time":"2026-01-05T00:00:00Z",'
        b'"datacontenttype":"application/json","position":3,"data":{"n":3}}'
    )
    try:
        async with db.transaction() as session:
            await feed.append(session, FEED, [feed.Event("melding", "t", {"n": 1})], source="u")
        async with db.direct_transaction() as tx:
            event = feed.Event("melding", "t", {"n": 2}, seal=True)
            await feed.append(tx, FEED, [event], source="u", sealer=sealer)
        async with db.transaction() as session:
            await session.execute(
                text(
                    "INSERT INTO feed_events VALUES "
                    "(3, 'melding', 'old', 't', NULL, now(), false, :body)"
                ),
                {"body": old},
            )
            await session.execute(text("UPDATE feed_counter SET last_position = 3"))
        async with db.transaction() as session:
            query = "SELECT sealed, body FROM feed_events ORDER BY position"
            rows = await session.execute(text(query))
            stored = [
                sealer.open_binary(body, "melding") if sealed else body for sealed, body in rows
            ]
            served = await feed.read_batch(session, FEED, "melding", 0, 10, sealer)
    finally:
        await db.dispose()
    assert [orjson.loads(body)["position"] for body in stored] == [0, 0, 3]
    events = orjson.loads(served)
    assert [e["position"] for e in events] == [1, 2, 3]
    assert [e["data"]["n"] for e in events] == [1, 2, 3]
    assert served.split(b",\n")[2] == old + b"]"
    # One "position" in each served envelope, not a second one beside the stored 0.
    assert [part.count(b'"position"') for part in served.split(b",\n")] == [1, 1, 1]


async def test_events_the_commit_cannot_carry_are_written_at_once_with_their_positions(
    db_urls: dict[str, str],
) -> None:
    """On a DirectTransaction a row with a ``$`` in its text cannot go with the COMMIT (its
    document is dollar-quoted there; a body travels in base64, ADR 0031, so here the ``$`` is
    in the subject): the counter is advanced and the rows copied at once, at consecutive
    positions, as elsewhere."""
    await truncate(db_urls["ingest"])
    db = Database(db_urls["ingest"])
    try:
        async with db.direct_transaction() as tx:
            await feed.append(tx, FEED, [feed.Event("melding", "t", {"n": 1})], source="u")
        async with db.direct_transaction() as tx:
            events = [feed.Event("melding", "t", {"n": n}, subject=f"r${n}") for n in (2, 3)]
            await feed.append(tx, FEED, events, source="u")
            written = await pg_fetch(tx, "SELECT count(*) FROM feed_events")
        async with db.transaction() as session:
            served = orjson.loads(await feed.read_batch(session, FEED, "melding", 0, 10))
    finally:
        await db.dispose()
    assert written == [(3,)]  # the second transaction's rows were there before its commit
    assert [(e["position"], e["data"]["n"]) for e in served] == [(1, 1), (2, 2), (3, 3)]


async def test_two_consumer_replicas_apply_every_event_exactly_once(
    db_urls: dict[str, str],
    app_client: Callable[..., Any],
    mint: Callable[..., str],
) -> None:
    await truncate(db_urls["ingest"])
    await truncate(db_urls["melding"])
    producer = Database(db_urls["ingest"])
    total = 0
    async with producer.transaction() as session:
        for chunk in range(30):
            events = [feed.Event("melding", "t", {"c": chunk, "i": i}) for i in range(17)]
            await feed.append(session, FEED, events, source="u")
            total += len(events)
    await producer.dispose()

    consumer_db = Database(db_urls["melding"])
    async with consumer_db.transaction() as session:
        await session.execute(text("CREATE TABLE IF NOT EXISTS test_applied (k text)"))
        await session.execute(text("DELETE FROM test_applied"))

    async def handler(session: Any, events: list[dict[str, Any]]) -> None:
        for event in events:
            k = f"{event['data']['c']}-{event['data']['i']}"
            await session.execute(text("INSERT INTO test_applied VALUES (:k)"), {"k": k})
            await asyncio.sleep(0)

    token = mint("consumer", consumer="melding")
    lags: list[int] = []
    async with app_client("ingest") as ingest:

        def replica(name: str) -> feed.FeedConsumer:
            return ingest_feed_consumer(
                ingest,
                token=token,
                cursors=CURSORS,
                transaction=consumer_db.transaction,
                handler=handler,
                batch_size=25,
                on_lag=lambda feed_name, lag: lags.append(lag),
            )

        async def drain(c: feed.FeedConsumer) -> None:
            idle = 0
            while idle < 3:
                idle = idle + 1 if await c.step() == 0 else 0

        await asyncio.gather(drain(replica("a")), drain(replica("b")), drain(replica("c")))

    async with consumer_db.transaction() as session:
        count = (await session.execute(text("SELECT count(*) FROM test_applied"))).scalar_one()
        distinct = (
            await session.execute(text("SELECT count(DISTINCT k) FROM test_applied"))
        ).scalar_one()
        cursor = (
            await session.execute(text("SELECT position, events_applied FROM feed_cursors"))
        ).one()
        await session.execute(text("DROP TABLE test_applied"))
    await consumer_db.dispose()
    assert (count, distinct) == (total, total)
    # Lag is measured from the cursor, not from the end of the batch just fetched (not
    # applied yet): the first fetch, at 0, reports everything still to do.
    assert max(lags) == total
    assert lags[-1] == 0  # caught up
    assert tuple(cursor) == (total, total)
    assert isinstance(ingest, httpx.AsyncClient)


async def test_a_page_is_read_along_the_index_whatever_the_statistics(
    db_urls: dict[str, str],
) -> None:
    """Right after a bulk append, before the table is analysed, the planner used to guess a
    few hundred events after the cursor and fetch and sort every later one for each page:
    a replay from position 0 grew with the square of the backlog. A page is an ordered walk
    of the index that stops at the limit."""
    await truncate(db_urls["ingest"])
    db = Database(db_urls["ingest"])
    try:
        async with db.transaction() as session:
            for consumer in ("melding", "swv-aggregate"):
                events = [feed.Event(consumer, "t", {"i": i}) for i in range(20_000)]
                await feed.append(session, FEED, events, source="urn:test")
        async with db.transaction() as session:
            body = await feed.read_batch(session, FEED, "melding", 1000, 100)
            # This transaction's own counts: rows the page's scan fetched from the table.
            fetched = (
                await session.execute(
                    text(
                        "SELECT idx_tup_fetch + seq_tup_read FROM pg_stat_xact_user_tables"
                        " WHERE relname = 'feed_events'"
                    )
                )
            ).scalar_one()
            sorting = (await session.execute(text("SHOW enable_sort"))).scalar_one()
    finally:
        await db.dispose()

    assert [e["data"]["i"] for e in orjson.loads(body)] == list(range(1000, 1100))
    assert fetched <= 200, f"{fetched} rows fetched for a page of 100"
    assert sorting == "on"  # the rest of the transaction plans as usual


async def test_a_page_is_served_one_event_per_line(
    db_urls: dict[str, str],
) -> None:
    """Events with line breaks, commas and brackets in their values, sealed and not: the
    page is one JSON array with a line break only between events, and each line is one of
    the page's events, in order."""

    await truncate(db_urls["ingest"])
    sealer = Sealer({"k1": "secret-one"}, "k1")
    tricky = ["a,\nb", "[x],\n{y}", '"q",\n', "\\n é"]  # served as UTF-8 bytes
    db = Database(db_urls["ingest"])
    try:
        async with db.transaction() as session:
            events = [
                feed.Event("melding", "t", {"i": i, "s": tricky[i % 4]}, seal=i % 2 == 0)
                for i in range(7)
            ]
            await feed.append(session, FEED, events, source="u", sealer=sealer)
        async with db.transaction() as session:
            body = await feed.read_batch(session, FEED, "melding", 0, 10, sealer)
    finally:
        await db.dispose()
    whole = orjson.loads(body)
    assert [(e["data"]["i"], e["data"]["s"]) for e in whole] == [
        (i, tricky[i % 4]) for i in range(7)
    ]
    assert body.count(b"\n") == 6  # between events only
    assert [orjson.loads(line.rstrip(b",")) for line in body[1:-1].split(b"\n")] == whole
    # Cut into parts of about a size (for decoding in turns): each a JSON array, together
    # the page's events in order; a page no larger than the size comes out whole.
    for size in (1, 120, 400):
        parts = list(feed.page_parts(body, size))
        assert [e for part in parts for e in orjson.loads(part)] == whole
        assert all(len(part) > size for part in parts[:-1])
        assert len(parts) > 1
    assert len(list(feed.page_parts(body, 1))) == 7
    assert list(feed.page_parts(body, len(body))) == [body]


async def test_a_running_consumer_reports_its_lag_from_its_cursor(
    db_urls: dict[str, str],
    app_client: Callable[..., Any],
    mint: Callable[..., str],
) -> None:
    """While a batch is applied, the next one is prefetched: its lag counts from the cursor
    (the batch being applied is still to do), so the consumer is still catching up when it
    fetches the last batch of a backlog (melding's rules wait while it catches up)."""
    await truncate(db_urls["ingest"])
    await truncate(db_urls["melding"])
    size = 10
    producer = Database(db_urls["ingest"])
    async with producer.transaction() as session:
        events = [feed.Event("melding", "t", {"i": i}) for i in range(3 * size)]
        await feed.append(session, FEED, events, source="u")
    await producer.dispose()
    consumer_db = Database(db_urls["melding"])
    lags: list[int] = []
    stop = asyncio.Event()

    def on_lag(_: str, lag: int) -> None:
        lags.append(lag)
        if lag == 0:
            stop.set()

    async def handler(_: Any, events: list[dict[str, Any]]) -> None:
        await asyncio.sleep(0.05)  # the prefetch of the next batch lands meanwhile

    try:
        async with app_client("ingest") as ingest:
            consumer = ingest_feed_consumer(
                ingest,
                token=lambda: mint("consumer", consumer="melding"),
                cursors=CURSORS,
                transaction=consumer_db.transaction,
                handler=handler,
                batch_size=size,
                on_lag=on_lag,
            )
            await asyncio.wait_for(consumer.run(stop, idle_seconds=0.01), timeout=30)
            assert await consumer.cursor() == 3 * size
    finally:
        await consumer_db.dispose()
    # The first fetch at 0, then each prefetch while the batch before it is applied.
    assert lags[:4] == [3 * size, 3 * size, 2 * size, size]
    assert lags[-1] == 0
