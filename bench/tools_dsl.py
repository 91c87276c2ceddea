"""Composite tools: parse and check time of a large source, and how independent steps overlap.

    .venv/bin/python bench/tools_dsl.py [--steps 1000] [--repeat 20]

1. Parse + check of a composite of `--steps` steps (layers of independent steps, each reading
   the previous layer's results through fields, over 20 tools with JSON Schemas): the first run
   (which builds the LALR parser) and the median and worst of `--repeat` more. Target: <= 100 ms.
2. A composite of 10 independent steps whose tool takes 50 ms (an asyncio sleep in the call
   path): wall time of the whole run, beside the 500 ms steps one at a time would take.
   Target: about 50 ms.
3. The same 10 steps as HTTP calls to a real aiohttp server on 127.0.0.1 that answers after
   50 ms (one httpx client), to see the overlap holds through a real network path.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from typing import Any

import httpx
from aiohttp import web

from hive.api.toolversion import ToolVersionSpec
from hive.runtime.tooling.compose import check, parse, run

TOOLS = 20
WIDTH = 10
STEP_S = 0.05


def tool_versions() -> dict[str, list[ToolVersionSpec]]:
    view: dict[str, list[ToolVersionSpec]] = {}
    for t in range(TOOLS):
        name = f"tool-{t}"
        view[name] = [
            ToolVersionSpec.model_validate(
                {
                    "tool": name,
                    "version": f"1.{minor}.0",
                    "inputSchema": {
                        "type": "object",
                        "properties": {
                            "text": {"type": "string"},
                            "count": {"type": "integer"},
                            "weight": {"type": "number"},
                        },
                        "required": ["text"],
                    },
                    "outputSchema": {
                        "type": "object",
                        "properties": {"text": {"type": "string"}, "count": {"type": "integer"}},
                    },
                    "implementation": {"kind": "http", "ref": f"http://127.0.0.1:1/{name}"},
                }
            )
            for minor in range(3)
        ]
    return view


def big_source(steps: int) -> str:
    """Layers of WIDTH independent steps; each reads a result of the layer before."""
    lines = ["TOOL big", "INPUT text: string, count: integer", "OUTPUT last: object", ""]
    lines.append("COMPOSITE big AS")
    for i in range(steps):
        tool = f"tool-{i % TOOLS}"
        target = "last" if i == steps - 1 else f"v{i}"
        if i < WIDTH:
            lines.append(f"    text -> {tool}@^1.0[count=count, weight=0.5] -> {target}")
        else:
            source = f"v{i - WIDTH - (i % 3)}" if i - WIDTH - (i % 3) >= 0 else "text"
            field = ".text" if source != "text" else ""
            lines.append(
                f"    {source}{field} -> {tool}@^1.1[count={source}.count] -> {target}"
                if source != "text"
                else f"    text -> {tool}[count=count] -> {target}"
            )
    return "\n".join(lines) + "\n"


def parse_and_check(steps: int, repeat: int) -> None:
    tools = tool_versions()
    source = big_source(steps)
    started = time.perf_counter()
    plan = check(parse(source), tools)
    first_ms = (time.perf_counter() - started) * 1000
    assert len(plan.steps) == steps
    parse_ms, check_ms, cpu_ms = [], [], []
    for _ in range(repeat):
        cpu = time.process_time()
        started = time.perf_counter()
        composite = parse(source)
        parsed = time.perf_counter()
        check(composite, tools)
        done = time.perf_counter()
        cpu_ms.append((time.process_time() - cpu) * 1000)
        parse_ms.append((parsed - started) * 1000)
        check_ms.append((done - parsed) * 1000)
    total = [p + c for p, c in zip(parse_ms, check_ms, strict=True)]
    print(f"parse + check of a {steps}-step composite ({len(source):,} characters, {TOOLS} tools)")
    print(f"  first run (builds the LALR parser): {first_ms:7.1f} ms")
    print(
        f"  median of {repeat}: {statistics.median(total):7.1f} ms "
        f"(parse {statistics.median(parse_ms):.1f} ms, check {statistics.median(check_ms):.1f} ms)"
        f"; worst {max(total):.1f} ms; target <= 100 ms"
    )
    load = os.getloadavg()[0]
    print(
        f"  CPU time of the process, median: {statistics.median(cpu_ms):.1f} ms "
        f"(load average {load:.1f} on {os.cpu_count()} cores while measuring)"
    )


FAN = "COMPOSITE fan INPUT x: string OUTPUT s AS\n" + "".join(
    f"  x -> tool-{i}[] -> r{i}\n" for i in range(WIDTH)
)
FAN += "  tool-19[text=x, " + "count=r0.count] -> s\n"


async def fan_out(call_kind: str, call: Any) -> float:
    plan = check(parse(FAN), tool_versions())
    await run(plan, {"x": "warm"}, call)  # connections and code paths warm
    walls = []
    for _ in range(5):
        started = time.perf_counter()
        await run(plan, {"x": "hello"}, call)
        walls.append((time.perf_counter() - started) * 1000)
    median = statistics.median(walls)
    print(
        f"  {call_kind}: median {median:6.1f} ms of 5 runs ({WIDTH} steps of {STEP_S * 1000:.0f} "
        f"ms + 1 fast step; one at a time: >= {WIDTH * STEP_S * 1000:.0f} ms)"
    )
    return median


async def overlap() -> None:
    print(f"{WIDTH} independent steps of {STEP_S * 1000:.0f} ms each")

    async def sleeping(tool: str, version_range: str, arguments: dict[str, Any]) -> Any:
        if tool != "tool-19":
            await asyncio.sleep(STEP_S)
        return {"text": arguments.get("text", ""), "count": 1}

    await fan_out("in-process call path", sleeping)

    async def slow(request: web.Request) -> web.Response:
        body = await request.json()
        if request.match_info["tool"] != "tool-19":
            await asyncio.sleep(STEP_S)
        return web.json_response({"text": body.get("text", ""), "count": 1})

    app = web.Application()
    app.router.add_post("/{tool}", slow)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", limits=httpx.Limits(max_connections=32)
        ) as client:

            async def over_http(tool: str, version_range: str, arguments: dict[str, Any]) -> Any:
                answer = await client.post(f"/{tool}", json=arguments)
                answer.raise_for_status()
                return answer.json()

            await fan_out("HTTP to a real aiohttp server on 127.0.0.1", over_http)
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    parse_and_check(args.steps, args.repeat)
    asyncio.run(overlap())


if __name__ == "__main__":
    main()
