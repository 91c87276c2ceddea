"""Agent pods at work on the real node: the operator's pods of the Hive image built here, run
by the kubelet under containerd, reaching their peers through Service names (CoreDNS,
kube-proxy) and the API server through the `kubernetes` Service; the team's status fills in as
the agents delegate, work and review against a scripted model served on the node's bridge."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.nodepods import TAINT_KEY
from tests.scripted_model import ScriptedModel, scripted_model
from tests.support import Cluster

from e2e.conftest import OperatorProcess, wait_for
from hive.dev.node import RealNode

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


def on_the_real_node(node: RealNode) -> dict[str, Any]:
    """The team's scheduling: the real node, whose test taint it tolerates."""
    return {
        "nodeSelector": {"kubernetes.io/hostname": node.name},
        "tolerations": [{"key": TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}],
    }


def real_team(
    name: str, node: RealNode, endpoint: str, goal: str, agents: list[dict[str, Any]], **spec: Any
) -> dict[str, Any]:
    """An AgentTeam whose pods run on the real node and call the scripted model at
    `endpoint`."""
    return {
        "apiVersion": "hive.dev/v1alpha1",
        "kind": "AgentTeam",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "goal": goal,
            "model": {"provider": "openai-compatible", "endpoint": endpoint, "name": "scripted"},
            "scheduling": on_the_real_node(node),
            "agents": agents,
            **spec,
        },
    }


def team_manifest(endpoint: str, node: RealNode, name: str = "pods") -> dict[str, Any]:
    agents = [
        {"name": "lead", "role": "senior", "subordinates": ["researcher", "writer"]},
        {"name": "researcher", "role": "junior", "capabilities": ["research"]},
        {"name": "writer", "role": "junior", "capabilities": ["writing"]},
    ]
    delegation = {"qualityThreshold": 0.7, "maxRevisions": 2}
    return real_team(name, node, endpoint, "Summarise gVisor", agents, delegation=delegation)


@pytest.fixture
def model(real_node: RealNode) -> Iterator[ScriptedModel]:
    with scripted_model(SCRIPT, host=real_node.gateway()) as server:
        yield server


def get_team(cluster: Cluster, name: str = "pods") -> dict[str, Any]:
    return json.loads(cluster.kubectl("get", "agentteam", name, "-o", "json").stdout)


def agent_pods(cluster: Cluster, team: str) -> dict[str, dict[str, Any]]:
    selector = f"hive.dev/team={team},hive.dev/agent"
    found = cluster.kubectl("get", "pods", "-l", selector, "-o", "json").stdout
    return {p["metadata"]["labels"]["hive.dev/agent"]: p for p in json.loads(found)["items"]}


def test_agent_pods_run_the_team_and_fill_in_its_status(
    cluster: Cluster,
    operator: OperatorProcess,
    real_node: RealNode,
    model: ScriptedModel,
    tmp_path: Path,
) -> None:
    manifest = tmp_path / "team.yaml"
    manifest.write_text(yaml.safe_dump(team_manifest(model.url, real_node)))
    cluster.kubectl("apply", "-f", str(manifest))
    try:
        cluster.kubectl("wait", "--for=condition=Ready", "agentteam/pods", "--timeout=120s")
        pods = agent_pods(cluster, "pods")
        assert sorted(pods) == ["lead", "researcher", "writer"]
        for pod in pods.values():
            assert pod["spec"]["nodeName"] == real_node.name
            assert pod["status"]["phase"] == "Running"
            assert pod["status"]["containerStatuses"][0]["imageID"]  # containerd ran it

        def finished() -> dict[str, Any] | None:
            team = get_team(cluster)
            run = team.get("status", {}).get("run") or {}
            return team if run.get("outcome") not in (None, "Running") else None

        team = wait_for(finished, 120, "the team's run to end")
        run = team["status"]["run"]
        assert run["outcome"] == "Succeeded", run
        assert run["result"] == "gVisor intercepts syscalls; 2 facts, 1 summary."
        assert run["coordinator"] == "lead"
        assert run["delegations"] == 2
        assert run["generation"] == team["metadata"]["generation"]

        def agents_reported() -> dict[str, Any] | None:
            # each agent writes its own entry (its field manager), after the run's status the
            # coordinator writes: each is waited for, the lead's too
            entries = {a["name"]: a for a in get_team(cluster)["status"].get("agents", [])}
            counts = {name: entries.get(name, {}).get("tasksCompleted") for name in entries}
            done = counts.get("researcher") == 2 and counts.get("writer") and counts.get("lead")
            return entries if done else None

        entries = wait_for(agents_reported, 60, "every agent's entry")
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
        for agent, pod in agent_pods(cluster, "pods").items():
            assert pod["status"]["containerStatuses"][0]["restartCount"] == 0, agent
    finally:
        cluster.kubectl("delete", "agentteam", "pods", "--wait=false")


def test_an_agent_that_cannot_work_says_why_in_its_status(
    cluster: Cluster, operator: OperatorProcess, real_node: RealNode
) -> None:
    """A pod whose model key is missing exits with one line, its entry says the same, and
    the kubelet restarts it (CrashLoopBackOff) without the team losing that reason."""
    manifest = team_manifest("http://127.0.0.1:9/v1", real_node, name="keyless")
    manifest["spec"]["model"]["secretRef"] = {"name": "empty-key", "key": "apiKey"}
    cluster.kubectl("create", "secret", "generic", "empty-key", "--from-literal=apiKey=")
    cluster.kubectl("apply", "-f", "-", input=json.dumps(manifest))
    message = (
        "model.secretRef: HIVE_MODEL_API_KEY is empty: key apiKey of Secret empty-key "
        "is missing or empty"
    )
    try:

        def writer_failed() -> dict[str, Any] | None:
            agents = get_team(cluster, "keyless").get("status", {}).get("agents") or []
            entry = next((a for a in agents if a["name"] == "writer"), None)
            return entry if entry and entry.get("phase") == "Failed" else None

        entry = wait_for(writer_failed, 120, "the writer's entry to say Failed")
        assert entry["lastError"] == message
        pod = agent_pods(cluster, "keyless")["writer"]
        logs = (
            cluster.kubectl(
                "logs", pod["metadata"]["name"], "--all-containers", "--previous", check=False
            ).stdout
            or cluster.kubectl("logs", pod["metadata"]["name"]).stdout
        )
        assert logs.strip().splitlines()[-1] == f"hive: error: {message}"
        assert "Traceback" not in logs
    finally:
        cluster.kubectl("delete", "agentteam", "keyless", "--wait=false")
        cluster.kubectl("delete", "secret", "empty-key")
