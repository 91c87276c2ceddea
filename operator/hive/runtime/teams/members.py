"""Members of a team: what each agent can be asked to do, in this process or in another pod.

A `Member` executes a task (a leaf agent runs its loop of model and tool calls; a senior in a
hierarchy leads its own subordinates), proposes a solution and votes on proposals. `LocalMember`
does this with its own model in this process; `hive.runtime.teams.peers.RemoteMember` asks the
agent's pod over HTTP, so one team can span pods.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from pydantic import BaseModel

from hive.api.agentteam import AgentSpec, Reasoning
from hive.errors import HiveError
from hive.runtime.agent import Agent, Budget, Outcome
from hive.runtime.events import Event, EventBus, EventKind, current_task
from hive.runtime.models import InvalidModelOutput, Message, Reply, Usage
from hive.runtime.reasoning.records import briefing
from hive.runtime.reasoning.thought import ThoughtEngine
from hive.runtime.teams.schemas import Ballot, Choice, Proposal, Vote
from hive.runtime.tools import ToolRegistry

if TYPE_CHECKING:  # numpy and the ONNX runtime load only where embeddings are used
    from hive.runtime.memory.embeddings import Embedder

M = TypeVar("M", bound=BaseModel)


class TeamModel(Protocol):
    """A chat model that also answers in validated JSON and counts what it used."""

    usage: Usage

    async def complete(
        self,
        messages: Sequence[Message],
        tools: Sequence[dict[str, Any]] | None = None,
        **extra: Any,
    ) -> Reply: ...

    async def structured(
        self, messages: Sequence[Message], schema: type[M], *, repairs: int = 2
    ) -> M: ...


@dataclass
class WorkResult:
    """What one member delivered for one task."""

    agent: str
    output: str
    ok: bool = True
    error: str | None = None
    steps: int = 0

    def wire(self) -> dict[str, Any]:
        return {
            "agent": self.agent,
            "output": self.output,
            "ok": self.ok,
            "error": self.error,
            "steps": self.steps,
        }

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> WorkResult:
        return cls(
            agent=str(data["agent"]),
            output=str(data.get("output") or ""),
            ok=bool(data.get("ok", True)),
            error=data.get("error"),
            steps=int(data.get("steps") or 0),
        )


class Member(Protocol):
    @property
    def name(self) -> str: ...

    spec: AgentSpec

    async def execute(self, task: str, chain: tuple[str, ...]) -> WorkResult: ...

    async def propose(self, task: str, history: str) -> Proposal | None: ...

    async def vote(self, task: str, proposals: Sequence[tuple[str, Proposal]]) -> Ballot: ...

    def tokens(self) -> int: ...


Leader = Callable[["LocalMember", str, tuple[str, ...]], Awaitable[WorkResult]]
Recall = Callable[[str], Awaitable[Sequence[str]]]  # task -> memories, most relevant first


def system_prompt(spec: AgentSpec, goal: str) -> str:
    skills = ", ".join(spec.capabilities) or "general work"
    return (
        f"You are {spec.name}, a {spec.role} agent in a team whose goal is: {goal}\n"
        f"Your capabilities: {skills}. Be concise and concrete. Use tools when they help."
    )


@dataclass
class TimedModel:
    """A member's model whose every answer is published as a model-called event with its
    duration and purpose (planning, reasoning, ...), so profiles count the time it took."""

    member: LocalMember
    purpose: str

    async def complete(
        self,
        messages: Sequence[Message],
        tools: Sequence[dict[str, Any]] | None = None,
        **extra: Any,
    ) -> Reply:
        started = time.monotonic()
        reply = await self.member.model.complete(messages, tools, **extra)
        await self.member.model_called(self.purpose, started)
        return reply


@dataclass
class LocalMember:
    """An agent of the team running in this process, with its own model and tools."""

    spec: AgentSpec
    model: TeamModel
    goal: str
    bus: EventBus
    tools: ToolRegistry = field(default_factory=ToolRegistry)
    budget: Budget = field(default_factory=Budget)
    repairs: int = 2
    leader: Leader | None = None  # set when this member leads subordinates
    # what the agent remembers that is relevant to a task, most relevant first (its memory
    # store's recall; see hive.runtime.memory), put into its context before it works
    recall: Recall | None = None
    # scores what in the agent's context is relevant to its task, when its context has to be
    # made smaller (spec.context.maxTokens); None: overlap of words
    embedder: Embedder | None = None
    _slots: asyncio.Semaphore | None = None
    _reasoned: dict[str, str] = field(default_factory=dict)  # briefing by task, reasoned once

    @property
    def name(self) -> str:
        return self.spec.name

    def tokens(self) -> int:
        return self.model.usage.total_tokens

    def messages(self, prompt: str) -> list[Message]:
        return [
            {"role": "system", "content": system_prompt(self.spec, self.goal)},
            {"role": "user", "content": prompt},
        ]

    async def emit(self, kind: EventKind, **data: Any) -> None:
        await self.bus.publish(Event(kind, self.name, data))

    async def model_called(self, purpose: str, started: float) -> None:
        """Publish a model call outside the agent loop (its duration since `started`)."""
        await self.emit(
            EventKind.MODEL_CALLED,
            purpose=purpose,
            tokens=self.tokens(),
            duration_ms=round((time.monotonic() - started) * 1000, 3),
        )

    async def ask(self, prompt: str, purpose: str = "answer") -> str:
        """One plain answer from this member's model."""
        started = time.monotonic()
        reply = await self.model.complete(self.messages(prompt))
        await self.model_called(purpose, started)
        return (reply.content or "").strip()

    async def ask_for(self, prompt: str, schema: type[M]) -> M | None:
        """An answer validated as `schema`, or None when the model never produced one."""
        started = time.monotonic()
        try:
            return await self.model.structured(self.messages(prompt), schema, repairs=self.repairs)
        except InvalidModelOutput as exc:
            await self.emit(EventKind.TOOL_FAILED, tool=schema.__name__, error=str(exc))
            return None
        finally:
            await self.model_called(schema.__name__, started)

    async def think(self, task: str, context: Sequence[str] = ()) -> str:
        """With `reasoning: chain-of-thought`, reason toward `task` through a recorded trace
        (published as thought-* events) and return what the agent should act on; else ""."""
        if self.spec.reasoning != Reasoning.CHAIN_OF_THOUGHT:
            return ""
        if task not in self._reasoned:  # a negotiation's rounds reason about their task once
            engine = ThoughtEngine(
                TimedModel(self, "reasoning"), bus=self.bus, agent=self.name, repairs=self.repairs
            )
            trace = await engine.solve(task, context=context)
            self._reasoned[task] = briefing(trace)
        return self._reasoned[task]

    async def execute(self, task: str, chain: tuple[str, ...] = ()) -> WorkResult:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.spec.max_concurrent_tasks)
        waiting = time.monotonic()
        async with self._slots:
            task_id = uuid.uuid4().hex[:16]
            parent = current_task.get()
            entered = current_task.set(task_id)  # events from here on belong to this task
            try:
                await self.emit(
                    EventKind.TASK_STARTED,
                    task=task,
                    chain=list(chain),
                    task_id=task_id,
                    parent_task=parent,
                    queued_ms=round((time.monotonic() - waiting) * 1000, 3),
                )
                try:
                    if self.leader is not None and self.spec.subordinates:
                        result = await self.leader(self, task, chain)
                    else:
                        result = await self.work(task)
                except HiveError as exc:
                    await self.emit(
                        EventKind.TASK_FINISHED, ok=False, error=str(exc), task_id=task_id
                    )
                    raise
                await self.emit(
                    EventKind.TASK_FINISHED, ok=result.ok, error=result.error, task_id=task_id
                )
                return result
            finally:
                current_task.reset(entered)

    async def work(self, task: str) -> WorkResult:
        """Run the agent loop on `task` with this member's tools and budget."""
        recalled = await self._recalled(task)
        reasoned = await self.think(task, recalled)
        agent = Agent(
            name=self.name,
            model=self.model,
            tools=self.tools,
            bus=self.bus,
            system_prompt=system_prompt(self.spec, self.goal),
            budget=self.budget,
            recalled=recalled,
            context_tokens=self.spec.context.max_tokens,
            embedder=self.embedder,
        )
        result = await agent.run(f"{task}\n\n{reasoned}" if reasoned else task)
        return WorkResult(
            agent=self.name,
            output=result.output,
            ok=result.outcome is Outcome.FINISHED,
            error=result.error,
            steps=result.steps,
        )

    async def _recalled(self, task: str) -> list[str]:
        """What the agent remembers for `task`; a memory that fails leaves it to work without
        (the failure is an event), as a person works on when a note cannot be found."""
        if self.recall is None:
            return []
        try:
            return list(await self.recall(task))
        except HiveError as exc:
            await self.emit(EventKind.TOOL_FAILED, tool="recall", error=str(exc))
            return []

    async def propose(self, task: str, history: str) -> Proposal | None:
        reasoned = await self.think(task)
        context = f"{reasoned}\n" if reasoned else ""
        prompt = (
            f"Task: {task}\n{history}\n{context}Propose a solution and your rationale. "
            'Answer with a JSON object: {"proposal": "...", "rationale": "..."}'
        )
        proposal = await self.ask_for(prompt, Proposal)
        if proposal is not None:
            await self.emit(
                EventKind.PROPOSED, proposal=proposal.proposal, rationale=proposal.rationale
            )
        return proposal

    async def vote(self, task: str, proposals: Sequence[tuple[str, Proposal]]) -> Ballot:
        listing = "\n".join(
            f"{i}. ({author}) {p.proposal} -- rationale: {p.rationale}"
            for i, (author, p) in enumerate(proposals, 1)
        )
        prompt = (
            f"Task: {task}\nProposals:\n{listing}\nVote on every proposal: accept, reject or "
            "abstain, each with a short reason. Answer with a JSON object: "
            + json.dumps(
                {"votes": [{"proposal": 1, "vote": "accept", "reason": "..."}]},
            )
        )
        ballot = await self.ask_for(prompt, Ballot)
        if ballot is None:
            reason = "no valid ballot from the model"
            ballot = Ballot(
                votes=[
                    Vote(proposal=i, vote=Choice.ABSTAIN, reason=reason)
                    for i in range(1, len(proposals) + 1)
                ]
            )
        return ballot


class DelegationError(HiveError):
    """Delegation would loop or go deeper than the team allows."""
