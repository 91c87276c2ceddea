"""A policy run through the work queue and waited for (as its watch events do) is run again when
its result asks, so egress names are looked up again when their answers run out."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from hive.operator.queue import Coalescer


@dataclass(frozen=True)
class Result:
    recheck_after_s: float | None


async def test_a_run_waited_for_is_run_again_after_its_recheck_and_only_once_per_time() -> None:
    runs: list[str] = []
    third = asyncio.Event()

    async def work(namespace: str, name: str) -> Result:
        runs.append(name)
        if len(runs) == 3:
            third.set()
        return Result(0.05 if len(runs) < 3 else None)

    queue = Coalescer(work, "SandboxPolicy")
    await asyncio.gather(*(queue.run("default", "web") for _ in range(4)))  # joined: one run
    await asyncio.wait_for(third.wait(), 10)
    await queue.drain()
    assert runs == ["web", "web", "web"]
