"""The coordinator's stop route and a subordinate's stops on loopback: the coordinator's real
peer API (a PeerServer with the route, checking signatures with the team's keys as the operator
makes them) and the subordinate's middleware, which signs its requests with its own key. A task
no debugged run marked never asks; a marked call waits for the user past its timeout while the
coordinator answers, and takes the user's skip, edit or abort; a request without the team's
signature is refused and stops nothing; a coordinator gone is asked no more in that task."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from hive.ports import free_port
from hive.reconcile.agentkeys import agent_key, peer_keys, team_key
from hive.reconcile.meta import Owner
from hive.runtime.debug import DEBUG_MARK
from hive.runtime.debug.breakpoints import Breakpoint
from hive.runtime.debug.debugger import DebugAborted, Debugger, Pause
from hive.runtime.debug.hooks import SKIPPED, DebugHooks
from hive.runtime.debug.remote import STOPS, StopRoute, SubordinateStops, marked
from hive.runtime.identity.peerauth import HEADER, PeerSigner, PeerVerifier, signing_key
from hive.runtime.models import Reply, ToolCall
from hive.runtime.resilience.calls import Call, CallKind
from hive.runtime.teams.peers import PeerServer
from tests.integration.test_delegation_peers import Model, member

pytestmark = pytest.mark.integration

OWNER = Owner("AgentTeam", "bees", "default", "uid-bees")
MASTER = b"s" * 32
KEYS = peer_keys(OWNER, MASTER, ["lead", "researcher"])
SEARCH = Call(CallKind.TOOL, "search", "call", "researcher")


def signer(agent: str, master: bytes = MASTER) -> PeerSigner:
    return PeerSigner(agent, signing_key(agent_key(team_key(master, OWNER), agent)))


@asynccontextmanager
async def coordinator(debugger: Debugger) -> AsyncIterator[str]:
    """The lead's peer API with the stop route of `debugger`; yields its URL."""
    route = StopRoute(DebugHooks(debugger), PeerVerifier.of_texts("lead", KEYS))
    server = PeerServer(
        member("lead", Model()),
        callers=PeerVerifier.of_texts("lead", KEYS),
        extensions=[route.install],
    )
    await server.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        await server.stop()


def stops_to(url: str, timeout_s: float = 10.0) -> SubordinateStops:
    stops = SubordinateStops("researcher", "lead", timeout_s, pod="researcher-0")
    stops.bind(url, signer("researcher"))
    return stops


async def in_marked_task(
    stops: SubordinateStops, call: Call, proceed: Callable[[], Awaitable[Any]]
) -> Any:
    """`call` through the subordinate's middleware in a task a debugged run delegated."""
    marked.set(True)
    return await stops(call, proceed)


async def paused(debugger: Debugger, other_than: Pause | None = None) -> Pause:
    """Until the run pauses (at another stop than `other_than`); the debugger tells its
    listeners of each change."""
    changed = asyncio.Event()
    debugger.listeners.append(lambda _: changed.set())
    while debugger.paused is None or debugger.paused is other_than:
        await asyncio.wait_for(changed.wait(), 20)
        changed.clear()
    return debugger.paused


class Tool:
    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        return "found"


async def test_a_task_no_debugged_run_marked_never_asks() -> None:
    debugger = Debugger([Breakpoint.parse("tool")])
    tool = Tool()
    async with coordinator(debugger) as url:
        assert await stops_to(url)(SEARCH, tool) == "found"
    assert tool.calls == 1
    assert debugger.session.trail == []  # the coordinator heard nothing


async def test_a_marked_call_with_no_breakpoint_goes_on_and_is_recorded() -> None:
    debugger = Debugger([Breakpoint.parse("tool:other")])
    tool = Tool()
    async with coordinator(debugger) as url:
        stops = stops_to(url)
        assert await asyncio.create_task(in_marked_task(stops, SEARCH, tool)) == "found"
        peer = Call(CallKind.PEER, "junior", "tasks", "researcher", {"body": {}})

        async def delegated() -> dict[str, Any]:
            return dict(peer.request or {})

        sent = await asyncio.create_task(in_marked_task(stops, peer, delegated))
    assert sent["headers"] == {DEBUG_MARK: "on"}  # its own subordinates stop too
    assert tool.calls == 1
    assert [t[:4] for t in debugger.session.trail] == [("tool-call", "researcher", 1, "search")]
    assert debugger.paused is None


