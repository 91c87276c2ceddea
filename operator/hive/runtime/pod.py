"""One agent's pod: its configuration, its peer API, its progress reports, and the team's run.

Every agent pod serves its part of the team to its peers (`hive.runtime.teams.peers`) and
reports its own status entry as it works. The coordinator — the top senior of a hierarchy, or
the first senior or agent otherwise — also waits for its peers, runs the team's goal once per
spec generation, and records the run (outcome, answer, rounds, delegations, tokens) in the
team's status. A restarted coordinator that finds the run of the current generation finished
does not run it again; one that finds it still marked Running (it died mid-run) runs it again.

A coordinator agent with several replicas (``replicas > 1``) has one pod per replica, each
ready to coordinate: they take turns through a `RunClaim` (a Lease per team run, hive.kube.lease).
The holder runs the goal and records the run before it lets go; the others wait, and find the
run of the generation finished when they get the claim (or run it, if its holder died mid-run
and its claim ran out): the goal runs once per spec generation.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml
from opentelemetry.trace import Tracer
from pydantic import ValidationError

from hive.api.agentteam import (
    AgentPhase,
    AgentTeamSpec,
    PlanStep,
    RunOutcome,
    RunStatus,
    ToolCallCount,
    coordinator_of,
)
from hive.api.common import describe_validation_error
from hive.errors import HiveError, InvalidInput
from hive.runtime.agent import Budget
from hive.runtime.debug.debugger import Debugger
from hive.runtime.debug.run import run_debugged
from hive.runtime.debug.server import DebugServer
from hive.runtime.events import Event, EventBus, EventKind
from hive.runtime.identity.audit import AuditLog
from hive.runtime.identity.delegation import Authority, team_root
from hive.runtime.identity.peerauth import PeerSigner, PeerVerifier
from hive.runtime.memory.embeddings import Embedder
from hive.runtime.memory.sessions import SessionMemory, with_context
from hive.runtime.models import OpenAICompatible
from hive.runtime.reporting import RunSink, StatusSink
from hive.runtime.resilience.calls import EMPTY, Chain
from hive.runtime.resilience.report import ResilienceReport
from hive.runtime.swarmjobs.levels import SwarmJobs
from hive.runtime.teams.members import LocalMember, Member, Recall
from hive.runtime.teams.peers import PeerExtension, PeerServer, RemoteMember, wait_for_peers
from hive.runtime.teams.progress import FaultReport, ProgressTracker
from hive.runtime.teams.team import Team, TeamResult
from hive.runtime.tools import ToolRegistry
from hive.runtime.tracing.events import EventSpans
from hive.runtime.tracing.runs import run_span, trace_id_of
from hive.runtime.workqueue.peers import QueuedPeer

log = logging.getLogger(__name__)
TEAM_KEYS = (
    "goal",
    "pattern",
    "model",
    "delegation",
    "swarm",
    "negotiation",
    "budget",
    "resilience",
    "memory",
    "observability",
    "debug",
    "privacy",
    "agents",
)


@dataclass(frozen=True)
class PodConfig:
    """What the operator mounts for one agent (its ConfigMap's agent.yaml)."""

    team: str
    namespace: str
    agent: str
    spec: AgentTeamSpec
    peer_urls: dict[str, str] = field(default_factory=dict)
    sandbox_policy: dict[str, Any] | None = None
    sandbox_url: str | None = None
    faults_path: Path | None = None  # the team's fault ConfigMap, mounted
    peer_keys: dict[str, str] | None = None  # the agents' public signing keys (peerauth)
    memory_store: dict[str, Any] | None = None  # its MemoryStore: {name, spec} (memorywiring)
    documents_store: dict[str, Any] | None = None  # spec.memory.documents' store: {name, spec}
    swarm_job: dict[str, Any] | None = None  # spec.swarm.jobs: the parts' Job (reconcile.swarmjobs)

    @classmethod
    def load(cls, path: Path, agent: str) -> PodConfig:
        where = f"--config {path}"
        if not path.is_file():
            raise InvalidInput(where, "no such file")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise InvalidInput(where, f"not valid YAML ({exc.__class__.__name__})") from exc
        if not isinstance(data, dict):
            raise InvalidInput(where, "expected a mapping")
        own = (data.get("agent") or {}).get("name")
        if own != agent:
            raise InvalidInput(where, f"describes agent {own!r}, not {agent!r}")
        team = {k: data[k] for k in TEAM_KEYS if k in data}
        team.setdefault("agents", [data["agent"]])
        try:
            spec = AgentTeamSpec.model_validate(team)
        except ValidationError as exc:
            raise InvalidInput(where, describe_validation_error(exc)) from exc
        return cls(
            team=str(data.get("team") or ""),
            namespace=str(data.get("namespace") or "default"),
            agent=agent,
            spec=spec,
            peer_urls={str(k): str(v) for k, v in (data.get("peerUrls") or {}).items()},
            sandbox_policy=data.get("sandboxPolicy"),
            sandbox_url=data.get("sandboxUrl"),
            faults_path=Path(data["faultsPath"]) if data.get("faultsPath") else None,
            peer_keys=(
                {str(k): str(v) for k, v in data["peerKeys"].items()}
                if isinstance(data.get("peerKeys"), dict)
                else None
            ),
            memory_store=data["memoryStore"] if isinstance(data.get("memoryStore"), dict) else None,
            documents_store=(
                data["documentsStore"] if isinstance(data.get("documentsStore"), dict) else None
            ),
            swarm_job=data["swarmJob"] if isinstance(data.get("swarmJob"), dict) else None,
        )

    @property
    def is_coordinator(self) -> bool:
        return coordinator_of(self.spec) == self.agent

    def agent_spec(self, name: str) -> Any:
        return next(a for a in self.spec.agents if a.name == name)


class RunClaim(Protocol):
    """The right to run the team's goal, held by one coordinator replica at a time."""

    retry_s: float  # how often a waiting replica tries, and the holder renews

    async def try_claim(self) -> bool:
        """One attempt to take (or keep) the claim; True while this replica holds it."""
        ...

    async def release(self) -> None: ...


class TeamStatus(StatusSink, RunSink, Protocol):
    """Where a pod reports: its own entry, the team's run, and what the run last recorded."""

    async def generation(self) -> int: ...

    async def last_run(self) -> RunStatus | None: ...


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def run_status(
    result: TeamResult, generation: int, started: dt.datetime, trace_id: str | None = None
) -> RunStatus:
    return RunStatus(
        outcome=result.outcome,
        coordinator=result.coordinator,
        generation=generation,
        started_at=started,
        finished_at=now(),
        rounds=result.rounds,
        delegations=len(result.delegations),
        tokens=result.tokens,
        result=result.output[:2000] or None,
        message=(result.message or "")[:1000] or None,
        plan=[PlanStep.model_validate(step) for step in result.plan[:100]],
        trace_id=trace_id,
    )


class PlanReporter:
    """Puts a swarm's plan progress into the run status, one report at a time (the latest)."""

    def __init__(self, sink: RunSink, running: RunStatus) -> None:
        self.sink = sink
        self.running = running
        self.pending: RunStatus | None = None
        self.task: asyncio.Task[None] | None = None

    def on_event(self, event: Event) -> None:
        if event.kind is not EventKind.PLAN_PROGRESS:
            return
        steps = [PlanStep.model_validate(s) for s in event.data.get("plan", [])[:100]]
        self.pending = self.running.model_copy(
            update={"plan": steps, "rounds": event.data.get("round", 0)}
        )
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._send())

    async def _send(self) -> None:
        while self.pending is not None:
            run, self.pending = self.pending, None
            try:
                await self.sink.report_run(run)
            except Exception as exc:  # progress is news, not a reason to stop
                log.warning("plan progress report failed: %s", exc)

    async def flush(self) -> None:
        if self.task is not None:
            await self.task


