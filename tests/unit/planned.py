"""What a team's plan holds, read the way the wiring tests read it: the plan of a spec against
observed MemoryStores, an agent's child objects, its configuration, environment and egress."""

from __future__ import annotations

import datetime as dt
from typing import Any

import yaml

from hive.reconcile.agentteam import AgentPodSettings, TeamObserved, TeamPlan, plan_team
from hive.reconcile.meta import Owner

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
OWNER = Owner("AgentTeam", "ops", "default", "uid-1", generation=2)


def plan(
    spec: dict[str, Any],
    stores: dict[str, Any] | None = None,
    pods: AgentPodSettings | None = None,
    owner: Owner = OWNER,
) -> TeamPlan:
    observed = TeamObserved(memory_stores=stores or {})
    return plan_team(owner, spec, None, observed, pods or AgentPodSettings(image="hive:test"), T0)


def child(p: TeamPlan, kind: str, agent: str | None = None) -> dict[str, Any]:
    """The team's first child of `kind` (of `agent`, when named)."""
    return next(
        c
        for c in p.children
        if c["kind"] == kind
        and (agent is None or c["metadata"]["labels"].get("hive.dev/agent") == agent)
    )


def config(p: TeamPlan, agent: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(child(p, "ConfigMap", agent)["data"]["agent.yaml"])
    return loaded


def env(p: TeamPlan, agent: str | None = None) -> dict[str, Any]:
    container = child(p, "Deployment", agent)["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def egress_ports(p: TeamPlan, agent: str | None = None) -> set[int]:
    policy = child(p, "NetworkPolicy", agent)
    return {port["port"] for rule in policy["spec"]["egress"] for port in rule.get("ports", [])}


def ready(p: TeamPlan) -> Any:
    return next(c for c in p.status.conditions if c.type == "Ready")
