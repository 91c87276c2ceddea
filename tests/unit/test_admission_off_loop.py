"""hive.operator.offloop: a blocking check runs in a thread while the event loop goes on, its
result or error comes back, and past its deadline it is refused and its thread stopped."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from hive.operator.offloop import RUNNING, CheckTimedOut, OffLoop


def spin(seconds: float) -> str:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass
    return "done"


def running(what: str) -> float:
    return RUNNING.labels(what)._value.get()


def test_a_check_returns_its_result_or_its_error() -> None:
    checks = OffLoop(2)

    def fails() -> None:
        raise ValueError("spec.x: bad")

    async def main() -> None:
        assert await checks.run("quick", 5, spin, 0.01) == "done"
        with pytest.raises(ValueError, match=r"spec\.x: bad"):
            await checks.run("failing", 5, fails)

    asyncio.run(main())
    assert running("quick") == 0
    assert running("failing") == 0


def test_a_check_past_its_deadline_is_refused_and_stopped_while_the_loop_goes_on() -> None:
    checks = OffLoop(2)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    async def main() -> float:
        counting = asyncio.create_task(ticker())
        started = time.monotonic()
        with pytest.raises(CheckTimedOut, match=r"slow took longer than 0\.5s and was stopped"):
            await checks.run("slow", 0.5, spin, 60.0)
        waited = time.monotonic() - started
        # the thread was told to stop: it ends long before its 60 s
        deadline = time.monotonic() + 20
        while running("slow") and time.monotonic() < deadline:  # noqa: ASYNC110 - a gauge
            await asyncio.sleep(0.05)
        counting.cancel()
        return waited

    waited = asyncio.run(main())
    assert waited < 10
    assert running("slow") == 0
    assert ticks >= 10  # the loop ran while the check spun
    assert not [t for t in threading.enumerate() if t.name == "check slow"]


def test_checks_beyond_the_concurrency_wait_within_their_deadline() -> None:
    checks = OffLoop(1)

    async def main() -> None:
        slow = asyncio.create_task(checks.run("held", 0.5, spin, 60.0))
        await asyncio.sleep(0.05)
        with pytest.raises(CheckTimedOut, match=r"waiting took longer than 0\.2s"):
            await checks.run("waiting", 0.2, spin, 0.0)
        with pytest.raises(CheckTimedOut):
            await slow
        # once the stopped thread has ended, its slot is free again
        assert await checks.run("after", 20, spin, 0.0) == "done"

    asyncio.run(main())
