"""Reconciling AgentTeams: observe, plan with the pure builder, apply, prune, report.

The plan is pure CPU work that grows with the square of the agents (every agent's config names
the team); it runs in a worker thread so that the event loop keeps serving the health endpoint,
the webhook and the other objects' reconciles, and it is abandoned after plan_timeout_s (the
team is then Ready=False, reason PlanTimedOut, its children left as they were). Children are
applied only when they changed (`AppliedChildren`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any

from pydantic import ValidationError

from hive.api.agentteam import AgentTeamStatus
from hive.api.toolversion import ToolVersionSpec
from hive.errors import HiveError
from hive.kube.children import (
    apply_objects,
    delete,
    each_selected,
    get_hive_object,
    get_object,
    latest_event,
    list_hive_objects,
)
from hive.kube.client import ApiClient
from hive.kube.status import apply_status
from hive.operator.footprint import track
from hive.operator.observed import TeamIndex
from hive.operator.state import STATE
from hive.operator.vault import (
    TeamIdentities,
    ensure_identities,
    plan_for,
    replace_identities,
    store_for,
)
from hive.reconcile.agentteam import (
    CHILD_KINDS,
    AgentPodSettings,
    PodVault,
    TeamObserved,
    TeamPlan,
    parse_spec,
    plan_team,
    plan_timed_out,
)
from hive.reconcile.memorybackend import resolved_wire
from hive.reconcile.memorywiring import referenced_stores
from hive.reconcile.meta import AGENT_LABEL, MANAGED_BY, TEAM_LABEL, Owner
from hive.reconcile.pods import (
    SANDBOX_EVENT_REASON,
    PodObserved,
    needs_sandbox_event,
    node_not_ready,
    observe_pod,
    recheck_after,
)
from hive.reconcile.vault import vault_blocked
from hive.settings import Settings, VaultSettings
from hive.verify.verdicts import VERIFIER

log = logging.getLogger(__name__)


VAULT_RECHECK_S = 10.0  # a team waiting for Vault is tried again this often
TeamKey = tuple[str, str]  # namespace, name
_pruned: dict[TeamKey, int] = {}  # team -> generation whose surplus children were pruned
_uids: dict[TeamKey, str] = {}  # team -> uid of the team of that name last reconciled
track("pruned teams", lambda: len(_pruned), _pruned.clear)
track("team uids", lambda: len(_uids), _uids.clear)


# teams created later than this (the API server's clock may differ a little) were seen whole
_STARTED = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=60)


def _new_since_start(meta: dict[str, Any], generation: int) -> bool:
    created = meta.get("creationTimestamp")
    if generation != 1 or not isinstance(created, str):
        return False
    try:
        return dt.datetime.fromisoformat(created.replace("Z", "+00:00")) > _STARTED
    except ValueError:
        return False


def _forget(key: TeamKey) -> None:
    """Drop what is held for a team that is gone. Its reconcile does it when it finds the team
    gone: runs of one team never overlap, so one that was under way when the team went (and
    applied a child again) has ended by then."""
    _pruned.pop(key, None)
    uid = _uids.pop(key, None)
    if uid is not None:
        STATE.children.forget_owner(uid)


def forget_absent(present: Iterable[TeamKey]) -> None:
    """Drop what is held for the teams not in `present` (a listing of every team watched):
    gone while this replica did not hear of it (a DELETED event a watch restart missed)."""
    keep = set(present)
    for key in [k for k in _uids.keys() | _pruned.keys() if k not in keep]:
        _forget(key)
    indexes: list[TeamIndex[Any]] = [DEPLOYMENTS, AGENT_PODS, *OWNED.values()]
    for index in indexes:
        index.forget_teams_except(keep)


def _team_of(obj: Mapping[str, Any]) -> str | None:
    team = ((obj.get("metadata") or {}).get("labels") or {}).get(TEAM_LABEL)
    return team if isinstance(team, str) and team else None


def _deployment_seen(dep: Mapping[str, Any]) -> dict[str, Any]:
    """What a team's plan reads of its Deployment (hive.reconcile.agentteam): its generation
    and how far its rollout got."""
    meta, status = dep.get("metadata") or {}, dep.get("status") or {}
    rollout = ("observedGeneration", "availableReplicas", "updatedReplicas")
    kept = {k: status.get(k) for k in rollout}
    conditions = [
        {k: c.get(k) for k in ("type", "status", "reason", "message")}
        for c in status.get("conditions") or []
    ]
    return {
        "metadata": {"name": meta.get("name"), "generation": meta.get("generation", 0)},
        "status": {**{k: v for k, v in kept.items() if v is not None}, "conditions": conditions},
    }


def _agent_pod_seen(pod: Mapping[str, Any]) -> tuple[str, PodObserved] | None:
    """An agent's pod, observed, with its agent's name; None for one on its way out."""
    agent = ((pod.get("metadata") or {}).get("labels") or {}).get(AGENT_LABEL)
    seen = observe_pod(pod)
    return (agent, seen) if isinstance(agent, str) and seen is not None else None


def _listing(kind: str, labels: Mapping[str, str | None]) -> Callable[[], AsyncIterator[Any]]:
    def every_one() -> AsyncIterator[dict[str, Any]]:
        watched = STATE.require_settings().operator.namespace  # None: every namespace
        return each_selected(STATE.client(), kind, watched, labels)

    return every_one


# The teams' Deployments and agent pods as the watch reports them (hive.operator.handlers feeds
# them), selected as the watch selects them.
DEPLOYMENTS = TeamIndex(
    "team deployments",
    _team_of,
    _deployment_seen,
    _listing("Deployment", {"app.kubernetes.io/managed-by": MANAGED_BY, TEAM_LABEL: None}),
)
AGENT_PODS = TeamIndex(
    "agent pods", _team_of, _agent_pod_seen, _listing("Pod", {TEAM_LABEL: None, AGENT_LABEL: None})
)
track("team deployments", lambda: len(DEPLOYMENTS), DEPLOYMENTS.clear)
track("agent pods seen", lambda: len(AGENT_PODS), AGENT_PODS.clear)


def _owners(obj: Mapping[str, Any]) -> frozenset[str]:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return frozenset(str(r["uid"]) for r in refs if isinstance(r, Mapping) and r.get("uid"))


# Every team's children by kind, with their owners' uids: what pruning reads. Listed once at the
# start and after a change of leadership, kept by the watch; an entry a missed deletion left
# costs one DELETE answered 404.
OWNED = {
    kind: TeamIndex(
        f"{kind} of teams",
        _team_of,
        _owners,
        _listing(kind, {"app.kubernetes.io/managed-by": MANAGED_BY, TEAM_LABEL: None}),
    )
    for kind in CHILD_KINDS
}


def _forget_children() -> None:
    for index in OWNED.values():
        index.clear()


track("team children", lambda: sum(len(index) for index in OWNED.values()), _forget_children)


async def _prune(
    client: ApiClient, namespace: str, team: str, uid: str, keep: set[tuple[str, str]]
) -> list[str]:
    """Delete the children the team (`uid`) owns that its plan no longer has; what went."""
    held = await asyncio.gather(*(OWNED[kind].of_team(namespace, team) for kind in CHILD_KINDS))
    gone = []
    for kind, children in zip(CHILD_KINDS, held, strict=True):
        for child, owners in sorted(children.items()):
            surplus = uid in owners and (kind, child) not in keep
            if surplus and await delete(client, kind, namespace, child):
                gone.append(f"{kind}/{child}")
    return gone


def _referenced_policies(spec: dict[str, Any]) -> set[str]:
    names = set()
    for agent in spec.get("agents") or []:
        ref = agent.get("sandboxPolicyRef") if isinstance(agent, dict) else None
        if isinstance(ref, dict) and isinstance(ref.get("name"), str):
            names.add(ref["name"])
    return names


def _learning_store(spec: dict[str, Any]) -> str | None:
    """The MemoryStore the team's pods learn into (spec.resilience.learning.memoryRef)."""
    resilience = spec.get("resilience")
    learning = resilience.get("learning") if isinstance(resilience, dict) else None
    ref = learning.get("memoryRef") if isinstance(learning, dict) else None
    name = ref.get("name") if isinstance(ref, dict) else None
    return name if isinstance(name, str) and name else None


