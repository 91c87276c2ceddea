"""Simulated runs of a team for `hive test`: scenarios drawn with hypothesis, a simulated model.

A `Scenario` is what one run meets: the task (from the properties file's templates), how many
subtasks each plan has, the review scores and votes the model gives, which work answers cite a
source, and a fault schedule: which work calls the simulated model answers with HTTP 503, and
the runtime's own resilience faults (hive.runtime.resilience.faults, as a ChaosExperiment
injects them) aimed at agents — a model error, a model timeout, an empty answer, malformed
JSON, an answer cut short, an agent lost (every call of it unavailable) — each on every call
of its agent or on a seeded half of them (`fault_seed` replays the draws).
The simulated model is an OpenAI-compatible server on loopback that answers each request by its
kind (a plan, a review, a decomposition, a proposal, a ballot, a synthesis or work) from the
scenario; the team runs for real against it (`Team.local`, its model client passing the
runtime's fault injector), its events recorded.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from hypothesis import strategies as st

from hive.api.agentteam import AgentTeamSpec
from hive.runtime.events import Event, EventBus
from hive.runtime.models import OpenAICompatible
from hive.runtime.resilience.calls import Chain
from hive.runtime.resilience.faults import FaultInjector
from hive.runtime.resilience.faultspec import AimedFault
from hive.runtime.teams.roster import Approval, ApprovalRequest
from hive.runtime.teams.team import Team, TeamResult
from hive.verify.faults import FAULT_KINDS, RESILIENCE_FAULTS, WORK_503
from hive.verify.properties import PropertyFile

SCORES = (0.95, 0.8, 0.5, 0.2)  # shrinking goes to the first: a good review
VOTES = ("accept", "reject", "abstain")
PROBABILITIES = (1.0, 0.5)  # every call of the agent, or a seeded half (shrinks to every call)


@dataclass(frozen=True)
class Scenario:
    """What one simulated run meets."""

    task: str
    subtasks: int = 1
    scores: tuple[float, ...] = (0.95,)
    cites: tuple[bool, ...] = (True,)
    votes: tuple[str, ...] = ("accept",)
    failing_calls: frozenset[int] = frozenset()  # work calls (0-based) answered with HTTP 503
    faults: tuple[tuple[str, str, float], ...] = ()  # (fault, agent, probability per call)
    fault_seed: int = 0  # the seed of the faults' draws per call


@st.composite
def scenarios(
    draw: st.DrawFn, file: PropertyFile, default_task: str, agents: tuple[str, ...] = ()
) -> Scenario:
    """Scenarios over the file's task templates, answers and fault schedules (of the kinds
    the file's `faults` names; all of them when it names none)."""
    templates = file.tasks or [default_task]
    template = draw(st.sampled_from(templates))
    filled = {k: draw(st.sampled_from(v)) for k, v in file.values.items() if v}
    try:
        task = template.format(**filled)
    except (KeyError, IndexError):
        task = template
    kinds = file.faults if file.faults is not None else list(FAULT_KINDS)
    failing: frozenset[int] = frozenset()
    if WORK_503 in kinds:
        failing = draw(st.frozensets(st.integers(min_value=0, max_value=6), max_size=2))
    aimed = [k for k in kinds if k in RESILIENCE_FAULTS]
    faults: list[tuple[str, str, float]] = []
    if aimed and agents:
        faults = draw(
            st.lists(
                st.tuples(
                    st.sampled_from(aimed), st.sampled_from(agents), st.sampled_from(PROBABILITIES)
                ),
                max_size=2,
                unique_by=lambda f: (f[0], f[1]),
            )
        )
    return Scenario(
        task=task,
        subtasks=draw(st.integers(min_value=1, max_value=3)),
        scores=tuple(draw(st.lists(st.sampled_from(SCORES), min_size=1, max_size=4))),
        cites=tuple(draw(st.lists(st.booleans().map(lambda b: not b), min_size=1, max_size=3))),
        votes=tuple(draw(st.lists(st.sampled_from(VOTES), min_size=1, max_size=4))),
        failing_calls=failing,
        faults=tuple(faults),
        fault_seed=draw(st.integers(min_value=0, max_value=2**16)) if faults else 0,
    )


