"""A warm pool of sandboxes: started ahead of time to hide the cold start, recycled by policy.

Each execution takes an idle sandbox, runs in a fresh forked child of its zygote (nothing of a
run survives into the next: see ``bootstrap.py``), and gives the sandbox back. A sandbox is
recycled, closed and replaced in the background, after ``max_uses`` executions, after any run
that hit a limit, and when it broke. With ``pool_size`` 0 every execution starts and stops a
sandbox of its own.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from hive.errors import HiveError, Unavailable
from hive.runtime.sandbox.executor import START_TIMEOUT_S, Sandbox, check_code, check_network
from hive.runtime.sandbox.limits import SandboxLimits
from hive.runtime.sandbox.result import ExecutionResult


class SandboxPool:
    """Warm sandboxes sharing one set of limits. Use ``async with SandboxPool(...) as pool``."""

    def __init__(
        self,
        limits: SandboxLimits | None = None,
        *,
        size: int | None = None,
        max_uses: int | None = None,
        rootfs: Path | None = None,
        runsc: str | Path | None = None,
        runsc_flags: tuple[str, ...] = (),
        start_timeout_s: float = START_TIMEOUT_S,
    ) -> None:
        self.limits = limits or SandboxLimits()
        check_network(self.limits)
        self.size = self.limits.pool_size if size is None else size
        self.max_uses = self.limits.max_uses if max_uses is None else max_uses
        self.rootfs = rootfs
        self.runsc = runsc
        self.runsc_flags = runsc_flags
        self.start_timeout_s = start_timeout_s
        self.state_dir = Path(tempfile.mkdtemp(prefix="hive-runsc-pool-"))
        self._idle: asyncio.Queue[Sandbox | BaseException] = asyncio.Queue()
        self._tasks: set[asyncio.Task[None]] = set()
        self._live: set[Sandbox] = set()
        self._closed = False
        self._running = False  # start() has run: execute() starts the pool on first use
        self._start_lock = asyncio.Lock()
        self.started = 0  # sandboxes started over the pool's life
        self.recycled = 0
        self.cold_starts: list[float] = []

    def _new_sandbox(self) -> Sandbox:
        return Sandbox(
            self.limits,
            rootfs=self.rootfs,
            runsc=self.runsc,
            state_dir=self.state_dir,
            runsc_flags=self.runsc_flags,
        )

    async def _start_one(self) -> Sandbox:
        sandbox = self._new_sandbox()
        self._live.add(sandbox)
        try:
            self.cold_starts.append(await sandbox.start(self.start_timeout_s))
        except BaseException:
            self._live.discard(sandbox)
            raise
        self.started += 1
        return sandbox

    async def _replenish(self) -> None:
        try:
            sandbox = await self._start_one()
        except HiveError as exc:
            self._idle.put_nowait(exc)
            return
        if self._closed:
            await self._retire(sandbox)
        else:
            self._idle.put_nowait(sandbox)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def start(self) -> SandboxPool:
        """Start `size` sandboxes at once and wait until they are all ready."""
        self._running = True
        results = await asyncio.gather(
            *(self._start_one() for _ in range(self.size)), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                await self.close()
                raise result
            self._idle.put_nowait(result)
        return self

    async def _retire(self, sandbox: Sandbox) -> None:
        self._live.discard(sandbox)
        await sandbox.close()

    async def execute(self, code: str, limits: SandboxLimits | None = None) -> ExecutionResult:
        """Run `code` in a warm sandbox (or a fresh one when the pool size is 0)."""
        if self._closed:
            raise Unavailable("the sandbox pool is closed")
        check_code(code)
        if not self._running:
            async with self._start_lock:  # agents that never run code never start a sandbox
                if not self._running:
                    await self.start()
        if self.size == 0:
            sandbox = await self._start_one()
            try:
                return await sandbox.execute(code, limits)
            finally:
                await self._retire(sandbox)
        item = await self._idle.get()
        if isinstance(item, BaseException):
            self._spawn(self._replenish())  # try again for the next caller
            raise item
        sandbox = item
        recycle = True
        try:
            result = await sandbox.execute(code, limits)
            recycle = result.limit is not None or sandbox.uses >= self.max_uses or not sandbox.alive
            return result
        finally:
            if recycle or self._closed:
                self.recycled += 1
                self._spawn(self._retire(sandbox))
                if not self._closed:
                    self._spawn(self._replenish())
            else:
                self._idle.put_nowait(sandbox)

    async def close(self) -> None:
        """Stop every sandbox, idle or starting, and wait for them to be gone."""
        self._closed = True
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        while not self._idle.empty():
            item = self._idle.get_nowait()
            if isinstance(item, Sandbox):
                await self._retire(item)
        await asyncio.gather(*(s.close() for s in list(self._live)), return_exceptions=True)
        self._live.clear()
        shutil.rmtree(self.state_dir, ignore_errors=True)

    async def __aenter__(self) -> SandboxPool:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
