"""kopf handlers. Each one only routes an event to a reconcile function and counts it.

Reconciles are level-based: the same function runs on create, update, resume, on any change
to an owned child, and on a timer, and it computes everything from what it observes. A failing
reconcile never takes the operator down: retryable errors are retried by kopf with a delay;
the others are logged and reported in the object's Ready condition by the reconcile itself.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import kopf

from hive.api import GROUP, VERSION
from hive.errors import HiveError
from hive.operator.metrics import RECONCILE_SECONDS, RECONCILES
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


# --- SandboxPolicy -> the teams that use it ------------------------------------------------------
@kopf.on.event(GROUP, VERSION, "sandboxpolicies")
@_namespaced
async def sandbox_policy_event(name: str, namespace: str, **_: Any) -> None:
    await counted("AgentTeam", lambda: reconcile_teams_using_policy(namespace, name))
