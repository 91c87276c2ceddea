"""Orchestration overhead per agent step, model time excluded: Hive's agent loop beside LangGraph,
and where LangGraph's overhead goes (HTTP client stack or graph).

    python bench/agent_overhead.py [--runs 200] [--steps 10] [--warmup 20] [--seed 1]
                                   [--json FILE]

Every row runs the same ReAct loop (model -> tool -> model ... -> final answer) of `--steps`
steps: `--steps - 1` calls of a trivial `add` tool, then the answer "done". A step is one model
request plus the tool call its reply asks for. The HTTP rows talk to the same scripted OpenAI
chat-completions server (bench/_scripted_server.py, its own process on 127.0.0.1), which answers
every request at once; the in-process rows call a scripted model in the benchmark's own process,
with the same replies and no HTTP at all.

Over HTTP, as shipped:
  raw         the baseline: the same number of POSTs, each body the growing conversation in
              Hive's shape with the tool schema, sent with one httpx.AsyncClient kept open for
              the whole benchmark (one kept-alive connection, as every client below keeps), the
              reply JSON-decoded; no tool, no framework.
  hive        Agent(model=OpenAICompatible(...), tools=ToolRegistry.of([Tool("add", ...)]))
              .run(task), as shipped: one kept-open httpx client, events on the bus, budgets,
              argument validation with JSON Schema.
  langgraph   LangGraph as its documentation writes it: StateGraph(MessagesState), a "model"
              node awaiting ChatOpenAI(...).bind_tools([add]).ainvoke(messages), a
              ToolNode([add]), tools_condition between them; compiled once, no checkpointer,
              graph.ainvoke(...).

Over HTTP, one layer at a time (each a loop like raw's: request, append the reply and a tool
result "1", no tool run, no graph):
  hive-client   Hive's model client alone: OpenAICompatible.complete(messages, schemas).
  openai        the openai SDK alone: AsyncOpenAI().chat.completions.create(...) over the SDK's
                own HTTP client (httpx2, its fork of httpx), the reply parsed into the SDK's
                pydantic objects. ChatOpenAI sits on this SDK. Most of
                its cost is the SDK walking every message of the request against its TypedDicts
                (openai._utils._transform) before sending, so it grows with the conversation.
  chatopenai    LangChain's ChatOpenAI.bind_tools([add]).ainvoke(messages), no graph: LangChain
                messages, callbacks and conversion on top of the openai SDK.
  lg-hive       bare LangGraph with Hive's model client: StateGraph over a plain list of
                chat-completions dicts (operator.add), a "model" node awaiting
                OpenAICompatible.complete, a "tools" node running `add` on the JSON arguments,
                an async conditional edge between them (LangGraph runs a sync one, such as
                tools_condition, in a worker thread); compiled once, no checkpointer. The graph
                without LangChain, at its leanest, on the HTTP stack Hive ships.

In process, no HTTP (the same scripted model for both, its replies Hive `Reply`s):
  hive-inproc   Hive's Agent as shipped, with the scripted model as its `ChatModel` (the
                protocol Agent takes): the agent loop alone, events, budgets and validation in.
  lg-inproc     the bare LangGraph graph of lg-hive, its model node awaiting the scripted model
                and turning the Reply into a chat-completions dict: the graph alone, per node.

So, per step: openai - raw is the openai SDK's cost, chatopenai - openai is LangChain's
ChatOpenAI, langgraph - chatopenai the graph as usually written (MessagesState, ToolNode,
LangChain tools); hive-client - raw is Hive's model client, hive - hive-client Hive's agent loop,
lg-hive - hive-client a bare graph on Hive's client; hive-inproc and lg-inproc are those loops
with nothing else in them.

Every repetition runs each row once, in a shuffled order, in one asyncio event loop, after a
gc.collect(); the time of a whole run (perf_counter around the await) is divided by the steps to
give one per-step figure per run. Reported per row: p50 and p99 of those figures over `--runs`
repetitions (after `--warmup` untimed ones), and the overhead per step over raw: per repetition,
the row's per-step time minus the raw client's in the same repetition (paired), then p50 and p99
of those differences. The parts of the decomposition are paired the same way (each layer minus
the one below it, per repetition, then the p50), so they need not add up to the total's p50 to
the microsecond. The server's handler time per request (body read, JSON decode, reply, JSON
encode) is measured in the server and reported per row; it is part of every HTTP row's figure,
the baseline's included, so the subtraction takes it out along with the loopback HTTP round
trip. Also printed: import time and peak RSS of a fresh interpreter importing each framework,
and tracemalloc's peak of Python allocations during one run of each row.

Columns: p50 / p99 per step; "ovh" the overhead per step over raw (HTTP rows only); "srv" the
server's handler time per request; "req B" the mean request body; "peak KiB" tracemalloc's peak
for one run; "what" what the row measures.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import operator
import os
import random
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Annotated, Any, TypedDict

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import openai
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

from hive.runtime.agent import Agent, Budget, Outcome
from hive.runtime.models import Message, OpenAICompatible, Reply, ToolCall
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
# Each row, in the order printed, and what it measures.
WHAT = {
    "raw": "baseline: httpx POST + JSON decode, no framework",
    "hive": "Hive as shipped: Agent + OpenAICompatible + ToolRegistry",
    "langgraph": "LangGraph as documented: MessagesState, ChatOpenAI, ToolNode",
    "hive-client": "Hive's model client alone (no agent loop)",
    "openai": "openai SDK alone (what ChatOpenAI calls)",
    "chatopenai": "LangChain ChatOpenAI alone (no graph)",
    "lg-hive": "bare LangGraph graph, model node on Hive's client",
    "hive-inproc": "Hive's agent loop, in-process model, no HTTP",
    "lg-inproc": "bare LangGraph graph, in-process model, no HTTP",
}
CLIENTS = tuple(WHAT)
IN_PROCESS = ("hive-inproc", "lg-inproc")
OVER_HTTP = tuple(name for name in CLIENTS if name not in IN_PROCESS)
IMPORTS = {
    "nothing": "pass",
    "hive": "import hive.runtime.agent, hive.runtime.models, hive.runtime.tools",
    "langgraph": (
        "import langgraph.graph, langgraph.prebuilt, langchain_openai, langchain_core.tools"
    ),
    "langgraph.graph alone": "import langgraph.graph",
    "openai": "import openai",
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


async def add(a: int, b: int) -> int:
    return a + b


def add_tool() -> Tool:
    return Tool("add", ADD_DESCRIPTION, ADD_PARAMETERS, add)


def first_messages() -> list[Message]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": TASK}]


def with_tool_results(messages: list[Message], assistant: Message) -> list[Message]:
    """The conversation after `assistant`'s reply and a result "1" for each of its calls."""
    results = [
        {"role": "tool", "tool_call_id": call["id"], "content": "1"}
        for call in assistant.get("tool_calls") or []
    ]
    return [*messages, assistant, *results]


