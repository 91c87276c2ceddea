"""What the operator gives agent pods for tracing and metrics: its OTLP endpoint and sampling
as env, the team's recordContent in the agent's configuration, and the named peer port that
serves /metrics."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import yaml

from hive.reconcile.agentteam import AgentPodSettings, TeamObserved, TeamPlan, plan_team
from hive.reconcile.meta import Owner
from hive.runtime.pod import PodConfig

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
OWNER = Owner("AgentTeam", "research", "default", "uid-1", generation=1)
SPEC: dict[str, Any] = {
    "goal": "answer",
    "model": {"name": "m", "endpoint": "http://vllm:8000/v1"},
    "agents": [{"name": "lead", "role": "senior"}],
}


def planned(pods: AgentPodSettings, spec: dict[str, Any] = SPEC) -> TeamPlan:
    observed = TeamObserved(deployments={}, sandbox_policies={}, pods={}, nodes_not_ready={})
    return plan_team(OWNER, spec, None, observed, pods, T0)


def agent_container(plan: TeamPlan) -> dict[str, Any]:
    (deployment,) = [c for c in plan.children if c["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


def test_agents_get_the_operators_otlp_endpoint_and_sampling() -> None:
    container = agent_container(
        planned(
            AgentPodSettings(
                image="hive:test", otlp_endpoint="http://jaeger:4318", trace_sample_ratio=0.5
            )
        )
    )
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["HIVE_TRACING__OTLP_ENDPOINT"] == "http://jaeger:4318"
    assert env["HIVE_TRACING__SAMPLE_RATIO"] == "0.5"
    # /metrics is served on the port the pod spec names
    assert container["ports"] == [{"name": "peer", "containerPort": 8080, "protocol": "TCP"}]


def test_the_agents_network_policy_lets_their_spans_out() -> None:
    plan = planned(AgentPodSettings(image="hive:test", otlp_endpoint="http://10.88.0.1:4318"))
    (policy,) = [c for c in plan.children if c["kind"] == "NetworkPolicy"]
    ports = {p["port"] for rule in policy["spec"]["egress"] for p in rule.get("ports", [])}
    assert 4318 in ports
    quiet = planned(AgentPodSettings(image="hive:test"))
    (policy,) = [c for c in quiet.children if c["kind"] == "NetworkPolicy"]
    assert 4318 not in {p["port"] for r in policy["spec"]["egress"] for p in r.get("ports", [])}


def test_no_endpoint_no_tracing_env() -> None:
    env = {e["name"] for e in agent_container(planned(AgentPodSettings(image="t")))["env"]}
    assert not {n for n in env if n.startswith("HIVE_TRACING__")}


def test_record_content_reaches_the_agents_configuration() -> None:
    spec = {**SPEC, "observability": {"recordContent": True}}
    (config_map,) = [
        c for c in planned(AgentPodSettings(image="t"), spec).children if c["kind"] == "ConfigMap"
    ]
    config = yaml.safe_load(config_map["data"]["agent.yaml"])
    assert config["observability"] == {"recordContent": True}


def test_the_agent_reads_record_content_from_its_configuration(tmp_path: Path) -> None:
    spec = {**SPEC, "observability": {"recordContent": True}}
    (config_map,) = [
        c for c in planned(AgentPodSettings(image="t"), spec).children if c["kind"] == "ConfigMap"
    ]
    path = tmp_path / "agent.yaml"
    path.write_text(config_map["data"]["agent.yaml"])
    assert PodConfig.load(path, "lead").spec.observability.record_content is True