def injector_of(scenario: Scenario, bus: EventBus) -> FaultInjector:
    """The runtime's fault injector loaded with the scenario's resilience faults."""
    injector = FaultInjector(bus=bus)
    aimed = [
        AimedFault(
            experiment="hive-test",
            index=index,
            fault=RESILIENCE_FAULTS[kind].model_copy(update={"probability": probability}),
            agents=frozenset({agent}),
            start=None,
            until=None,
            seed=scenario.fault_seed,
        )
        for index, (kind, agent, probability) in enumerate(scenario.faults)
    ]
    injector.load(aimed, [])
    return injector


@dataclass
class SimulatedModel:
    """Answers requests from a scenario, counting each kind of answer it gave."""

    scenario: Scenario
    given: dict[str, int] = field(default_factory=dict)

    def _next(self, kind: str, options: tuple[Any, ...]) -> Any:
        n = self.given.get(kind, 0)
        self.given[kind] = n + 1
        return options[n % len(options)]

    def answer(self, prompt: str) -> str | None:
        """The reply to `prompt`; None for a failing call."""
        s = self.scenario
        if "Split the task into" in prompt:
            subtasks = [{"description": f"part {k + 1} of the task"} for k in range(s.subtasks)]
            return json.dumps({"subtasks": subtasks})
        if "Rate the result" in prompt:
            return json.dumps({"score": self._next("score", s.scores), "feedback": "be precise"})
        if "subgoals" in prompt:
            parts = [
                {"name": f"p{k}", "description": f"part {k}", "outputs": [f"o{k}"]}
                for k in range(s.subtasks)
            ]
            return json.dumps({"subgoals": parts})
        if "Propose a solution" in prompt:
            n = self.given.get("proposal", 0)
            self.given["proposal"] = n + 1
            return json.dumps({"proposal": f"option {n % 3}", "rationale": "simple"})
        if "Vote on every proposal" in prompt:
            count = prompt.count(". (")
            votes = [
                {"proposal": k, "vote": self._next("vote", s.votes), "reason": "r"}
                for k in range(1, max(count, 1) + 1)
            ]
            return json.dumps({"votes": votes})
        if "final answer" in prompt or "Write one answer" in prompt:
            return self._text()
        call = self.given.get("work", 0)
        self.given["work"] = call + 1
        return None if call in s.failing_calls else self._text()

    def _text(self) -> str:
        cited = self._next("cite", self.scenario.cites)
        return "The finding holds." + (" [source: field notes]" if cited else "")

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        messages = body.get("messages") or [{}]
        prompt = str(messages[-1].get("content") or "")
        content = self.answer(prompt)
        if content is None:
            return web.json_response({"error": {"message": "injected fault"}}, status=503)
        usage = {"prompt_tokens": len(prompt) // 4 + 1, "completion_tokens": len(content) // 4 + 1}
        message = {"role": "assistant", "content": content}
        return web.json_response(
            {"choices": [{"index": 0, "message": message, "finish_reason": "stop"}], "usage": usage}
        )


async def simulate(spec: AgentTeamSpec, scenario: Scenario) -> tuple[TeamResult, list[Event]]:
    """Run the team on `scenario` against the simulated model; the result and its events."""
    model = SimulatedModel(scenario)
    app = web.Application()
    app.router.add_post("/v1/chat/completions", model.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    bus = EventBus()
    client = OpenAICompatible(
        f"http://127.0.0.1:{port}/v1",
        spec.model.name,
        max_retries=0,
        backoff_s=0.01,
        chain=Chain((injector_of(scenario, bus),)),
    )
    events: list[Event] = []
    bus.subscribe(events.append)

    async def approve_all(_: ApprovalRequest) -> Approval:
        return Approval(True, "simulated")

    try:
        result = await Team.local(spec, client, bus=bus, approver=approve_all).run(scenario.task)
    finally:
        await client.aclose()
        await runner.cleanup()
    return result, events


def run_scenario(spec: AgentTeamSpec, scenario: Scenario) -> tuple[TeamResult, list[Event]]:
    return asyncio.run(simulate(spec, scenario))
