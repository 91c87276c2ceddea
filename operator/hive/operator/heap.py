"""Giving the memory a burst of work freed back to the system.

A thousand teams applied at once make the operator parse and hold tens of thousands of objects
for a minute; when they are Ready it holds little again, but the allocator keeps the pages it
freed. CPython's own allocator (pymalloc) hands a 1 MiB arena back only when every object in it
is gone, so a few long-lived objects made during a burst pin arenas full of free space, and the
next burst, laid out differently, pins more: resident memory climbs a little with each burst
though nothing is held. Run with ``PYTHONMALLOC=malloc`` (the chart and the local control plane
set it, with ``MALLOC_ARENA_MAX=2``), every object lives in glibc's heap instead, whose free pages
``malloc_trim(0)`` returns page by page wherever they lie. `release_forever` calls it every
`operator.heap_trim_s` in a worker thread (it holds no lock of the interpreter's), and
/metrics counts what it gave back (``hive_operator_heap_released_bytes_total``). Where the C
library has no ``malloc_trim`` (musl), nothing is done.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import os
from collections.abc import Callable

from prometheus_client import Counter

log = logging.getLogger(__name__)

RELEASED = Counter(
    "hive_operator_heap_released_bytes",
    "Resident memory the operator's heap gave back to the system after bursts of work.",
)
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None
    if trim is not None:
        trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


_TRIM = _malloc_trim()


def resident_bytes() -> int:
    """This process's resident memory now (/proc/self/statm)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * _PAGE


def release() -> int:
    """Return the heap's free pages to the system; the resident bytes that went (0 when none
    did, or the C library cannot)."""
    if _TRIM is None:
        return 0
    before = resident_bytes()
    _TRIM(0)
    released = max(0, before - resident_bytes())
    RELEASED.inc(released)
    return released


async def release_forever(every_s: float) -> None:
    """`release` every `every_s` seconds, off the event loop."""
    while True:
        await asyncio.sleep(every_s)
        released = await asyncio.to_thread(release)
        if released:
            log.debug("gave %.1f MiB of free heap back to the system", released / 2**20)
