"""Predictive prefetch on a replayed workload: hit rate, latency saved, wasted calls.

    python bench/prefetch_replay.py [--sessions 60] [--tool-ms 80] [--think-ms 150] [--seed 1]

A workload of agent sessions is replayed twice on the shipped classes, without and with the
prefetcher (hive.runtime.prefetch, its Markov model in a real redis-server on loopback started
from .testbin like the tests'; confidence 0.6, minSamples 3). Each session is one of four task
templates, chains of 4 tool calls whose arguments follow from the session's topic (one of 5),
e.g. search(topic) -> fetch(topic-doc) -> extract(topic-doc) -> cite(topic); with probability
0.2 a step goes elsewhere (another topic's document), as real agents stray. Every tool is
declared cacheable and waits `--tool-ms` (a remote API); between two calls the agent thinks
`--think-ms` (its model call). Each session starts with an empty cache (a new task's data); the
Markov model persists, so the prefetcher learns over the first sessions. An agent's call goes
through its registry and cache like an agent's; the prefetcher runs the predicted call early
through the same registry. Prints model-free figures: sessions' wall time, tool time the
agent waited, prefetches started, hits, wasted calls, hit rate and time saved.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support import redis_server

from hive.runtime.cache.keys import ToolCaching
from hive.runtime.cache.levels import MemoryLevel
from hive.runtime.cache.middleware import CallCache
from hive.runtime.cache.multilevel import MultiLevelCache
from hive.runtime.events import Event, EventBus, EventKind
from hive.runtime.prefetch.markov import RedisTransitions
from hive.runtime.prefetch.prefetcher import Prefetcher
from hive.runtime.resilience.calls import Chain
from hive.runtime.tools import Tool, ToolRegistry

TOPICS = ["bees", "soil", "rain", "wind", "moss"]
TEMPLATES = [
    ["search:q", "fetch:doc", "extract:doc", "cite:q"],
    ["search:q", "fetch:doc", "translate:doc", "cite:q"],
    ["lookup:q", "forecast:q", "search:q", "fetch:doc"],
    ["fetch:doc", "extract:doc", "translate:doc", "cite:q"],
]


def steps(rng: random.Random) -> list[tuple[str, dict[str, Any]]]:
    """One session's calls: a template on a topic, each step straying with probability 0.2."""
    template, topic = rng.choice(TEMPLATES), rng.choice(TOPICS)
    calls = []
    for step in template:
        tool, argument = step.split(":")
        subject = rng.choice(TOPICS) if rng.random() < 0.2 else topic
        value = subject if argument == "q" else f"{subject}-doc"
        calls.append((tool, {argument: value}))
    return calls


def registry(tool_ms: int, ran: list[str]) -> tuple[ToolRegistry, CallCache]:
    caching = ToolCaching(ttl_s=600, fingerprint="v1")

    def tool(name: str) -> Tool:
        async def run(**arguments: Any) -> dict[str, Any]:
            ran.append(name)
            await asyncio.sleep(tool_ms / 1000)
            return {"tool": name, **arguments}

        return Tool(name, name, {"type": "object"}, run, cache=caching)

    names = {step.split(":")[0] for template in TEMPLATES for step in template}
    tools = ToolRegistry.of(tool(name) for name in sorted(names))
    cache = CallCache(MultiLevelCache([MemoryLevel()]))
    tools.chain = Chain((cache,))
    return tools, cache


async def replay(
    url: str | None, sessions: list[list[tuple[str, dict[str, Any]]]], tool_ms: int, think_ms: int
) -> dict[str, Any]:
    ran: list[str] = []
    tools, cache = registry(tool_ms, ran)
    bus = EventBus()
    prefetch = None
    if url is not None:
        store = RedisTransitions(url, f"bench:prefetch:{time.time_ns()}:")
        prefetch = Prefetcher(store, lambda agent: tools, confidence=0.6, min_samples=3)
        prefetch.attach(bus)
    waited = 0.0
    started = time.perf_counter()
    for session in sessions:
        cache.cache.levels[0] = MemoryLevel()  # a new task: nothing cached yet
        for name, arguments in session:
            await asyncio.sleep(think_ms / 1000)  # the agent's model call before the tool call
            call_started = time.perf_counter()
            await tools.call(tools.check(name, arguments), arguments)
            took = time.perf_counter() - call_started
            waited += took
            data = {"tool": name, "arguments": arguments, "duration_ms": took * 1000}
            await bus.publish(Event(EventKind.TOOL_CALLED, "scout", data))
        if prefetch is not None:
            await prefetch.settled()  # the session's last prefetch done before the next task
    wall = time.perf_counter() - started
    stats: dict[str, Any] = {"wall": wall, "waited": waited, "tool_runs": len(ran)}
    if prefetch is not None:
        await prefetch.close()
        stats.update(prefetch.stats.as_dict())
    return stats


async def main(count: int, tool_ms: int, think_ms: int, seed: int) -> None:
    rng = random.Random(seed)  # noqa: S311 - a replayable workload
    sessions = [steps(rng) for _ in range(count)]
    calls = sum(len(s) for s in sessions)
    print(
        f"{count} sessions, {calls} tool calls, tools {tool_ms} ms, thinking {think_ms} ms; "
        f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"
    )
    with tempfile.TemporaryDirectory() as tmp, redis_server(Path(tmp)) as url:
        plain = await replay(None, sessions, tool_ms, think_ms)
        ahead = await replay(url, sessions, tool_ms, think_ms)
    print(f"{'':<12} {'wall':>8} {'tool wait':>10} {'tool runs':>10}")
    for label, s in (("no prefetch", plain), ("prefetch", ahead)):
        print(f"{label:<12} {s['wall']:>7.2f}s {s['waited']:>9.2f}s {s['tool_runs']:>10}")
    print(
        f"\nprefetches {ahead['started']}, hits {ahead['hits']}, wasted {ahead['wasted']} "
        f"(hit rate {ahead['hitRate']:.0%}); time saved by hits {ahead['savedSeconds']:.2f}s; "
        f"the agent waited on tools {plain['waited']:.2f}s -> {ahead['waited']:.2f}s, "
        f"wall {plain['wall']:.2f}s -> {ahead['wall']:.2f}s; "
        f"extra tool runs {ahead['tool_runs'] - plain['tool_runs']}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=60)
    parser.add_argument("--tool-ms", type=int, default=80)
    parser.add_argument("--think-ms", type=int, default=150)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    asyncio.run(main(args.sessions, args.tool_ms, args.think_ms, args.seed))
