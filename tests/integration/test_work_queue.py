"""An agent's work shared by its replicas, against a real redis-server and real replica
processes: each task runs on one replica; a replica killed (SIGKILL) in the middle of a task
has it taken over by another after the visibility timeout, and its result is recorded once;
a task submitted twice is run and recorded once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from hive.api.agentteam import AgentStatus
from hive.runtime.teams.progress import ProgressTracker
from hive.runtime.workqueue.queue import Handler, WorkQueue
from tests.support import redis_server

pytestmark = pytest.mark.integration

HANDLER = """
import asyncio, os, redis.asyncio as aioredis

async def run(payload):
    client = aioredis.Redis.from_url(os.environ["REDIS_URL"])
    await client.rpush("started", f"{payload['n']}:{os.getpid()}")
    if os.environ.get("HANG_ON") == str(payload["n"]):
        await asyncio.Event().wait()  # dies here, killed
    await client.incr(f"runs:{payload['n']}")
    await client.aclose()
    return {"double": payload["n"] * 2, "by": os.getpid()}
"""


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    with redis_server(tmp_path) as url:
        yield url


def replica(
    tmp_path: Path, redis_url: str, name: str, hang_on: int | None
) -> subprocess.Popen[str]:
    (tmp_path / "replica_handler.py").write_text(HANDLER)
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
    }
    if hang_on is not None:
        env["HANG_ON"] = str(hang_on)
    argv = [sys.executable, "-m", "hive.runtime.workqueue.worker", redis_url, "default"]
    argv += ["research", "writer", name, "--handler", "replica_handler:run"]
    argv += ["--visibility-s", "1.5"]
    return subprocess.Popen(argv, env=env, text=True)


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout_s}s: {what}"
        time.sleep(0.05)


async def test_a_task_of_a_killed_replica_completes_on_another_once(
    tmp_path: Path, redis_url: str
) -> None:
    client = redis.Redis.from_url(redis_url)
    queue = WorkQueue(redis_url, "default", "research", "writer", visibility_s=1.5)
    replicas = []
    try:
        # The first replica alone takes task 1 and hangs in it.
        replicas.append(replica(tmp_path, redis_url, "writer-0", hang_on=1))
        assert await queue.submit("task-1", {"n": 1})
        wait_for(lambda: bool(client.llen("started") == 1), 30, "writer-0 took task 1")
        (started,) = client.lrange("started", 0, -1)
        hung_pid = int(str(started, "utf-8").split(":")[1]) if isinstance(started, bytes) else 0
        assert hung_pid == replicas[0].pid
        replicas += [replica(tmp_path, redis_url, f"writer-{i}", None) for i in (1, 2)]
        for n in range(2, 8):
            assert await queue.submit(f"task-{n}", {"n": n})
        assert not await queue.submit("task-3", {"n": 3})  # the same key again: not queued
        os.kill(hung_pid, signal.SIGKILL)
        replicas[0].wait(timeout=10)
        results = [await queue.result(f"task-{n}", timeout_s=60) for n in range(1, 8)]
        assert [r["double"] for r in results] == [2, 4, 6, 8, 10, 12, 14]
        assert results[0]["by"] != hung_pid  # finished by another replica
        for n in range(1, 8):
            assert client.get(f"runs:{n}") == b"1"  # each completed exactly once
        assert client.hlen(queue.results) == 7
        assert await queue.depth() == 0
    finally:
        for process in replicas:
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=20)
        await queue.close()
        client.close()


async def test_replicas_in_one_process_share_the_queue(redis_url: str) -> None:
    queue = WorkQueue(redis_url, "default", "research", "critic", visibility_s=5)
    ran: dict[str, list[int]] = {"a": [], "b": []}

    def handler(name: str) -> Handler:
        async def run(payload: dict[str, Any]) -> int:
            n = int(payload["n"])
            ran[name].append(n)
            await asyncio.sleep(0)
            return n

        return run

    for n in range(20):
        await queue.submit(f"t{n}", {"n": n})
    assert await queue.depth() == 20
    stop = asyncio.Event()
    workers = [asyncio.create_task(queue.consume(name, handler(name), stop)) for name in ran]
    results = [await queue.result(f"t{n}", timeout_s=30) for n in range(20)]
    stop.set()
    recorded = await asyncio.gather(*workers)
    assert results == list(range(20))
    assert sum(recorded) == 20
    assert sorted(ran["a"] + ran["b"]) == list(range(20))
    assert await queue.depth() == 0
    await queue.close()


class Reported:
    def __init__(self) -> None:
        self.statuses: list[AgentStatus] = []

    async def report(self, status: AgentStatus) -> None:
        self.statuses.append(status)


async def test_the_queue_depth_is_in_the_agents_status_entry(redis_url: str) -> None:
    queue = WorkQueue(redis_url, "default", "research", "writer")
    sink = Reported()
    tracker = ProgressTracker("writer", None, sink, lambda: 0, queue_depth=queue.depth)
    for n in range(3):
        await queue.submit(f"t{n}", {"n": n})
    await tracker.report()
    assert sink.statuses[-1].queue_depth == 3
    stop = asyncio.Event()

    async def run(payload: dict[str, Any]) -> int:
        if payload["n"] == 2:
            stop.set()
        return int(payload["n"])

    await queue.consume("writer-0", run, stop)
    await tracker.report()
    assert sink.statuses[-1].queue_depth == 0
    assert ProgressTracker("solo", None, sink, lambda: 0).status().queue_depth is None
    await queue.close()
