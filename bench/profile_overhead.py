"""What recording a run's profile costs: per agent step, and to build the profile at the end.

    python bench/profile_overhead.py [--steps 2000] [--rounds 15]

An agent step publishes a model-called event and a tool-called event on the team's bus inside
a task (`current_task` set, as a member sets it). Each round publishes `--steps` such steps on a
bus without a profiler and on one with `hive.runtime.profiling.Profiler` subscribed (the order
alternating between rounds); the difference per step is what recording costs. Then it builds
the profile of the recorded run (tasks, agents, steps, critical path, samples) and writes its
speedscope JSON and flame graph, timing each. Prints medians over the rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from hive.runtime.events import Event, EventBus, EventKind, current_task
from hive.runtime.profiling import Profiler, flamegraph_svg, speedscope


async def steps(bus: EventBus, count: int, agents: int = 4) -> float:
    """Seconds to publish `count` agent steps spread over `agents` tasks."""
    for i in range(agents):
        token = current_task.set(f"task-{i}")
        await bus.publish(
            Event(EventKind.TASK_STARTED, f"agent-{i}", {"task": "work", "task_id": f"task-{i}"})
        )
        current_task.reset(token)
    started = time.perf_counter()
    for n in range(count):
        i = n % agents
        token = current_task.set(f"task-{i}")
        await bus.publish(
            Event(
                EventKind.MODEL_CALLED,
                f"agent-{i}",
                {"step": n, "tokens": 15 * n, "duration_ms": 3.0, "tool_calls": ["search"]},
            )
        )
        await bus.publish(
            Event(EventKind.TOOL_CALLED, f"agent-{i}", {"tool": "search", "duration_ms": 1.0})
        )
        current_task.reset(token)
    elapsed = time.perf_counter() - started
    for i in range(agents):
        token = current_task.set(f"task-{i}")
        await bus.publish(Event(EventKind.TASK_FINISHED, f"agent-{i}", {"task_id": f"task-{i}"}))
        current_task.reset(token)
    return elapsed


async def main(count: int, rounds: int) -> None:
    plain: list[float] = []
    profiled: list[float] = []
    builds: list[float] = []
    exports: list[float] = []
    for round_ in range(rounds):
        for with_profiler in (round_ % 2 == 0, round_ % 2 == 1):
            bus = EventBus()
            profiler = Profiler()
            if with_profiler:
                bus.subscribe(profiler)
            seconds = await steps(bus, count)
            (profiled if with_profiler else plain).append(seconds / count * 1e6)
            if with_profiler:
                started = time.perf_counter()
                profile = profiler.build()
                builds.append((time.perf_counter() - started) * 1000)
                started = time.perf_counter()
                speedscope(profile)
                flamegraph_svg(profile)
                exports.append((time.perf_counter() - started) * 1000)
    base, recorded = statistics.median(plain), statistics.median(profiled)
    print(f"{count} agent steps (2 events each), median of {rounds} rounds")
    print(f"  publishing a step, no profiler    {base:8.2f} µs")
    print(f"  publishing a step, profiler on    {recorded:8.2f} µs")
    print(f"  recording cost per step           {recorded - base:8.2f} µs")
    print(f"  building the profile              {statistics.median(builds):8.2f} ms")
    print(f"  speedscope JSON + flame graph     {statistics.median(exports):8.2f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=15)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.steps, arguments.rounds))