async def _agent_pods(
    client: ApiClient, namespace: str, team: str, now: dt.datetime
) -> dict[str, list[PodObserved]]:
    """The team's agent pods, observed, by agent name; a pod that has waited long for its
    sandbox carries what its latest FailedCreatePodSandBox event says."""
    pods: dict[str, list[PodObserved]] = {}
    held = await AGENT_PODS.of_team(namespace, team)
    for _, (agent, seen) in sorted(held.items()):
        if needs_sandbox_event(seen, now):
            try:
                said = await latest_event(client, namespace, seen.name, SANDBOX_EVENT_REASON)
            except HiveError as exc:
                log.warning("cannot read the events of pod %s/%s: %s", namespace, seen.name, exc)
                said = None
            if said:
                seen = replace(seen, sandbox_failure=f"{SANDBOX_EVENT_REASON}: {said}")
        pods.setdefault(agent, []).append(seen)
    return pods


_process_sandbox_key: list[bytes] = []  # made once, on first use, when none is configured


def sandbox_master_key(settings: Settings) -> bytes:
    """The master key of the agents' sandbox keys: the configured one, else this process's."""
    configured = settings.operator.sandbox_key
    if configured is not None:
        return configured.get_secret_value().encode()
    if not _process_sandbox_key:
        _process_sandbox_key.append(os.urandom(32))
        log.warning(
            "HIVE_OPERATOR__SANDBOX_KEY is unset: the agents' sandbox keys change when the "
            "operator restarts (the chart keeps one in a Secret)"
        )
    return _process_sandbox_key[0]


