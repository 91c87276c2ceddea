"""What tracing costs an agent per step, with spans batched to a real Jaeger.

    python bench/tracing_overhead.py [--steps 10000] [--pace-ms 1] [--otlp-endpoint URL]

One agent step, as the agent loop makes it (hive.runtime.agent): a model call and the tool call
it asked for, through the agent's call chain, and the step's events (model-called, tool-called)
on its event bus. The transports answer at once, so what is timed is Hive's own work. Tracing
off: the chain without the tracing middleware and no span subscriber (a pod without
HIVE_TRACING__OTLP_ENDPOINT). Tracing on: `TracedCalls` in the chain and `EventSpans` on the
bus with the agent's tracer (`Tracing.tracer`: lean spans under the run, see
hive.runtime.tracing.spans), spans batched (the SDK's BatchSpanProcessor) over OTLP/HTTP to a
real Jaeger, which this script starts on free loopback ports (`make testbin` builds it) unless
`--otlp-endpoint` names one. For comparison, the same with the SDK's own spans (the SDK's
tracer of the same provider). Off, on and SDK alternate in blocks within one run, so all see the
same machine; steps are paced (`--pace-ms`) as an agent's are by its model, so the exporter
drains its queue between them. Prints per-step p50/p90/p99 in µs and the p50 differences (goal:
≤ 50 µs), the load average, then checks that Jaeger received every span.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx

from hive.dev.tracing import DevJaeger
from hive.ports import free_port
from hive.runtime.events import Event, EventBus, EventKind
from hive.runtime.resilience.calls import Call, CallKind, Chain
from hive.runtime.tracing.calls import TracedCalls
from hive.runtime.tracing.events import EventSpans
from hive.runtime.tracing.runs import run_span, trace_id_of
from hive.runtime.tracing.setup import INSTRUMENTATION, tracing_from
from hive.settings import DevJaegerSettings, DevSettings, TracingSettings, get_settings

MODEL = Call(CallKind.MODEL, "smollm2", "complete", "lead", {"messages": []})
TOOL = Call(CallKind.TOOL, "search", "call", "lead")
REPLY = SimpleNamespace(
    prompt_tokens=120, completion_tokens=30, finish_reason="stop", content="x", tool_calls=[]
)
BLOCK = 500  # steps per block; off and on blocks alternate
SPANS_PER_STEP = 2  # chat and execute_tool (the call events have no spans of their own)


async def model() -> Any:
    return REPLY


async def tool() -> Any:
    return {"hits": 3}


async def steps(chain: Chain, bus: EventBus, count: int, pace_s: float) -> list[float]:
    clock = time.perf_counter_ns
    times = []
    for step in range(count):
        if pace_s:
            await asyncio.sleep(pace_s)  # an agent waits for its model between steps
        start = clock()
        await chain.run(MODEL, model)
        await bus.publish(Event(EventKind.MODEL_CALLED, "lead", {"step": step, "tokens": 150}))
        await chain.run(TOOL, tool)
        await bus.publish(Event(EventKind.TOOL_CALLED, "lead", {"tool": "search"}))
        times.append((clock() - start) / 1000)
    return times


def quantile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q * 100) - 1]


def started_jaeger(stack: ExitStack) -> DevJaeger:
    state = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hive-bench-jaeger-")))
    base = get_settings().dev
    ports = DevJaegerSettings(
        otlp_http_port=free_port(),
        query_port=free_port(),
        query_grpc_port=free_port(),
        health_port=free_port(),
    )
    jaeger = DevJaeger(DevSettings(state_dir=state, testbin_dir=base.testbin_dir, jaeger=ports))
    up = jaeger.up()
    stack.callback(jaeger.down)
    print(f"jaeger up in {up.seconds:.1f}s: OTLP {jaeger.otlp_endpoint}, query {jaeger.query_url}")
    return jaeger


def spans_held(query_url: str, trace_id: str, sent: int, timeout_s: float = 30) -> int:
    """How many spans of the trace Jaeger holds, once it holds `sent` (or after `timeout_s`)."""
    deadline = time.monotonic() + timeout_s
    held = 0
    while time.monotonic() < deadline and held < sent:
        data = httpx.get(f"{query_url}/api/traces/{trace_id}", timeout=30).json().get("data")
        held = len(data[0]["spans"]) if data else 0
        time.sleep(0.5)
    return held


async def main(count: int, endpoint: str | None, pace_s: float) -> None:
    with ExitStack() as stack:
        jaeger = None if endpoint else started_jaeger(stack)
        endpoint = endpoint or (jaeger.otlp_endpoint if jaeger else None)
        tracing = tracing_from(TracingSettings(otlp_endpoint=endpoint), "bench")
        assert tracing is not None
        off_chain, off_bus = Chain((), "lead"), EventBus(keep=100)
        on_chain, on_bus = Chain((TracedCalls(tracing.tracer),), "lead"), EventBus(keep=100)
        on_bus.subscribe(EventSpans(tracing.tracer))
        sdk_tracer = tracing.provider.get_tracer(INSTRUMENTATION)
        sdk_chain, sdk_bus = Chain((TracedCalls(sdk_tracer),), "lead"), EventBus(keep=100)
        sdk_bus.subscribe(EventSpans(sdk_tracer))
        variants = {
            "off": (off_chain, off_bus),
            "on": (on_chain, on_bus),
            "on, SDK spans": (sdk_chain, sdk_bus),
        }
        times: dict[str, list[float]] = {name: [] for name in variants}
        with run_span(tracing.tracer, "bench", "default", "lead", 1) as root:
            trace_id = trace_id_of(root)
            for chain, bus in variants.values():  # warm up each
                await steps(chain, bus, BLOCK, pace_s)
            for _ in range(max(1, count // BLOCK)):
                for name, (chain, bus) in variants.items():
                    times[name] += await steps(chain, bus, BLOCK, pace_s)
        load = os.getloadavg()
        exported = time.perf_counter()
        tracing.flush(60)
        print(f"flushed the last spans in {(time.perf_counter() - exported) * 1000:.0f} ms")
        for name, values in times.items():
            print(
                f"tracing {name:13}: {len(values)} steps, p50 {quantile(values, 0.5):7.1f} µs, "
                f"p90 {quantile(values, 0.9):7.1f} µs, p99 {quantile(values, 0.99):7.1f} µs"
            )
        off = quantile(times["off"], 0.5)
        added = quantile(times["on"], 0.5) - off
        print(
            f"added per step (p50): {added:.1f} µs (goal ≤ 50 µs), {SPANS_PER_STEP} spans: "
            f"{added / SPANS_PER_STEP:.1f} µs per span (a delegation, review or vote adds one); "
            f"with the SDK's spans {quantile(times['on, SDK spans'], 0.5) - off:.1f} µs"
        )
        print(f"load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
        if jaeger is not None and trace_id is not None:
            traced = len(times["on"]) + len(times["on, SDK spans"]) + 2 * BLOCK
            sent = traced * SPANS_PER_STEP + 1
            held = await asyncio.to_thread(spans_held, jaeger.query_url, trace_id, sent)
            print(f"jaeger holds {held} of the {sent} spans of trace {trace_id}")
        tracing.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--otlp-endpoint", help="Send spans here instead of a Jaeger of its own.")
    parser.add_argument(
        "--pace-ms",
        type=float,
        default=1.0,
        help="Pause between steps, not timed (an agent's steps wait for its model; 0: back to "
        "back, faster than the exporter drains its queue, which then drops spans).",
    )
    args = parser.parse_args()
    asyncio.run(main(args.steps, args.otlp_endpoint, args.pace_ms / 1000))
