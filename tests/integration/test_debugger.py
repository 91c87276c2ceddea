"""The debugger through its API, on real team runs against the scripted model on loopback:
breakpoints pause the run (and its budget clock), inspection, changes (the next message, a
review score, a skipped tool call), step, abort, and sessions exported and replayed."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from hive.api.agentteam import AgentTeamSpec, RunOutcome
from hive.runtime.agent import Budget
from hive.runtime.debug.breakpoints import Breakpoint
from hive.runtime.debug.debugger import Debugger, Stop
from hive.runtime.debug.hooks import SKIPPED
from hive.runtime.debug.replay import replaying
from hive.runtime.debug.run import comparable, debugged_chain, hooked, run_debugged
from hive.runtime.debug.session import Action, Session
from hive.runtime.events import EventBus
from hive.runtime.models import OpenAICompatible
from hive.runtime.resilience.calls import EMPTY
from hive.runtime.teams.team import Team, TeamResult
from hive.runtime.tools import Tool, ToolRegistry
from tests.scripted_model import Script, scripted_model

pytestmark = pytest.mark.integration

SPEC = AgentTeamSpec.model_validate(
    {
        "goal": "Count the bees",
        "model": {
            "provider": "openai-compatible",
            "endpoint": "http://127.0.0.1:1/v1",
            "name": "m",
        },
        "pattern": "hierarchical",
        "delegation": {"qualityThreshold": 0.7, "maxRevisions": 1},
        "agents": [
            {"name": "lead", "role": "senior", "subordinates": ["worker"]},
            {"name": "worker", "role": "junior"},
        ],
    }
)


def script(score: float = 0.4) -> Script:
    return {
        "lead": [
            {"json": {"subtasks": [{"description": "Survey the meadow"}]}},
            {"when": "Rate the result", "json": {"score": score, "feedback": "count again"}},
            {"when": "final answer", "content": "42 bees."},
        ],
        "worker": [
            {"tool_calls": [{"name": "survey", "arguments": {"site": "meadow"}}]},
            {"content": "42 bees in the meadow"},
        ],
    }


@dataclass
class Surveys:
    sites: list[str] = field(default_factory=list)

    def tool(self) -> Tool:
        async def survey(site: str) -> dict[str, Any]:
            self.sites.append(site)
            return {"site": site, "bees": 42}

        params = {"type": "object", "properties": {"site": {"type": "string"}}}
        return Tool("survey", "Count the bees at a site.", params, survey)


@dataclass
class Debugged:
    """A team run under a debugger, with a way to wait until it pauses."""

    debugger: Debugger
    run: asyncio.Task[TeamResult]
    surveys: Surveys
    pauses: asyncio.Queue[Stop] = field(default_factory=asyncio.Queue)

    async def paused(self) -> Stop:
        """The next stop point the run pauses at (fails if the run ends or 60 s pass)."""
        waiting = asyncio.ensure_future(self.pauses.get())
        done, _ = await asyncio.wait({waiting, self.run}, timeout=60, return_when="FIRST_COMPLETED")
        if waiting not in done:
            waiting.cancel()
            raise AssertionError(f"the run did not pause: {self.run.done() and self.run.result()}")
        return waiting.result()


def team_for(
    url: str,
    debugger: Debugger,
    bus: EventBus,
    surveys: Surveys,
    spec: AgentTeamSpec = SPEC,
    **kw: Any,
) -> Team:
    hooks = hooked(debugger, bus)
    chain = debugged_chain(EMPTY, hooks)
    model: OpenAICompatible = kw.pop("model", None) or OpenAICompatible(url, "m", max_retries=0)
    model.chain = chain

    def tools(agent: str) -> ToolRegistry:
        registry = ToolRegistry.of([surveys.tool()] if agent == "worker" else [])
        registry.chain = chain.with_agent(agent)
        return registry

    return Team.local(spec, model, bus=bus, tools=tools, **kw)


@asynccontextmanager
async def debugging(url: str, breakpoints: list[str], **kw: Any) -> AsyncIterator[Debugged]:
    debugger = Debugger([Breakpoint.parse(b) for b in breakpoints])
    surveys = Surveys()
    team = team_for(url, debugger, EventBus(), surveys, **kw)
    run = asyncio.create_task(run_debugged(team, debugger, "Count the bees"))
    debugged = Debugged(debugger, run, surveys)

    def told(d: Debugger) -> None:
        if d.paused is not None and not d.paused.resumed.done():
            debugged.pauses.put_nowait(d.paused.stop)

    debugger.listeners.append(told)
    try:
        yield debugged
    finally:
        if not run.done():
            debugger.abort()
        await asyncio.wait_for(asyncio.gather(run, return_exceptions=True), 60)


async def test_a_run_pauses_at_breakpoints_is_inspected_and_changed() -> None:
    with scripted_model(script()) as server:
        async with debugging(server.url, ["delegate:worker", "tool:survey", "score<0.6"]) as run:
            stop = await run.paused()
            assert (stop.kind, stop.agent, stop.data["to"]) == ("delegated", "lead", "worker")
            assert stop.reason == "delegate:worker"
            assert run.debugger.inspect("plan")["decomposed"] == [
                {"agent": "lead", "subtasks": ["Survey the meadow"]}
            ]
            assert "└ worker: Survey the meadow" in run.debugger.inspect("tree")["lines"][1]
            budgets = run.debugger.inspect("budgets")
            assert budgets["tokens_by_agent"] == {"lead": 15, "worker": 0}
            lead_request = run.debugger.inspect("messages")["lead"]["messages"]
            assert "Split the task" in lead_request[-1]["content"]
            run.debugger.edit("Survey the meadow by the river")
            run.debugger.resume()

            stop = await run.paused()
            assert (stop.kind, stop.agent) == ("tool-call", "worker")
            assert stop.data == {"tool": "survey", "arguments": {"site": "meadow"}}
            run.debugger.skip()
            run.debugger.resume()

            stop = await run.paused()
            assert (stop.kind, stop.data["of"], stop.data["score"]) == ("reviewed", "worker", 0.4)
            run.debugger.override_score(0.9)
            run.debugger.resume()
            result = await run.run

    assert result.outcome is RunOutcome.SUCCEEDED, result.message
    assert result.output == "42 bees."
    first = server.requests_of("worker")[0]["messages"][-1]["content"]
    assert first == "Survey the meadow by the river"
    assert run.surveys.sites == []  # skipped: never called
    told = server.requests_of("worker")[1]["messages"][-1]
    assert (told["role"], told["content"]) == ("tool", SKIPPED)
    (delegation,) = result.delegations
    assert (delegation.review, delegation.revisions) == (0.9, 0)
    actions = [(a.action, a.value) for a in run.debugger.session.actions]
    assert actions == [
        ("inspect", "plan"),
        ("inspect", "tree"),
        ("inspect", "budgets"),
        ("inspect", "messages"),
        ("edit", "Survey the meadow by the river"),
        ("continue", None),
        ("skip", True),
        ("continue", None),
        ("score", 0.9),
        ("continue", None),
    ]
    assert [a.stop for a in run.debugger.session.actions][-1] == "reviewed:lead:1"


async def test_step_goes_to_the_next_stop_point_and_abort_ends_the_run() -> None:
    with scripted_model(script()) as server:
        async with debugging(server.url, ["model:lead"]) as run:
            stop = await run.paused()
            assert (stop.kind, stop.agent, stop.reason) == ("model-call", "lead", "model:lead")
            answer = run.debugger.inspect("model")["lead"]["response"]["content"]
            assert "Survey the meadow" in answer
            run.debugger.step()
            stop = await run.paused()
            assert (stop.kind, stop.agent, stop.reason) == ("model-called", "lead", "step")
            with pytest.raises(Exception, match="cannot be changed at a model-called stop"):
                run.debugger.skip()
            run.debugger.step()
            stop = await run.paused()
            assert (stop.kind, stop.reason) == ("decomposed", "step")
            run.debugger.abort()
            result = await run.run
    assert result.outcome is RunOutcome.FAILED
    assert "aborted at the debugger" in (result.message or "")
    assert server.requests_of("worker") == []  # nothing ran after the abort


async def test_a_pause_stops_the_budget_clock() -> None:
    held_s = 1.5
    # the agents' deadline and the team's are both shorter than the pause
    deadline = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=held_s * 0.8)
    spec = SPEC.model_copy(update={"budget": SPEC.budget.model_copy(update={"deadline": deadline})})
    with scripted_model(script(score=0.9)) as server:
        async with debugging(
            server.url, ["model:worker"], budget=Budget(deadline_s=1.0), spec=spec
        ) as run:
            await run.paused()
            await asyncio.sleep(held_s)  # the user looks longer than the agent's deadline
            run.debugger.resume()
            await run.paused()  # the worker's second answer: it was not out of time
            run.debugger.remove_breakpoint("model:worker")
            run.debugger.resume()
            result = await run.run
    assert result.outcome is RunOutcome.SUCCEEDED, result.message
    assert run.debugger.clock.paused_s >= held_s


async def test_the_report_durations_leave_out_the_time_held_paused() -> None:
    held_s = 1.0
    with scripted_model(script(score=0.9)) as server:
        started = time.monotonic()
        async with debugging(server.url, ["model:worker"]) as run:
            await run.paused()
            await asyncio.sleep(held_s)
            run.debugger.remove_breakpoint("model:worker")
            run.debugger.resume()
            result = await run.run
        outside_s = time.monotonic() - started
    assert result.outcome is RunOutcome.SUCCEEDED, result.message
    paused_s = run.debugger.clock.paused_s
    assert paused_s >= held_s
    assert result.profile["paused_ms"] == pytest.approx(paused_s * 1000, abs=1)
    # run time: what the run took less the pause, within what was measured around it
    assert 0 < result.duration_s <= outside_s - paused_s + 0.002
    assert result.profile["wall_ms"] <= result.duration_s * 1000 + 2
    steps = sum(p["ms"] for p in result.profile["critical_path"])
    assert steps == pytest.approx(result.profile["wall_ms"], abs=1)


async def test_a_session_replays_to_the_same_report_and_travels_back_in_time(
    tmp_path: Path,
) -> None:
    with scripted_model(script()) as server:
        async with debugging(server.url, ["score<0.6"]) as run:
            await run.paused()
            run.debugger.override_score(0.9)
            run.debugger.resume()
            recorded = await run.run
    path = tmp_path / "session.json"
    run.debugger.session.export(path)
    session = Session.load(path)
    assert session.report is not None
    assert comparable(session.report) == comparable(recorded.wire())

    # the model server is gone: the answers come from the session
    async def replay(session: Session) -> tuple[TeamResult, Debugger]:
        debugger = Debugger.replaying(session)
        model = replaying(
            OpenAICompatible("http://127.0.0.1:1/v1", "m", max_retries=0), session.answers, False
        )
        team = team_for("", debugger, EventBus(), Surveys(), model=model)
        return await run_debugged(team, debugger), debugger

    again, debugger = await replay(session)
    assert comparable(again.wire()) == comparable(recorded.wire())
    assert json.dumps(comparable(again.wire()), default=str) == json.dumps(
        comparable(session.report), default=str
    )
    assert [(a.action, a.value) for a in debugger.session.actions] == [("score", 0.9)]

    final = next(
        s["index"]
        for s in session.steps
        if s["kind"] == "model-call" and s["data"]["content"] == "42 bees."
    )
    changed, _ = await replay(session.rewound(final, Action("edit", 0, value="Forty-two.")))
    assert changed.output == "Forty-two."
    assert comparable(changed.wire()) | {"output": "42 bees."} == comparable(recorded.wire())

    review = next(s["index"] for s in session.steps if s["kind"] == "reviewed")
    unchanged, replayed = await replay(session.rewound(review))  # the low score stands
    assert unchanged.outcome is RunOutcome.FAILED
    assert unchanged.delegations[0].revisions == 1  # a revision the recording never saw
    errors = [s["data"].get("error") for s in replayed.session.steps if s["kind"] == "failed"]
    assert "replay: no recorded model answer left for worker" in errors
