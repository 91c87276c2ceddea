"""The work queue runs at most `concurrency()` objects' work at once; the others wait their
turn, those asked for by a change before those the resync asked for, and every one still runs."""

from __future__ import annotations

import asyncio

from hive.operator.queue import Coalescer


def test_at_most_the_concurrency_runs_at_once_and_every_object_runs() -> None:
    running = peak = 0
    done: list[str] = []

    async def work(namespace: str, name: str) -> str:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1
        done.append(name)
        return name

    async def main() -> list[str]:
        queue = Coalescer(work, "test", lambda: 3)
        return await asyncio.gather(*(queue.run("ns", f"o{i}") for i in range(20)))

    results = asyncio.run(main())
    assert results == [f"o{i}" for i in range(20)]
    assert sorted(done) == sorted(results)
    assert peak == 3


def test_without_a_concurrency_every_object_runs_at_once() -> None:
    running = peak = 0

    async def work(namespace: str, name: str) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1

    async def main() -> None:
        queue = Coalescer(work, "test")
        await asyncio.gather(*(queue.run("ns", f"o{i}") for i in range(20)))

    asyncio.run(main())
    assert peak == 20


def order_of_runs(requests: list[tuple[str, bool]]) -> list[str]:
    """With one worker busy on "first", make `requests` ((name, periodic)) in order; the
    order in which their work ran after it."""
    ran: list[str] = []
    started, release = asyncio.Event(), asyncio.Event()

    async def work(namespace: str, name: str) -> None:
        ran.append(name)
        if name == "first":
            started.set()
            await release.wait()

    async def main() -> None:
        queue = Coalescer(work, "test", lambda: 1)
        queue.request("ns", "first")
        await started.wait()
        for name, periodic in requests:
            queue.request("ns", name, periodic=periodic)
        release.set()
        await queue.drain()
        assert queue.entries() == 0

    asyncio.run(main())
    assert ran[0] == "first"
    return ran[1:]


def test_a_change_goes_before_every_run_the_resync_asked_for() -> None:
    periodic = [(f"resync-{i}", True) for i in range(5)]
    assert order_of_runs([*periodic, ("changed", False)]) == [
        "changed",
        *(name for name, _ in periodic),
    ]


def test_a_resync_run_a_change_asks_for_moves_ahead_and_runs_once() -> None:
    periodic = [(f"resync-{i}", True) for i in range(5)]
    assert order_of_runs([*periodic, ("resync-3", False), ("resync-3", True)]) == [
        "resync-3",
        "resync-0",
        "resync-1",
        "resync-2",
        "resync-4",
    ]


def test_requests_for_a_run_waiting_its_turn_join_it() -> None:
    assert order_of_runs([("a", False), ("b", False), ("a", False), ("a", True)]) == ["a", "b"]
