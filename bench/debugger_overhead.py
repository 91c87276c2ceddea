"""What an attached but idle debugger costs a run, per event.

    python bench/debugger_overhead.py [--events 200000] [--rounds 5]

An *event* here is each thing the debugger sees: a team event published on the run's bus
(model-called, tool-called, ...) and a call through the agent's chain (a model call, a tool
call, alternating). Absent: a bus without the debugger's subscriber, a chain without its
middleware (empty: the chain calls the transport directly). Idle:
the debugger attached (hive.runtime.debug.hooks) with no breakpoint set, so it only records
the stop point. The transports answer at once, so what is timed is Hive's own work. Absent and
idle alternate in rounds within one run; the best round of each is kept (the least disturbed
by the machine's other work). Prints ns per event for both and the difference (goal: ≤ 5 µs),
and what a do-nothing middleware adds to the empty chain (the chain's own share). Subordinate:
a subordinate's pod of a debugging team (hive.runtime.debug.remote) working on a task that no
debugged run marked: its calls do not ask the coordinator.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from typing import Any

from hive.runtime.debug.debugger import Debugger
from hive.runtime.debug.hooks import DebugHooks
from hive.runtime.debug.remote import SubordinateStops
from hive.runtime.events import Event, EventBus, EventKind
from hive.runtime.models import Reply
from hive.runtime.resilience.calls import Call, CallKind, Chain, Proceed

REPLY = Reply("x", [], "stop", 120, 30)
EVENT_DATA = {"step": 1, "tokens": 150, "duration_ms": 1.0, "tool_calls": []}


def model_call() -> Call:
    return Call(CallKind.MODEL, "smollm2", "complete", "lead", {"messages": []})


async def answer() -> Reply:
    return REPLY


async def tool_result() -> str:
    return "ok"


async def events(bus: EventBus, n: int) -> float:
    started = time.perf_counter_ns()
    for _ in range(n):
        await bus.publish(Event(EventKind.MODEL_CALLED, "lead", EVENT_DATA))
    return (time.perf_counter_ns() - started) / n


async def calls(chain: Chain, n: int) -> float:
    tool = Call(CallKind.TOOL, "search", "call", "lead")
    started = time.perf_counter_ns()
    for i in range(n):
        if i % 2:
            await chain.run(tool, tool_result)
        else:
            await chain.run(model_call(), answer)
    return (time.perf_counter_ns() - started) / n


async def passing(call: Call, proceed: Proceed[Any]) -> Any:
    """A middleware that does nothing: what one more middleware costs the chain itself."""
    return await proceed()


async def measure(n: int, rounds: int) -> dict[str, dict[str, float]]:
    best: dict[str, dict[str, float]] = {"absent": {}, "idle": {}, "passing": {}, "subordinate": {}}
    for _ in range(rounds):
        for mode in best:
            bus, chain = EventBus(), Chain()  # a run keeps its last 10,000 events
            if mode == "idle":
                hooks = DebugHooks(Debugger())
                hooks.attach(bus)
                chain = Chain((hooks,), "lead")
            elif mode == "passing":
                chain = Chain((passing,), "lead")
            elif mode == "subordinate":  # bound, and never asked: no task is marked
                chain = Chain(
                    (SubordinateStops("lead", "boss", 30.0, "http://127.0.0.1:9"),), "lead"
                )
            for what in ("event", "call"):
                ns = await (events(bus, n) if what == "event" else calls(chain, n))
                best[mode][what] = min(best[mode].get(what, ns), ns)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    best = asyncio.run(measure(args.events, args.rounds))
    load = os.getloadavg()[0]
    print(f"debugger overhead, {args.events} events per round, best of {args.rounds} rounds")
    print(f"load average (1 min): {load:.2f}")
    print(f"{'what':<28}{'absent ns':>12}{'idle ns':>12}{'overhead ns':>14}")
    for what, label in (("event", "team event on the bus"), ("call", "call through the chain")):
        absent, idle = best["absent"][what], best["idle"][what]
        print(f"{label:<28}{absent:>12.0f}{idle:>12.0f}{idle - absent:>14.0f}")
    subordinate = best["subordinate"]["call"]
    absent_call = best["absent"]["call"]
    label = "subordinate's call, unmarked"
    print(f"{label:<28}{absent_call:>12.0f}{subordinate:>12.0f}{subordinate - absent_call:>14.0f}")
    passing = best["passing"]["call"] - best["absent"]["call"]
    print(f"(of the call's overhead, {passing:.0f} ns is the chain's own cost of any middleware)")
    worst = max(
        subordinate - absent_call, *(best["idle"][w] - best["absent"][w] for w in ("event", "call"))
    )
    verdict = "within" if worst <= 5000 else "OVER"
    print(f"worst overhead per event: {worst:.0f} ns ({verdict} the 5 µs goal)")


if __name__ == "__main__":
    main()
