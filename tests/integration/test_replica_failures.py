"""A replica goes on taking its agent's tasks when one fails in its hands, against a real
redis-server: the failed task is left to be taken over after the visibility timeout (by another
replica or this one) and its result recorded once; a replica that starts while tasks wait
runs them on its own peer API once that API listens, instead of failing them."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from hive.errors import ExternalFailure
from hive.ports import free_port
from hive.runtime.workqueue.peers import QueuedPeer, replica_handler
from hive.runtime.workqueue.queue import GAVE_UP, GROUP, TASKS, WorkQueue
from tests.support import redis_server

pytestmark = pytest.mark.integration


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    with redis_server(tmp_path) as url:
        yield url


async def pending(queue: WorkQueue) -> int:
    """Entries a replica of the queue holds now."""
    return int((await queue.client.xpending(queue.stream, GROUP))["pending"])


async def until(read: Callable[[], Awaitable[int]], wanted: int, what: str) -> None:
    deadline = time.monotonic() + 15
    while (await read()) != wanted:
        assert time.monotonic() < deadline, f"not within 15s: {what}"
        await asyncio.sleep(0.02)


async def test_a_task_that_fails_in_a_replicas_hands_is_taken_over_and_the_replica_goes_on(
    redis_url: str,
) -> None:
    queue = WorkQueue(redis_url, "default", "research", "writer", visibility_s=1)
    runs: list[int] = []

    async def flaky(payload: dict[str, Any]) -> int:
        n = int(payload["n"])
        runs.append(n)
        if runs.count(n) == 1 and n == 1:  # its own API went away in the middle of task 1
            raise ConnectionError("the replica's peer API is gone")
        return n * 10

    stop = asyncio.Event()
    consuming = asyncio.create_task(queue.consume("writer-0", flaky, stop))
    try:
        for n in (1, 2, 3):
            assert await queue.submit(f"task-{n}", {"n": n})
        results = [await queue.result(f"task-{n}", timeout_s=15) for n in (1, 2, 3)]
        assert results == [10, 20, 30]
        assert not consuming.done()  # still taking tasks
        assert sorted(runs) == [1, 1, 2, 3]  # task 1 again, after the visibility timeout
        assert await queue.client.hlen(queue.results) == 3
        assert await queue.depth() == 0
    finally:
        stop.set()
        await asyncio.gather(consuming, return_exceptions=True)
        await queue.close()


async def test_a_task_that_fails_on_every_delivery_is_given_up_with_its_last_error(
    redis_url: str,
) -> None:
    queue = WorkQueue(redis_url, "default", "research", "poet", visibility_s=1, max_deliveries=2)
    runs: list[int] = []

    async def poisoned(payload: dict[str, Any]) -> int:
        n = int(payload["n"])
        runs.append(n)
        if n == 1:
            raise ValueError(f"cannot write poem {n}")
        return n

    given_up = TASKS.labels("default", "research", "poet", "given-up")
    before = given_up._value.get()
    stop = asyncio.Event()
    consuming = asyncio.create_task(queue.consume("poet-0", poisoned, stop))
    try:
        assert await queue.submit("task-1", {"n": 1})
        assert await queue.submit("task-2", {"n": 2})
        assert await queue.result("task-2", timeout_s=15) == 2  # the replica went on
        with pytest.raises(ExternalFailure) as failed:
            await queue.result("task-1", timeout_s=15)
        assert str(failed.value) == (
            "task task-1 of poet: given up after 2 deliveries to its replicas "
            "(last: ValueError: cannot write poem 1)"
        )
        assert runs.count(1) == 2  # delivered twice, never a third time
        assert GAVE_UP in json.loads(await queue.client.hget(queue.results, "task-1"))
        assert given_up._value.get() == before + 1
        assert await queue.depth() == 0
        # what was counted for the task goes with it
        assert await queue.client.hlen(queue.attempts) == 0
        assert await queue.client.hlen(queue.errors) == 0
        assert not consuming.done()
    finally:
        stop.set()
        await asyncio.gather(consuming, return_exceptions=True)
        await queue.close()


async def test_a_replica_runs_a_waiting_task_once_its_own_api_listens(redis_url: str) -> None:
    port = free_port()
    queue = WorkQueue(redis_url, "default", "research", "critic", visibility_s=30)
    caller = QueuedPeer(WorkQueue(redis_url, "default", "research", "critic"))

    async def tasks(request: web.Request) -> web.Response:
        return web.json_response({"output": (await request.json())["task"].upper()})

    app = web.Application()
    app.router.add_post("/v1/tasks", tasks)
    runner = web.AppRunner(app)
    stop = asyncio.Event()
    asking = asyncio.create_task(caller.request("/v1/tasks", b'{"task":"hi"}', {}, 30))
    await until(lambda: queue.depth(), 1, "the task to wait in the queue")
    handler = replica_handler(f"http://127.0.0.1:{port}", 30)
    consuming = asyncio.create_task(queue.consume("critic-0", handler, stop))
    try:
        await until(lambda: pending(queue), 1, "the replica to take the task")
        assert not asking.done()  # taken before its API listens, and not failed
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        assert await asyncio.wait_for(asking, 30) == (200, {"output": "HI"})
        assert not consuming.done()
    finally:
        stop.set()
        await asyncio.gather(consuming, return_exceptions=True)
        await runner.cleanup()
        await queue.close()
        await caller.close()
