"""Where a process is now: every thread's stack and every asyncio task's, on SIGUSR1.

An agent pod that stops making progress (a run `Running` for minutes, no new events) shows
why with ``kubectl exec POD -- sh -c 'kill -USR1 1'``: its log then holds the Python stack
of each thread (:mod:`faulthandler`, so a thread blocked in C code shows too) and of each
pending task of the event loop, the coroutine chain it waits in, as Go prints its goroutines
on SIGQUIT. The process goes on as before.
"""

from __future__ import annotations

import asyncio
import faulthandler
import io
import signal
import sys
from types import FrameType
from typing import TextIO

DUMP_SIGNAL = signal.SIGUSR1


def task_stacks(loop: asyncio.AbstractEventLoop) -> str:
    """Each pending task of `loop`: its name, then the frames its coroutine chain waits in,
    the outermost first (a task's own stack holds only its top coroutine)."""
    out = io.StringIO()
    tasks = sorted(asyncio.all_tasks(loop), key=lambda t: t.get_name())
    out.write(f"--- {len(tasks)} asyncio task(s) ---\n")
    for task in tasks:
        out.write(f"task {task.get_name()}:\n")
        for frame in _awaited(task.get_coro()):
            code = frame.f_code
            out.write(f'  File "{code.co_filename}", line {frame.f_lineno}, in {code.co_name}\n')
        # the future the task is parked on (asyncio keeps it there; not public, hence getattr)
        waited = getattr(task, "_fut_waiter", None)
        if waited is not None:
            out.write(f"  waits on {repr(waited)[:300]}\n")
    return out.getvalue()


def _awaited(coro: object) -> list[FrameType]:
    """The frames of a coroutine chain, following ``cr_await`` (and generator-based awaits)."""
    frames: list[FrameType] = []
    while coro is not None and len(frames) < 200:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is None:
            break
        frames.append(frame)
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return frames


def dump_stacks(loop: asyncio.AbstractEventLoop, file: TextIO | None = None) -> None:
    """Every thread's stack, then every task's, to `file` (stderr: the pod's log)."""
    stream = file or sys.stderr
    stream.write("--- threads ---\n")
    stream.flush()
    try:
        faulthandler.dump_traceback(file=stream, all_threads=True)
    except (io.UnsupportedOperation, AttributeError, ValueError):  # a stream without a fileno
        stream.write("(thread stacks need a file with a descriptor)\n")
    stream.write(task_stacks(loop))
    stream.flush()


def dump_stacks_on_signal(loop: asyncio.AbstractEventLoop, file: TextIO | None = None) -> None:
    """From now on DUMP_SIGNAL makes `loop` print where it is (see :func:`dump_stacks`)."""
    loop.add_signal_handler(DUMP_SIGNAL, dump_stacks, loop, file)