def as_message(reply: Reply) -> Message:
    """A Hive Reply as the chat-completions assistant message (as Hive's Agent writes it)."""
    message: Message = {"role": "assistant", "content": reply.content}
    if reply.tool_calls:
        message["tool_calls"] = [
            {
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
            }
            for c in reply.tool_calls
        ]
    return message


class ScriptedModel:
    """The scripted server's replies without the server: a Hive `ChatModel` in this process."""

    def __init__(self, tool_calls: int) -> None:
        self.tool_calls = tool_calls

    async def complete(
        self,
        messages: Sequence[Message],
        tools: Sequence[dict[str, Any]] | None = None,
        **extra: Any,
    ) -> Reply:
        done = sum(1 for m in messages if m.get("role") == "tool")
        if done < self.tool_calls:
            call = ToolCall(f"call-{done}", "add", {"a": done, "b": 1})
            return Reply(None, [call], "tool_calls", 10, 5)
        return Reply("done", [], "stop", 10, 5)


def check_transcript(label: str, messages: Sequence[Message], steps: int) -> None:
    tools_called = sum(1 for m in messages if m.get("role") == "tool")
    if messages[-1].get("content") != "done" or tools_called != steps - 1:
        raise RuntimeError(f"{label}: ended with {messages[-1]!r}, {tools_called} tools")


# Rows as shipped.


