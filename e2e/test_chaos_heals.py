"""Chaos that bites, and a team that heals: a ChaosExperiment against real agent pods.

Two scripted models serve on the node's bridge: the team's own and a fallback. The experiment
makes every call to the team's own model fail with HTTP 503 (and slows them) inside the agents
themselves; it is set to outlast any run here and shortened once the run is over (a running
experiment's duration may change), so agents slow to start on busy cores never outlast it. A
team with the fallback sees its breaker for the model open, works at reduced capability (its
Degraded condition says so), answers from the fallback, and its run Succeeds: verdict Pass,
with a recovery time. The same experiment against a team without a fallback ends Fail, naming
the run-succeeds probe. Afterwards no fault is left.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml
from tests.scripted_model import ScriptedModel, scripted_model
from tests.support import Cluster

from e2e.conftest import OperatorProcess, pod_logs, wait_for
from e2e.test_agent_pods import agent_pods, get_team, real_team
from hive.dev.node import RealNode

pytestmark = pytest.mark.e2e

FALLBACK_SCRIPT = {
    "lead": [
        {"json": {"subtasks": [{"description": "Find a fact", "capabilities": ["research"]}]}},
        {"when": "gave researcher", "json": {"score": 0.9, "feedback": ""}},
        {"when": "final answer", "content": "Answered by the fallback."},
    ],
    "researcher": [{"content": "A fact."}],
}
AGENTS = [
    {"name": "lead", "role": "senior", "subordinates": ["researcher"]},
    {"name": "researcher", "role": "junior", "capabilities": ["research"]},
]
# Opens after two failed calls and stays open for the whole run.
BREAKER = {"windowSize": 4, "minimumCalls": 2, "openDurationSeconds": 60}


@pytest.fixture
def models(real_node: RealNode) -> Iterator[tuple[ScriptedModel, ScriptedModel]]:
    host = real_node.gateway()
    with scripted_model([], host=host) as own, scripted_model(FALLBACK_SCRIPT, host=host) as spare:
        yield own, spare


def storm(name: str, team: str) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "hive.dev/v1alpha1",
            "kind": "ChaosExperiment",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {
                "selector": {"team": team, "mode": "all"},
                "faults": [
                    {"type": "error", "target": "llm", "httpStatus": 503, "dependency": "own"},
                    {"type": "latency", "target": "llm", "latencyMs": 50, "dependency": "own"},
                ],
                "duration": "600s",
                "recoveryTimeout": "120s",
                "probes": [
                    {"name": "answers", "kind": "run-succeeds"},
                    {"name": "ready", "kind": "team-ready"},
                ],
            },
        }
    )


def experiment_status(cluster: Cluster, name: str) -> dict[str, Any]:
    obj = json.loads(cluster.kubectl("get", "chaos", name, "-o", "json").stdout)
    return dict(obj.get("status") or {})


def condition(team: dict[str, Any], kind: str) -> dict[str, Any]:
    for cond in team.get("status", {}).get("conditions") or []:
        if cond["type"] == kind:
            return dict(cond)
    return {}


def start_under_storm(cluster: Cluster, team: dict[str, Any], experiment: str) -> None:
    """The team suspended, the experiment Running, then the team let go: its run happens
    while the faults are in."""
    name = team["metadata"]["name"]
    team["spec"]["suspend"] = True
    cluster.kubectl("apply", "-f", "-", input=json.dumps(team))
    cluster.kubectl("apply", "-f", "-", input=storm(experiment, name))
    wait_for(
        lambda: experiment_status(cluster, experiment).get("phase") == "Running", 60, "Running"
    )
    # the status is written ahead of the faults: the pods start once the fault file is there
    wait_for(lambda: "fault key" in faults_left(cluster, name, experiment), 60, "the fault file")
    cluster.kubectl("patch", "agentteam", name, "--type=merge", "-p", '{"spec":{"suspend":false}}')


def end_storm(cluster: Cluster, experiment: str) -> None:
    """Shorten the running experiment to what has passed: its faults are rolled back."""
    patch = json.dumps({"spec": {"duration": "1s"}})
    cluster.kubectl("patch", "chaos", experiment, "--type=merge", "-p", patch)


def finished(cluster: Cluster, experiment: str) -> dict[str, Any] | None:
    status = experiment_status(cluster, experiment)
    return status if status.get("phase") == "Completed" else None


def faults_left(cluster: Cluster, team: str, experiment: str) -> list[str]:
    left = []
    if cluster.kubectl("get", "networkpolicy", f"chaos-{experiment}", check=False).returncode == 0:
        left.append("partition")
    found = cluster.kubectl("get", "configmap", f"{team}-faults", "-o", "json", check=False)
    if found.returncode == 0 and f"{experiment}.json" in (
        json.loads(found.stdout).get("data") or {}
    ):
        left.append("fault key")
    return left


def test_a_team_with_a_fallback_degrades_answers_and_passes(
    cluster: Cluster,
    operator: OperatorProcess,
    real_node: RealNode,
    models: tuple[ScriptedModel, ScriptedModel],
) -> None:
    own, spare = models
    team = real_team("resilient", real_node, own.url, "Find a fact", AGENTS)
    team["spec"]["model"]["name"] = "own"
    team["spec"]["model"]["fallbacks"] = [
        {"provider": "openai-compatible", "endpoint": spare.url, "name": "spare"}
    ]
    team["spec"]["resilience"] = {"breaker": BREAKER}
    start_under_storm(cluster, team, "storm")
    try:
        seen: dict[str, Any] = {}

        def run_over() -> dict[str, Any] | None:
            current = get_team(cluster, "resilient")
            for entry in current.get("status", {}).get("agents") or []:
                for breaker in entry.get("breakers") or []:
                    if breaker["dependency"] == "model:own" and breaker["state"] == "open":
                        seen.setdefault("breaker", (entry["name"], breaker))
                if (entry.get("capability") or {}).get("level") == "reduced":
                    seen.setdefault("capability", (entry["name"], entry["capability"]))
                if entry.get("faults"):
                    seen.setdefault("faults", (entry["name"], entry["faults"]))
            degraded = condition(current, "Degraded")
            if degraded.get("status") == "True" and degraded["reason"].startswith("Capability"):
                seen.setdefault("degraded", degraded)
            run = current.get("status", {}).get("run") or {}
            return run if run.get("outcome") not in (None, "Running") else None

        run = wait_for(run_over, 180, "the team's run to end")
        assert run["outcome"] == "Succeeded", run
        assert run["result"] == "Answered by the fallback."
        # every call to the team's own model was failed in the agent
        assert own.requests == [], (
            f"{len(own.requests)} calls reached the team's own model; seen {seen}; "
            f"experiment {experiment_status(cluster, 'storm')}\n"
            + pod_logs(cluster, "hive.dev/team=resilient", tail=60)
        )
        assert "breaker" in seen, f"no open breaker for model:own was reported: {seen}"
        assert "capability" in seen, seen
        assert "faults" in seen, seen
        wait_for(lambda: "degraded" in seen or (run_over() and "degraded" in seen), 30, "Degraded")
        assert "model:own" in seen["degraded"]["message"]

        lead = agent_pods(cluster, "resilient")["lead"]
        metrics = httpx.get(f"http://{lead['status']['podIP']}:8080/metrics", timeout=10).text
        injected = [
            line
            for line in metrics.splitlines()
            if line.startswith("hive_chaos_faults_injected_total{") and 'experiment="storm"' in line
        ]
        assert injected, "the lead's /metrics counts no injected fault"

        end_storm(cluster, "storm")
        done = wait_for(lambda: finished(cluster, "storm"), 240, "the experiment to complete")
        assert done["verdict"] == "Pass", done
        assert done["recoveryTimeSeconds"] >= 0
        by_agent = {(f["agent"], f["type"]) for f in done.get("faultsInjectedByAgent") or []}
        assert ("lead", "error") in by_agent, done.get("faultsInjectedByAgent")
        assert faults_left(cluster, "resilient", "storm") == []
    finally:
        cluster.kubectl("delete", "chaos", "storm", "--ignore-not-found", "--wait=false")
        cluster.kubectl("delete", "agentteam", "resilient", "--wait=false")


def test_the_same_storm_fails_a_team_without_a_fallback_naming_the_probe(
    cluster: Cluster,
    operator: OperatorProcess,
    real_node: RealNode,
    models: tuple[ScriptedModel, ScriptedModel],
) -> None:
    own, _ = models
    team = real_team("fragile", real_node, own.url, "Find a fact", AGENTS)
    team["spec"]["model"]["name"] = "own"
    team["spec"]["resilience"] = {"breaker": BREAKER}
    start_under_storm(cluster, team, "storm-bare")
    try:
        wait_for(
            lambda: (
                (get_team(cluster, "fragile").get("status", {}).get("run") or {}).get("outcome")
                not in (None, "Running")
            ),
            180,
            "the team's run to end",
        )
        end_storm(cluster, "storm-bare")
        done = wait_for(lambda: finished(cluster, "storm-bare"), 300, "the experiment to end")
        assert done["verdict"] == "Fail", done
        ready = json.loads(cluster.kubectl("get", "chaos", "storm-bare", "-o", "json").stdout)
        message = condition(ready, "Ready").get("message", "")
        assert "answers" in message, message
        assert get_team(cluster, "fragile")["status"]["run"]["outcome"] == "Failed"
        assert faults_left(cluster, "fragile", "storm-bare") == []
    finally:
        cluster.kubectl("delete", "chaos", "storm-bare", "--ignore-not-found", "--wait=false")
        cluster.kubectl("delete", "agentteam", "fragile", "--wait=false")
