"""Cache levels and what caching saves a team's run.

    python bench/cache_levels.py [--lookups 20000] [--runs 5] [--model-latency-ms 200]

1. Hit latency per level, on the shipped classes (hive.runtime.cache): p50 and p99 of one
   ``MultiLevelCache.get`` answered by L1 (cachetools, in the process), by L2 (diskcache, a
   local folder; a cache of that level alone, so L1 is not filled in between) and by L3 (a real
   redis-server on loopback, started from .testbin like the tests'), of a 1 KiB value; and a
   model call answered by L1 through the agent's call chain (``OpenAICompatible.complete`` ->
   ``CallCache``), the path an agent's repeated request takes.
2. A replayed hierarchical run: the two-agent team of bench/team_success_under_errors.py (lead
   plans, delegates to a worker, reviews, answers: four model calls) run `--runs` times through
   the local runner of ``hive run`` against the scripted model, without and with spec.cache
   (deterministicModel, L3 in the Redis). Each model call that reaches the model waits
   `--model-latency-ms` (a ChaosExperiment latency fault on the model, the fault injector's
   real path next to the transport), standing in for a real model's answer time. Prints model
   calls made and saved, and the wall time of the runs.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console
from tests.scripted_model import Script, scripted_model
from tests.support import redis_server

from hive.api.agentteam import AgentTeamSpec, RunOutcome
from hive.api.chaos import ChaosExperimentSpec
from hive.cli import runteam
from hive.cli.chaosrun import LocalChaos
from hive.runtime.cache.levels import DiskLevel, Level, MemoryLevel, RedisLevel
from hive.runtime.cache.middleware import CallCache
from hive.runtime.cache.multilevel import MultiLevelCache
from hive.runtime.models import OpenAICompatible
from hive.runtime.resilience.calls import Chain
from hive.settings import get_settings

VALUE = os.urandom(512).hex().encode()  # 1 KiB


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def hit_us(level: Level, lookups: int) -> list[float]:
    cache = MultiLevelCache([level])
    await cache.set("key", VALUE, 600)
    took = []
    for _ in range(lookups):
        started = time.perf_counter_ns()
        found = await cache.get("key")
        took.append((time.perf_counter_ns() - started) / 1000)
        assert found is not None
    await cache.close()
    return took


async def model_hit_us(lookups: int) -> list[float]:
    with scripted_model([{"content": "cached"}]) as served:
        cache = CallCache(MultiLevelCache([MemoryLevel()]))
        model = OpenAICompatible(served.url, "m", chain=Chain((cache,)))
        ask = [{"role": "user", "content": "the same question " * 20}]
        await model.complete(ask, temperature=0)
        took = []
        for _ in range(lookups):
            started = time.perf_counter_ns()
            reply = await model.complete(ask, temperature=0)
            took.append((time.perf_counter_ns() - started) / 1000)
            assert reply.metadata["cache"]["level"] == "l1"
        await model.aclose()
    return took


async def levels(lookups: int, redis_url: str, folder: Path) -> None:
    print(f"hit latency, {lookups} lookups of a {len(VALUE)} B value (µs)")
    print(f"{'level':<44} {'p50':>8} {'p99':>8}")
    rows = [
        ("L1 memory (cachetools)", await hit_us(MemoryLevel(), lookups)),
        ("L2 disk (diskcache)", await hit_us(DiskLevel(str(folder / "l2")), lookups)),
        ("L3 Redis (loopback)", await hit_us(RedisLevel(redis_url, "bench:"), lookups)),
        ("model call answered by L1 (chain + decode)", await model_hit_us(lookups)),
    ]
    for label, took in rows:
        print(f"{label:<44} {quantile(took, 0.5):>8.1f} {quantile(took, 0.99):>8.1f}")


PLAN = {"subtasks": [{"description": "Name one risk of running agent code", "capabilities": []}]}


def team(endpoint: str, cached: bool) -> AgentTeamSpec:
    spec: dict[str, object] = {
        "goal": "Say why agent-written code should run in a sandbox.",
        "pattern": "hierarchical",
        "model": {"name": "primary", "endpoint": endpoint},
        "delegation": {"maxDepth": 2, "qualityThreshold": 0.6, "maxRevisions": 1},
        "agents": [
            {"name": "lead", "role": "senior", "subordinates": ["worker"]},
            {"name": "worker", "role": "junior"},
        ],
    }
    if cached:
        spec["cache"] = {"deterministicModel": True}
    return AgentTeamSpec.model_validate(spec)


def latency(ms: int) -> LocalChaos:
    fault = {"type": "latency", "target": "llm", "latencyMs": ms, "probability": 1.0}
    spec = {"selector": {"team": "bench", "mode": "all"}, "faults": [fault], "duration": "30m"}
    return LocalChaos("model-latency", ChaosExperimentSpec.model_validate(spec))


async def replay(runs: int, cached: bool, latency_ms: int) -> tuple[int, float, int]:
    """(model calls that reached the model, wall seconds, runs that succeeded)."""
    lead: list[dict[str, Any]] = [
        {"when": "Split the task", "json": PLAN},
        {"when": "You gave worker", "json": {"score": 0.9, "feedback": ""}},
        {"when": "final answer", "content": "Agent code can read secrets; sandbox it."},
    ]
    script: Script = {
        "lead": lead * 2 * runs,
        "*": [{"content": "It can read secrets."}] * 2 * runs,
    }
    succeeded = 0
    with scripted_model(script) as served:
        spec = team(served.url, cached)
        started = time.perf_counter()
        for _ in range(runs):
            result = await runteam.run_team(
                spec,
                None,
                endpoint=served.url,
                model_name=None,
                approve="auto",
                live=False,
                console=Console(file=io.StringIO(), width=120),
                chaos=latency(latency_ms) if latency_ms else None,
            )
            succeeded += result.outcome is RunOutcome.SUCCEEDED
        return len(served.requests), time.perf_counter() - started, succeeded


async def hierarchical(runs: int, latency_ms: int) -> None:
    print(
        f"\na replayed 2-agent hierarchical run, {runs} times, each model call "
        f"{latency_ms} ms (caches: L1 + L2 + L3 Redis)"
    )
    print(f"{'configuration':<16} {'model calls':>12} {'saved':>6} {'wall':>8} {'succeeded':>10}")
    plain_calls, plain_s, plain_ok = await replay(runs, False, latency_ms)
    cached_calls, cached_s, cached_ok = await replay(runs, True, latency_ms)
    print(f"{'no cache':<16} {plain_calls:>12} {0:>6} {plain_s:>7.2f}s {plain_ok:>10}")
    saved = plain_calls - cached_calls
    print(f"{'spec.cache':<16} {cached_calls:>12} {saved:>6} {cached_s:>7.2f}s {cached_ok:>10}")
    print(
        f"\nmodel calls saved {saved / plain_calls:.0%}, wall time "
        f"{plain_s:.2f}s -> {cached_s:.2f}s ({plain_s / cached_s:.1f}x)"
    )


async def main(lookups: int, runs: int, latency_ms: int) -> None:
    logging.disable(logging.WARNING)
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp, redis_server(Path(tmp)) as redis_url:
        await levels(lookups, redis_url, Path(tmp))
        os.environ["HIVE_AGENT__ERRORS_REDIS_URL"] = redis_url
        os.environ["HIVE_AGENT__CACHE_DIR"] = str(Path(tmp) / "runs")
        get_settings.cache_clear()
        await hierarchical(runs, latency_ms)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lookups", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--model-latency-ms", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(main(args.lookups, args.runs, args.model_latency_ms))
