"""A work queue that coalesces reconcile requests per object, as controller work queues do.

Creating a team's eighteen children fires eighteen watch events; each asks for the team to be
reconciled. Requests for an object that is already waiting join the waiting run instead of
adding one, and at most one run per object is in progress at a time. A request made while a
run is in progress queues exactly one more run, so the last change is never missed. A run
that fails with a retryable error is requested again after a backoff (1 s doubling to 60 s);
a run whose result has a ``recheck_after_s`` (a time-based change nothing will announce) is
requested again after that many seconds, whether it was requested or run and waited for; an
object has at most one such timed request pending, the one its latest run asked for.

Nothing here outlives its object: a key's lock goes with its last run, its failure count with
its first success (a deleted object's run succeeds: there is nothing to do), its timed request
when it fires. `entries()` counts what is held, for the operator's footprint metric.

At most `concurrency()` runs of a queue do their work at once (as a controller's worker count):
a thousand teams applied together are reconciled a few at a time rather than all at once, which
keeps the operator's peak memory (and so its RSS, which the allocator does not give back) low and
does not slow it down, as the API server is the limit either way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from hive.errors import HiveError

log = logging.getLogger(__name__)
Key = tuple[str, str]


@dataclass
class _Slot:
    """A key's lock, and how many runs hold or wait for it (at most two: one running, one
    waiting); the slot goes when the last of them ends."""

    lock: asyncio.Lock
    runs: int = 0


class Coalescer:
    """Runs `work(namespace, name)` on request, coalescing requests per (namespace, name)."""

    def __init__(
        self,
        work: Callable[[str, str], Awaitable[Any]],
        what: str,
        concurrency: Callable[[], int] | None = None,
    ) -> None:
        self.work = work
        self.what = what
        self.concurrency = concurrency
        self._workers: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None
        self._waiting: dict[Key, asyncio.Future[Any]] = {}
        self._slots: dict[Key, _Slot] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._failures: dict[Key, int] = {}
        self._rechecks: dict[Key, asyncio.TimerHandle] = {}

    def _future(self, key: Key) -> asyncio.Future[Any]:
        future = self._waiting.get(key)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._waiting[key] = future
            task = asyncio.create_task(self._drive(key, future))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return future

    async def run(self, namespace: str, name: str) -> Any:
        """Request a run and wait for it (joining one that is already waiting)."""
        future = self._future((namespace, name))
        future.add_done_callback(lambda done: self._recheck_later((namespace, name), done))
        return await asyncio.shield(future)

    def request(self, namespace: str, name: str) -> None:
        """Request a run without waiting; failures are logged, retryable ones run again."""
        key = (namespace, name)
        self._future(key).add_done_callback(lambda future: self._after(key, future))

    def _after(self, key: Key, future: asyncio.Future[Any]) -> None:
        error = None if future.cancelled() else future.exception()
        if error is None:
            self._failures.pop(key, None)
            self._recheck_later(key, future)
            return
        log.warning("%s %s/%s: %s", self.what, key[0], key[1], error)
        if isinstance(error, HiveError) and error.retryable:
            failures = self._failures[key] = self._failures.get(key, 0) + 1
            delay = min(60.0, 2.0 ** (failures - 1))
            asyncio.get_running_loop().call_later(delay, self.request, *key)

    def _recheck_later(self, key: Key, future: asyncio.Future[Any]) -> None:
        """Request `key` again after the run's ``recheck_after_s``, replacing the one pending."""
        if future.cancelled() or future.exception() is not None:
            return
        later = getattr(future.result(), "recheck_after_s", None)
        if not later:
            return
        pending = self._rechecks.pop(key, None)
        if pending is not None:
            pending.cancel()
        self._rechecks[key] = asyncio.get_running_loop().call_later(later, self._recheck, key)

    def _recheck(self, key: Key) -> None:
        self._rechecks.pop(key, None)
        self.request(*key)

    def _worker_slots(self) -> asyncio.Semaphore | None:
        """The running loop's semaphore of `concurrency()` workers; None: no limit."""
        if self.concurrency is None:
            return None
        loop = asyncio.get_running_loop()
        if self._workers is None or self._workers[0] is not loop:
            self._workers = (loop, asyncio.Semaphore(self.concurrency()))
        return self._workers[1]

    async def _work(self, key: Key) -> Any:
        slots = self._worker_slots()
        if slots is None:
            return await self.work(*key)
        async with slots:
            return await self.work(*key)

    async def _drive(self, key: Key, future: asyncio.Future[Any]) -> None:
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = _Slot(asyncio.Lock())
        slot.runs += 1
        try:
            async with slot.lock:
                self._waiting.pop(key, None)  # from here on, a new request queues a new run
                try:
                    future.set_result(await self._work(key))
                except Exception as exc:
                    future.set_exception(exc)
        finally:
            slot.runs -= 1
            if not slot.runs:
                del self._slots[key]

    def entries(self) -> int:
        """What the queue holds per object: waiting runs, locks, failure counts, timed requests."""
        return len(self._waiting) + len(self._slots) + len(self._failures) + len(self._rechecks)

    async def drain(self) -> None:
        """Drop the timed rechecks and wait for every run in flight (for a clean shutdown)."""
        self._cancel_rechecks()
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await asyncio.sleep(0)  # the finished runs' callbacks, which may time a recheck
        self._cancel_rechecks()

    def _cancel_rechecks(self) -> None:
        for handle in self._rechecks.values():
            handle.cancel()
        self._rechecks.clear()
