"""Agent pods at work: the operator's pod specs run by a stand-in kubelet, the team's status
filling in as the agents delegate, work and review against a scripted model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.scripted_model import ScriptedModel, scripted_model
from tests.support import Cluster

from e2e.conftest import OperatorProcess, wait_for
from e2e.kubelet import Kubelet

SCRIPT = {
    "lead": [
        {
            "json": {
                "subtasks": [
                    {"description": "Gather the facts", "capabilities": ["research"]},
                    {"description": "Write the summary", "capabilities": ["writing"]},
                ]
            }
        },
        {"when": "gave researcher", "json": {"score": 0.5, "feedback": "add numbers"}},
        {"when": "gave researcher", "json": {"score": 0.9, "feedback": ""}},
        {"when": "gave writer", "json": {"score": 0.8, "feedback": ""}},
        {"when": "final answer", "content": "gVisor intercepts syscalls; 2 facts, 1 summary."},
    ],
    "researcher": [
        {"content": "gVisor is a user-space kernel."},
        {"content": "It has ~70 syscalls."},
    ],
    "writer": [{"content": "A summary."}],
}


def team_manifest(endpoint: str) -> dict[str, Any]:
    return {
        "apiVersion": "hive.dev/v1alpha1",
        "kind": "AgentTeam",
        "metadata": {"name": "pods", "namespace": "default"},
        "spec": {
            "goal": "Summarise gVisor",
            "pattern": "hierarchical",
            "model": {"provider": "openai-compatible", "endpoint": endpoint, "name": "scripted"},
            "delegation": {"qualityThreshold": 0.7, "maxRevisions": 2},
            "agents": [
                {"name": "lead", "role": "senior", "subordinates": ["researcher", "writer"]},
                {"name": "researcher", "role": "junior", "capabilities": ["research"]},
                {"name": "writer", "role": "junior", "capabilities": ["writing"]},
            ],
        },
    }


@pytest.fixture
def model() -> Iterator[ScriptedModel]:
    with scripted_model(SCRIPT) as server:
        yield server


def get_team(cluster: Cluster) -> dict[str, Any]:
    return json.loads(cluster.kubectl("get", "agentteam", "pods", "-o", "json").stdout)


def test_agent_pods_run_the_team_and_fill_in_its_status(
    cluster: Cluster, operator: OperatorProcess, model: ScriptedModel, tmp_path: Path
) -> None:
    manifest = tmp_path / "team.yaml"
    manifest.write_text(yaml.safe_dump(team_manifest(model.url)))
    cluster.kubectl("apply", "-f", str(manifest))
    cluster.kubectl("wait", "--for=condition=Ready", "agentteam/pods", "--timeout=60s")
    services = cluster.kubectl("get", "services", "-l", "hive.dev/team=pods", "-o", "name")
    assert sorted(services.stdout.split()) == [
        "service/pods-lead",
        "service/pods-researcher",
        "service/pods-writer",
    ]

    kubelet = Kubelet(cluster, tmp_path / "kubelet")
    pods = kubelet.start_team("pods")
    try:

        def finished() -> dict[str, Any] | None:
            for pod in pods.values():
                assert pod.process.poll() is None, f"{pod.agent} exited:\n{pod.log_tail()}"
            team = get_team(cluster)
            run = team.get("status", {}).get("run") or {}
            return team if run.get("outcome") not in (None, "Running") else None

        team = wait_for(finished, 90, "the team's run to end")
        run = team["status"]["run"]
        assert run["outcome"] == "Succeeded", run
        assert run["result"] == "gVisor intercepts syscalls; 2 facts, 1 summary."
        assert run["coordinator"] == "lead"
        assert run["delegations"] == 2
        assert run["generation"] == team["metadata"]["generation"]

        def agents_reported() -> dict[str, Any] | None:
            entries = {a["name"]: a for a in get_team(cluster)["status"].get("agents", [])}
            done = entries.get("researcher", {}).get("tasksCompleted") == 2
            return entries if done and entries.get("writer", {}).get("tasksCompleted") else None

        entries = wait_for(agents_reported, 30, "every agent's entry")
        assert entries["researcher"]["tokensUsed"] == 30
        assert entries["researcher"]["role"] == "junior"
        assert entries["lead"]["tasksCompleted"] == 1
        wait_for(lambda: get_team(cluster)["status"]["phase"] == "Succeeded", 30, "phase")

        wide = cluster.kubectl("get", "agentteam", "pods", "-o", "wide").stdout
        print(wide)
        header, row = wide.splitlines()[:2]
        columns = dict(zip(header.split(), row.split(), strict=False))
        assert columns["PHASE"] == "Succeeded"
        assert columns["WORK"] == "Succeeded"
        assert columns["DELEGATIONS"] == "2"

        shown = cluster.kubectl(
            "get", "agentteam", "pods", "-o", "json", "--show-managed-fields"
        ).stdout
        managers = {
            m["manager"]
            for m in json.loads(shown)["metadata"]["managedFields"]
            if m.get("subresource") == "status"
        }
        assert {"hive-agent-lead", "hive-agent-researcher", "hive-agent-writer"} <= managers
        assert "hive-coordinator" in managers
        revision = model.requests_of("researcher")[1]["messages"][-1]["content"]
        assert "add numbers" in revision
    finally:
        codes = kubelet.stop()
        cluster.kubectl("delete", "agentteam", "pods", "--wait=false")
    assert codes == {"lead": 0, "researcher": 0, "writer": 0}, {
        name: pod.log_tail() for name, pod in pods.items()
    }
