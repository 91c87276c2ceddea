"""A team with spec.model.gateway gets its gateway (ConfigMap, Deployment, Service,
NetworkPolicy) and its agents call it as their model endpoint; a team without routes has none."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import yaml

from hive.reconcile.agentteam import AgentPodSettings, TeamObserved, plan_team
from hive.reconcile.gateway import GATEWAY_PORT
from hive.reconcile.meta import Owner, child_name
from hive.runtime.gateway.config import GatewayConfig

OWNER = Owner("AgentTeam", "research", "default", "uid-1", generation=1)
ROUTES = {
    "strategy": "cost-aware",
    "spendLimit": 5,
    "routes": [
        {"name": "vllm", "endpoint": "http://vllm:8000/v1", "model": "llama", "quality": 2},
        {
            "name": "cloud",
            "endpoint": "https://api.example.com/v1",
            "model": "gpt",
            "quality": 4,
            "promptCostPer1k": 0.5,
        },
    ],
}


def children(gateway: dict[str, Any] | None) -> list[dict[str, Any]]:
    model: dict[str, Any] = {"name": "m", "endpoint": "http://vllm:8000/v1"}
    if gateway is not None:
        model["gateway"] = gateway
    spec = {"goal": "answer", "model": model, "agents": [{"name": "lead", "role": "senior"}]}
    observed = TeamObserved(deployments={}, sandbox_policies={}, pods={}, nodes_not_ready={})
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    return plan_team(OWNER, spec, None, observed, AgentPodSettings(image="hive:t"), now).children


def named(items: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(c for c in items if c["kind"] == kind and c["metadata"]["name"] == name)


def test_a_team_with_routes_runs_its_gateway_and_its_agents_call_it() -> None:
    items = children(ROUTES)
    name = child_name("research", "gateway")
    config = json.loads(named(items, "ConfigMap", name)["data"]["gateway.json"])
    team = GatewayConfig.model_validate(config).teams["research"]
    assert team.model == "m"
    assert [r.name for r in team.gateway.routes] == ["vllm", "cloud"]
    assert team.gateway.spend_limit == 5
    pod = named(items, "Deployment", name)["spec"]["template"]["spec"]
    assert pod["containers"][0]["args"][:3] == [
        "gateway",
        "serve",
        "/etc/hive/gateway/gateway.json",
    ]
    assert pod["volumes"][0] == {"name": "config", "configMap": {"name": name}}
    assert pod["volumes"][1]["projected"]["sources"][0]["serviceAccountToken"]["path"] == "token"
    service = named(items, "Service", name)
    assert service["spec"]["ports"][0]["port"] == GATEWAY_PORT
    egress = named(items, "NetworkPolicy", name)["spec"]["egress"]
    ports = [p["port"] for p in egress[1]["ports"]]
    assert ports == [443, 6443, 8000]  # the routes and the API server
    assert pod["serviceAccountName"] == "hive-gateway-research"
    env = pod["containers"][0]["env"]
    assert {"name": "HIVE_GATEWAY__REPORT_NAMESPACE", "value": "default"} in env
    role = named(items, "Role", "hive-gateway-research")
    assert role["rules"] == [
        {
            "apiGroups": ["hive.dev"],
            "resources": ["agentteams/status"],
            "resourceNames": ["research"],
            "verbs": ["get", "patch"],
        }
    ]
    binding = named(items, "RoleBinding", "hive-gateway-research")
    assert binding["subjects"][0]["name"] == "hive-gateway-research"
    agent = yaml.safe_load(
        named(items, "ConfigMap", child_name("research", "lead", "config"))["data"]["agent.yaml"]
    )
    assert agent["model"]["endpoint"] == f"http://{name}.default.svc:{GATEWAY_PORT}/v1"


def test_a_team_without_routes_has_no_gateway() -> None:
    items = children(None)
    assert not [c for c in items if c["metadata"]["name"] == child_name("research", "gateway")]


def test_the_gateways_role_may_get_only_the_secrets_of_its_routes() -> None:
    keyed = {
        "routes": [
            {
                "name": "cloud",
                "endpoint": "https://api.example.com/v1",
                "model": "gpt",
                "secretRef": {"name": "cloud-key", "key": "token"},
            },
            {
                "name": "backup",
                "endpoint": "https://backup.example.com/v1",
                "model": "gpt",
                "secretRef": {"name": "backup-key"},
            },
            {"name": "vllm", "endpoint": "http://vllm:8000/v1", "model": "llama"},
        ]
    }
    items = children(keyed)
    role = named(items, "Role", "hive-gateway-research")
    assert role["rules"][1] == {
        "apiGroups": [""],
        "resources": ["secrets"],
        "resourceNames": ["backup-key", "cloud-key"],
        "verbs": ["get"],
    }
    name = child_name("research", "gateway")
    config = json.loads(named(items, "ConfigMap", name)["data"]["gateway.json"])
    routes = config["teams"]["research"]["gateway"]["routes"]
    assert routes[0]["secretRef"] == {"name": "cloud-key", "key": "token"}
    assert routes[1]["secretRef"] == {"name": "backup-key", "key": "api-key"}
    # the agents call the gateway: none of their Roles may read the routes' Secrets
    for item in items:
        if item["kind"] == "Role" and item["metadata"]["name"] != "hive-gateway-research":
            for rule in item["rules"]:
                assert "cloud-key" not in rule.get("resourceNames", []), item["metadata"]["name"]
