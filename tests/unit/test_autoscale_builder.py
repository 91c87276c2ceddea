"""spec.agents[].autoscale: the agent's Deployment gets an autoscaling/v2 HPA on the External
metric hive_agent_queue_depth (by team and agent), and leaves its replicas to it."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from pydantic import ValidationError

from hive.api.agentteam import AgentSpec
from hive.reconcile.agentteam import AgentPodSettings, TeamObserved, plan_team
from hive.reconcile.meta import Owner, child_name

OWNER = Owner("AgentTeam", "bees", "default", "uid-1", generation=1)


def children(agents: list[dict[str, Any]], **spec: Any) -> list[dict[str, Any]]:
    team = {"goal": "count", "model": {"name": "m", "endpoint": "http://m:8000/v1"}}
    observed = TeamObserved(deployments={}, sandbox_policies={}, pods={}, nodes_not_ready={})
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    wanted = {**team, "agents": agents, **spec}
    return plan_team(OWNER, wanted, None, observed, AgentPodSettings(image="hive:t"), now).children


def of_kind(items: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [c for c in items if c["kind"] == kind]


AGENTS = [
    {"name": "lead", "role": "senior", "subordinates": ["worker"]},
    {
        "name": "worker",
        "role": "junior",
        "autoscale": {"minReplicas": 2, "maxReplicas": 8, "targetQueueDepth": 3},
    },
]


def test_an_autoscaled_agent_gets_an_hpa_on_its_queue_depth() -> None:
    items = children(AGENTS)
    (hpa,) = of_kind(items, "HorizontalPodAutoscaler")
    deployment = child_name("bees", "worker")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["metadata"]["name"] == deployment
    assert hpa["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    assert hpa["spec"] == {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment},
        "minReplicas": 2,
        "maxReplicas": 8,
        "metrics": [
            {
                "type": "External",
                "external": {
                    "metric": {
                        "name": "hive_agent_queue_depth",
                        "selector": {"matchLabels": {"team": "bees", "agent": "worker"}},
                    },
                    "target": {"type": "AverageValue", "averageValue": "3"},
                },
            }
        ],
    }
    deployments = {d["metadata"]["name"]: d for d in of_kind(items, "Deployment")}
    assert "replicas" not in deployments[deployment]["spec"]  # the HPA's field
    assert deployments[child_name("bees", "lead")]["spec"]["replicas"] == 1


def test_a_suspended_team_scales_an_autoscaled_agent_to_zero() -> None:
    items = children(AGENTS, suspend=True)
    deployments = {d["metadata"]["name"]: d for d in of_kind(items, "Deployment")}
    assert deployments[child_name("bees", "worker")]["spec"]["replicas"] == 0


def test_without_autoscale_there_is_no_hpa() -> None:
    items = children([{"name": "solo", "role": "senior", "replicas": 3}])
    assert of_kind(items, "HorizontalPodAutoscaler") == []
    assert of_kind(items, "Deployment")[0]["spec"]["replicas"] == 3


def test_an_autoscaled_coordinator_claims_the_run_and_shares_its_work() -> None:
    agent = AgentSpec.model_validate(
        {"name": "a", "role": "senior", "autoscale": {"maxReplicas": 2}}
    )
    assert agent.shares_work
    items = children([{"name": "lead", "role": "senior", "autoscale": {"maxReplicas": 4}}])
    (role,) = [
        r for r in of_kind(items, "Role") if r["metadata"]["name"] == child_name("bees", "lead")
    ]
    assert any("leases" in rule["resources"] for rule in role["rules"])


def test_bounds_out_of_order_are_refused_naming_the_field() -> None:
    with pytest.raises(ValidationError, match="maxReplicas: 1 is below minReplicas 3"):
        AgentSpec.model_validate(
            {"name": "a", "role": "junior", "autoscale": {"minReplicas": 3, "maxReplicas": 1}}
        )
