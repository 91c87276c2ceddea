"""kopf handlers. Each one only routes an event to a reconcile function and counts it.

Reconciles are level-based: the same function runs on create, update, resume, on any change
to an owned child, and on a timer, and it computes everything from what it observes. A failing
reconcile never takes the operator down: retryable errors are retried by kopf with a delay;
the others are logged and reported in the object's Ready condition by the reconcile itself.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import kopf

from hive.api import GROUP, VERSION
from hive.errors import HiveError
from hive.operator.chaos import reconcile_chaos, roll_back
from hive.operator.metrics import RECONCILE_SECONDS, RECONCILES
from hive.operator.others import reconcile_policy, reconcile_store, reconcile_tool
from hive.operator.state import STATE
from hive.operator.teams import reconcile_team, reconcile_teams_using_policy
from hive.reconcile.meta import MANAGED_BY, TEAM_LABEL

log = logging.getLogger(__name__)
R = TypeVar("R")
MANAGED = {"app.kubernetes.io/managed-by": MANAGED_BY}


def _resync_interval() -> float:
    return STATE.settings.operator.resync_s if STATE.settings else 60.0


async def counted(kind: str, work: Callable[[], Awaitable[R]]) -> R | None:
    """Run one reconcile, with metrics; HiveErrors become kopf retries or log lines."""
    started = time.perf_counter()
    outcome = "error"
    try:
        result = await work()
        outcome = "ok"
        return result
    except HiveError as exc:
        if exc.retryable:
            raise kopf.TemporaryError(str(exc), delay=5) from exc
        log.warning("%s reconcile failed: %s", kind, exc)
        return None
    finally:
        RECONCILES.labels(kind, outcome).inc()
        RECONCILE_SECONDS.labels(kind).observe(time.perf_counter() - started)


def _namespaced(handler: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(handler)
    async def wrapper(*args: Any, namespace: str | None = None, **kwargs: Any) -> Any:
        if namespace is None:
            return None
        return await handler(*args, namespace=namespace, **kwargs)

    return wrapper


# --- AgentTeam ---------------------------------------------------------------------------------
@kopf.on.resume(GROUP, VERSION, "agentteams")
@kopf.on.create(GROUP, VERSION, "agentteams")
@kopf.on.update(GROUP, VERSION, "agentteams")
@_namespaced
async def agent_team_changed(name: str, namespace: str, **_: Any) -> None:
    await counted("AgentTeam", lambda: reconcile_team(namespace, name))


@kopf.timer(GROUP, VERSION, "agentteams", interval=60.0, initial_delay=5.0, idle=None)
@_namespaced
async def agent_team_resync(name: str, namespace: str, **_: Any) -> None:
    await counted("AgentTeam", lambda: reconcile_team(namespace, name))


def _watch_children(group: str, version: str, plural: str) -> None:
    @kopf.on.event(
        group,
        version,
        plural,
        id=f"{plural}-of-agent-teams",
        labels={**MANAGED, TEAM_LABEL: kopf.PRESENT},
    )
    @_namespaced
    async def child_changed(labels: dict[str, str], namespace: str, **_: Any) -> None:
        team = labels.get(TEAM_LABEL)
        if team:
            await counted("AgentTeam", lambda: reconcile_team(namespace, team))


for _group, _version, _plural in (
    ("", "v1", "serviceaccounts"),
    ("rbac.authorization.k8s.io", "v1", "roles"),
    ("rbac.authorization.k8s.io", "v1", "rolebindings"),
    ("", "v1", "configmaps"),
    ("apps", "v1", "deployments"),
    ("networking.k8s.io", "v1", "networkpolicies"),
):
    _watch_children(_group, _version, _plural)


# --- SandboxPolicy: its own reconcile, then the teams that use it --------------------------------
@kopf.on.event(GROUP, VERSION, "sandboxpolicies")
@_namespaced
async def sandbox_policy_event(name: str, namespace: str, **_: Any) -> None:
    await counted("SandboxPolicy", lambda: reconcile_policy(namespace, name))
    await counted("AgentTeam", lambda: reconcile_teams_using_policy(namespace, name))


@kopf.timer(GROUP, VERSION, "sandboxpolicies", interval=60.0, initial_delay=5.0, idle=None)
@_namespaced
async def sandbox_policy_resync(name: str, namespace: str, **_: Any) -> None:
    await counted("SandboxPolicy", lambda: reconcile_policy(namespace, name))


# --- ToolVersion: all versions of a tool together -------------------------------------------------
@kopf.on.event(GROUP, VERSION, "toolversions")
@_namespaced
async def tool_version_event(spec: kopf.Spec, namespace: str, **_: Any) -> None:
    tool = spec.get("tool")
    if isinstance(tool, str):
        await counted("ToolVersion", lambda: reconcile_tool(namespace, tool))


# --- MemoryStore: probed on change and on a timer --------------------------------------------
@kopf.on.resume(GROUP, VERSION, "memorystores")
@kopf.on.create(GROUP, VERSION, "memorystores")
@kopf.on.update(GROUP, VERSION, "memorystores")
@kopf.timer(GROUP, VERSION, "memorystores", interval=30.0, initial_delay=2.0, idle=None)
@_namespaced
async def memory_store_changed(name: str, namespace: str, **_: Any) -> None:
    await counted("MemoryStore", lambda: reconcile_store(namespace, name))


# --- AgentTeam changes move tool consumers and policy bindings ------------------------------------
# --- ChaosExperiment: a state machine driven by a timer; rollback in the finalizer ---------------
@kopf.on.resume(GROUP, VERSION, "chaosexperiments")
@kopf.on.create(GROUP, VERSION, "chaosexperiments")
@kopf.on.update(GROUP, VERSION, "chaosexperiments")
@kopf.timer(GROUP, VERSION, "chaosexperiments", interval=2.0, initial_delay=1.0, idle=None)
@_namespaced
async def chaos_experiment_tick(name: str, namespace: str, **_: Any) -> None:
    await counted("ChaosExperiment", lambda: reconcile_chaos(namespace, name))


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


_seen_specs: dict[str, str] = {}


@kopf.on.event(GROUP, VERSION, "agentteams", id="agentteams-to-tools-and-policies")
@_namespaced
async def agent_team_references(
    body: kopf.Body, uid: str, namespace: str, type: str | None, **_: Any
) -> None:
    spec = dict(body.get("spec") or {})
    digest = json.dumps(spec, sort_keys=True, default=str)
    previous = _seen_specs.get(uid)
    _seen_specs[uid] = digest
    if type == "DELETED":
        _seen_specs.pop(uid, None)
    elif previous == digest:
        return  # a status-only change (agents reporting): nothing to move
    agents = list(spec.get("agents") or [])
    if previous:
        agents += list(json.loads(previous).get("agents") or [])
    tools = {t.get("name") for a in agents for t in a.get("tools") or [] if isinstance(t, dict)}
    policies = {(a.get("sandboxPolicyRef") or {}).get("name") for a in agents}
    for tool in sorted(t for t in tools if isinstance(t, str)):
        await counted("ToolVersion", functools.partial(reconcile_tool, namespace, tool))
    for policy in sorted(p for p in policies if isinstance(p, str)):
        await counted("SandboxPolicy", functools.partial(reconcile_policy, namespace, policy))
