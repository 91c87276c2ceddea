"""The agent loop with the scripted model: tools, bad calls fed back, budgets, events."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from hive.runtime.agent import Agent, Budget, Outcome
from hive.runtime.events import Event, EventBus, EventKind
from hive.runtime.models import OpenAICompatible
from hive.runtime.tools import Tool, ToolRegistry
from tests.scripted_model import scripted_model

pytestmark = pytest.mark.integration


async def add(a: int, b: int) -> dict[str, int]:
    return {"sum": a + b}


async def explode() -> str:
    raise RuntimeError("disk on fire")


TOOLS = ToolRegistry.of(
    [
        Tool(
            "add",
            "Add two integers.",
            {
                "type": "object",
                "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                "required": ["a", "b"],
                "additionalProperties": False,
            },
            add,
        ),
        Tool("explode", "Always fails.", {"type": "object", "properties": {}}, explode),
    ]
)


def agent(url: str, bus: EventBus | None = None, **budget: Any) -> Agent:
    model = OpenAICompatible(base_url=url, model="scripted", backoff_s=0.01)
    return Agent("calc", model, TOOLS, bus or EventBus(), budget=Budget(**budget))


def call(name: str, **arguments: Any) -> dict[str, Any]:
    return {"tool_calls": [{"name": name, "arguments": arguments}]}


async def test_a_tool_call_then_an_answer_with_every_event_published() -> None:
    seen: list[Event] = []
    bus = EventBus()
    bus.subscribe(seen.append)
    with scripted_model([call("add", a=2, b=3), {"content": "2 + 3 = 5"}]) as server:
        result = await agent(server.url, bus).run("What is 2 + 3?")
        tool_message = server.requests[1]["messages"][-1]
    assert (result.outcome, result.output, result.steps, result.tool_calls) == (
        Outcome.FINISHED,
        "2 + 3 = 5",
        2,
        1,
    )
    assert tool_message == {"role": "tool", "tool_call_id": "call-0", "content": '{"sum": 5}'}
    assert [e.kind for e in seen] == [
        EventKind.STARTED,
        EventKind.MODEL_CALLED,
        EventKind.TOOL_CALLED,
        EventKind.MODEL_CALLED,
        EventKind.FINISHED,
    ]
    assert result.tokens == 30


async def test_unknown_tools_and_bad_arguments_are_fed_back() -> None:
    steps = [
        call("multiply", a=1),
        call("add", a="two", b=3),
        call("explode"),
        call("add", a=2, b=3),
        {"content": "5"},
    ]
    with scripted_model(steps) as server:
        result = await agent(server.url).run("add")
        feedback = [r["messages"][-1]["content"] for r in server.requests[1:4]]
    assert result.outcome == Outcome.FINISHED
    assert feedback[0] == "error: tool 'multiply': unknown tool (known: add, explode)"
    assert feedback[1] == "error: tool 'add' a: 'two' is not of type 'integer'"
    assert feedback[2] == "error: tool 'explode': failed: disk on fire"


async def test_too_many_bad_calls_fail_the_run_clearly() -> None:
    with scripted_model([call("nope")] * 3) as server:
        result = await agent(server.url, max_tool_errors=2).run("x")
    assert result.outcome == Outcome.FAILED
    assert result.error == (
        "agent calc: 3 bad tool calls, the last: tool 'nope': unknown tool (known: add, explode)"
    )


async def test_step_and_token_budgets_end_the_run() -> None:
    with scripted_model([call("add", a=1, b=1)] * 5) as server:
        by_steps = await agent(server.url, max_steps=3).run("loop")
    assert (by_steps.outcome, by_steps.steps) == (Outcome.FAILED, 3)
    assert by_steps.error == "agent calc: 3 steps, the budget's limit"
    with scripted_model([call("add", a=1, b=1)] * 5) as server:
        by_tokens = await agent(server.url, max_tokens=40).run("loop")
    assert by_tokens.error == "agent calc: 45 tokens used, the budget is 40"


async def test_cancellation_is_published() -> None:
    seen: list[EventKind] = []
    bus = EventBus()
    bus.subscribe(lambda e: seen.append(e.kind))
    started = asyncio.Event()

    async def slow() -> str:
        started.set()
        await asyncio.sleep(30)
        return "never"

    tools = ToolRegistry.of([Tool("slow", "Takes long.", {"type": "object"}, slow)])
    with scripted_model([call("slow")]) as server:
        model = OpenAICompatible(base_url=server.url, model="scripted")
        task = asyncio.create_task(Agent("calc", model, tools, bus).run("wait"))
        await asyncio.wait_for(started.wait(), 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert seen[-1] == EventKind.CANCELLED
