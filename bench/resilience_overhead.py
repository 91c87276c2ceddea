"""What resilience costs an agent's call, and how fast a breaker sees an outage and its end.

    python bench/resilience_overhead.py [--calls 200000] [--rate 4]

1. Overhead: the same call (a transport that returns at once) through an empty chain and
   through the chain an agent pod ships (error recorder + breakers + the fault hook with no
   fault in force); per-call wall time, p50 and p99, in µs. Goal: ≤ 5 µs p50 added.
2. Outage: a dependency called `--rate` times a second through the shipped chain at the default
   settings goes down, then comes back once its breaker is open: time from the first failure
   to the breaker opening (goal ≤ 2 s) and from the dependency's return to the breaker closing
   (goal ≤ open duration + one probe).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

from hive.api.agentteam import BreakerState, ResilienceSpec
from hive.errors import Unavailable
from hive.runtime.resilience.calls import EMPTY, Call, CallKind, Chain
from hive.runtime.resilience.chain import ChainParts
from hive.runtime.resilience.faults import FaultInjector
from hive.runtime.resilience.learning import MemoryLearningStore
from hive.runtime.resilience.wiring import Resilience

CALL = Call(CallKind.MODEL, "smollm2", "complete", "lead")


def shipped() -> tuple[Chain, Resilience]:
    resilience = Resilience.of(ResilienceSpec(), MemoryLearningStore())
    parts = ChainParts(resilience.errors, resilience.breakers, FaultInjector())
    return parts.chain("lead"), resilience


async def per_call_us(chain: Chain, calls: int) -> list[float]:
    async def transport() -> int:
        return 1

    times = []
    clock = time.perf_counter_ns
    for _ in range(calls):
        start = clock()
        await chain.run(CALL, transport)
        times.append((clock() - start) / 1000)
    return times


def quantile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q * 100) - 1]


async def overhead(calls: int) -> None:
    chain, _ = shipped()
    await per_call_us(EMPTY, calls // 10)  # warm up
    await per_call_us(chain, calls // 10)
    bare = await per_call_us(EMPTY, calls)
    full = await per_call_us(chain, calls)
    print(f"overhead per call ({calls} calls, µs)")
    print(f"  bare chain     p50 {quantile(bare, 0.5):6.2f}  p99 {quantile(bare, 0.99):6.2f}")
    print(f"  shipped chain  p50 {quantile(full, 0.5):6.2f}  p99 {quantile(full, 0.99):6.2f}")
    print(f"  added          p50 {quantile(full, 0.5) - quantile(bare, 0.5):6.2f}")


async def outage(rate: float) -> None:
    chain, resilience = shipped()
    spec = ResilienceSpec().breaker
    down = False
    marks: dict[str, float] = {}

    async def dependency() -> str:
        if down:
            marks.setdefault("first failure", time.monotonic())
            raise Unavailable("model 'smollm2': HTTP 503 after 1 attempts")
        return "ok"

    def state() -> BreakerState:
        return resilience.breakers.breaker(CALL.key).state

    async def call() -> Any:
        try:
            return await chain.run(CALL, dependency)
        except Unavailable:
            return None

    interval = 1 / rate
    for _ in range(20):  # healthy traffic first
        await call()
        await asyncio.sleep(interval)
    down = True
    while state() is not BreakerState.OPEN:
        await call()
        await asyncio.sleep(interval)
    marks["open"] = time.monotonic()
    down = False
    marks["back"] = time.monotonic()
    while state() is not BreakerState.CLOSED:
        await call()
        await asyncio.sleep(interval)
    marks["closed"] = time.monotonic()
    print(
        f"outage at {rate:g} calls/s, defaults (threshold {spec.failure_rate_threshold:.0%} of "
        f"{spec.window_size}, minimum {spec.minimum_calls}, open {spec.open_duration_seconds:g}s)"
    )
    print(f"  detect (first failure -> open)  {marks['open'] - marks['first failure']:5.2f} s")
    print(f"  recover (back -> closed)        {marks['closed'] - marks['back']:5.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--rate", type=float, default=4.0)
    args = parser.parse_args()
    asyncio.run(overhead(args.calls))
    asyncio.run(outage(args.rate))


if __name__ == "__main__":
    main()
