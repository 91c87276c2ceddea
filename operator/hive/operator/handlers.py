"""kopf handlers. Each one only routes an event to a reconcile and counts it.

Reconciles are level-based: the same function runs on create, update, resume, on any change
to an owned child, and on a periodic resync, and it computes everything from what it observes.
Requests go through per-kind work queues (`Coalescer`) so a burst of child events becomes one
run. A failing reconcile never takes the operator down: retryable errors are retried by kopf
with a delay; the others are logged and reported in the object's Ready condition.

Only ChaosExperiments carry a finalizer (their rollback must run). An AgentTeam's Vault roles
and policies are removed on its DELETED event (bounded tries) and, for a team deleted while
Vault or the operator was away, by the resync's sweep: a deletion never waits for Vault.
The periodic resync is a plain background task rather than kopf timers, because kopf adds a
finalizer to every object that has a timer, and a finalizer on an AgentTeam would block its
deletion while the operator is away.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import kopf

from hive.api import GROUP, VERSION
from hive.errors import HiveError
from hive.kube.children import list_hive_objects
from hive.kube.watching import Watch
from hive.operator import heap
from hive.operator.chaos import CHAOS_POLLS, reconcile_chaos, roll_back
from hive.operator.footprint import track
from hive.operator.leadership import may_act
from hive.operator.metrics import RECONCILE_SECONDS, RECONCILES
from hive.operator.others import reconcile_policy, reconcile_store, reconcile_tool
from hive.operator.queue import Coalescer
from hive.operator.state import STATE
from hive.operator.teams import AGENT_PODS, DEPLOYMENTS, OWNED, forget_absent, reconcile_team
from hive.operator.vault import forget_team, store_for, sweep
from hive.reconcile.agentteam import CHILD_KINDS, breakers_open
from hive.reconcile.capability import capability_settled
from hive.reconcile.chaos import needs_polling
from hive.reconcile.memorybackend import STORE_LABEL
from hive.reconcile.memorywiring import store_digest, teams_referencing
from hive.reconcile.meta import AGENT_LABEL, MANAGED_BY, TEAM_LABEL
from hive.runtime.tracing.reconciles import reconcile_span
from hive.runtime.tracing.setup import flush_installed, install, tracing_from
from hive.verify.verdicts import VERIFIER

log = logging.getLogger(__name__)
R = TypeVar("R")
MANAGED = {"app.kubernetes.io/managed-by": MANAGED_BY}


def measured(
    kind: str, work: Callable[[str, str], Awaitable[R]]
) -> Callable[[str, str], Awaitable[R | None]]:
    """`work` with its runs counted and timed under `kind`, each one a span (``reconcile
    <kind>``) naming the object it reconciled. A replica that may not act (a standby, or a
    leader past its renew deadline) skips it: a request queued or retried before it stood
    down does not run (None)."""

    @functools.wraps(work)
    async def wrapper(namespace: str, name: str) -> R | None:
        if not may_act():
            return None
        started = time.perf_counter()
        outcome = "error"
        try:
            with reconcile_span(kind, namespace, name):
                result = await work(namespace, name)
            outcome = "ok"
            return result
        finally:
            RECONCILES.labels(kind, outcome).inc()
            RECONCILE_SECONDS.labels(kind).observe(time.perf_counter() - started)

    return wrapper


def _workers() -> int:
    return STATE.require_settings().operator.reconcile_concurrency


TEAMS = Coalescer(measured("AgentTeam", reconcile_team), "AgentTeam", _workers)
VERIFIER.on_verdict = TEAMS.request  # a team's TLC verdict came: write its condition
POLICIES = Coalescer(measured("SandboxPolicy", reconcile_policy), "SandboxPolicy", _workers)
TOOLS = Coalescer(measured("ToolVersion", reconcile_tool), "ToolVersion", _workers)  # by tool
STORES = Coalescer(measured("MemoryStore", reconcile_store), "MemoryStore", _workers)
CHAOS = Coalescer(measured("ChaosExperiment", reconcile_chaos), "ChaosExperiment", _workers)
for _queue in (TEAMS, POLICIES, TOOLS, STORES, CHAOS):
    track(f"{_queue.what} queue", _queue.entries)


async def through(queue: Coalescer, namespace: str, name: str) -> None:
    """Run through `queue`, turning errors into kopf retries or log lines."""
    try:
        await queue.run(namespace, name)
    except HiveError as exc:
        if exc.retryable:
            raise kopf.TemporaryError(str(exc), delay=5) from exc
        log.warning("%s %s/%s: %s", queue.what, namespace, name, exc)


def _namespaced(handler: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(handler)
    async def wrapper(*args: Any, namespace: str | None = None, **kwargs: Any) -> Any:
        if namespace is None:
            return None
        return await handler(*args, namespace=namespace, **kwargs)

    return wrapper


# --- AgentTeam ---------------------------------------------------------------------------------
# One event handler, no create/update handlers: kopf then writes nothing onto teams (no
# progress or diff-base annotations, no finalizer), and the reconcile, being level-based, needs
# none of it. What to do is read from the event itself: whether the spec changed from its
# generation (the API server counts spec changes there), no copy of the spec kept.
@dataclass(frozen=True)
class _SpecSeen:
    """Of a team's spec as last seen: its generation, the tools and policies its agents name."""

    generation: object
    tools: frozenset[str]
    policies: frozenset[str]


