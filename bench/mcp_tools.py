"""Kind mcp against the real MCP test server (tests/mcp_servers/server.py, its own process).

    .venv/bin/python bench/mcp_tools.py [--calls 300] [--adds 20]

For streamable HTTP and stdio: the first ``functions()`` of a version (connect, negotiate,
list), a listing again (``tools/list`` on the open session), and ``tools/call`` p50/p99 through
the kind's `Function` (the session reused). Then, over streamable HTTP, the time from the
server adding a tool (POST /admin/tools, announced to the session's subscriptions/listen
stream) to ``McpKind.changed`` being set and to a running agent's registry (Toolbox, catalog)
offering the new function, p50/p99 over --adds tools.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.mcp_servers import STDIO, mcp_server

from hive.api.agentteam import AgentSpec
from hive.api.toolversion import ToolVersionSpec
from hive.runtime.toolbox import Toolbox
from hive.runtime.tooling.catalog import Catalog, CatalogEntry
from hive.runtime.tooling.kinds import KindContext, KindRegistry
from hive.runtime.tooling.mcp import McpKind
from hive.settings import McpSettings

SETTINGS = McpSettings(connect_timeout_s=30)


def version(mcp: dict[str, Any]) -> ToolVersionSpec:
    return ToolVersionSpec.model_validate(
        {"tool": "calc", "version": "1.0.0", "implementation": {"kind": "mcp", "mcp": mcp}}
    )


def ms(values: list[float]) -> str:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {statistics.median(ordered) * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms"


async def transport(label: str, spec: ToolVersionSpec, calls: int) -> None:
    kind = McpKind(SETTINGS)
    try:
        started = time.perf_counter()
        functions = {f.name: f for f in await kind.functions(spec, KindContext())}
        first = time.perf_counter() - started
        connection = next(iter(kind.connections.values()))
        client = connection._client
        assert client is not None
        listings = []
        for _ in range(20):
            started = time.perf_counter()
            await client.list_tools()
            listings.append(time.perf_counter() - started)
        add = functions["calc_add"]
        timings = []
        for i in range(calls):
            started = time.perf_counter()
            await add.call({"a": i, "b": 1})
            timings.append(time.perf_counter() - started)
        print(f"{label} (protocol {connection.protocol_version}):")
        print(f"  connect + list (first functions()): {first * 1000:.1f} ms")
        print(f"  tools/list on the open session: {ms(listings)}")
        print(f"  tools/call through the Function ({calls} calls): {ms(timings)}")
    finally:
        await kind.close()


async def discovery(adds: int) -> None:
    with mcp_server() as server:
        spec = version({"url": server.url})
        kind = McpKind(SETTINGS)
        catalog = Catalog([CatalogEntry(spec, "calc", "bench")])
        toolbox = Toolbox(catalog=catalog, kinds=KindRegistry([kind]))
        agent = AgentSpec.model_validate(
            {"name": "bench", "role": "specialist", "tools": [{"name": "calc"}]}
        )
        registry = toolbox.for_agent(agent, None)
        await toolbox.started()
        to_event, to_agent = [], []
        try:
            for i in range(adds):
                kind.changed.clear()
                name = f"added_{i}"
                started = time.perf_counter()
                await asyncio.to_thread(server.add_tool, name)
                await asyncio.wait_for(kind.changed.wait(), 30)
                to_event.append(time.perf_counter() - started)
                while f"calc_{name}" not in {s["function"]["name"] for s in registry.schemas()}:
                    await asyncio.sleep(0.001)
                    if time.perf_counter() - started > 30:
                        raise SystemExit(f"the agent never saw calc_{name}")
                to_agent.append(time.perf_counter() - started)
        finally:
            await toolbox.close()
        print(f"server adds a tool (streamable HTTP, {adds} tools):")
        print(f"  -> McpKind.changed: {ms(to_event)}")
        print(f"  -> offered in a running agent's registry: {ms(to_agent)}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--adds", type=int, default=20)
    args = parser.parse_args()
    with mcp_server() as server:
        await transport("streamable HTTP", version({"url": server.url}), args.calls)
    command, command_args = STDIO
    await transport("stdio", version({"command": command, "args": command_args}), args.calls)
    await discovery(args.adds)


if __name__ == "__main__":
    asyncio.run(main())
