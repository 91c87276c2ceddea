"""A team's real pods under a ChaosExperiment, and its code in the team's gVisor sandbox pod.

The team runs on the real node (its spec.scheduling), so the faults are real: a pod kill makes
the kubelet start a new container, and a partition is a NetworkPolicy that kube-router enforces
on the agents' packets until the experiment ends. The coder's `run_python` goes from its pod
through the sandbox Service to the sandbox pod, which runs under runsc.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from tests.nodepods import connects_from
from tests.scripted_model import ScriptedModel, scripted_model
from tests.support import Cluster

from e2e.conftest import OperatorProcess, wait_for
from e2e.test_agent_pods import agent_pods, get_team, real_team
from hive.dev.node import RealNode

pytestmark = pytest.mark.e2e

READ_KERNEL = "print(open('/proc/version').read())"
SCRIPT = {
    "lead": [
        {"json": {"subtasks": [{"description": "Read the kernel", "capabilities": ["python"]}]}},
        {"when": "gave coder", "json": {"score": 0.9, "feedback": ""}},
        {"when": "final answer", "content": "The sandbox reported its kernel."},
    ],
    "coder": [
        {"tool_calls": [{"name": "run_python", "arguments": {"code": READ_KERNEL}}]},
        {"content": "Read it."},
    ],
}


def team(name: str, endpoint: str, node: RealNode) -> dict[str, Any]:
    coder = {
        "name": "coder",
        "role": "specialist",
        "capabilities": ["python"],
        "sandboxPolicyRef": {"name": "strict"},
        "tools": [{"name": "python", "version": ">=1.0 <2"}],
    }
    lead = {"name": "lead", "role": "senior", "subordinates": ["coder"]}
    return real_team(name, node, endpoint, "Read the sandbox's kernel", [lead, coder])


@pytest.fixture
def model(real_node: RealNode) -> Iterator[ScriptedModel]:
    with scripted_model(SCRIPT, host=real_node.gateway()) as server:
        yield server


def test_the_coders_code_runs_in_the_teams_sandbox_pod_under_gvisor(
    cluster: Cluster, operator: OperatorProcess, real_node: RealNode, model: ScriptedModel
) -> None:
    cluster.kubectl("apply", "-f", "-", input=json.dumps(team("coding", model.url, real_node)))
    try:
        cluster.kubectl("wait", "--for=condition=Ready", "agentteam/coding", "--timeout=180s")
        sandbox = json.loads(
            cluster.kubectl(
                "get", "pods", "-l", "hive.dev/team=coding,app.kubernetes.io/component=sandbox",
                "-o", "json",
            ).stdout
        )["items"]  # fmt: skip
        assert sandbox, "no sandbox pod"
        assert {p["spec"]["runtimeClassName"] for p in sandbox} == {"gvisor"}
        assert {p["spec"]["nodeName"] for p in sandbox} == {real_node.name}

        def finished() -> dict[str, Any] | None:
            run = get_team(cluster, "coding").get("status", {}).get("run") or {}
            return run if run.get("outcome") not in (None, "Running") else None

        run = wait_for(finished, 180, "the team's run to end")
        assert run["outcome"] == "Succeeded", run
        coder = model.requests_of("coder")
        (after_tool,) = [r for r in coder if r["messages"][-1]["role"] == "tool"]
        kernel = after_tool["messages"][-1]["content"]
        # gVisor answers with its own kernel, not the host's.
        assert "Linux version" in kernel
        assert os.uname().release not in kernel
        # The sandbox pod ran it for the coder, who proved it holds its own key.
        log = "".join(cluster.kubectl("logs", p["metadata"]["name"]).stdout for p in sandbox)
        decisions = [json.loads(line) for line in log.splitlines() if line.startswith('{"audit"')]
        assert ("coder", "allowed") in {(d["caller"], d["outcome"]) for d in decisions}, log
    finally:
        cluster.kubectl("delete", "agentteam", "coding", "--wait=false")


def experiment(name: str, team_name: str, agents: list[str], duration: str) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "hive.dev/v1alpha1",
            "kind": "ChaosExperiment",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {
                "selector": {"team": team_name, "agents": agents, "mode": "all"},
                "faults": [{"type": "network-partition"}, {"type": "pod-kill"}],
                "duration": duration,
                "recoveryTimeout": "120s",
                "probes": [{"name": "team-ready", "kind": "team-ready"}],
            },
        }
    )


def peer_reachable(cluster: Cluster, from_pod: str, service: str) -> str:
    return connects_from(cluster, from_pod, service, 8080)


def test_chaos_kills_a_real_container_and_cuts_the_agent_off_until_it_ends(
    cluster: Cluster, operator: OperatorProcess, real_node: RealNode, model: ScriptedModel
) -> None:
    cluster.kubectl("apply", "-f", "-", input=json.dumps(team("chaotic", model.url, real_node)))
    try:
        cluster.kubectl("wait", "--for=condition=Ready", "agentteam/chaotic", "--timeout=180s")
        before = agent_pods(cluster, "chaotic")
        lead = before["lead"]["metadata"]["name"]
        coder_container = before["coder"]["status"]["containerStatuses"][0]["containerID"]
        # Ready pods are the Service's endpoints once kube-proxy has synced its rules.
        wait_for(
            lambda: peer_reachable(cluster, lead, "chaotic-coder") == "open",
            30,
            "the coder's Service to reach it",
        )

        cluster.kubectl("apply", "-f", "-", input=experiment("cut", "chaotic", ["coder"], "25s"))

        def replaced() -> dict[str, Any] | None:
            coder = agent_pods(cluster, "chaotic").get("coder")
            statuses = (coder or {}).get("status", {}).get("containerStatuses") or [{}]
            new = statuses[0].get("containerID") not in (None, coder_container)
            return coder if new and "running" in statuses[0].get("state", {}) else None

        coder = wait_for(replaced, 90, "a new coder container to run")
        assert coder["spec"]["nodeName"] == real_node.name
        phase = json.loads(cluster.kubectl("get", "chaos", "cut", "-o", "json").stdout)
        assert phase["status"]["phase"] == "Running"
        assert peer_reachable(cluster, lead, "chaotic-coder").startswith("closed")

        def completed() -> dict[str, Any] | None:
            obj = json.loads(cluster.kubectl("get", "chaos", "cut", "-o", "json").stdout)
            status = obj.get("status") or {}
            return status if status.get("phase") == "Completed" else None

        done = wait_for(completed, 180, "the experiment to complete")
        assert done["verdict"] == "Pass", done
        wait_for(
            lambda: peer_reachable(cluster, lead, "chaotic-coder") == "open",
            60,
            "the partition to heal",
        )
    finally:
        cluster.kubectl("delete", "chaos", "cut", "--ignore-not-found", "--wait=false")
        cluster.kubectl("delete", "agentteam", "chaotic", "--wait=false")
