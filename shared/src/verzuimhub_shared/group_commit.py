"""Group commit: concurrent requests that each need one short transaction share one.

A request hands its item to :meth:`GroupCommit.submit` and waits. If no group is being
written, its item starts one at once, after one turn of the event loop: the requests read
in the same turn as it (a burst, or clients that were answered together) reach the group
commit a step later, and join it instead of making a second group of their own. Items that
arrive while a group's transaction runs wait for it to end and then go together, as the
next group. One transaction per group instead of one per request: the round trips, the
session and the commit are paid once, and requests of one process no longer queue behind
each other's lock on the feed counter.

A writer may run its groups inside one scope (``writer_scope``: one database connection
held from its first group to its last), and may linger for the next item before it ends
(``linger``): an item that arrives meanwhile wakes it instead of starting a writer.

Each item still gets its own answer. If a group's work raises, no item of it is answered
with that error: every item is run again as a group of one, so one bad item cannot fail
the others, and each gets exactly its own outcome. The work must therefore be safe to run
again after a rolled-back attempt (a transaction is). A request that is cancelled while it
waits (the client went away) is left out of the next group; once its group runs, it is
committed like the others (an identical retry is then answered as unchanged).
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import Generic, TypeVar

from verzuimhub_shared.logging import get_logger

T = TypeVar("T")
R = TypeVar("R")

log = get_logger(__name__)


Work = Callable[[list[T]], Awaitable[Sequence[R]]]


class GroupCommitBusy(Exception):
    """More items wait than ``max_waiting``: the database is not keeping up; try later."""


class GroupCommitClosed(GroupCommitBusy):
    """The group commit is closed (the service is stopping); try later, elsewhere."""


class GroupCommit(Generic[T, R]):
    """Runs ``work(items)`` (one transaction, one result per item, in order) for the items
    of the requests that are waiting, at most ``max_size`` at a time. When more than
    ``max_waiting`` items wait (the database is stuck or far behind), :meth:`submit`
    refuses at once with :class:`GroupCommitBusy` instead of queueing without bound."""

    def __init__(
        self,
        work: Work[T, R] | None = None,
        *,
        writer_scope: Callable[[], AbstractAsyncContextManager[Work[T, R]]] | None = None,
        max_size: int = 64,
        writers: int = 1,
        max_waiting: int = 1024,
        linger: float = 0.0,
        on_group: Callable[[int], None] | None = None,
    ) -> None:
        """``work`` writes a group; or ``writer_scope``: each writer runs its groups, one
        after the other, inside one such scope, with the ``work`` that the scope yields
        (one database connection held for all of them, say). ``linger``: seconds a writer
        with nothing to do waits for the next item before it ends (and leaves its scope);
        an item that arrives meanwhile wakes it instead of starting a writer."""
        if max_size < 1 or writers < 1 or max_waiting < 1:
            raise ValueError("max_size, writers and max_waiting must be at least 1")
        if linger < 0:
            raise ValueError("linger must not be negative")
        if (work is None) == (writer_scope is None):
            raise ValueError("give work or writer_scope")
        if writer_scope is None:
            assert work is not None
            only: Work[T, R] = work
            writer_scope = lambda: nullcontext(only)  # noqa: E731
        self._writer_scope = writer_scope
        self._max_size = max_size
        self._max_waiting = max_waiting
        self._max_writers = writers
        self._on_group = on_group
        self._linger = linger
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._writers: set[asyncio.Task[None]] = set()  # the writers that take items
        self._tasks: set[asyncio.Task[None]] = set()  # and those still leaving their scope
        self._idle: list[asyncio.Event] = []  # one per lingering writer, set to wake it
        self._closed = False

    @property
    def waiting(self) -> int:
        """Items submitted and not yet taken into a group."""
        return len(self._waiting)

    async def submit(self, item: T) -> R:
        """Wait for ``item``'s group to be committed; its result, or its own error."""
        if self._closed:
            raise GroupCommitClosed("closed")
        if len(self._waiting) >= self._max_waiting:
            raise GroupCommitBusy(f"{len(self._waiting)} items wait already")
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._idle:
            self._idle.pop().set()
        elif len(self._writers) < self._max_writers:
            # A context of its own: the group is nobody's request (no request id in its logs).
            task = asyncio.create_task(
                self._write_all(), name="group-commit", context=contextvars.Context()
            )
            self._writers.add(task)
            self._tasks.add(task)
        return await future

    async def aclose(self) -> None:
        """Refuse new items, and wait for the writers to end: the lingering ones at once,
        the others once what waits is written."""
        self._closed = True
        for wake in self._idle:
            wake.set()
        self._idle.clear()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _write_all(self) -> None:
        task = asyncio.current_task()
        try:
            await asyncio.sleep(0)  # the requests read in the same turn join (module doc)
            async with self._writer_scope() as work:
                while True:
                    while self._waiting:
                        taken = self._waiting[: self._max_size]
                        del self._waiting[: self._max_size]
                        group = [entry for entry in taken if not entry[1].done()]
                        if group:
                            await self._write(work, group)
                    if not await self._more_come():
                        break
                # No await between the empty check in _more_come and here: from now on a
                # submit starts a new writer, while this one leaves its scope.
                if task is not None:
                    self._writers.discard(task)
        finally:
            if task is not None:
                self._writers.discard(task)
                self._tasks.discard(task)
            if not self._writers:
                for _, future in self._waiting:  # only when cancelled (shutdown)
                    future.cancel()
                self._waiting.clear()

    async def _more_come(self) -> bool:
        """Linger: wait for an item, at most ``linger`` seconds; whether one waits now."""
        if self._linger and not self._closed and not self._waiting:
            wake = asyncio.Event()
            self._idle.append(wake)
            try:
                await asyncio.wait_for(wake.wait(), self._linger)
            except TimeoutError:
                pass
            finally:
                if wake in self._idle:
                    self._idle.remove(wake)
            if self._waiting:
                await asyncio.sleep(0)  # the requests read in the same turn join
        return bool(self._waiting)

    async def _write(self, work: Work[T, R], group: list[tuple[T, asyncio.Future[R]]]) -> None:
        if self._on_group is not None:
            self._on_group(len(group))
        try:
            results = await work([item for item, _ in group])
        except asyncio.CancelledError:
            for _, future in group:
                future.cancel()
            raise
        except Exception as exc:
            if len(group) == 1:
                _fail(group[0][1], exc)
                return
            log.warning("group_commit_retry_alone", size=len(group), exc_type=type(exc).__name__)
            for entry in group:
                await self._write(work, [entry])
            return
        if len(results) != len(group):
            error = RuntimeError(f"{len(results)} results for a group of {len(group)}")
            for _, future in group:
                _fail(future, error)
            return
        for (_, future), result in zip(group, results, strict=True):
            if not future.done():  # done: its request was cancelled meanwhile
                future.set_result(result)


def _fail(future: asyncio.Future[R], error: BaseException) -> None:
    if not future.done():  # done: its request was cancelled meanwhile
        future.set_exception(error)
