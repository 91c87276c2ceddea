"""SIGUSR1 makes a process print where it is: every thread's stack and every task's await
chain, and it goes on as before (hive.runtime.debug.stacks, installed by the agent pod and the
operator)."""

from __future__ import annotations

import asyncio
import io
import signal
import subprocess
import sys
import textwrap
import threading

from hive.runtime.debug.stacks import dump_stacks, task_stacks

CHILD = textwrap.dedent(
    """
    import asyncio, sys, threading
    from hive.runtime.debug.stacks import dump_stacks_on_signal

    released = threading.Event()

    def blocked_in_a_worker_thread():
        released.wait(30)

    async def waiting_for_the_thread():
        await asyncio.to_thread(blocked_in_a_worker_thread)

    async def waiting_on_a_peer():
        await asyncio.sleep(30)

    async def main():
        loop = asyncio.get_running_loop()
        dump_stacks_on_signal(loop)
        work = asyncio.create_task(waiting_for_the_thread(), name="the-run")
        peer = asyncio.create_task(waiting_on_a_peer(), name="the-peer")
        print("ready", flush=True)
        await loop.run_in_executor(None, sys.stdin.readline)  # the parent says: go on
        released.set()
        peer.cancel()
        await work
        print("went on", flush=True)

    asyncio.run(main())
    """
)


def test_sigusr1_prints_every_threads_and_every_tasks_stack_and_the_process_goes_on() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    dumped = threading.Event()

    def read_the_log() -> None:
        assert child.stderr is not None
        for line in child.stderr:
            lines.append(line)
            if "in to_thread" in line:  # the last task's innermost frame (tasks go by name)
                dumped.set()

    reader = threading.Thread(target=read_the_log, daemon=True)
    try:
        assert child.stdout is not None
        assert child.stdin is not None
        assert child.stdout.readline().strip() == "ready"
        reader.start()
        child.send_signal(signal.SIGUSR1)
        assert dumped.wait(30), "".join(lines)
        child.stdin.write("\n")
        child.stdin.flush()
        out = child.stdout.read()
        assert child.wait(30) == 0, "".join(lines)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    reader.join(10)
    err = "".join(lines)
    assert out.strip() == "went on"
    threads, _, tasks = err.partition("asyncio task(s) ---")
    assert "--- threads ---" in threads
    assert "in blocked_in_a_worker_thread" in threads  # faulthandler: the C-level wait shows
    the_run = tasks.split("task the-run:")[1].split("task ")[0]
    assert "in waiting_for_the_thread" in the_run
    assert "in to_thread" in the_run  # the whole await chain, outermost first
    assert "in waiting_on_a_peer" in tasks.split("task the-peer:")[1]


async def test_a_task_waiting_on_a_future_names_it() -> None:
    pending: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def parked() -> None:
        await asyncio.shield(pending)

    task = asyncio.create_task(parked(), name="parked")
    await asyncio.sleep(0)
    try:
        text = task_stacks(asyncio.get_running_loop())
        entry = text.split("task parked:")[1].split("\ntask ")[0]
        assert "in parked" in entry
        assert "waits on <Future pending" in entry
    finally:
        task.cancel()
        pending.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_stream_without_a_descriptor_gets_the_task_stacks_and_a_note() -> None:
    stream = io.StringIO()
    holder = threading.Event()
    thread = threading.Thread(target=holder.wait, args=(5,), daemon=True)
    thread.start()
    try:
        dump_stacks(asyncio.get_running_loop(), stream)
    finally:
        holder.set()
        thread.join(5)
    text = stream.getvalue()
    assert "thread stacks need a file with a descriptor" in text
    assert "asyncio task(s) ---" in text
    assert "in test_a_stream_without_a_descriptor_gets_the_task_stacks_and_a_note" in text