_seen_specs: dict[str, _SpecSeen] = {}
_seen_tool_calls: dict[str, dict[tuple[str, str], int]] = {}  # uid -> (agent, tool) -> calls
track("team specs seen", lambda: len(_seen_specs), _seen_specs.clear)
track("team tool calls seen", lambda: len(_seen_tool_calls), _seen_tool_calls.clear)


def _tool_calls(status: dict[str, Any]) -> dict[tuple[str, str], int]:
    """What the team's agents report calling (their entries' toolCalls), by agent and tool."""
    calls: dict[tuple[str, str], int] = {}
    for entry in status.get("agents") or []:
        for count in (entry.get("toolCalls") if isinstance(entry, dict) else None) or []:
            key = (str(entry.get("name")), str(count.get("tool")))
            calls[key] = calls.get(key, 0) + int(count.get("calls") or 0)
    return calls


def _agents(team: dict[str, Any]) -> list[dict[str, Any]]:
    return [a for a in (team.get("spec") or {}).get("agents") or [] if isinstance(a, dict)]


def _spec_seen(team: dict[str, Any]) -> _SpecSeen:
    agents = _agents(team)
    tools = {t.get("name") for a in agents for t in a.get("tools") or [] if isinstance(t, dict)}
    policies = {(a.get("sandboxPolicyRef") or {}).get("name") for a in agents}
    return _SpecSeen(
        (team.get("metadata") or {}).get("generation"),
        frozenset(t for t in tools if isinstance(t, str)),
        frozenset(p for p in policies if isinstance(p, str)),
    )


@kopf.on.event(GROUP, VERSION, "agentteams")
@_namespaced
async def agent_team_event(
    body: kopf.Body, uid: str, name: str, namespace: str, type: str | None, **_: Any
) -> None:
    seen = _spec_seen(dict(body))
    previous = _seen_specs.pop(uid, None) if type == "DELETED" else _seen_specs.get(uid)
    same_spec = previous is not None and previous.generation == seen.generation
    store = store_for(STATE.require_settings())
    if type == "DELETED":
        _seen_tool_calls.pop(uid, None)
        TEAMS.request(namespace, name)  # it finds the team gone and drops what it held for it
    if type == "DELETED" and store is not None:  # its Vault names go; never holds the deletion
        _spawn(forget_team(store, namespace, name))
    if type != "DELETED":
        _seen_specs[uid] = seen
        generation = body.get("metadata", {}).get("generation")
        status = body.get("status") or {}
        observed = status.get("observedGeneration")
        counted = status.get("breakersOpen") == breakers_open(status)
        counted = counted and capability_settled(status)
        calls = _tool_calls(status)
        before = _seen_tool_calls.get(uid, {})
        if calls != before:  # the ToolVersions' consumers count these calls
            _seen_tool_calls[uid] = calls
            for tool in sorted({t for _, t in calls} | {t for _, t in before}):
                TOOLS.request(namespace, tool)
        if same_spec and observed == generation and counted:
            return  # a status write (the operator's or an agent's): nothing to do
        TEAMS.request(namespace, name)
        if same_spec:
            return
    # The team came, went or changed its spec: tool consumers and policy bindings may move.
    last = previous or seen
    for tool in sorted(seen.tools | last.tools):
        TOOLS.request(namespace, tool)
    for policy in sorted(seen.policies | last.policies):
        POLICIES.request(namespace, policy)


