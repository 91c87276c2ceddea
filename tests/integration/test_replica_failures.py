"""A replica goes on taking its agent's tasks when one fails in its hands, against a real
redis-server: the failed task is left to be taken over after the visibility timeout (by another
replica or this one) and its result recorded once; a replica that starts while tasks wait
runs them on its own peer API once that API listens, instead of failing them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from hive.ports import free_port
from hive.runtime.workqueue.peers import QueuedPeer, replica_handler
from hive.runtime.workqueue.queue import WorkQueue
from tests.support import redis_server

pytestmark = pytest.mark.integration


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    with redis_server(tmp_path) as url:
        yield url


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
    await asyncio.sleep(0.3)  # the task waits in the queue before the replica starts
    handler = replica_handler(f"http://127.0.0.1:{port}", 30)
    consuming = asyncio.create_task(queue.consume("critic-0", handler, stop))
    try:
        await asyncio.sleep(1.0)  # the replica took the task before its API listens
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