def _pod_vault(vault: VaultSettings) -> PodVault | None:
    """What agent pods need to log in to Vault, when the operator manages identities there."""
    address = vault.pod_address or vault.address
    if not address:
        return None
    ca_pem = None
    if vault.ca_file is not None:
        try:
            ca_pem = vault.ca_file.read_text()
        except OSError as exc:
            log.warning("cannot read the Vault CA %s for agent pods: %s", vault.ca_file, exc)
    return PodVault(
        address=address,
        ca_pem=ca_pem,
        auth_mount=vault.auth_mount,
        kv_mount=vault.kv_mount,
        transit_mount=vault.transit_mount,
    )


def _all(pods: dict[str, list[PodObserved]]) -> list[PodObserved]:
    return [p for found in pods.values() for p in found]


NODE_REREAD_S = 5.0  # a node's readiness is read again after this long
_nodes_read: dict[str, tuple[float, str | None]] = {}  # node -> when read, why it is not Ready


async def _nodes_not_ready(client: ApiClient, names: Iterable[str]) -> dict[str, str]:
    """Of the nodes `names`, those that are not Ready, with why. A node that cannot be read is
    left out (logged): it must not stop the team's reconcile. A node read less than
    NODE_REREAD_S ago is taken as read then: the teams on a node share one read (and the node
    controller takes some 40 s to mark a node that stopped answering)."""
    found = {}
    now = time.monotonic()
    for name in [n for n, (at, _) in _nodes_read.items() if now - at >= NODE_REREAD_S]:
        del _nodes_read[name]
    for name in sorted(set(names)):
        if name in _nodes_read:
            why = _nodes_read[name][1]
        else:
            try:
                node = await get_object(client, "Node", None, name)
            except HiveError as exc:
                log.warning("cannot read node %s: %s", name, exc)
                continue
            why = "the node no longer exists" if node is None else node_not_ready(node)
            _nodes_read[name] = (time.monotonic(), why)
        if why is not None:
            found[name] = why
    return found


def operator_status(plan: TeamPlan | AgentTeamStatus) -> dict[str, Any]:
    """The operator's part of the status: never `agents` (the agents') nor `run` (the
    coordinator's)."""
    status = (plan.status if isinstance(plan, TeamPlan) else plan).wire()
    status.pop("agents", None)
    status.pop("run", None)
    return status


