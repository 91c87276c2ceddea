"""A work queue that coalesces reconcile requests per object, as controller work queues do.

Creating a team's eighteen children fires eighteen watch events; each asks for the team to be
reconciled. Requests for an object that is already waiting join the waiting run instead of
adding one, and at most one run per object is in progress at a time. A request made while a
run is in progress queues exactly one more run, so the last change is never missed.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)
Key = tuple[str, str]


class Coalescer:
    """Runs `work(namespace, name)` on request, coalescing requests per (namespace, name)."""

    def __init__(self, work: Callable[[str, str], Awaitable[Any]], what: str) -> None:
        self.work = work
        self.what = what
        self._waiting: dict[Key, asyncio.Future[Any]] = {}
        self._locks: defaultdict[Key, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._tasks: set[asyncio.Task[None]] = set()

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
        return await asyncio.shield(self._future((namespace, name)))

    def request(self, namespace: str, name: str) -> None:
        """Request a run without waiting; failures are logged."""
        self._future((namespace, name)).add_done_callback(self._log_failure)

    def _log_failure(self, future: asyncio.Future[Any]) -> None:
        if not future.cancelled() and future.exception() is not None:
            log.warning("%s reconcile failed: %s", self.what, future.exception())

    async def _drive(self, key: Key, future: asyncio.Future[Any]) -> None:
        async with self._locks[key]:
            self._waiting.pop(key, None)  # from here on, a new request queues a new run
            try:
                future.set_result(await self.work(*key))
            except Exception as exc:
                future.set_exception(exc)

    async def drain(self) -> None:
        """Wait for every run in flight (for a clean shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