def hive_run(url: str | None, steps: int) -> Run:
    """Hive's Agent on OpenAICompatible at `url`, or on the in-process model when None."""
    label = "hive" if url else "hive-inproc"
    model = OpenAICompatible(base_url=url, model=label, api_key="x") if url else None
    agent = Agent(
        name="bench",
        model=model or ScriptedModel(steps - 1),
        tools=ToolRegistry.of([add_tool()]),
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


def raw_run(steps: int, kept: httpx.AsyncClient) -> Run:
    """`steps` POSTs carrying the conversation as Hive sends it, through one kept-open client
    (one connection for the whole benchmark); no tool is run."""
    label = "raw"
    schema = [add_tool().schema()]

    async def run() -> None:
        messages = first_messages()
        message: Message = {}
        for _ in range(steps):
            body = {"model": label, "messages": messages, "tools": schema}
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


# One layer at a time.


def hive_client_run(url: str, steps: int) -> Run:
    """Hive's model client in a loop like raw's: no agent, no tool run."""
    label = "hive-client"
    model = OpenAICompatible(base_url=url, model=label, api_key="x")
    schemas = ToolRegistry.of([add_tool()]).schemas()

    async def run() -> None:
        messages = first_messages()
        for _ in range(steps):
            reply = await model.complete(messages, schemas)
            messages = with_tool_results(messages, as_message(reply))
        check_transcript(label, messages, steps)

    return run


def openai_run(url: str, steps: int) -> Run:
    """The openai SDK in a loop like raw's: no LangChain, no tool run."""
    label = "openai"
    client = openai.AsyncOpenAI(base_url=url, api_key="x")
    schema: Any = [add_tool().schema()]

    async def run() -> None:
        messages: Any = first_messages()  # the SDK's TypedDicts, in Hive's plain dicts
        for _ in range(steps):
            completion = await client.chat.completions.create(
                model=label, messages=messages, tools=schema
            )
            reply = completion.choices[0].message
            assistant: Message = {"role": "assistant", "content": reply.content}
            if reply.tool_calls:
                assistant["tool_calls"] = [
                    {
                        "id": c.id,
                        "type": "function",
                        "function": {"name": c.function.name, "arguments": c.function.arguments},
                    }
                    for c in reply.tool_calls
                    if c.type == "function"
                ]
            messages = with_tool_results(messages, assistant)
        check_transcript(label, messages, steps)

    return run


def chatopenai_run(url: str, steps: int) -> Run:
    """LangChain's ChatOpenAI in a loop like raw's: no graph, no tool run."""
    label = "chatopenai"

    @tool(description=ADD_DESCRIPTION)
    async def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    model = ChatOpenAI(base_url=url, api_key="x", model=label).bind_tools([add])

    async def run() -> None:
        messages: list[BaseMessage] = [SystemMessage(SYSTEM), HumanMessage(TASK)]
        for _ in range(steps):
            reply = await model.ainvoke(messages)
            results = [ToolMessage("1", tool_call_id=c["id"]) for c in reply.tool_calls]
            messages = [*messages, reply, *results]
        tools_called = sum(1 for m in messages if m.type == "tool")
        if messages[-1].content != "done" or tools_called != steps - 1:
            raise RuntimeError(f"{label}: ended with {messages[-1]!r}, {tools_called} tools")

    return run


class BareState(TypedDict):
    messages: Annotated[list[Message], operator.add]


def bare_graph(
    steps: int, label: str, complete: Callable[[list[Message]], Awaitable[Reply]]
) -> Run:
    """LangGraph without LangChain: plain chat-completions dicts in the state, a model node
    awaiting `complete`, a tools node running `add`, a conditional edge between them."""

    async def call_model(state: BareState) -> dict[str, Any]:
        return {"messages": [as_message(await complete(state["messages"]))]}

    async def call_tools(state: BareState) -> dict[str, Any]:
        results = []
        for call in state["messages"][-1]["tool_calls"]:
            value = await add(**json.loads(call["function"]["arguments"]))
            results.append({"role": "tool", "tool_call_id": call["id"], "content": str(value)})
        return {"messages": results}

    async def route(state: BareState) -> str:  # async: LangGraph runs a sync one in a thread
        return "tools" if state["messages"][-1].get("tool_calls") else END

    builder = StateGraph(BareState)
    builder.add_node("model", call_model)
    builder.add_node("tools", call_tools)
    builder.add_edge(START, "model")
    builder.add_conditional_edges("model", route, ["tools", END])
    builder.add_edge("tools", "model")
    graph = builder.compile()
    config: Any = {"recursion_limit": 2 * steps + 1}

    async def run() -> None:
        state = await graph.ainvoke({"messages": first_messages()}, config)
        check_transcript(label, state["messages"], steps)

    return run


def lg_hive_run(url: str, steps: int) -> Run:
    model = OpenAICompatible(base_url=url, model="lg-hive", api_key="x")
    schemas = ToolRegistry.of([add_tool()]).schemas()

    async def complete(messages: list[Message]) -> Reply:
        return await model.complete(messages, schemas)

    return bare_graph(steps, "lg-hive", complete)


def lg_inproc_run(steps: int) -> Run:
    model = ScriptedModel(steps - 1)
    schemas = ToolRegistry.of([add_tool()]).schemas()

    async def complete(messages: list[Message]) -> Reply:
        return await model.complete(messages, schemas)

    return bare_graph(steps, "lg-inproc", complete)


# Measurement.


async def measure(
    runs: dict[str, Run], repetitions: int, warmup: int, steps: int, seed: int
) -> dict[str, list[float]]:
    """Per-step seconds of each repetition, per row, in shuffled order per repetition."""
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
            medians = " ".join(
                f"{name} {statistics.median(per_step[name]) * 1e6:.0f}" for name in CLIENTS
            )
            print(f"  {repetition + 1}/{repetitions}: p50 us/step {medians}", flush=True)
    return per_step


async def peak_allocations(runs: dict[str, Run]) -> dict[str, int]:
    """tracemalloc's peak of Python allocations during one run of each row (bytes)."""
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
    steps = args.steps
    async with httpx.AsyncClient(base_url=url) as kept:
        made: dict[str, Run] = {
            "raw": raw_run(steps, kept),
            "hive": hive_run(url, steps),
            "langgraph": langgraph_run(url, steps),
            "hive-client": hive_client_run(url, steps),
            "openai": openai_run(url, steps),
            "chatopenai": chatopenai_run(url, steps),
            "lg-hive": lg_hive_run(url, steps),
            "hive-inproc": hive_run(None, steps),
            "lg-inproc": lg_inproc_run(steps),
        }
        runs = {name: made[name] for name in CLIENTS}
        per_step = await measure(runs, args.runs, args.warmup, steps, args.seed)
        handled = server_stats(url)
        peaks = await peak_allocations(runs)
    server_stats(url)  # clear what the allocation runs left there
    return per_step, handled, peaks


def server_stats(url: str) -> dict[str, dict[str, list[int]]]:
    base = url.removesuffix("/v1")
    data: dict[str, dict[str, list[int]]] = httpx.get(f"{base}/stats").json()
    return data


def versions() -> dict[str, str]:
    names = ("langgraph", "langchain-core", "langchain-openai", "openai", "httpx", "pydantic")
    return {n: metadata.version(n) for n in names}


# Report.


def report(
    args: argparse.Namespace,
    per_step: dict[str, list[float]],
    handled: dict[str, dict[str, list[int]]],
    peaks: dict[str, int],
) -> dict[str, Any]:
    """Print the table and the decomposition; return the same figures (microseconds)."""
    steps = args.steps

    def paired(a: str, b: str) -> list[float]:
        return [x - y for x, y in zip(per_step[a], per_step[b], strict=True)]

    def part(a: str, b: str) -> float:
        """p50 over repetitions of a's per-step time minus b's, in microseconds."""
        return percentile(paired(a, b), 0.5) * 1e6

    rows: dict[str, dict[str, Any]] = {}
    for name in CLIENTS:
        values = per_step[name]
        row: dict[str, Any] = {
            "what": WHAT[name],
            "p50_us": percentile(values, 0.5) * 1e6,
            "p99_us": percentile(values, 0.99) * 1e6,
            "peak_kib": peaks[name] / 1024,
        }
        if name in OVER_HTTP:
            overhead = paired(name, "raw")
            handler = [ns / 1e3 for ns in handled[name]["handler_ns"]]
            row |= {
                "overhead_p50_us": percentile(overhead, 0.5) * 1e6,
                "overhead_p99_us": percentile(overhead, 0.99) * 1e6,
                "server_p50_us": percentile(handler, 0.5),
                "server_p99_us": percentile(handler, 0.99),
                "request_bytes": statistics.mean(handled[name]["request_bytes"]),
            }
        rows[name] = row

    print()
    print(
        f"per step, microseconds, {args.runs} runs x {steps} steps "
        f"(ovh = row - raw, paired per repetition; in-process rows have no HTTP to subtract)"
    )
    header = (
        f"{'row':<11} {'p50':>6} {'p99':>6} {'ovh p50':>7} {'ovh p99':>7} "
        f"{'srv p50':>7} {'srv p99':>7} {'req B':>6} {'peak KiB':>8}  what"
    )
    print(header)
    print("-" * (len(header) + 54))

    def cell(row: dict[str, Any], key: str, width: int) -> str:
        return f"{row[key]:>{width}.0f}" if key in row else f"{'-':>{width}}"

    for name, row in rows.items():
        print(
            f"{name:<11} {row['p50_us']:>6.0f} {row['p99_us']:>6.0f} "
            f"{cell(row, 'overhead_p50_us', 7)} {cell(row, 'overhead_p99_us', 7)} "
            f"{cell(row, 'server_p50_us', 7)} {cell(row, 'server_p99_us', 7)} "
            f"{cell(row, 'request_bytes', 6)} {row['peak_kib']:>8.0f}  {row['what']}"
        )

    parts = {
        "langgraph_over_raw": part("langgraph", "raw"),
        "openai_sdk": part("openai", "raw"),
        "chatopenai": part("chatopenai", "openai"),
        "graph_as_documented": part("langgraph", "chatopenai"),
        "hive_over_raw": part("hive", "raw"),
        "hive_client": part("hive-client", "raw"),
        "hive_agent_loop": part("hive", "hive-client"),
        "lg_hive_over_raw": part("lg-hive", "raw"),
        "bare_graph_on_hive_client": part("lg-hive", "hive-client"),
        "hive_inproc_step": rows["hive-inproc"]["p50_us"],
        "lg_inproc_step": rows["lg-inproc"]["p50_us"],
    }
    nodes = 2 * steps - 1  # a model node per step, a tools node per tool call
    parts["lg_inproc_node"] = percentile(per_step["lg-inproc"], 0.5) * steps / nodes * 1e6
    p = parts

    def total(*names: str) -> str:
        return f"parts add to {sum(p[n] for n in names):.0f}"

    print()
    print("Decomposition, us per step, p50 of paired per-repetition differences:")
    print(
        f"  LangGraph as documented, over raw {p['langgraph_over_raw']:.0f} = "
        f"openai SDK {p['openai_sdk']:.0f} (openai - raw) "
        f"+ ChatOpenAI {p['chatopenai']:.0f} (chatopenai - openai) "
        f"+ graph {p['graph_as_documented']:.0f} (langgraph - chatopenai); "
        f"{total('openai_sdk', 'chatopenai', 'graph_as_documented')}"
    )
    print(
        f"  Hive, over raw {p['hive_over_raw']:.0f} = "
        f"model client {p['hive_client']:.0f} (hive-client - raw) "
        f"+ agent loop {p['hive_agent_loop']:.0f} (hive - hive-client); "
        f"{total('hive_client', 'hive_agent_loop')}"
    )
    print(
        f"  LangGraph on Hive's client, over raw {p['lg_hive_over_raw']:.0f} = "
        f"Hive's client {p['hive_client']:.0f} "
        f"+ bare graph {p['bare_graph_on_hive_client']:.0f} (lg-hive - hive-client); "
        f"{total('hive_client', 'bare_graph_on_hive_client')}"
    )
    rest = p["graph_as_documented"] - p["bare_graph_on_hive_client"]
    print(
        f"  of the documented graph's {p['graph_as_documented']:.0f}, the bare graph is "
        f"{p['bare_graph_on_hive_client']:.0f} and {rest:.0f} is MessagesState, ToolNode and "
        f"LangChain tools"
    )
    print(
        f"  in process, no HTTP: Hive's agent loop {p['hive_inproc_step']:.0f} per step; "
        f"bare LangGraph {p['lg_inproc_step']:.0f} per step, {p['lg_inproc_node']:.0f} per node "
        f"({nodes} nodes per run of {steps} steps)"
    )

    def ratio(a: float, b: float) -> str:
        return f"{a / b:.1f}x" if b > 0 else "n/a"

    ratios = {
        "langgraph_over_hive": (p["langgraph_over_raw"], p["hive_over_raw"]),
        "lg_hive_over_hive": (p["lg_hive_over_raw"], p["hive_over_raw"]),
        "lg_inproc_over_hive_inproc": (p["lg_inproc_step"], p["hive_inproc_step"]),
    }
    print()
    print(
        f"Overhead beside Hive's, p50: LangGraph as documented "
        f"{ratio(p['langgraph_over_raw'], p['hive_over_raw'])}; LangGraph on Hive's client "
        f"{ratio(p['lg_hive_over_raw'], p['hive_over_raw'])}; in process, bare LangGraph / "
        f"Hive's agent loop {ratio(p['lg_inproc_step'], p['hive_inproc_step'])}"
    )
    lang, hive = rows["langgraph"], rows["hive"]
    print(
        f"LangGraph / Hive: step time p50 {lang['p50_us'] / hive['p50_us']:.2f}x, "
        f"p99 {lang['p99_us'] / hive['p99_us']:.2f}x"
    )
    return {
        "rows": rows,
        "decomposition_us": parts,
        "ratios": {k: a / b if b > 0 else None for k, (a, b) in ratios.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=200, help="timed repetitions")
    parser.add_argument("--steps", type=int, default=10, help="model requests per run")
    parser.add_argument("--warmup", type=int, default=20, help="untimed repetitions first")
    parser.add_argument("--seed", type=int, default=1, help="for the order within repetitions")
    parser.add_argument("--import-rounds", type=int, default=5, help="0 skips import timing")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    args = parser.parse_args()
    if args.steps < 2:
        parser.error("--steps must be at least 2 (one tool call and the answer)")

    # LangSmith tracing would add network calls to every LangChain run; make sure it is off.
    for name in ("LANGSMITH_TRACING", "LANGCHAIN_TRACING_V2", "LANGCHAIN_TRACING"):
        os.environ[name] = "false"
    python = sys.version.split()[0]
    print(f"python {python}; {', '.join(f'{n} {v}' for n, v in versions().items())}", flush=True)
    server, url = start_server(args.steps - 1)
    try:
        print(
            f"server {url}; {args.warmup} warm-up + {args.runs} timed repetitions of "
            f"{args.steps} steps ({args.steps - 1} tool calls + the answer) per row",
            flush=True,
        )
        per_step, handled, peaks = asyncio.run(bench(url, args))
    finally:
        server.terminate()
        server.wait(10)

    expected = (args.warmup + args.runs) * args.steps
    for name in OVER_HTTP:
        seen = len(handled.get(name, {}).get("handler_ns", []))
        if seen != expected:
            raise SystemExit(f"{name}: the server saw {seen} requests, expected {expected}")
    if set(handled) - set(OVER_HTTP):
        raise SystemExit(f"the server saw requests from {sorted(set(handled) - set(OVER_HTTP))}")

    figures = report(args, per_step, handled, peaks)
    imports: dict[str, dict[str, float]] = {}
    if args.import_rounds:
        print()
        for name, statement in IMPORTS.items():
            seconds, rss = import_cost(statement, args.import_rounds)
            imports[name] = {"ms": seconds * 1e3, "peak_rss_mib": rss}
            print(
                f"import {name}: {seconds * 1e3:.0f} ms, peak RSS {rss:.0f} MiB "
                f"(fresh interpreter, median of {args.import_rounds})",
                flush=True,
            )
    if args.json:
        document = {
            "python": python,
            "versions": versions(),
            "arguments": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            **figures,
            "imports": imports,
            "per_step_us": {n: [v * 1e6 for v in values] for n, values in per_step.items()},
        }
        args.json.write_text(json.dumps(document, indent=1) + "\n")
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
