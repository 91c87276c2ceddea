"""A team run: members built from an AgentTeam spec, the pattern run on a task, and a report.

`Team.local` builds every member in this process over one OpenAI-compatible model (each member
counts its own usage); `Team.run` runs the spec's pattern — hierarchical, swarm or negotiation —
within the team's budget (total tokens and deadline) and returns a `TeamResult` that says how
it ended and why, with every delegation, review, round and vote.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from hive.api.agentteam import AgentTeamSpec, Pattern, RunOutcome, coordinator_of
from hive.errors import HiveError
from hive.runtime.agent import Budget
from hive.runtime.debug.clock import run_clock
from hive.runtime.events import Event, EventBus, EventKind
from hive.runtime.models import OpenAICompatible
from hive.runtime.profiling import Profiler
from hive.runtime.reasoning.records import ReasoningRecorder
from hive.runtime.teams import hierarchical
from hive.runtime.teams.approvals import model_approver
from hive.runtime.teams.members import LocalMember, Member, WorkResult
from hive.runtime.teams.negotiation import Tally, negotiate
from hive.runtime.teams.roster import Approver, Delegation, Roster
from hive.runtime.teams.swarm import swarm
from hive.runtime.tools import ToolRegistry


@dataclass
class AgentReport:
    name: str
    role: str
    tasks_completed: int
    tokens: int


@dataclass
class ContextTotals:
    """The team's context-optimized events, added up."""

    optimisations: int = 0  # requests that had to be made smaller
    dropped: int = 0  # segments dropped without a summary
    cut: int = 0  # segments cut short
    summarised: int = 0  # segments of history a summary replaced
    tokens_saved: int = 0

    def add(self, event: Event) -> None:
        data = event.data
        self.optimisations += 1
        self.dropped += sum(data.get("dropped", {}).values())
        self.cut += int(data.get("cut", 0))
        self.summarised += int(data.get("summarised", 0))
        self.tokens_saved += int(data.get("tokens_before", 0)) - int(data.get("tokens", 0))


@dataclass
class TeamResult:
    outcome: RunOutcome
    output: str
    pattern: str
    task: str
    coordinator: str
    message: str | None = None
    rounds: int = 0
    delegations: list[Delegation] = field(default_factory=list)
    tallies: list[Tally] = field(default_factory=list)
    plan: list[dict[str, Any]] = field(default_factory=list)
    agents: list[AgentReport] = field(default_factory=list)
    tokens: int = 0
    duration_s: float = 0.0
    # the capability levels the run went through: {level, reason, since}, oldest first
    capability: list[dict[str, str]] = field(default_factory=list)
    # what working memory took out of requests to keep them within the agents' context budgets
    context: ContextTotals = field(default_factory=ContextTotals)
    # every reasoning trace and plan search of the run, with the agent and task that made it
    reasoning: list[dict[str, Any]] = field(default_factory=list)
    # where the run's time, tokens and cost went (hive.runtime.profiling; `hive profile`)
    profile: dict[str, Any] = field(default_factory=dict)
    # the run's call caches (spec.cache): hits, misses and bytes per level, semantic hits
    cache: dict[str, Any] = field(default_factory=dict)
    # spend through the team's model routes (spec.model.gateway), as status.usage holds it
    usage: dict[str, Any] = field(default_factory=dict)

    def wire(self) -> dict[str, Any]:
        """The report as plain JSON-able data."""
        data = asdict(self)
        data["outcome"] = str(self.outcome)
        data["tallies"] = [
            {
                "author": t.author,
                "proposal": t.proposal.proposal,
                "rationale": t.proposal.rationale,
                "accepts": t.accepts,
                "rejects": t.rejects,
                "abstains": t.abstains,
                "support": round(t.support, 3),
                "reasons": t.reasons,
            }
            for t in self.tallies
        ]
        return data


def leaves(error: BaseException) -> list[BaseException]:
    """The errors inside (nested) exception groups, in order."""
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in leaves(inner)]
    return [error]


