"""CPU profiling of agent pods is opt-in: only spec.debug.cpuProfiling gives the agent container
SYS_PTRACE (what py-spy needs to read another process's stacks), and nothing else changes."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hive.reconcile.agentteam import AgentPodSettings, TeamObserved, plan_team
from hive.reconcile.meta import Owner

OWNER = Owner("AgentTeam", "bees", "default", "uid-1", generation=1)


def agent_pod(**spec: Any) -> dict[str, Any]:
    team = {
        "goal": "count bees",
        "model": {"name": "m", "endpoint": "http://vllm:8000/v1"},
        "agents": [{"name": "counter", "role": "junior"}],
        **spec,
    }
    plan = plan_team(
        OWNER,
        team,
        None,
        TeamObserved(deployments={}, sandbox_policies={}, pods={}, nodes_not_ready={}),
        AgentPodSettings(image="hive:test"),
        dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    )
    deployment = next(c for c in plan.children if c["kind"] == "Deployment")
    pod: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return pod


def test_agents_have_no_capability_by_default() -> None:
    (container,) = agent_pod()["containers"]
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}


def test_cpu_profiling_adds_only_sys_ptrace() -> None:
    plain = agent_pod()
    traced = agent_pod(debug={"cpuProfiling": True})
    (container,) = traced["containers"]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"], "add": ["SYS_PTRACE"]},
    }
    container["securityContext"]["capabilities"] = {"drop": ["ALL"]}
    assert traced == plain  # nothing else about the pod changes
