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
keeps the operator's peak memory low and does not slow it down, as the API server is the limit
either way. A run waiting for its turn has not begun, so a request made meanwhile joins it. Runs
asked for only by the periodic resync (``request(..., periodic=True)``) take their turn after
every run asked for by a change, as controller-runtime's priority queue puts a resync last: a
team applied while a thousand unchanged ones are resynced is not queued behind them. A periodic
run that a change then asks for too moves ahead.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
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


class _Turns:
    """At most `limit` runs at once; the others wait, those asked for by a change first."""

    def __init__(self, limit: int) -> None:
        self.free = limit
        self._prompt: OrderedDict[Key, asyncio.Future[None]] = OrderedDict()
        self._periodic: OrderedDict[Key, asyncio.Future[None]] = OrderedDict()

    async def take(self, key: Key, periodic: bool) -> None:
        if self.free and not self._prompt and not self._periodic:
            self.free -= 1
            return
        turn = asyncio.get_running_loop().create_future()
        (self._periodic if periodic else self._prompt)[key] = turn
        try:
            await turn
        except asyncio.CancelledError:
            if self._prompt.get(key) is turn:
                del self._prompt[key]
            elif self._periodic.get(key) is turn:
                del self._periodic[key]
            elif not turn.cancelled():  # handed its turn as it was cancelled: pass it on
                self.give_back()
            raise

    def hurry(self, key: Key) -> None:
        """A change asks for `key`'s waiting run: it waits with those asked for by a change."""
        turn = self._periodic.pop(key, None)
        if turn is not None:
            self._prompt[key] = turn

    def give_back(self) -> None:
        for waiting in (self._prompt, self._periodic):
            if waiting:
                waiting.popitem(last=False)[1].set_result(None)
                return
        self.free += 1


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
        self._workers: tuple[asyncio.AbstractEventLoop, _Turns] | None = None
        self._waiting: dict[Key, asyncio.Future[Any]] = {}
        self._periodic: set[Key] = set()  # waiting runs asked for by the resync alone
        self._slots: dict[Key, _Slot] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._failures: dict[Key, int] = {}
        self._rechecks: dict[Key, asyncio.TimerHandle] = {}

    def _future(self, key: Key, periodic: bool = False) -> asyncio.Future[Any]:
        future = self._waiting.get(key)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._waiting[key] = future
            if periodic:
                self._periodic.add(key)
            task = asyncio.create_task(self._drive(key, future))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif not periodic and key in self._periodic:
            self._periodic.discard(key)
            if self._workers is not None:
                self._workers[1].hurry(key)
        return future

    async def run(self, namespace: str, name: str) -> Any:
        """Request a run and wait for it (joining one that is already waiting)."""
        future = self._future((namespace, name))
        future.add_done_callback(lambda done: self._recheck_later((namespace, name), done))
        return await asyncio.shield(future)

    def request(self, namespace: str, name: str, *, periodic: bool = False) -> None:
        """Request a run without waiting; failures are logged, retryable ones run again.
        `periodic`: asked for by the resync, not by a change (it waits behind changes)."""
        key = (namespace, name)
        self._future(key, periodic).add_done_callback(lambda future: self._after(key, future))

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

    def _turns(self) -> _Turns | None:
        """The running loop's turns of `concurrency()` workers; None: no limit."""
        if self.concurrency is None:
            return None
        loop = asyncio.get_running_loop()
        if self._workers is None or self._workers[0] is not loop:
            self._workers = (loop, _Turns(self.concurrency()))
        return self._workers[1]

    async def _drive(self, key: Key, future: asyncio.Future[Any]) -> None:
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = _Slot(asyncio.Lock())
        slot.runs += 1
        try:
            async with slot.lock:
                turns = self._turns()
                if turns is not None:  # until its turn comes, a request joins this run
                    try:
                        await turns.take(key, key in self._periodic)
                    except asyncio.CancelledError:
                        if self._waiting.get(key) is future:
                            del self._waiting[key]
                            self._periodic.discard(key)
                        raise
                try:
                    self._waiting.pop(key, None)  # from here on, a new request queues a new run
                    self._periodic.discard(key)
                    try:
                        future.set_result(await self.work(*key))
                    except Exception as exc:
                        future.set_exception(exc)
                finally:
                    if turns is not None:
                        turns.give_back()
        finally:
            slot.runs -= 1
            if not slot.runs:
                del self._slots[key]

    def entries(self) -> int:
        """What the queue holds per object: waiting runs, locks, failure counts, timed requests."""
        held = self._waiting, self._slots, self._failures, self._rechecks, self._periodic
        return sum(len(each) for each in held)

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