async def _vault_identities(
    settings: Settings, namespace: str, name: str, spec: dict[str, Any]
) -> TeamIdentities | None:
    """Each agent's Vault policy and role, applied; None when no Vault is set up (or the spec
    is invalid: the plan reports that)."""
    store = store_for(settings)
    if store is None:
        return None
    try:
        team_spec = parse_spec(spec)
    except ValidationError:
        return None
    plan = plan_for(settings, namespace, name, team_spec)
    return TeamIdentities(plan, await ensure_identities(store, plan))


def _unchanged(current: dict[str, Any], desired: dict[str, Any]) -> bool:
    return all(current.get(key) == value for key, value in desired.items())


async def _tool_secrets(
    client: ApiClient, namespace: str, spec: dict[str, Any]
) -> tuple[dict[str, list[str]], dict[str, list[str]], dict[str, list[int]]]:
    """The Secrets named by the ToolVersions of the tools the team's agents use, by tool; the
    ConfigMaps they read (OpenAPI documents), by tool; and the ports of the endpoints they
    call, by tool."""
    wanted = {
        t.get("name")
        for a in spec.get("agents") or []
        if isinstance(a, dict)
        for t in a.get("tools") or []
        if isinstance(t, dict)
    }
    if not wanted:
        return {}, {}, {}
    found: dict[str, set[str]] = {}
    documents: dict[str, set[str]] = {}
    ports: dict[str, set[int]] = {}
    for obj in await list_hive_objects(client, "ToolVersion", namespace):
        try:
            version = ToolVersionSpec.model_validate(obj.get("spec") or {})
        except ValidationError:
            continue
        if version.tool in wanted:
            found.setdefault(version.tool, set()).update(s for s, _ in version.secret_refs())
            documents.setdefault(version.tool, set()).update(version.config_map_names())
            ports.setdefault(version.tool, set()).update(version.endpoint_ports())
    secrets = {tool: sorted(names) for tool, names in found.items() if names}
    config_maps = {tool: sorted(names) for tool, names in documents.items() if names}
    return secrets, config_maps, {tool: sorted(p) for tool, p in ports.items() if p}