class Team:
    def __init__(
        self,
        spec: AgentTeamSpec,
        members: Mapping[str, Member],
        *,
        bus: EventBus | None = None,
        approver: Approver | None = None,
    ) -> None:
        self.spec = spec
        self.bus = bus or EventBus()
        self.roster = Roster(spec, dict(members), self.bus, approver)
        if approver is None:
            self.roster.approver = model_approver(self.roster)
        self.coordinator = coordinator_of(spec)
        for member in members.values():
            if isinstance(member, LocalMember):
                member.leader = self._lead

    @classmethod
    def local(
        cls,
        spec: AgentTeamSpec,
        model: OpenAICompatible,
        *,
        bus: EventBus | None = None,
        tools: Callable[[str], ToolRegistry] | None = None,
        approver: Approver | None = None,
        budget: Budget | None = None,
        only: set[str] | None = None,
    ) -> Team:
        """Every agent of `spec` (or those in `only`) as a member in this process."""
        bus = bus or EventBus()
        members: dict[str, Member] = {}
        for agent in spec.agents:
            if only is not None and agent.name not in only:
                continue
            members[agent.name] = LocalMember(
                spec=agent,
                model=model.for_agent(agent.name),
                goal=spec.goal,
                bus=bus,
                tools=tools(agent.name) if tools else ToolRegistry(),
                budget=budget or Budget(),
            )
        return cls(spec, members, bus=bus, approver=approver)

    async def _lead(self, senior: LocalMember, task: str, chain: tuple[str, ...]) -> WorkResult:
        return await hierarchical.lead(senior, self.roster, task, chain)

    async def _pattern(self, task: str, result: TeamResult) -> None:
        coordinator = self.roster.members[self.coordinator]
        if self.spec.pattern == Pattern.NEGOTIATION:
            outcome = await negotiate(self.roster, task, self.coordinator)
            result.tallies = outcome.tallies
            result.message = outcome.message
            if outcome.agreed and outcome.winner is not None:
                result.outcome = RunOutcome.SUCCEEDED
                result.output = outcome.winner.proposal.proposal
            else:
                result.outcome = RunOutcome.DEADLOCKED
                result.output = outcome.winner.proposal.proposal if outcome.winner else ""
            return
        if self.spec.pattern == Pattern.SWARM:
            if not isinstance(coordinator, LocalMember):
                raise HiveError(f"the swarm's coordinator {self.coordinator} must run here")
            work = await swarm(coordinator, self.roster, task)
        else:
            work = await coordinator.execute(task, (self.coordinator,))
            self.roster.completed[self.coordinator] = (
                self.roster.completed.get(self.coordinator, 0) + 1
            )
        result.output = work.output
        if work.ok:
            result.outcome = RunOutcome.SUCCEEDED
        else:
            result.outcome = RunOutcome.FAILED
            result.message = work.error

    def _usage(self) -> dict[str, tuple[int, float]]:
        """Each member's tokens and cost so far (cost: members whose model counts it)."""
        usage = {}
        for member in self.roster.members.values():
            model = getattr(member, "model", None)
            cost = float(getattr(getattr(model, "usage", None), "cost", 0.0))
            usage[member.name] = (member.tokens(), cost)
        return usage

    async def run(self, task: str | None = None) -> TeamResult:
        """Work on `task` (default: the goal) until done, failed, deadlocked or over budget."""
        task = task or self.spec.goal
        clock = run_clock()  # run time: a debugger's pauses are not the run's duration
        started = clock.now()
        result = TeamResult(
            outcome=RunOutcome.RUNNING,
            output="",
            pattern=str(self.spec.pattern),
            task=task,
            coordinator=self.coordinator,
        )
        over_budget = asyncio.Event()
        limit = self.spec.budget.max_tokens

        def watch(event: Event) -> None:
            if event.kind is EventKind.CONTEXT_OPTIMIZED:
                result.context.add(event)
            over = limit is not None and self.roster.tokens() > limit
            if event.kind is EventKind.MODEL_CALLED and over:
                over_budget.set()

        unsubscribe = self.bus.subscribe(watch)
        profiler, reasoning = Profiler(clock.now), ReasoningRecorder()
        recorders = [self.bus.subscribe(profiler), self.bus.subscribe(reasoning)]
        timeout = None
        if self.spec.budget.deadline is not None:
            timeout = (self.spec.budget.deadline - dt.datetime.now(dt.UTC)).total_seconds()
        await self.roster.emit(
            EventKind.TEAM_STARTED, self.coordinator, task=task, pattern=result.pattern
        )
        work = asyncio.create_task(self._pattern(task, result))
        budget = asyncio.create_task(over_budget.wait())
        try:
            done, _ = await clock.wait(  # a debugger's pauses do not count
                {work, budget},
                max(timeout, 0) if timeout is not None else None,
                asyncio.FIRST_COMPLETED,
            )
            if work in done:
                work.result()
            elif budget in done:
                result.outcome = RunOutcome.FAILED
                result.message = (
                    f"budget.maxTokens: the team used {self.roster.tokens()} tokens, more than "
                    f"{limit}"
                )
            else:
                result.outcome = RunOutcome.FAILED
                result.message = f"budget.deadline: {self.spec.budget.deadline} passed"
        except* HiveError as group:
            result.outcome = RunOutcome.FAILED
            result.message = "; ".join(dict.fromkeys(str(e) for e in leaves(group)))
        finally:
            unsubscribe()
            for stop in recorders:
                stop()
            for task_ in (work, budget):
                task_.cancel()
            await asyncio.gather(work, budget, return_exceptions=True)
        result.rounds = self.roster.rounds
        result.delegations = list(self.roster.delegations)
        result.plan = list(self.roster.plan)
        result.tokens = self.roster.tokens()
        result.duration_s = round(clock.now() - started, 3)
        result.reasoning = reasoning.records
        result.profile = profiler.build(usage=self._usage())
        result.agents = [
            AgentReport(
                name=m.name,
                role=str(m.spec.role),
                tasks_completed=self.roster.completed.get(m.name, 0),
                tokens=m.tokens(),
            )
            for m in self.roster.members.values()
        ]
        await self.roster.emit(
            EventKind.TEAM_FINISHED,
            self.coordinator,
            outcome=str(result.outcome),
            message=result.message,
            output=result.output,
        )
        return result