@dataclass
class AgentPod:
    config: PodConfig
    model: OpenAICompatible
    status: TeamStatus
    host: str = "127.0.0.1"
    port: int = 0
    heartbeat_s: float = 15.0
    peer_wait_s: float = 300.0
    tools: ToolRegistry = field(default_factory=ToolRegistry)
    bus: EventBus = field(default_factory=EventBus)
    result: TeamResult | None = None
    chain: Chain = EMPTY  # the middlewares the agent's calls to its peers pass
    faults: FaultReport | None = None  # the faults injected into its calls, for its status
    resilience: ResilienceReport | None = None  # its breakers, the team's error patterns
    tool_calls: Callable[[], list[ToolCallCount]] | None = None  # per tool version, recently
    audit: AuditLog | None = None  # where its peer server records its access decisions
    authority: Authority | None = None  # delegation certificates: issued, presented, checked
    signer: PeerSigner | None = None  # signs its calls to its peers
    callers: PeerVerifier | None = None  # checks who signed the calls it serves
    peer_queues: dict[str, QueuedPeer] = field(default_factory=dict)  # peers with replicas
    queue_depth: Callable[[], Awaitable[int]] | None = None  # its own work queue's, if any
    report_privacy: Callable[[], Awaitable[None]] | None = None  # status.privacy, with each run
    recall: Recall | None = None  # its memories relevant to a task (hive.runtime.memory.team)
    # the coordinator's session (spec.memory.session): the notes of earlier runs go with the
    # goal, this run is saved to it
    session: SessionMemory | None = None
    tracer: Tracer | None = None  # the team's run as one trace (hive.runtime.tracing)
    embedder: Embedder | None = None  # ranks what working memory keeps (its memory's embedder)
    claim: RunClaim | None = None  # a coordinator with replicas: who of them runs the goal
    swarm_jobs: SwarmJobs | None = None  # spec.swarm.jobs: a swarm's parts as Indexed Jobs
    # a coordinator whose team debugs (spec.debug.interactive): the run's debugger, its hooks
    # already in the chain and on the bus, and the endpoint `hive debug TEAM` attaches to
    debugger: Debugger | None = None
    debug_server: DebugServer | None = None
    # added to its peer API: the coordinator's route where subordinates stop at its debugger,
    # a subordinate's mark of the tasks a debugged run delegates (hive.runtime.debug.remote)
    peer_extensions: list[PeerExtension] = field(default_factory=list)

    def members(self) -> tuple[LocalMember, dict[str, Member]]:
        me = self.config.agent_spec(self.config.agent)
        local = LocalMember(
            spec=me,
            model=self.model.for_agent(me.name),
            goal=self.config.spec.goal,
            bus=self.bus,
            tools=self.tools,
            budget=Budget(max_steps=12),
            recall=self.recall,
            embedder=self.embedder,
        )
        members: dict[str, Member] = {me.name: local}
        for spec in self.config.spec.agents:
            if spec.name == me.name:
                continue
            url = self.config.peer_urls.get(spec.name)
            if url is None:
                raise InvalidInput("peerUrls", f"no address for peer {spec.name!r}")
            members[spec.name] = RemoteMember(
                spec,
                url,
                chain=self.chain,
                signer=self.signer,
                queue=self.peer_queues.get(spec.name),
            )
        return local, members

    async def coordinate(
        self, team: Team, peers: list[RemoteMember], stop: asyncio.Event | None = None
    ) -> None:
        if self.claim is None:
            await self._coordinate_unless_done(team, peers)
            return
        claim, stop = self.claim, stop or asyncio.Event()
        while not await self._try_claim(claim):  # another replica holds it: wait, or see it done
            if await self._run_done():
                return
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), claim.retry_s)
            if stop.is_set():
                return
        keeping = asyncio.create_task(self._keep_claim(claim))
        try:
            await self._coordinate_unless_done(team, peers)
        finally:
            keeping.cancel()
            with suppress(asyncio.CancelledError):
                await keeping
            try:
                await claim.release()
            except HiveError as exc:  # it runs out on its own
                log.warning("the run's claim not released: %s", exc)

    @staticmethod
    async def _try_claim(claim: RunClaim) -> bool:
        try:
            return await claim.try_claim()
        except HiveError as exc:  # the API server away for a moment: try again later
            log.warning("the run's claim not taken: %s", exc)
            return False

    async def _run_done(self) -> bool:
        generation = await self.status.generation()
        last = await self.status.last_run()
        return bool(last and last.generation == generation and last.outcome != RunOutcome.RUNNING)

    async def _keep_claim(self, claim: RunClaim) -> None:
        while True:
            await asyncio.sleep(claim.retry_s)
            if not await AgentPod._try_claim(claim):
                log.error("the run's claim is not held by this replica while it runs")

    async def _coordinate_unless_done(self, team: Team, peers: list[RemoteMember]) -> None:
        generation = await self.status.generation()
        last = await self.status.last_run()
        if last and last.generation == generation and last.outcome != RunOutcome.RUNNING:
            log.info(
                "the run of generation %s ended %s; not running it again", generation, last.outcome
            )
            return
        with self.traced_run(generation) as trace_id:
            await self._coordinate(team, peers, generation, trace_id)

    @contextmanager
    def traced_run(self, generation: int) -> Iterator[str | None]:
        """The run's root span, current while it runs; yields its trace id (None: untraced)."""
        if self.tracer is None:
            yield None
            return
        config = self.config
        with run_span(self.tracer, config.team, config.namespace, config.agent, generation) as span:
            yield trace_id_of(span)

    async def _coordinate(
        self, team: Team, peers: list[RemoteMember], generation: int, trace_id: str | None
    ) -> None:
        started = now()
        running = RunStatus(
            outcome=RunOutcome.RUNNING,
            coordinator=self.config.agent,
            generation=generation,
            started_at=started,
            trace_id=trace_id,
        )
        await self.status.report_run(running)
        missing = await wait_for_peers(peers, self.peer_wait_s)
        if missing:
            message = f"peers {', '.join(missing)} did not answer within {self.peer_wait_s:g}s"
            await self.status.report_run(
                running.model_copy(
                    update={"outcome": RunOutcome.FAILED, "message": message, "finished_at": now()}
                )
            )
            return
        progress = PlanReporter(self.status, running)
        unsubscribe = self.bus.subscribe(progress.on_event)
        try:
            task = await self.session_task()
            self.result = await self._run(team, task)
            await self.save_session(self.result, started)
        finally:
            unsubscribe()
            await progress.flush()
        await self.status.report_run(run_status(self.result, generation, started, trace_id))
        if self.report_privacy is not None:  # spec.privacy: what it found and did, with the run
            await self.report_privacy()

    async def session_task(self) -> str | None:
        """The goal followed by the session's relevant notes (None: the goal as it is). A
        session store that fails leaves the run without them, and says so in the log."""
        if self.session is None:
            return None
        goal = self.config.spec.goal
        try:
            block = await self.session.context_for(goal)
        except HiveError as exc:
            log.warning("session %s not loaded: %s", self.session.session, exc)
            return None
        log.info(
            "session %s: %d note(s) of %d earlier run(s) in %.0f ms",
            self.session.session,
            len(self.session.recalled),
            self.session.loaded_runs,
            self.session.load_s * 1000,
        )
        return with_context(goal, block)

    async def save_session(self, result: TeamResult, started: dt.datetime) -> None:
        if self.session is None:
            return
        result.task = self.config.spec.goal
        try:
            saved = await self.session.save(
                task=result.task,
                answer=result.output,
                outcome=str(result.outcome),
                message=result.message,
                events=list(self.bus.history),
                started_at=started,
                model=self.model.for_agent(self.config.agent),
            )
        except HiveError as exc:
            log.error("session %s not saved: %s", self.session.session, exc)
            return
        log.info(
            "session %s saved: %d note(s), from %s, in %.0f ms",
            self.session.session,
            len(saved.notes),
            saved.extraction,
            self.session.save_s * 1000,
        )

    async def _run(self, team: Team, task: str | None = None) -> TeamResult:
        """The team's run on `task` (default: the goal); with an authority, under the team's
        root grant, which the coordinator issues to itself for this run."""
        run = team.run
        if self.debugger is not None:  # paused where it stops, its clock too
            run = functools.partial(run_debugged, team, self.debugger)
        if self.authority is None:
            return await run(task)
        spec, config = self.config.spec, self.config
        root = team_root(
            self.authority.signer,
            spec,
            f"{config.namespace}/{config.team}",
            config.agent,
            self.authority.clock(),
            self.authority.root_ttl_s,
        )
        with self.authority.holding(root):
            return await run(task)

    async def serve(self, stop: asyncio.Event) -> TeamResult | None:
        """Serve peers, report progress, coordinate when it is this agent's part, until `stop`."""
        local, members = self.members()
        team = Team(self.config.spec, members, bus=self.bus)
        team.roster.jobs = self.swarm_jobs
        if self.tracer is not None:  # delegations, reviews, votes, ... as spans
            self.bus.subscribe(EventSpans(self.tracer))
        server = PeerServer(
            local,
            self.host,
            self.port,
            audit=self.audit,
            authority=self.authority,
            callers=self.callers,
            extensions=self.peer_extensions,
        )
        self.port = await server.start()
        if self.debug_server is not None:
            await self.debug_server.start()
        tracker = ProgressTracker(
            local.name,
            local.spec.role,
            self.status,
            local.tokens,
            heartbeat_s=self.heartbeat_s,
            faults=self.faults,
            resilience=self.resilience,
            team_patterns=self.config.is_coordinator,
            tool_calls=self.tool_calls,
            queue_depth=self.queue_depth,
        )
        reporting = asyncio.create_task(tracker.run(self.bus, stop))
        try:
            if self.config.is_coordinator:
                peers = [m for m in members.values() if isinstance(m, RemoteMember)]
                try:
                    await self.coordinate(team, peers, stop)
                except HiveError as exc:
                    log.error("the team's run could not be recorded: %s", exc)
                    tracker.last_error = str(exc)
                    tracker.changed.set()
            await stop.wait()
        finally:
            await reporting
            await server.stop()
            if self.debug_server is not None:
                await self.debug_server.stop()
            await tracker.report(AgentPhase.DONE if self.result else AgentPhase.IDLE)
        return self.result
