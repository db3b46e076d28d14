"""GroupCommit on its own (no database): who goes in which group, and who gets what answer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext

import pytest

from verzuimhub_shared.group_commit import GroupCommit, GroupCommitBusy, GroupCommitClosed


class Work:
    """Records each group; holds a group open until released; fails on items named bad."""

    def __init__(self, bad: frozenset[str] = frozenset()) -> None:
        self.groups: list[list[str]] = []
        self.running = 0
        self.most_running = 0
        self.release = asyncio.Event()
        self.release.set()
        self.bad = bad

    async def __call__(self, items: list[str]) -> Sequence[str]:
        self.groups.append(list(items))
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            await self.release.wait()
            await asyncio.sleep(0)
            failing = [item for item in items if item in self.bad]
            if failing:
                raise ValueError(f"bad item {failing[0]}")
            return [item.upper() for item in items]
        finally:
            self.running -= 1


async def test_requests_of_the_same_moment_go_together() -> None:
    work = Work()
    groups = GroupCommit(work)
    answers = await asyncio.gather(*(groups.submit(x) for x in "abc"))
    assert answers == ["A", "B", "C"]
    assert work.groups == [["a", "b", "c"]]


async def test_requests_read_in_the_same_turn_of_the_loop_go_together() -> None:
    """The first request starts a group; the others of the same turn reach the group
    commit one step later (each request's own awaits in between). They still join it,
    rather than making a second group of their own while the first is written."""
    work = Work()
    groups = GroupCommit(work, writers=2)

    async def after_a_step(item: str) -> str:
        await asyncio.sleep(0)
        return await groups.submit(item)

    answers = await asyncio.gather(groups.submit("a"), *(after_a_step(x) for x in "bcd"))
    assert answers == ["A", "B", "C", "D"]
    assert work.groups == [["a", "b", "c", "d"]]


async def test_a_request_on_a_quiet_service_goes_at_once_alone() -> None:
    work = Work()
    groups = GroupCommit(work)
    assert await groups.submit("a") == "A"
    assert work.groups == [["a"]]


async def test_requests_arriving_during_a_group_go_together_in_the_next() -> None:
    work = Work()
    work.release.clear()
    groups = GroupCommit(work)
    first = asyncio.create_task(groups.submit("a"))
    await asyncio.sleep(0.01)  # "a" is being written
    later = [asyncio.create_task(groups.submit(x)) for x in "bcd"]
    await asyncio.sleep(0.01)
    work.release.set()
    assert await first == "A"
    assert [await t for t in later] == ["B", "C", "D"]  # each its own answer
    assert work.groups == [["a"], ["b", "c", "d"]]


async def test_groups_are_at_most_max_size() -> None:
    work = Work()
    work.release.clear()
    groups = GroupCommit(work, max_size=2)
    tasks = [asyncio.create_task(groups.submit(x)) for x in "abcde"]
    await asyncio.sleep(0.01)
    work.release.set()
    assert [await t for t in tasks] == list("ABCDE")
    assert work.groups == [["a", "b"], ["c", "d"], ["e"]]


async def test_writers_bound_the_groups_in_flight() -> None:
    work = Work()
    work.release.clear()
    groups = GroupCommit(work, writers=2)
    tasks = []
    for item in "abc":
        tasks.append(asyncio.create_task(groups.submit(item)))
        await asyncio.sleep(0.01)
    # A second writer started with "b" while "a" was written; "c" waits for either.
    assert work.groups == [["a"], ["b"]]
    assert work.running == 2
    work.release.set()
    assert [await t for t in tasks] == ["A", "B", "C"]
    assert work.most_running == 2
    assert work.groups == [["a"], ["b"], ["c"]]


async def test_a_failing_group_is_retried_alone_and_only_the_bad_item_fails() -> None:
    work = Work(bad=frozenset({"c"}))
    work.release.clear()
    groups = GroupCommit(work)
    first = asyncio.create_task(groups.submit("a"))
    await asyncio.sleep(0.01)
    later = [asyncio.create_task(groups.submit(x)) for x in "bcd"]
    await asyncio.sleep(0.01)
    work.release.set()
    assert await first == "A"
    assert await later[0] == "B"
    with pytest.raises(ValueError, match="bad item c"):
        await later[1]
    assert await later[2] == "D"
    assert work.groups == [["a"], ["b", "c", "d"], ["b"], ["c"], ["d"]]


async def test_a_request_cancelled_while_waiting_is_left_out() -> None:
    work = Work()
    work.release.clear()
    groups = GroupCommit(work)
    first = asyncio.create_task(groups.submit("a"))
    await asyncio.sleep(0.01)
    gone = asyncio.create_task(groups.submit("b"))
    stays = asyncio.create_task(groups.submit("c"))
    await asyncio.sleep(0.01)
    gone.cancel()
    work.release.set()
    assert await first == "A"
    assert await stays == "C"
    assert work.groups == [["a"], ["c"]]


async def test_a_wrong_number_of_results_fails_every_item() -> None:
    async def short(items: list[str]) -> list[str]:
        return items[:-1]

    groups: GroupCommit[str, str] = GroupCommit(short)
    with pytest.raises(RuntimeError, match="0 results for a group of 1"):
        await groups.submit("a")


async def test_on_group_reports_each_group_size() -> None:
    sizes: list[int] = []
    work = Work()
    work.release.clear()
    groups = GroupCommit(work, on_group=sizes.append)
    tasks = [asyncio.create_task(groups.submit("a"))]
    await asyncio.sleep(0.01)
    tasks += [asyncio.create_task(groups.submit(x)) for x in "bc"]
    await asyncio.sleep(0.01)
    work.release.set()
    await asyncio.gather(*tasks)
    assert sizes == [1, 2]


async def test_beyond_max_waiting_a_request_is_refused_at_once() -> None:
    work = Work()
    work.release.clear()
    groups = GroupCommit(work, max_waiting=2)
    first = asyncio.create_task(groups.submit("a"))
    await asyncio.sleep(0.01)  # "a" is being written: it no longer waits
    assert groups.waiting == 0
    waiting = [asyncio.create_task(groups.submit(x)) for x in "bc"]
    await asyncio.sleep(0)
    assert groups.waiting == 2
    with pytest.raises(GroupCommitBusy):
        await groups.submit("d")
    work.release.set()
    assert [await first, *[await t for t in waiting]] == ["A", "B", "C"]
    assert groups.waiting == 0
    assert await groups.submit("e") == "E"  # room again


def test_sizes_below_one_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        GroupCommit(Work(), max_size=0)
    with pytest.raises(ValueError, match="at least 1"):
        GroupCommit(Work(), writers=0)
    with pytest.raises(ValueError, match="at least 1"):
        GroupCommit(Work(), max_waiting=0)


def _recording_scope(
    work: Work, scopes: list[str]
) -> Callable[[], AbstractAsyncContextManager[Callable[[list[str]], Awaitable[Sequence[str]]]]]:
    """A writer scope that yields ``work`` and notes when it is entered and left."""

    @asynccontextmanager
    async def scope() -> AsyncIterator[Callable[[list[str]], Awaitable[Sequence[str]]]]:
        scopes.append("entered")
        try:
            yield work
        finally:
            scopes.append("left")

    return scope


async def test_a_writer_runs_its_groups_inside_one_scope() -> None:
    """``writer_scope``: entered once per writer run, around all its groups (a retry alone
    included), with the work it yields; left when the writer has nothing more to do."""
    work = Work(bad=frozenset({"x"}))
    scopes: list[str] = []
    scope = _recording_scope(work, scopes)
    groups: GroupCommit[str, str] = GroupCommit(writer_scope=scope, max_size=2)
    answers = await asyncio.gather(*(groups.submit(x) for x in "abxd"), return_exceptions=True)
    assert answers[:2] == ["A", "B"]
    assert isinstance(answers[2], ValueError)
    assert answers[3] == "D"
    assert work.groups == [["a", "b"], ["x", "d"], ["x"], ["d"]]
    assert scopes == ["entered", "left"]
    assert await groups.submit("e") == "E"  # a new run: a new scope
    assert scopes == ["entered", "left", "entered", "left"]


def test_work_or_a_writer_scope_is_given_not_both() -> None:
    with pytest.raises(ValueError, match="work or writer_scope"):
        GroupCommit()
    with pytest.raises(ValueError, match="work or writer_scope"):
        GroupCommit(Work(), writer_scope=lambda: nullcontext(Work()))


async def test_a_writer_lingers_for_the_next_item_in_its_scope() -> None:
    """With ``linger``, a writer with nothing to write waits for the next item, in the
    same scope, before it ends; ``aclose`` ends it at once and refuses what comes after."""
    work = Work()
    scopes: list[str] = []
    scope = _recording_scope(work, scopes)
    groups: GroupCommit[str, str] = GroupCommit(writer_scope=scope, linger=0.2)
    assert await groups.submit("a") == "A"
    await asyncio.sleep(0.01)
    assert await groups.submit("b") == "B"  # the same writer, woken
    assert scopes == ["entered"]
    await asyncio.sleep(0.3)  # longer than it lingers
    assert scopes == ["entered", "left"]
    assert await groups.submit("c") == "C"
    assert scopes == ["entered", "left", "entered"]
    await asyncio.wait_for(groups.aclose(), 0.1)  # no waiting out the linger
    assert scopes == ["entered", "left", "entered", "left"]
    with pytest.raises(GroupCommitClosed):  # a GroupCommitBusy: the edge answers 503
        await groups.submit("d")
    assert work.groups == [["a"], ["b"], ["c"]]
