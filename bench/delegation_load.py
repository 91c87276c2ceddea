"""What load-aware delegation adds to a delegation: reading the work queue depth of each
subordinate with replicas (one XLEN each, concurrently) on a real redis-server on loopback.

    python bench/delegation_load.py [--rounds 2000] [--subordinates 1 4 16]

For each count of subordinates, each with a queue of a few tasks, times
hive.runtime.workqueue.load.queue_depths over `--rounds` delegations and prints p50 and p99
(microseconds), beside a plain XLEN round trip for scale and the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support import redis_server

from hive.api.agentteam import AgentSpec
from hive.runtime.teams.peers import RemoteMember
from hive.runtime.workqueue.load import queue_depths
from hive.runtime.workqueue.peers import QueuedPeer
from hive.runtime.workqueue.queue import WorkQueue


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def measure(url: str, count: int, rounds: int) -> tuple[float, float, float]:
    members = {}
    for i in range(count):
        name = f"worker-{i}"
        queue = WorkQueue(url, "bench", "load", name)
        for n in range(3):
            await queue.submit(f"{name}-{n}", {"n": n})
        spec = AgentSpec.model_validate({"name": name, "role": "junior", "replicas": 2})
        members[name] = RemoteMember(spec, "http://127.0.0.1:1", queue=QueuedPeer(queue))
    names = list(members)
    for _ in range(50):  # connections made, scripts loaded
        await queue_depths(members, names)
    took: list[float] = []
    for _ in range(rounds):
        began = time.perf_counter()
        depths = await queue_depths(members, names)
        took.append((time.perf_counter() - began) * 1e6)
    assert all(d == 3 for d in depths.values())
    plain: list[float] = []
    client = next(iter(members.values())).queue.queue.client  # type: ignore[union-attr]
    for _ in range(rounds):
        began = time.perf_counter()
        await client.xlen("hive:work:bench/load:worker-0")
        plain.append((time.perf_counter() - began) * 1e6)
    for member in members.values():
        await member.queue.close()  # type: ignore[union-attr]
    return statistics.median(took), percentile(took, 0.99), statistics.median(plain)


async def main(rounds: int, counts: list[int]) -> None:
    with tempfile.TemporaryDirectory() as folder, redis_server(Path(folder)) as url:
        print(f"load average {os.getloadavg()[0]:.2f} (1 min)")
        print("subordinates  queue_depths p50 us  p99 us  one XLEN p50 us")
        for count in counts:
            p50, p99, xlen = await measure(url, count, rounds)
            print(f"{count:12d}  {p50:19.0f}  {p99:6.0f}  {xlen:15.0f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--subordinates", type=int, nargs="+", default=[1, 4, 16])
    options = parser.parse_args()
    asyncio.run(main(options.rounds, options.subordinates))