async def test_a_stopped_call_waits_past_its_timeout_while_the_coordinator_answers() -> None:
    debugger = Debugger([Breakpoint.parse("tool:search")])
    tool = Tool()
    async with coordinator(debugger) as url:
        stops = stops_to(url, timeout_s=1.0)  # asks again every half second
        stops._planned = [ToolCall("c1", "search", {"q": "bees"})]  # the model's answer asked
        calling = asyncio.create_task(in_marked_task(stops, SEARCH, tool))
        await paused(debugger)
        stop = debugger.paused
        assert stop is not None
        assert (stop.stop.kind, stop.stop.agent, stop.stop.reason) == (
            "tool-call",
            "researcher",
            "tool:search",
        )
        assert stop.stop.data == {
            "tool": "search",
            "arguments": {"q": "bees"},
            "pod": "researcher-0",
        }
        await asyncio.sleep(2.5)  # past its timeout: the coordinator kept answering "paused"
        assert not calling.done()
        assert tool.calls == 0
        debugger.skip()
        debugger.resume()
        assert await asyncio.wait_for(calling, 10) == SKIPPED
    assert tool.calls == 0  # skipped at the debugger


async def test_a_stopped_model_call_is_inspected_and_its_answer_edited() -> None:
    debugger = Debugger([Breakpoint.parse("model:researcher")])
    request = {"messages": [{"role": "user", "content": "Count the bees"}], "options": {}}
    call = Call(CallKind.MODEL, "m", "complete", "researcher", request)

    async def answer() -> Reply:
        return Reply("41 bees", [], "stop", 10, 2)

    async with coordinator(debugger) as url:
        calling = asyncio.create_task(in_marked_task(stops_to(url), call, answer))
        await paused(debugger)
        shown = debugger.inspect("model")
        assert shown["researcher"]["request"] == request["messages"]
        assert shown["researcher"]["response"]["content"] == "41 bees"
        debugger.edit("42 bees")
        debugger.resume()
        reply = await asyncio.wait_for(calling, 10)
    assert reply.content == "42 bees"


async def test_an_abort_at_the_coordinator_fails_the_subordinates_call() -> None:
    debugger = Debugger([Breakpoint.parse("tool")])
    tool = Tool()
    async with coordinator(debugger) as url:
        calling = asyncio.create_task(in_marked_task(stops_to(url), SEARCH, tool))
        await paused(debugger)
        debugger.abort()
        with pytest.raises(DebugAborted, match="aborted at the debugger"):
            await asyncio.wait_for(calling, 10)
    assert tool.calls == 0


async def test_a_request_without_the_teams_signature_stops_nothing() -> None:
    debugger = Debugger([Breakpoint.parse("tool")])
    body = b'{"kind":"tool-call","tool":"search"}'
    async with coordinator(debugger) as url, httpx.AsyncClient(base_url=url) as http:
        unsigned = await http.post(STOPS, content=body)
        assert unsigned.status_code == 401
        assert "signing agent" in unsigned.json()["error"]
        foreign = signer("researcher", b"x" * 32).header("POST", STOPS, body, "lead")
        refused = await http.post(STOPS, content=body, headers={HEADER: foreign})
        assert refused.status_code == 403
        assert "does not hold" in refused.json()["error"]
    assert debugger.session.trail == []
    assert debugger.paused is None


async def test_a_coordinator_that_went_away_is_asked_no_more_in_that_task(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stops = stops_to(f"http://127.0.0.1:{free_port()}", timeout_s=1.0)  # nobody listens there
    tool = Tool()

    async def two_calls() -> tuple[Any, bool, Any]:
        marked.set(True)
        first = await stops(SEARCH, tool)
        still_asking = marked.get()
        return first, still_asking, await stops(SEARCH, tool)

    with caplog.at_level(logging.WARNING, "hive.runtime.debug.remote"):
        done = await asyncio.wait_for(asyncio.create_task(two_calls()), 20)
    assert done == ("found", False, "found")
    assert tool.calls == 2
    (said,) = [r.getMessage() for r in caplog.records]  # once: the second call did not ask
    assert "the coordinator lead has not answered for" in said
    assert "researcher goes on with its tool-call search" in said


async def test_a_step_at_a_subordinates_stop_stops_at_its_next_call() -> None:
    debugger = Debugger([Breakpoint.parse("tool:search")])
    tool = Tool()
    request = {"messages": [{"role": "tool", "content": "found"}], "options": {}}
    call = Call(CallKind.MODEL, "m", "complete", "researcher", request)

    async def answer() -> Reply:
        return Reply("42 bees", [], "stop", 10, 2)

    async def tool_then_model(stops: SubordinateStops) -> Reply:
        marked.set(True)
        await stops(SEARCH, tool)
        reply: Reply = await stops(call, answer)
        return reply

    async with coordinator(debugger) as url:
        working = asyncio.create_task(tool_then_model(stops_to(url)))
        first = await paused(debugger)
        debugger.step()
        stop = (await paused(debugger, other_than=first)).stop
        assert (stop.kind, stop.agent, stop.reason, stop.key) == (
            "model-call",
            "researcher",
            "step",
            "model-call:researcher:1",
        )
        assert tool.calls == 1  # the step let the tool run
        debugger.resume()
        assert (await asyncio.wait_for(working, 10)).content == "42 bees"
