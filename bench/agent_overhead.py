"""Orchestration overhead per agent step, model time excluded: Hive's agent loop beside LangGraph.

    python bench/agent_overhead.py [--runs 200] [--steps 10] [--warmup 20] [--seed 1]

Both frameworks run the same ReAct loop (model -> tool -> model ... -> final answer) against
the same scripted OpenAI chat-completions server (bench/_scripted_server.py, its own process on
127.0.0.1), which answers every request at once: `--steps - 1` calls of a trivial `add` tool,
then the answer "done". A step is one model request plus the tool call its reply asks for.

  hive        Agent(model=OpenAICompatible(...), tools=ToolRegistry.of([Tool("add", ...)]))
              .run(task), as shipped: one kept-open httpx client, events on the bus, budgets,
              argument validation with JSON Schema.
  langgraph   StateGraph(MessagesState): a "model" node awaiting ChatOpenAI(...).bind_tools(
              [add]).ainvoke(messages), a ToolNode([add]), tools_condition between them;
              compiled once, no checkpointer, graph.ainvoke(...).
  raw         the baseline: the same number of POSTs, each body the growing conversation in
              Hive's shape with the tool schema, sent with one httpx.AsyncClient kept open for
              the whole benchmark (one kept-alive connection, as ChatOpenAI's client keeps), the
              reply JSON-decoded; no tool, no framework.

Every repetition runs each of these once, in a shuffled order, in one asyncio event loop, after
a gc.collect(); the time of a whole run (perf_counter around the await) is divided by the steps
to give one per-step figure per run. Reported per client: p50 and p99 of those figures over
`--runs` repetitions (after `--warmup` untimed ones), and the overhead per step: per repetition,
the client's per-step time minus the raw client's in the same repetition (paired), then p50 and
p99 of those differences. The server's handler time per request (body read, JSON decode, reply,
JSON encode) is measured in the server and reported per client; it is part of every client's
figure, the baseline's included, so the subtraction takes it out along with the loopback HTTP
round trip. Also printed: import time and peak RSS of a fresh interpreter importing each
framework, and tracemalloc's peak of Python allocations during one run of each.

Columns: p50 / p99 per step; "ovh" the overhead per step over raw; "srv" the server's handler
time per request; "req B" the mean request body; "peak KiB" tracemalloc's peak for one run.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from importlib import metadata
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

from hive.runtime.agent import Agent, Budget, Outcome
from hive.runtime.models import OpenAICompatible
from hive.runtime.tools import Tool, ToolRegistry

HERE = Path(__file__).resolve().parent
SYSTEM = "You are a careful, capable agent. Use tools when they help."
TASK = "Add the numbers, one call at a time, then say done."
ADD_PARAMETERS = {
    "type": "object",
    "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
    "required": ["a", "b"],
}
ADD_DESCRIPTION = "Add two integers."
CLIENTS = ("hive", "langgraph", "raw")
IMPORTS = {
    "nothing": "pass",
    "hive": "import hive.runtime.agent, hive.runtime.models, hive.runtime.tools",
    "langgraph": (
        "import langgraph.graph, langgraph.prebuilt, langchain_openai, langchain_core.tools"
    ),
}

Run = Callable[[], Awaitable[None]]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def start_server(tool_calls: int) -> tuple[subprocess.Popen[str], str]:
    server = subprocess.Popen(
        [sys.executable, str(HERE / "_scripted_server.py"), "--tool-calls", str(tool_calls)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    url = server.stdout.readline().strip()
    if not url.startswith("http://"):
        server.kill()
        raise SystemExit("the scripted server did not start")
    return server, url


def hive_run(url: str, steps: int) -> Run:
    label = "hive"

    async def add(a: int, b: int) -> int:
        return a + b

    agent = Agent(
        name="bench",
        model=OpenAICompatible(base_url=url, model=label, api_key="x"),
        tools=ToolRegistry.of([Tool("add", ADD_DESCRIPTION, ADD_PARAMETERS, add)]),
        system_prompt=SYSTEM,
        budget=Budget(max_steps=steps),
    )

    async def run() -> None:
        result = await agent.run(TASK)
        if result.outcome is not Outcome.FINISHED or result.output != "done":
            raise RuntimeError(f"{label}: {result.outcome} {result.error}")
        if result.steps != steps or result.tool_calls != steps - 1:
            raise RuntimeError(f"{label}: {result.steps} steps, {result.tool_calls} tool calls")

    return run


def langgraph_run(url: str, steps: int) -> Run:
    @tool(description=ADD_DESCRIPTION)
    async def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    model = ChatOpenAI(base_url=url, api_key="x", model="langgraph").bind_tools([add])

    async def call_model(state: MessagesState) -> dict[str, Any]:
        return {"messages": [await model.ainvoke(state["messages"])]}

    builder = StateGraph(MessagesState)
    builder.add_node("model", call_model)
    builder.add_node("tools", ToolNode([add]))
    builder.add_edge(START, "model")
    builder.add_conditional_edges("model", tools_condition)
    builder.add_edge("tools", "model")
    graph = builder.compile()
    config: Any = {"recursion_limit": 2 * steps + 1}

    async def run() -> None:
        state = await graph.ainvoke(
            {"messages": [SystemMessage(SYSTEM), HumanMessage(TASK)]}, config
        )
        messages = state["messages"]
        tools_called = sum(1 for m in messages if m.type == "tool")
        if messages[-1].content != "done" or tools_called != steps - 1:
            raise RuntimeError(f"langgraph: ended with {messages[-1]!r}, {tools_called} tools")

    return run


def raw_run(url: str, steps: int, kept: httpx.AsyncClient) -> Run:
    """`steps` POSTs carrying the conversation as Hive sends it, through one kept-open client
    (one connection for the whole benchmark); no tool is run."""
    label = "raw"
    schema = [Tool("add", ADD_DESCRIPTION, ADD_PARAMETERS, _never).schema()]

    async def run() -> None:
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": TASK},
        ]
        message: dict[str, Any] = {}
        for _ in range(steps):
            body = {"model": label, "messages": messages, "tools": schema}
            if kept is None:
                async with httpx.AsyncClient(base_url=url) as client:
                    response = await client.post("/chat/completions", json=body)
            else:
                response = await kept.post("/chat/completions", json=body)
            message = response.json()["choices"][0]["message"]
            for call in message.get("tool_calls") or []:
                messages = [
                    *messages,
                    {"role": "assistant", "content": None, "tool_calls": [call]},
                    {"role": "tool", "tool_call_id": call["id"], "content": "1"},
                ]
        if message.get("content") != "done":
            raise RuntimeError(f"{label}: ended with {message!r}")

    return run


async def _never(**_: Any) -> None:
    raise AssertionError("the raw baseline runs no tool")


async def measure(
    runs: dict[str, Run], repetitions: int, warmup: int, steps: int, seed: int
) -> dict[str, list[float]]:
    """Per-step seconds of each repetition, per client, in shuffled order per repetition."""
    order = list(runs)
    shuffle = random.Random(seed).shuffle  # noqa: S311 (an order, not a secret)
    for _ in range(warmup):
        for name in order:
            await runs[name]()
    per_step: dict[str, list[float]] = {name: [] for name in runs}
    for repetition in range(repetitions):
        shuffle(order)
        for name in order:
            gc.collect()
            started = time.perf_counter()
            await runs[name]()
            per_step[name].append((time.perf_counter() - started) / steps)
        if (repetition + 1) % max(1, repetitions // 10) == 0:
            medians = "  ".join(
                f"{name} {statistics.median(per_step[name]) * 1e6:.0f}us" for name in CLIENTS
            )
            print(f"  {repetition + 1}/{repetitions}: median per step  {medians}", flush=True)
    return per_step


async def peak_allocations(runs: dict[str, Run]) -> dict[str, int]:
    """tracemalloc's peak of Python allocations during one run of each client (bytes)."""
    peaks = {}
    for name, run in runs.items():
        gc.collect()
        tracemalloc.start()
        await run()
        peaks[name] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peaks


