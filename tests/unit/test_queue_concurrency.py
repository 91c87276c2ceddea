"""The work queue runs at most `concurrency()` objects' work at once; the others wait their
turn and every one still runs."""

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
