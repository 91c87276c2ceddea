"""Tasks per second of one agent's work queue with 1, 2 and 4 replicas (processes).

    python bench/work_queue_replicas.py [--tasks 200] [--task-ms 50] [--replicas 1 2 4]

Each replica is a process of ``python -m hive.runtime.workqueue.worker`` on a real
redis-server on loopback (started from .testbin like the tests'); a task waits `--task-ms`
(standing in for the model call an agent's task waits on; replicas of an agent spend their
time waiting on models, not on CPU) and returns. For each replica count the replicas are
started and seen in the consumer group first, then `--tasks` tasks are submitted and the time
until every result is recorded gives tasks/s; the scaling ratio is against one replica. Prints
the load average beside, since the host's other work shares its cores.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support import redis_server

from hive.runtime.workqueue.queue import WorkQueue

BENCH = Path(__file__).resolve().parent
WORKER = [sys.executable, "-m", "hive.runtime.workqueue.worker"]
HANDLER = "work_queue_replicas:task"


async def task(payload: dict[str, Any]) -> int:
    """The replicas' handler (``work_queue_replicas:task``); a warm-up task answers which
    replica (process) ran it."""
    await asyncio.sleep(float(payload["ms"]) / 1000)
    return os.getpid() if payload.get("warmup") else int(payload["n"])


def start(url: str, agent: str, count: int) -> list[subprocess.Popen[bytes]]:
    env = {**os.environ, "PYTHONPATH": f"{BENCH}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return [
        subprocess.Popen(
            [*WORKER, url, "bench", "team", agent, f"{agent}-{i}", "--handler", HANDLER],
            env=env,
        )
        for i in range(count)
    ]


async def measure(url: str, replicas: int, tasks: int, task_ms: int) -> float:
    agent = f"agent{replicas}"
    queue = WorkQueue(url, "bench", "team", agent)
    await queue.ensure_group()
    processes = start(url, agent, replicas)
    try:
        seen: set[int] = set()  # warm-up tasks until every replica has run one
        for n in range(10_000):
            await queue.submit(f"warmup{n}", {"warmup": True, "ms": task_ms, "n": n})
            seen.add(await queue.result(f"warmup{n}", timeout_s=120))
            if len(seen) == replicas:
                break
        started = time.perf_counter()
        for n in range(tasks):
            await queue.submit(f"t{n}", {"n": n, "ms": task_ms})
        for n in range(tasks):
            await queue.result(f"t{n}", timeout_s=300)
        took = time.perf_counter() - started
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)
        await queue.close()
    return tasks / took


async def main(tasks: int, task_ms: int, counts: list[int]) -> None:
    print(
        f"{tasks} tasks of {task_ms} ms each, one agent's queue; load average "
        f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"
    )
    print(f"{'replicas':>8} {'tasks/s':>9} {'scaling':>8}")
    with tempfile.TemporaryDirectory() as tmp, redis_server(Path(tmp)) as url:
        base = None
        for count in counts:
            rate = await measure(url, count, tasks, task_ms)
            base = base or rate
            print(f"{count:>8} {rate:>9.1f} {rate / base:>7.2f}x", flush=True)
    print(f"(one replica's ceiling at {task_ms} ms a task: {1000 / task_ms:.1f} tasks/s)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--task-ms", type=int, default=50)
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()
    asyncio.run(main(args.tasks, args.task_ms, args.replicas))
