"""Agent pods at work: the operator's pod specs run by a stand-in kubelet, the team's status
filling in as the agents delegate, work and review against a scripted model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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


def test_an_agent_that_cannot_work_says_why_in_its_status(
    cluster: Cluster, operator: OperatorProcess, tmp_path: Path
) -> None:
    """A pod whose model key is missing exits with one line, and its entry says the same."""
    manifest = team_manifest("http://127.0.0.1:9/v1")
    manifest["metadata"]["name"] = "keyless"
    manifest["spec"]["model"]["secretRef"] = {"name": "no-such-secret", "key": "apiKey"}
    path = tmp_path / "keyless.yaml"
    path.write_text(yaml.safe_dump(manifest))
    cluster.kubectl("apply", "-f", str(path))
    wait_for(
        lambda: (
            cluster.kubectl("get", "configmap", "keyless-writer-config", check=False).returncode
            == 0
        ),
        60,
        "the writer's ConfigMap",
    )
    config = json.loads(
        cluster.kubectl("get", "configmap", "keyless-writer-config", "-o", "json").stdout
    )["data"]["agent.yaml"]
    mounted = tmp_path / "agent.yaml"
    mounted.write_text(config)
    deployment = json.loads(
        cluster.kubectl("get", "deployment", "keyless-writer", "-o", "json").stdout
    )
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    args = [str(mounted) if a == "/etc/hive/agent.yaml" else a for a in container["args"]]
    env = {k: v for k, v in os.environ.items() if k != "HIVE_MODEL_API_KEY"}
    done = subprocess.run(
        [sys.executable, "-m", "hive", *args, "--kubeconfig", str(cluster.kubeconfig)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    message = (
        "model.secretRef: HIVE_MODEL_API_KEY is empty: key apiKey of Secret no-such-secret "
        "is missing or empty"
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == f"hive: error: {message}"
    assert "Traceback" not in done.stderr
    entries = {
        a["name"]: a
        for a in json.loads(cluster.kubectl("get", "agentteam", "keyless", "-o", "json").stdout)[
            "status"
        ]["agents"]
    }
    assert entries["writer"]["phase"] == "Failed"
    assert entries["writer"]["lastError"] == message
    cluster.kubectl("delete", "agentteam", "keyless", "--wait=false")