def import_cost(statement: str, rounds: int) -> tuple[float, float]:
    """Median seconds to run `statement` in a fresh interpreter, and its peak RSS in MiB.

    The RSS is /proc/self/status's VmHWM (Linux): getrusage's ru_maxrss would be at least the
    parent's, which it keeps across exec.
    """
    code = (
        "import time\n"
        "started = time.perf_counter()\n"
        f"{statement}\n"
        "elapsed = time.perf_counter() - started\n"
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
        "print(elapsed, int(hwm.split()[1]) / 1024)\n"
    )
    seconds, rss = [], []
    for _ in range(rounds):
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.split()
        seconds.append(float(out[0]))
        rss.append(float(out[1]))
    return statistics.median(seconds), statistics.median(rss)


async def bench(
    url: str, args: argparse.Namespace
) -> tuple[dict[str, list[float]], dict[str, dict[str, list[int]]], dict[str, int]]:
    """Timings, the server's records of them, and peak allocations, all in one event loop."""
    async with httpx.AsyncClient(base_url=url) as kept:
        runs = {
            "hive": hive_run(url, args.steps),
            "langgraph": langgraph_run(url, args.steps),
            "raw": raw_run(url, args.steps, kept),
        }
        per_step = await measure(runs, args.runs, args.warmup, args.steps, args.seed)
        handled = server_stats(url)
        peaks = await peak_allocations(runs)
    server_stats(url)  # clear what the allocation runs left there
    return per_step, handled, peaks


