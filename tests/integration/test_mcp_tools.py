"""Kind mcp against a real MCP server process (tests/mcp_servers/server.py, built with the SDK):
its tools become functions and calls reach them, over streamable HTTP and over stdio; a tool
the server adds while the session runs shows up; an error result is a clear error naming the
tool; an unreachable server is Unavailable, and the session comes up once the server does."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from hive.api.agentteam import AgentSpec
from hive.api.toolversion import ToolVersionSpec
from hive.errors import ExternalFailure, Unavailable
from hive.ports import free_port
from hive.runtime.toolbox import Toolbox
from hive.runtime.tooling.catalog import Catalog, CatalogEntry
from hive.runtime.tooling.discovery import FolderWatch, entry_of
from hive.runtime.tooling.kinds import Function, KindContext, KindRegistry
from hive.runtime.tooling.mcp import McpConnection, McpKind, McpTarget
from hive.settings import McpSettings
from tests.mcp_servers import STDIO, mcp_server

pytestmark = pytest.mark.integration

SETTINGS = McpSettings(connect_timeout_s=10, reconnect_initial_s=0.1, reconnect_max_s=1)
SERVER_TOOLS = ["add", "echo", "slow", "fail", "add_tool"]


def version(mcp: dict[str, Any]) -> ToolVersionSpec:
    return ToolVersionSpec.model_validate(
        {
            "tool": "calc",
            "version": "1.0.0",
            "implementation": {"kind": "mcp", "mcp": mcp, "timeoutSeconds": 10},
        }
    )


@pytest.fixture
async def kind() -> AsyncIterator[McpKind]:
    made = McpKind(SETTINGS)
    try:
        yield made
    finally:
        await made.close()


def by_name(functions: list[Function]) -> dict[str, Function]:
    return {f.name: f for f in functions}


async def functions_once(
    kind: McpKind, spec: ToolVersionSpec, name: str, timeout_s: float = 20
) -> dict[str, Function]:
    """The functions as soon as `name` is among them (or the server is reachable at all): asked
    again each time the kind says a list changed."""
    deadline = time.monotonic() + timeout_s
    found: dict[str, Function] = {}
    while True:
        kind.changed.clear()
        with contextlib.suppress(Unavailable):
            found = by_name(await kind.functions(spec, KindContext()))
        if name in found:
            return found
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"{name} not offered within {timeout_s}s: {sorted(found)}")
        await asyncio.wait_for(kind.changed.wait(), remaining)


async def check_calls(functions: dict[str, Function], where: str) -> None:
    assert sorted(functions) == sorted(f"calc_{t}" for t in SERVER_TOOLS)
    add = functions["calc_add"]
    assert add.description == "Add two integers."
    assert add.parameters["properties"].keys() == {"a", "b"}
    assert add.parameters["required"] == ["a", "b"]
    assert add.source == f"{where} tool add"
    assert await add.call({"a": 2, "b": 3}) == {"result": 5}
    assert await functions["calc_echo"].call({"text": "héllo"}) == {"result": "héllo"}
    with pytest.raises(ExternalFailure) as failed:
        await functions["calc_fail"].call({"reason": "bad luck"})
    assert "MCP tool 'fail'" in str(failed.value)
    assert "failed on purpose: bad luck" in str(failed.value)


async def test_tools_over_streamable_http_are_functions_a_new_one_appears(kind: McpKind) -> None:
    with mcp_server() as server:
        spec = version({"url": server.url})
        functions = by_name(await kind.functions(spec, KindContext()))
        await check_calls(functions, server.url)

        kind.changed.clear()
        server.add_tool("weather")  # from outside the session: announced to the listen stream
        functions = await functions_once(kind, spec, "calc_weather")
        assert await functions["calc_weather"].call({"value": "Oslo"}) == {
            "tool": "weather",
            "value": "Oslo",
        }
        assert len(kind.connections) == 1  # one session for the server, reused


async def test_tools_over_stdio_are_functions_a_new_one_appears(kind: McpKind) -> None:
    command, args = STDIO
    spec = version({"command": command, "args": args})
    functions = by_name(await kind.functions(spec, KindContext()))
    await check_calls(functions, "stdio: " + " ".join([command, *args]))

    assert await functions["calc_add_tool"].call({"name": "forecast"}) == {
        "result": "added forecast"
    }
    functions = await functions_once(kind, spec, "calc_forecast")
    assert await functions["calc_forecast"].call({}) == {"tool": "forecast", "value": ""}


async def test_only_the_tools_named_are_offered(kind: McpKind) -> None:
    with mcp_server() as server:
        spec = version({"url": server.url, "tools": ["echo", "missing"]})
        assert [f.name for f in await kind.functions(spec, KindContext())] == ["calc_echo"]


async def test_an_unreachable_server_is_unavailable_until_it_comes_up(kind: McpKind) -> None:
    port = free_port()
    spec = version({"url": f"http://127.0.0.1:{port}/mcp"})
    with pytest.raises(Unavailable) as unreachable:
        await kind.functions(spec, KindContext())
    assert f"MCP server http://127.0.0.1:{port}/mcp: unreachable" in str(unreachable.value)

    with mcp_server(port) as server:  # the session keeps trying, with backoff, and comes up
        functions = await functions_once(kind, spec, "calc_add")
        assert await functions["calc_add"].call({"a": 1, "b": 1}) == {"result": 2}

        server.process.terminate()  # lost while up: a call fails clearly, then it comes back
        server.process.wait(timeout=10)
    with pytest.raises(Unavailable, match=r"MCP (tool 'add' on|server) http://127\.0\.0\.1"):
        await functions["calc_add"].call({"a": 1, "b": 1})
    with mcp_server(port):
        deadline = time.monotonic() + 20
        while True:
            try:
                assert await functions["calc_add"].call({"a": 2, "b": 2}) == {"result": 4}
                break
            except Unavailable:
                if time.monotonic() > deadline:
                    raise
                kind.changed.clear()
                await asyncio.wait_for(kind.changed.wait(), max(0.1, deadline - time.monotonic()))


async def test_a_running_agent_sees_a_tool_the_server_adds() -> None:
    """Through the agent's registry (Toolbox, catalog): the kind's change reaches the agent."""
    with mcp_server() as server:
        spec = version({"url": server.url})
        catalog = Catalog([CatalogEntry(spec, "calc-1-0-0", "test")])
        toolbox = Toolbox(catalog=catalog, kinds=KindRegistry([McpKind(SETTINGS)]))
        agent = AgentSpec.model_validate(
            {"name": "mathematician", "role": "specialist", "tools": [{"name": "calc"}]}
        )
        registry = toolbox.for_agent(agent, None)
        try:
            await toolbox.started()
            names = {s["function"]["name"] for s in registry.schemas()}
            assert names == {f"calc_{t}" for t in SERVER_TOOLS}
            arguments = {"a": 20, "b": 22}
            assert await registry.call(registry.check("calc_add", arguments), arguments) == {
                "result": 42
            }

            server.add_tool("weather")
            deadline = time.monotonic() + 20
            while "calc_weather" not in {s["function"]["name"] for s in registry.schemas()}:
                assert time.monotonic() < deadline, "the agent never saw calc_weather"
                await asyncio.sleep(0.05)
            where = {"value": "Bergen"}
            assert await registry.call(registry.check("calc_weather", where), where) == {
                "tool": "weather",
                "value": "Bergen",
            }
        finally:
            await toolbox.close()


async def test_an_agent_starts_with_the_tools_of_a_server_that_answers_late() -> None:
    """A server that does not answer yet when the agent starts (its NetworkPolicy not in force,
    a relay coming up): the start waits for it, boundedly, so the first task sees its tools."""
    port = free_port()
    spec = version({"url": f"http://127.0.0.1:{port}/mcp"})
    catalog = Catalog([CatalogEntry(spec, "calc-1-0-0", "test")])
    toolbox = Toolbox(catalog=catalog, kinds=KindRegistry([McpKind(SETTINGS)]))
    agent = AgentSpec.model_validate(
        {"name": "early", "role": "specialist", "tools": [{"name": "calc"}]}
    )
    registry = toolbox.for_agent(agent, None)
    started = asyncio.ensure_future(toolbox.started())
    try:
        (live,) = toolbox.live  # the agent's catalog tools (AgentTools)
        deadline = time.monotonic() + 20
        while not live.unanswered:  # the first build fails: nothing listens on the port yet
            assert not started.done(), "the start did not wait for the server"
            assert time.monotonic() < deadline, "the first build never failed"
            await asyncio.sleep(0.05)
        with mcp_server(port):
            await asyncio.wait_for(started, 30)
            names = {s["function"]["name"] for s in registry.schemas()}
            assert names == {f"calc_{t}" for t in SERVER_TOOLS}
    finally:
        started.cancel()
        await toolbox.close()


async def test_an_agent_is_offered_the_tools_the_operator_saw_and_calls_wait_for_its_session() -> (
    None
):
    """The operator's session listed the server (status.discoveredTools) but the agent's pod
    cannot reach it yet: the agent starts at once with those tools offered, and a call made
    before its own session is up waits for it rather than failing."""
    port = free_port()
    spec = version({"url": f"http://127.0.0.1:{port}/mcp"})
    seen = {
        "name": "add",
        "description": "Add two integers (as the operator saw it).",
        "inputSchema": {"type": "object", "properties": {"a": {"type": "integer"},
                                                         "b": {"type": "integer"}}},
    }  # fmt: skip
    obj = {
        "metadata": {"name": "calc-1-0-0"},
        "spec": spec.wire(),
        "status": {"discoveredTools": [seen, {"description": "no name: left out"}]},
    }
    entry = entry_of(obj, "default/calc-1-0-0")
    assert entry is not None
    assert [t.name for t in entry.announced] == ["add"]
    catalog = Catalog([entry])
    toolbox = Toolbox(catalog=catalog, kinds=KindRegistry([McpKind(SETTINGS)]))
    agent = AgentSpec.model_validate(
        {"name": "early", "role": "specialist", "tools": [{"name": "calc"}]}
    )
    registry = toolbox.for_agent(agent, None)
    try:
        await asyncio.wait_for(toolbox.started(), 30)
        (live,) = toolbox.live
        assert not live.unanswered, live.problems
        offered = {s["function"]["name"]: s["function"] for s in registry.schemas()}
        assert set(offered) == {"calc_add"}
        assert offered["calc_add"]["description"] == seen["description"]

        arguments = {"a": 20, "b": 22}
        call = asyncio.ensure_future(
            registry.call(registry.check("calc_add", arguments), arguments)
        )
        done, _ = await asyncio.wait({call}, timeout=0.5)
        assert not done, f"the call did not wait for a session: {call.exception()!r}"
        with mcp_server(port):  # the pod's way to the server opens while the call waits
            assert await asyncio.wait_for(call, 30) == {"result": 42}
            # its own session listed the server: the live tools replace what the operator saw
            deadline = time.monotonic() + 20
            while {s["function"]["name"] for s in registry.schemas()} != {
                f"calc_{t}" for t in SERVER_TOOLS
            }:
                assert time.monotonic() < deadline, "the live listing never replaced the seen one"
                await asyncio.sleep(0.05)
        # a status change that leaves spec and tools as they were announces nothing
        changes: list[set[str]] = []
        catalog.subscribe(changes.append)
        again = entry_of({**obj, "status": {**obj["status"], "calls": 3}}, entry.source)
        assert again == entry
        catalog.put(again)
        assert changes == []
    finally:
        await toolbox.close()


async def test_hive_run_tools_folder_runs_a_stdio_server(tmp_path: Path) -> None:
    """A ToolVersion file of kind mcp with a command (as hive run --tools DIR reads it): the
    server is started over stdio and its tools reach the agent."""
    command, args = STDIO
    document = {
        "apiVersion": "hive.dev/v1alpha1",
        "kind": "ToolVersion",
        "metadata": {"name": "calc-1-0-0"},
        "spec": {
            "tool": "calc",
            "version": "1.0.0",
            "implementation": {"kind": "mcp", "mcp": {"command": command, "args": args}},
        },
    }
    (tmp_path / "calc.yaml").write_text(yaml.safe_dump(document))
    watch = FolderWatch(tmp_path, Catalog())
    assert watch.scan()
    toolbox = Toolbox(catalog=watch.catalog, kinds=KindRegistry([McpKind(SETTINGS)]))
    agent = AgentSpec.model_validate(
        {"name": "local", "role": "specialist", "tools": [{"name": "calc", "version": "^1"}]}
    )
    registry = toolbox.for_agent(agent, None)
    try:
        await toolbox.started()
        arguments = {"text": "from a folder"}
        assert await registry.call(registry.check("calc_echo", arguments), arguments) == {
            "result": "from a folder"
        }
    finally:
        await toolbox.close()


async def test_a_handshake_era_session_follows_tools_list_changed_notifications() -> None:
    """A session negotiated by the initialize handshake (protocol before 2026-07-28) has no
    subscriptions/listen: the server's notifications/tools/list_changed are followed instead."""
    command, args = STDIO
    connection = McpConnection(McpTarget(command=command, args=tuple(args)), SETTINGS, "legacy")
    listed = asyncio.Event()
    connection.add_listener(lambda c: listed.set() if c.tools and len(c.tools) == 6 else None)
    try:
        assert [t.name for t in await connection.listing()] == SERVER_TOOLS
        assert connection.protocol_version is not None
        assert connection.protocol_version < "2026"
        assert await connection.call("add_tool", {"name": "late"}, 10) == {"result": "added late"}
        await asyncio.wait_for(listed.wait(), 20)
        assert [t.name for t in await connection.listing()] == [*SERVER_TOOLS, "late"]
    finally:
        await connection.close()


async def test_a_call_without_an_answer_in_time_is_unavailable_and_the_session_stays(
    kind: McpKind,
) -> None:
    with mcp_server() as server:
        spec = ToolVersionSpec.model_validate(
            {
                "tool": "calc",
                "version": "1.0.0",
                "implementation": {"kind": "mcp", "mcp": {"url": server.url}, "timeoutSeconds": 1},
            }
        )
        functions = by_name(await kind.functions(spec, KindContext()))
        with pytest.raises(Unavailable, match=r"MCP tool 'slow' .*: no answer within 1s"):
            await functions["calc_slow"].call({"seconds": 5})
        assert await functions["calc_add"].call({"a": 1, "b": 2}) == {"result": 3}
