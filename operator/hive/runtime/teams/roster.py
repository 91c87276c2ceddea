"""The team as its coordinator sees it: members, their load and quality, and what happened.

The roster is where delegation decisions come from (load and past review quality by member)
and where every delegation, review, approval, round and vote is recorded for the report.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from hive.api.agentteam import AgentTeamSpec
from hive.runtime.events import Event, EventBus, EventKind
from hive.runtime.swarmjobs.levels import SwarmJobs
from hive.runtime.teams.members import Member
from hive.runtime.teams.scoring import Candidate, updated_quality


@dataclass
class Delegation:
    senior: str
    subordinate: str
    task: str
    score: float
    chain: tuple[str, ...]
    revisions: int = 0
    review: float | None = None
    approved: bool | None = None
    ok: bool = True
    output: str = ""


@dataclass(frozen=True)
class ApprovalRequest:
    senior: str
    subordinate: str
    task: str
    output: str
    review: float | None


@dataclass(frozen=True)
class Approval:
    approved: bool
    reason: str = ""


Approver = Callable[[ApprovalRequest], Awaitable[Approval]]


@dataclass
class Roster:
    spec: AgentTeamSpec
    members: dict[str, Member]
    bus: EventBus
    approver: Approver | None = None
    quality: dict[str, float] = field(default_factory=dict)
    active: dict[str, int] = field(default_factory=dict)
    completed: dict[str, int] = field(default_factory=dict)
    delegations: list[Delegation] = field(default_factory=list)
    jobs: SwarmJobs | None = None  # spec.swarm.jobs in a cluster: a swarm's parts as Jobs
    rounds: int = 0
    plan: list[dict[str, Any]] = field(default_factory=list)

    def candidate(self, name: str, queued: int | None = None) -> Candidate:
        """`queued`: the depth of its work queue, for a member reached through one (an agent
        with replicas, hive.runtime.workqueue.load): tasks other seniors gave it take its
        capacity too, and its capacity is that of all its replicas."""
        member = self.members[name]
        return Candidate(
            name=name,
            capabilities=frozenset(member.spec.capabilities),
            active=self.active.get(name, 0),
            capacity=member.spec.max_concurrent_tasks,
            quality=self.quality.get(name),
            queued=queued or 0,
            replicas=1 if queued is None else member.spec.replicas,
        )

    def reviewed(self, name: str, score: float) -> None:
        self.quality[name] = updated_quality(self.quality.get(name), score)

    def started(self, name: str) -> None:
        self.active[name] = self.active.get(name, 0) + 1

    def finished(self, name: str) -> None:
        self.active[name] = max(0, self.active.get(name, 0) - 1)
        self.completed[name] = self.completed.get(name, 0) + 1

    def tokens(self) -> int:
        return sum(m.tokens() for m in self.members.values())

    async def emit(self, kind: EventKind, agent: str, **data: Any) -> None:
        await self.bus.publish(Event(kind, agent, data))