# The teams' children and the agents' pods are watched by hive.kube.watching, not by kopf: of
# each, the operator keeps a few fields (what it applied, the team, the owners, a Deployment's
# rollout, a pod's problems), and kopf would hold five objects for every one of them and a queued
# copy of every event's body (hive.kube.watching says why that matters at a thousand teams).
def child_event(kind: str, type: str, body: dict[str, Any]) -> None:
    """A child of a team came, changed or went. The echo of the operator's own apply wakes
    nobody; a change by anyone else does, and so does a Deployment's rollout, which its team
    reports."""
    if not may_act():  # stood down: the watch ends at its next look (held things are forgotten)
        return
    deleted = type == "DELETED"
    changed = STATE.children.seen(body, deleted=deleted)
    OWNED[kind].seen(body, deleted=deleted)
    if kind == "Deployment":
        changed = DEPLOYMENTS.seen(body, deleted=deleted) or changed
    meta = body.get("metadata") or {}
    team, namespace = (meta.get("labels") or {}).get(TEAM_LABEL), meta.get("namespace")
    if team and namespace and changed:
        TEAMS.request(namespace, team)


# The agents' pods: what keeps one from running (an image it cannot pull, a crash loop, no node
# that fits, a node gone NotReady) goes into the team's status. Pods carry the team's labels,
# not the managed-by one. Their status changes often (probes, restarts), so a pod wakes its team
# only when what the team reports from it changes: it came, went, moved, or its problems did.
# A node going NotReady wakes the team through its Deployments: the node controller marks the
# node's pods not Ready (about 40 s after the kubelet's last word), so the Deployments lose
# available replicas; the periodic resync (resync_s) is the safety net.
def agent_pod_event(type: str, body: dict[str, Any]) -> None:
    if not may_act():
        return
    meta = body.get("metadata") or {}
    team, namespace = (meta.get("labels") or {}).get(TEAM_LABEL), meta.get("namespace")
    deleted = type == "DELETED"
    if team and namespace and (AGENT_PODS.seen(body, deleted=deleted) or deleted):
        TEAMS.request(namespace, team)


def child_watches() -> list[Watch]:
    """The watches of the teams' children and agent pods, in the operator's namespace or all."""
    client, watched = STATE.client(), STATE.require_settings().operator.namespace
    watches = [
        Watch(
            client,
            kind,
            watched,
            {**MANAGED, TEAM_LABEL: None},
            functools.partial(child_event, kind),
        )
        for kind in CHILD_KINDS
    ]
    pods = Watch(client, "Pod", watched, {TEAM_LABEL: None, AGENT_LABEL: None}, agent_pod_event)
    return [*watches, pods]


async def watch_children_while_acting(poll_s: float = 0.2) -> None:
    """Run the children's watches while this replica acts (kopf's own watches pause on the
    standby; these stop with them, and start afresh, every object an ADDED event, when the
    replica leads again)."""
    running: list[asyncio.Task[None]] = []
    try:
        while True:
            acting = may_act()
            if acting and not running:
                running = [
                    asyncio.create_task(w.run(), name=f"watch {w.kind}") for w in child_watches()
                ]
            elif not acting and running:
                await _stop(running)
                running = []
            await asyncio.sleep(poll_s)
    finally:
        await _stop(running)


