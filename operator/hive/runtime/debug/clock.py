"""The run's budget clock: wall time less the time a debugger held the run paused.

An agent's deadline and a team's deadline are measured on the clock of the run they belong
to (`run_clock()`: the one in `paused_clock`, a context variable the debugger sets for its
run); without a debugger it is the plain monotonic clock and `wait_for`/`wait` are asyncio's
own, so a run pays nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Iterable
from contextvars import ContextVar
from typing import Any, TypeVar

T = TypeVar("T")


class RunClock:
    """Monotonic seconds; nothing ever pauses it."""

    def now(self) -> float:
        return time.monotonic()

    async def wait_for(self, awaitable: Awaitable[T], limit_s: float | None) -> T:
        return await asyncio.wait_for(awaitable, limit_s)

    async def wait(
        self, tasks: Iterable[asyncio.Task[Any]], limit_s: float | None, return_when: str
    ) -> tuple[set[asyncio.Task[Any]], set[asyncio.Task[Any]]]:
        return await asyncio.wait(set(tasks), timeout=limit_s, return_when=return_when)


class PausableClock(RunClock):
    """A clock that stops while the run is paused: timeouts count run time only."""

    def __init__(self) -> None:
        self.paused_s = 0.0
        self._paused_at: float | None = None
        self._resumed = asyncio.Event()
        self._resumed.set()

    @property
    def paused(self) -> bool:
        return self._paused_at is not None

    def pause(self) -> None:
        if self._paused_at is None:
            self._paused_at = time.monotonic()
            self._resumed.clear()

    def resume(self) -> None:
        if self._paused_at is not None:
            self.paused_s += time.monotonic() - self._paused_at
            self._paused_at = None
            self._resumed.set()

    def now(self) -> float:
        stopped = self._paused_at if self._paused_at is not None else time.monotonic()
        return stopped - self.paused_s

    async def _until(self, deadline: float, done: asyncio.Future[Any]) -> None:
        """Return when `done` is done or the run time reaches `deadline`."""
        while not done.done():
            if self.paused:
                resumed = asyncio.ensure_future(self._resumed.wait())
                await asyncio.wait({done, resumed}, return_when=asyncio.FIRST_COMPLETED)
                resumed.cancel()
                continue
            left = deadline - self.now()
            if left <= 0:
                return
            await asyncio.wait({done}, timeout=left)

    async def wait_for(self, awaitable: Awaitable[T], limit_s: float | None) -> T:
        if limit_s is None:
            return await awaitable
        task = asyncio.ensure_future(awaitable)
        try:
            await self._until(self.now() + limit_s, task)
        except asyncio.CancelledError:
            task.cancel()
            raise
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            raise TimeoutError
        return task.result()

    async def wait(
        self, tasks: Iterable[asyncio.Task[Any]], limit_s: float | None, return_when: str
    ) -> tuple[set[asyncio.Task[Any]], set[asyncio.Task[Any]]]:
        pending = set(tasks)
        if limit_s is None:
            return await asyncio.wait(pending, return_when=return_when)
        loop = asyncio.get_running_loop()
        first: asyncio.Future[None] = loop.create_future()

        def settle(_: asyncio.Task[Any]) -> None:
            finished = [t for t in pending if t.done()]
            if not first.done() and (
                (return_when == asyncio.FIRST_COMPLETED and finished)
                or len(finished) == len(pending)
                or (
                    return_when == asyncio.FIRST_EXCEPTION
                    and any(not t.cancelled() and t.exception() for t in finished)
                )
            ):
                first.set_result(None)

        for task in pending:
            task.add_done_callback(settle)
        try:
            for task in pending:
                if task.done():
                    settle(task)
            await self._until(self.now() + limit_s, first)
        finally:
            for task in pending:
                task.remove_done_callback(settle)
        done = {t for t in pending if t.done()}
        return done, pending - done


PLAIN = RunClock()
paused_clock: ContextVar[PausableClock | None] = ContextVar("hive_paused_clock", default=None)


def run_clock() -> RunClock:
    """The clock of the run this coroutine belongs to: its debugger's, else the plain one."""
    return paused_clock.get() or PLAIN