def server_stats(url: str) -> dict[str, dict[str, list[int]]]:
    base = url.removesuffix("/v1")
    data: dict[str, dict[str, list[int]]] = httpx.get(f"{base}/stats").json()
    return data


def versions() -> str:
    names = ("langgraph", "langchain-core", "langchain-openai", "openai", "httpx", "pydantic")
    return ", ".join(f"{n} {metadata.version(n)}" for n in names)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=200, help="timed repetitions")
    parser.add_argument("--steps", type=int, default=10, help="model requests per run")
    parser.add_argument("--warmup", type=int, default=20, help="untimed repetitions first")
    parser.add_argument("--seed", type=int, default=1, help="for the order within repetitions")
    parser.add_argument("--import-rounds", type=int, default=5, help="0 skips import timing")
    args = parser.parse_args()
    if args.steps < 2:
        parser.error("--steps must be at least 2 (one tool call and the answer)")

    # LangSmith tracing would add network calls to every LangChain run; make sure it is off.
    for name in ("LANGSMITH_TRACING", "LANGCHAIN_TRACING_V2", "LANGCHAIN_TRACING"):
        os.environ[name] = "false"
    print(f"python {sys.version.split()[0]}; {versions()}", flush=True)
    server, url = start_server(args.steps - 1)
    try:
        print(
            f"server {url}; {args.warmup} warm-up + {args.runs} timed repetitions of "
            f"{args.steps} steps ({args.steps - 1} tool calls + the answer) per client",
            flush=True,
        )
        per_step, handled, peaks = asyncio.run(bench(url, args))
    finally:
        server.terminate()
        server.wait(10)

    expected = (args.warmup + args.runs) * args.steps
    for name in CLIENTS:
        seen = len(handled.get(name, {}).get("handler_ns", []))
        if seen != expected:
            raise SystemExit(f"{name}: the server saw {seen} requests, expected {expected}")

    baseline = per_step["raw"]
    rows = []
    for name in CLIENTS:
        values = per_step[name]
        overhead = [v - b for v, b in zip(values, baseline, strict=True)]
        handler = [ns / 1e3 for ns in handled[name]["handler_ns"]]
        sizes = handled[name]["request_bytes"]
        rows.append(
            (
                name,
                percentile(values, 0.5) * 1e6,
                percentile(values, 0.99) * 1e6,
                percentile(overhead, 0.5) * 1e6,
                percentile(overhead, 0.99) * 1e6,
                percentile(handler, 0.5),
                percentile(handler, 0.99),
                statistics.mean(sizes),
                peaks[name] / 1024,
            )
        )
    print()
    print(
        f"per step, microseconds, {args.runs} runs x {args.steps} steps "
        f"(overhead = client - raw, paired per repetition)"
    )
    header = (
        f"{'client':<11} {'p50':>8} {'p99':>8} {'ovh p50':>8} {'ovh p99':>8} "
        f"{'srv p50':>8} {'srv p99':>8} {'req B':>7} {'peak KiB':>9}"
    )
    print(header)
    print("-" * len(header))
    for name, p50, p99, o50, o99, s50, s99, size, peak in rows:
        print(
            f"{name:<11} {p50:>8.0f} {p99:>8.0f} {o50:>8.0f} {o99:>8.0f} "
            f"{s50:>8.0f} {s99:>8.0f} {size:>7.0f} {peak:>9.0f}"
        )
    by_name = {row[0]: row for row in rows}
    lang = by_name["langgraph"]
    print()
    row = by_name["hive"]
    print(
        f"LangGraph / Hive: step time p50 {lang[1] / row[1]:.2f}x, "
        f"p99 {lang[2] / row[2]:.2f}x; overhead p50 {lang[3] / row[3]:.2f}x, "
        f"p99 {lang[4] / row[4]:.2f}x"
    )
    if args.import_rounds:
        print()
        for name, statement in IMPORTS.items():
            seconds, rss = import_cost(statement, args.import_rounds)
            print(
                f"import {name}: {seconds * 1e3:.0f} ms, peak RSS {rss:.0f} MiB "
                f"(fresh interpreter, median of {args.import_rounds})",
                flush=True,
            )


if __name__ == "__main__":
    main()