async def reconcile_team(namespace: str, name: str) -> TeamPlan | None:
    """One level-based pass over the team; safe to run any number of times."""
    settings = STATE.require_settings()
    client = STATE.client()
    team = await get_hive_object(client, "AgentTeam", namespace, name)
    key = (namespace, name)
    if team is None or team["metadata"].get("deletionTimestamp"):
        _forget(key)
        return None
    meta, spec = team["metadata"], team.get("spec") or {}
    if _uids.get(key) != meta["uid"]:  # a team of this name that went before this one
        _forget(key)
        _uids[key] = meta["uid"]
    owner = Owner("AgentTeam", name, namespace, meta["uid"], meta.get("generation", 0))
    now = dt.datetime.now(dt.UTC)
    # what the watch says of the team's Deployments and pods (listed once for every team when
    # not known: at the start, after a change of leadership, at each resync)
    deployments, pods = await asyncio.gather(
        DEPLOYMENTS.of_team(namespace, name), _agent_pods(client, namespace, name, now)
    )
    policies = {}
    for policy_name in _referenced_policies(spec):
        found = await get_hive_object(client, "SandboxPolicy", namespace, policy_name)
        if found is not None:
            policies[policy_name] = found.get("spec") or {}
    stores = {}
    learning_store = _learning_store(spec)
    wanted = referenced_stores(spec) | ({learning_store} if learning_store else set())
    for store_name in sorted(wanted):
        store = await get_hive_object(client, "MemoryStore", namespace, store_name)
        if store is not None:
            stores[store_name] = resolved_wire(store_name, namespace, store.get("spec") or {})
    tool_secrets, tool_config_maps, tool_ports = await _tool_secrets(client, namespace, spec)
    identities = await _vault_identities(settings, namespace, name, spec)
    nodes = await _nodes_not_ready(client, (p.node for ps in pods.values() for p in ps if p.node))
    timeout_s = settings.operator.plan_timeout_s
    planning = asyncio.to_thread(
        plan_team,
        owner,
        spec,
        team.get("status"),
        TeamObserved(
            deployments=deployments,
            sandbox_policies=policies,
            pods=pods,
            nodes_not_ready=nodes,
            memory_stores=stores,
            tool_secrets=tool_secrets,
            tool_config_maps=tool_config_maps,
            tool_ports=tool_ports,
        ),
        AgentPodSettings(
            image=settings.operator.agent_image,
            sandbox_image=settings.operator.sandbox_image,
            image_pull_policy=settings.operator.pod_pull_policy,
            node_selector=settings.operator.pod_node_selector,
            tolerations=tuple(settings.operator.pod_tolerations),
            errors_redis_url=settings.operator.errors_redis_url,
            embeddings_endpoint=settings.operator.embeddings_endpoint,
            vault=_pod_vault(settings.vault),
            sandbox_key=sandbox_master_key(settings),
            otlp_endpoint=settings.tracing.pod_otlp_endpoint or settings.tracing.otlp_endpoint,
            trace_sample_ratio=settings.tracing.sample_ratio,
        ),
        now,
    )
    try:
        plan = await asyncio.wait_for(planning, timeout_s)
    except TimeoutError:  # the thread runs on to its end; its plan is dropped
        log.warning("AgentTeam %s/%s: planning took over %gs", namespace, name, timeout_s)
        status = plan_timed_out(owner, team.get("status"), timeout_s, now)
        desired = operator_status(status)
        if not _unchanged(team.get("status") or {}, desired):
            await apply_status(client, "AgentTeam", namespace, name, desired)
        return TeamPlan(children=[], status=status, prune=False)
    plan = replace(plan, recheck_after_s=recheck_after(_all(pods), now))
    # the Verified condition: the protocol's TLC verdict, worked out in the background
    verified = VERIFIER.status_with_verdict(
        plan.status,
        spec,
        team.get("status"),
        (namespace, name),
        settings.verify,
        generation=owner.generation,
        now=now,
    )
    plan = replace(plan, status=verified)
    if identities is not None:
        status = replace_identities(plan.status, identities)
        if identities.problem is not None:  # nothing is created without its identities
            reason, message = identities.problem.reason, identities.problem.message
            status = vault_blocked(status, reason, message, generation=owner.generation, now=now)
            await apply_status(client, "AgentTeam", namespace, name, operator_status(status))
            return replace(plan, status=status, recheck_after_s=VAULT_RECHECK_S)
        plan = replace(plan, status=status)
    # What pods need (service account, config) exists before the Deployment asks for pods;
    # otherwise the ReplicaSet controller backs off and the team is Ready seconds later.
    cache = STATE.children
    await apply_objects(
        client, [c for c in plan.children if c["kind"] != "Deployment"], cache=cache
    )
    # A Deployment missing from what the watch holds (deleted; or its labels edited away, which
    # hides it from the watch, and the next resync's listing finds it gone) is applied whatever
    # the cache of applied children says.
    wanted_deployments = [c for c in plan.children if c["kind"] == "Deployment"]
    for deployment in wanted_deployments:
        if deployment["metadata"]["name"] not in deployments:
            cache.forget(deployment)
    await apply_objects(client, wanted_deployments, cache=cache)
    # Children only become surplus when the spec changes (an agent removed), so pruning, which
    # lists seven kinds, runs once per generation in this process, and again after a restart
    # (another version of the operator may have made other children); never for a team made
    # after this process started and never changed: all it has, this process made for it.
    if (
        plan.prune
        and _pruned.get(key) != owner.generation
        and not _new_since_start(meta, owner.generation)
    ):
        keep = {(c["kind"], c["metadata"]["name"]) for c in plan.children}
        gone = await _prune(client, namespace, name, meta["uid"], keep)
        _pruned[key] = owner.generation
        if gone:
            log.info("AgentTeam %s/%s: pruned %s", namespace, name, ", ".join(gone))
    desired = operator_status(plan)
    if not _unchanged(team.get("status") or {}, desired):
        await apply_status(client, "AgentTeam", namespace, name, desired)
    return plan
