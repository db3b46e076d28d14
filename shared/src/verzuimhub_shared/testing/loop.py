"""The event loop's turns, for tests of code that must give other tasks a turn while it
works through a large batch (ADR 0022, 0023)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager


@asynccontextmanager
async def turns_given() -> AsyncIterator[Callable[[], int]]:
    """How many turns another task got while the body ran: a task that only yields counts
    each time it runs again. The function given reads the count, inside the body or after
    it (then it stays as it was when the body ended)."""
    turns = 0
    ended: int | None = None

    async def other_task() -> None:
        nonlocal turns
        while True:
            await asyncio.sleep(0)
            turns += 1

    ticker = asyncio.create_task(other_task())
    await asyncio.sleep(0)  # the other task has started
    start = turns
    try:
        yield lambda: (turns if ended is None else ended) - start
    finally:
        ended = turns
        ticker.cancel()
