"""A team that debugs (spec.debug.interactive): its coordinator's pod declares the debug port
and its NetworkPolicy admits it; no other agent, and no team that does not debug, has it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from hive.api.agentteam import AgentTeamSpec
from hive.reconcile.agentteam import AgentPodSettings, TeamObserved, plan_team
from hive.reconcile.meta import Owner, child_name
from hive.runtime.debug import DEBUG_PORT
from hive.runtime.pod import PodConfig

OWNER = Owner("AgentTeam", "research", "default", "uid-1", generation=1)


def children(debug: dict[str, Any]) -> list[dict[str, Any]]:
    spec = {
        "goal": "answer",
        "model": {"name": "m", "endpoint": "http://vllm:8000/v1"},
        "agents": [
            {"name": "lead", "role": "senior", "subordinates": ["dev"]},
            {"name": "dev", "role": "junior"},
        ],
        "debug": debug,
    }
    observed = TeamObserved(deployments={}, sandbox_policies={}, pods={}, nodes_not_ready={})
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    return plan_team(OWNER, spec, None, observed, AgentPodSettings(image="hive:t"), now).children


def of(items: list[dict[str, Any]], kind: str, agent: str) -> dict[str, Any]:
    name = child_name(OWNER.name, agent)
    return next(c for c in items if c["kind"] == kind and c["metadata"]["name"] == name)


def debug_ports(items: list[dict[str, Any]], agent: str) -> tuple[list[Any], list[Any]]:
    container = of(items, "Deployment", agent)["spec"]["template"]["spec"]["containers"][0]
    declared = [p for p in container["ports"] if p["name"] == "debug"]
    admitted = [
        rule
        for rule in of(items, "NetworkPolicy", agent)["spec"]["ingress"]
        if {"protocol": "TCP", "port": DEBUG_PORT} in rule.get("ports", [])
    ]
    return declared, admitted


def test_only_the_coordinator_of_a_team_that_debugs_declares_and_admits_the_port() -> None:
    items = children({"interactive": True, "breakpoints": ["delegate:dev"]})
    declared, admitted = debug_ports(items, "lead")
    assert declared == [{"name": "debug", "containerPort": DEBUG_PORT, "protocol": "TCP"}]
    assert admitted == [{"ports": [{"protocol": "TCP", "port": DEBUG_PORT}]}]
    assert debug_ports(items, "dev") == ([], [])

    quiet = children({})
    assert debug_ports(quiet, "lead") == ([], [])


def test_breakpoints_need_a_debugger_and_a_known_form() -> None:
    base = {
        "goal": "g",
        "model": {"name": "m", "endpoint": "http://m/v1"},
        "agents": [{"name": "a"}],
    }
    with pytest.raises(ValidationError, match=r"set debug\.interactive too"):
        AgentTeamSpec.model_validate({**base, "debug": {"breakpoints": ["error"]}})
    with pytest.raises(ValidationError, match=r"breakpoints\.0"):
        AgentTeamSpec.model_validate(
            {**base, "debug": {"interactive": True, "breakpoints": ["delegated"]}}
        )


def test_the_coordinator_reads_the_teams_debugging_from_the_configuration(
    tmp_path: Path,
) -> None:
    items = children({"interactive": True, "breakpoints": ["score<0.5"]})
    configs = [
        c["data"]["agent.yaml"]
        for c in items
        if c["kind"] == "ConfigMap" and "agent.yaml" in c.get("data", {})
    ]
    lead = next(text for text in configs if yaml.safe_load(text)["agent"]["name"] == "lead")
    path = tmp_path / "agent.yaml"
    path.write_text(lead)
    config = PodConfig.load(path, "lead")
    assert config.spec.debug.interactive
    assert config.spec.debug.breakpoints == ["score<0.5"]
