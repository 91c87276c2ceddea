"""Running a blocking check off the event loop, with a deadline that ends it.

The admission webhook's rules (pydantic models of whole specs, the sandbox policy's proof, Z3
formulas) are pure CPU work that grows with the object; run on the event loop, one large object
would stall every watch, reconcile and the health endpoint for as long as it takes. `off_loop`
runs such a function in a thread of its own and waits for it at most `timeout_s`. Past that it
raises `CheckTimedOut`, and the thread is stopped too: an asynchronous exception
(``PyThreadState_SetAsyncExc``, CPython's way to interrupt a thread) is raised in it at its next
Python instruction, so an abandoned check does not go on burning a core. Code inside a C
extension (a Z3 solve) is interrupted once it returns to Python; Z3's own timeouts bound that.

At most `concurrency` checks run at once, abandoned ones until they stop (others wait for a
thread, within their deadline);
``hive_offloop_checks_running`` counts the threads running, abandoned ones included, by what
they check.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from prometheus_client import Counter, Gauge

from hive.errors import HiveError

T = TypeVar("T")
RUNNING = Gauge(
    "hive_offloop_checks_running",
    "Checks running in worker threads (abandoned ones until they stop), by what they check.",
    ["what"],
)
TIMED_OUT = Counter(
    "hive_offloop_checks_timed_out", "Checks abandoned past their deadline, by what.", ["what"]
)


class CheckTimedOut(HiveError):
    """A check ran past its deadline and was stopped."""

    def __init__(self, what: str, timeout_s: float) -> None:
        super().__init__(f"{what} took longer than {timeout_s:g}s and was stopped")
        self.what = what
        self.timeout_s = timeout_s


class _Abandoned(BaseException):
    """Raised inside a check's thread once nobody waits for it any more."""


class _Worker(threading.Thread):
    def __init__(
        self,
        what: str,
        work: Callable[[], Any],
        deliver: Callable[[Any, BaseException | None], None],
        ended: Callable[[], None],
    ) -> None:
        super().__init__(name=f"check {what}", daemon=True)
        self.what = what
        self.work = work
        self.deliver = deliver
        self.ended = ended
        self.lock = threading.Lock()
        self.finished = False

    def run(self) -> None:
        RUNNING.labels(self.what).inc()
        result: Any = None
        error: BaseException | None = None
        try:
            try:
                result = self.work()
            finally:
                with self.lock:
                    self.finished = True
        except BaseException as exc:  # the thread ends, whatever it was told
            error = exc
        finally:
            RUNNING.labels(self.what).dec()
            self.ended()
        self.deliver(result, error)

    def stop(self) -> None:
        """Raise `_Abandoned` in the thread, unless its work has already returned."""
        with self.lock:
            if self.finished or self.ident is None:
                return
            ctypes.pythonapi.PyThreadState_SetAsyncExc(
                ctypes.c_ulong(self.ident), ctypes.py_object(_Abandoned)
            )


class OffLoop:
    """Runs blocking functions in threads of their own, `concurrency` at a time."""

    def __init__(self, concurrency: int) -> None:
        self.concurrency = concurrency
        self._slots: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None

    def _semaphore(self) -> asyncio.Semaphore:
        """The slots of the running loop (a semaphore belongs to one loop)."""
        loop = asyncio.get_running_loop()
        if self._slots is None or self._slots[0] is not loop:
            self._slots = (loop, asyncio.Semaphore(self.concurrency))
        return self._slots[1]

    async def run(self, what: str, timeout_s: float, work: Callable[..., T], *args: Any) -> T:
        """`work(*args)` in a thread; `CheckTimedOut` (and the thread stopped) past `timeout_s`,
        the time spent waiting for a free thread included."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        slots = self._semaphore()
        try:
            await asyncio.wait_for(slots.acquire(), timeout_s)
        except TimeoutError:
            TIMED_OUT.labels(what).inc()
            raise CheckTimedOut(what, timeout_s) from None
        future: asyncio.Future[T] = loop.create_future()

        def settle(result: Any, error: BaseException | None) -> None:
            if future.done():
                return
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)

        def from_thread(callback: Callable[..., None], *args: Any) -> None:
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits
                loop.call_soon_threadsafe(callback, *args)

        worker = _Worker(
            what,
            lambda: work(*args),
            lambda result, error: from_thread(settle, result, error),
            lambda: from_thread(slots.release),  # the slot is held until the thread ends
        )
        try:
            worker.start()
        except BaseException:
            slots.release()
            raise
        try:
            return await asyncio.wait_for(future, max(0.0, deadline - loop.time()))
        except TimeoutError:
            worker.stop()
            TIMED_OUT.labels(what).inc()
            raise CheckTimedOut(what, timeout_s) from None
