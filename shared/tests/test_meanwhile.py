"""``db.meanwhile``: a write runs while Python works, and is always waited for; and
``db.in_turns``, the slices such Python takes with a turn between them."""

from __future__ import annotations

import asyncio
import gc

import pytest

from verzuimhub_shared.db import in_turns, meanwhile
from verzuimhub_shared.testing.loop import turns_given


async def test_the_write_runs_while_the_work_runs() -> None:
    started = asyncio.Event()
    release = asyncio.Event()

    async def write() -> str:
        started.set()
        await release.wait()  # as a statement waits for its answer
        return "written"

    async def work() -> str:
        assert started.is_set(), "the write had not started when the work began"
        release.set()
        await asyncio.sleep(0)
        return "worked"

    # One after the other, the write would wait for the work forever.
    assert await asyncio.wait_for(meanwhile(write(), work()), 5) == ("written", "worked")


async def test_a_failing_work_raises_only_after_the_write_has_ended() -> None:
    ended = asyncio.Event()

    async def write() -> None:
        for _ in range(5):
            await asyncio.sleep(0)
        ended.set()

    async def work() -> None:
        raise ValueError("the work failed")

    with pytest.raises(ValueError, match="the work failed"):
        await meanwhile(write(), work())
    assert ended.is_set()


async def test_a_failing_write_is_raised_after_the_work() -> None:
    worked = asyncio.Event()

    async def write() -> None:
        raise LookupError("the write failed")

    async def work() -> None:
        await asyncio.sleep(0)
        worked.set()

    with pytest.raises(LookupError, match="the write failed"):
        await meanwhile(write(), work())
    assert worked.is_set()


async def test_when_both_fail_the_works_error_is_raised_and_the_writes_retrieved() -> None:
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    unretrieved: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _loop, context: unretrieved.append(context))

    async def write() -> None:
        raise LookupError("the write failed")

    async def work() -> None:
        await asyncio.sleep(0)
        raise ValueError("the work failed")

    try:
        with pytest.raises(ValueError, match="the work failed"):
            await meanwhile(write(), work())
        gc.collect()  # an exception never retrieved is reported when its task is collected
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(previous)
    assert not unretrieved


@pytest.mark.parametrize(("count", "size", "turns"), [(0, 100, 0), (100, 100, 0), (250, 100, 2)])
async def test_in_turns_slices_a_batch_with_a_turn_between_slices(
    count: int, size: int, turns: int
) -> None:
    """Every item once, in order, ``size`` at a time, and the event loop gets a turn
    before each slice but the first."""
    items = list(range(count))
    seen: list[int] = []
    async with turns_given() as given:
        async for part in in_turns(count, size):
            seen.extend(items[part])
    assert seen == items
    assert given() == turns