async def _stop(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


# --- SandboxPolicy: its own reconcile, then the teams that use it --------------------------------
@kopf.on.event(GROUP, VERSION, "sandboxpolicies")
@_namespaced
async def sandbox_policy_event(name: str, namespace: str, **_: Any) -> None:
    await through(POLICIES, namespace, name)
    for team in await list_hive_objects(STATE.client(), "AgentTeam", namespace):
        refs = [(a.get("sandboxPolicyRef") or {}).get("name") for a in _agents(team)]
        if name in refs:
            TEAMS.request(namespace, team["metadata"]["name"])


# --- ToolVersion: all versions of a tool together -------------------------------------------------
@kopf.on.event(GROUP, VERSION, "toolversions")
@_namespaced
async def tool_version_event(spec: kopf.Spec, namespace: str, **_: Any) -> None:
    tool = spec.get("tool")
    if isinstance(tool, str):
        await through(TOOLS, namespace, tool)
        # the agents using the tool may read other Secrets now (their Role names them)
        for team in await list_hive_objects(STATE.client(), "AgentTeam", namespace):
            uses = {t.get("name") for a in _agents(team) for t in a.get("tools") or []}
            if tool in uses:
                TEAMS.request(namespace, team["metadata"]["name"])


# --- MemoryStore: its own reconcile (a managed one's backend), then the teams using it --------
@kopf.on.resume(GROUP, VERSION, "memorystores")
@kopf.on.create(GROUP, VERSION, "memorystores")
@kopf.on.update(GROUP, VERSION, "memorystores")
@_namespaced
async def memory_store_changed(name: str, namespace: str, **_: Any) -> None:
    await through(STORES, namespace, name)


_seen_stores: dict[str, str] = {}  # uid -> what its teams are given of it (store_digest)
track("memory stores seen", lambda: len(_seen_stores), _seen_stores.clear)


@kopf.on.event(GROUP, VERSION, "memorystores", id="memorystores-of-agent-teams")
@_namespaced
async def memory_store_event(
    body: kopf.Body, uid: str, name: str, namespace: str, type: str | None, **_: Any
) -> None:
    """A store that came, went, or changed its spec, readiness or endpoint: the teams that name
    it are reconciled again (their agents' wiring, or MemoryStoreNotFound)."""
    if type == "DELETED":
        _seen_stores.pop(uid, None)
    else:
        digest = store_digest(body)
        if _seen_stores.get(uid) == digest:
            return
        _seen_stores[uid] = digest
    for team in teams_referencing(
        await list_hive_objects(STATE.client(), "AgentTeam", namespace), name
    ):
        TEAMS.request(namespace, team)


@kopf.on.event(
    "apps",
    "v1",
    "statefulsets",
    id="statefulsets-of-memory-stores",
    labels={**MANAGED, STORE_LABEL: kopf.PRESENT},
)
@_namespaced
async def memory_backend_changed(labels: dict[str, str], namespace: str, **_: Any) -> None:
    """A managed store's StatefulSet changed (its ready replicas): the store's BackendReady."""
    store = labels.get(STORE_LABEL)
    if store:
        STORES.request(namespace, store)


# --- ChaosExperiment: a state machine driven by a timer; rollback in the finalizer ---------------
# The timer runs only while the experiment has steps left to take on its own: kopf stops it when
# the experiment finishes (its filter no longer matches) and starts it again if a change (a new
# schedule) gives it more to do. Changes themselves come through the create/update handler.
@kopf.on.resume(GROUP, VERSION, "chaosexperiments")
@kopf.on.create(GROUP, VERSION, "chaosexperiments")
@kopf.on.update(GROUP, VERSION, "chaosexperiments")
@_namespaced
async def chaos_experiment_changed(name: str, namespace: str, **_: Any) -> None:
    await through(CHAOS, namespace, name)


def _unfinished(spec: kopf.Spec, status: kopf.Status, **_: Any) -> bool:
    return needs_polling(spec, status)


@kopf.timer(
    GROUP,
    VERSION,
    "chaosexperiments",
    interval=2.0,
    initial_delay=1.0,
    idle=None,
    when=_unfinished,
)
@_namespaced
async def chaos_experiment_tick(name: str, namespace: str, status: kopf.Status, **_: Any) -> None:
    CHAOS_POLLS.labels(str(status.get("phase") or "Pending")).inc()
    await through(CHAOS, namespace, name)


ROLLBACK_ATTEMPTS = 5


@kopf.on.delete(GROUP, VERSION, "chaosexperiments", retries=ROLLBACK_ATTEMPTS + 1, backoff=2.0)
@_namespaced
async def chaos_experiment_deleted(
    name: str, namespace: str, spec: kopf.Spec, uid: str, retry: int, **_: Any
) -> None:
    """The finalizer: roll every fault back. It never holds a deletion forever: after
    ROLLBACK_ATTEMPTS failures it lets go (the partition is owned by the experiment and is
    garbage-collected with it; the fault ConfigMap key expires with its 'until')."""
    try:
        await roll_back(namespace, name, dict(spec), uid)
    except HiveError as exc:
        if retry >= ROLLBACK_ATTEMPTS:
            log.error(
                "ChaosExperiment %s/%s: giving up rollback after %d tries: %s",
                namespace,
                name,
                retry + 1,
                exc,
            )
            return
        raise kopf.TemporaryError(f"rollback failed: {exc}", delay=2) from exc


# --- Periodic resync -----------------------------------------------------------------------------
def forget_absent_objects(kind: str, objects: list[dict[str, Any]]) -> None:
    """Drop what is held for the objects of `kind` not in `objects` (a listing of every one
    watched): gone without a DELETED event reaching this replica."""
    uids = {o["metadata"]["uid"] for o in objects}
    if kind == "MemoryStore":
        for uid in [u for u in _seen_stores if u not in uids]:
            del _seen_stores[uid]
    if kind != "AgentTeam":
        return
    teams = {(o["metadata"]["namespace"], o["metadata"]["name"]) for o in objects}
    for uid in [u for u in _seen_specs if u not in uids]:
        del _seen_specs[uid]
    for uid in [u for u in _seen_tool_calls if u not in uids]:
        del _seen_tool_calls[uid]
    forget_absent(teams)


async def resync_forever(interval_s: float) -> None:
    """Every `interval_s`, ask for a run of every object the operator watches (all namespaces,
    or only `operator.namespace`): the safety net of level-based control. With Vault set up, it
    also removes what deleted teams of those namespaces left there while it was away."""
    queues = (("AgentTeam", TEAMS), ("SandboxPolicy", POLICIES), ("MemoryStore", STORES))
    watched = STATE.require_settings().operator.namespace  # None: every namespace
    relist_s = STATE.require_settings().operator.relist_s
    listed = time.monotonic()
    while True:
        await asyncio.sleep(interval_s)
        if not may_act():  # a standby replica leaves everything to the leader
            continue
        if time.monotonic() - listed >= relist_s:
            listed = time.monotonic()
            DEPLOYMENTS.stale()  # listed again: what a watch that lost its place did not say
            AGENT_PODS.stale()
        try:
            for kind, queue in queues:
                objects = await list_hive_objects(STATE.client(), kind, watched)
                forget_absent_objects(kind, objects)
                for obj in objects:
                    meta = obj["metadata"]
                    queue.request(meta["namespace"], meta["name"], periodic=True)
                store = store_for(STATE.require_settings())
                if kind == "AgentTeam" and store is not None:
                    teams = {(o["metadata"]["namespace"], o["metadata"]["name"]) for o in objects}
                    _spawn(sweep(store, teams, only_namespace=watched))
            for obj in await list_hive_objects(STATE.client(), "ToolVersion", watched):
                tool = (obj.get("spec") or {}).get("tool")
                if isinstance(tool, str):
                    TOOLS.request(obj["metadata"]["namespace"], tool, periodic=True)
        except HiveError as exc:
            log.warning("resync skipped: %s", exc)


_background: set[asyncio.Task[None]] = set()


def _spawn(work: Awaitable[None]) -> None:
    task: asyncio.Task[None] = asyncio.ensure_future(work)
    _background.add(task)
    task.add_done_callback(_background.discard)


@kopf.on.startup()
async def start_resync(**_: Any) -> None:
    install(tracing_from(STATE.require_settings().tracing, "operator"))  # off without endpoint
    task = asyncio.create_task(resync_forever(STATE.require_settings().operator.resync_s))
    _background.add(task)
    _background.add(asyncio.create_task(watch_children_while_acting(), name="children's watches"))
    if trim_s := STATE.require_settings().operator.heap_trim_s:
        _background.add(asyncio.create_task(heap.release_forever(trim_s), name="heap trim"))


@kopf.on.cleanup()
async def stop_resync(**_: Any) -> None:
    for task in _background:
        task.cancel()
    for queue in (TEAMS, POLICIES, TOOLS, STORES, CHAOS):
        await queue.drain()
    await asyncio.to_thread(flush_installed)  # the last reconciles' spans
