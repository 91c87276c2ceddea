"""Chaos on the real control plane: faults go in, pods die, everything is rolled back."""

from __future__ import annotations

import json

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from tests.support import Cluster

from e2e.conftest import SAMPLES, OperatorProcess, wait_for

pytestmark = pytest.mark.e2e


def experiment(name: str, **spec: object) -> str:
    body = {
        "selector": {"team": "research", "agents": ["researcher", "coder"], "mode": "all"},
        "faults": [
            {"type": "latency", "latencyMs": 800},
            {"type": "network-partition"},
            {"type": "pod-kill"},
        ],
        "duration": "4s",
        "recoveryTimeout": "60s",
        "probes": [{"name": "team-ready", "kind": "team-ready"}],
        **spec,
    }
    return yaml.safe_dump(
        {
            "apiVersion": "hive.dev/v1alpha1",
            "kind": "ChaosExperiment",
            "metadata": {"name": name, "namespace": "default"},
            "spec": body,
        }
    )


def status(cluster: Cluster, name: str) -> dict:  # type: ignore[type-arg]
    obj = json.loads(cluster.kubectl("get", "chaos", name, "-o", "json").stdout)
    return obj.get("status") or {}


def faults_left(cluster: Cluster, name: str) -> list[str]:
    left = []
    if cluster.kubectl("get", "networkpolicy", f"chaos-{name}", check=False).returncode == 0:
        left.append("partition")
    cm = cluster.kubectl("get", "configmap", "research-faults", "-o", "json", check=False)
    if cm.returncode == 0 and f"{name}.json" in (json.loads(cm.stdout).get("data") or {}):
        left.append("config key")
    return left


@pytest.fixture(scope="module")
def team(cluster: Cluster, operator: dict) -> None:  # type: ignore[type-arg]
    cluster.kubectl("apply", "-f", str(SAMPLES / "sandboxpolicy-strict.yaml"))
    cluster.kubectl("apply", "-f", str(SAMPLES / "agentteam-research.yaml"))
    cluster.kubectl("wait", "--for=condition=Ready", "agentteam/research", "--timeout=60s")


def test_an_experiment_injects_kills_rolls_back_and_passes(cluster: Cluster, team: None) -> None:
    def pods() -> set[str]:
        selector = "hive.dev/team=research,hive.dev/agent=coder"
        return set(cluster.kubectl("get", "pods", "-l", selector, "-o", "name").stdout.split())

    before = pods()
    cluster.kubectl("apply", "-f", "-", input=experiment("full"))

    running = wait_for(
        lambda: status(cluster, "full").get("phase") == "Running" and status(cluster, "full"),
        30,
        "Running",
    )
    assert running["targets"] == ["coder", "researcher"]
    assert running["faultsInjected"] == 3
    wait_for(lambda: faults_left(cluster, "full") == ["partition", "config key"], 30, "injection")
    wait_for(lambda: pods() and pods() != before, 60, "the coder pod to be killed and replaced")

    done = wait_for(
        lambda: status(cluster, "full").get("phase") == "Completed" and status(cluster, "full"),
        120,
        "Completed",
    )
    assert done["verdict"] == "Pass"
    assert done["recoveryTimeSeconds"] >= 0
    assert not done.get("injected")
    assert faults_left(cluster, "full") == []
    cluster.kubectl("wait", "--for=condition=Ready", "chaosexperiment/full", "--timeout=10s")


def test_deleting_a_running_experiment_rolls_it_back(cluster: Cluster, team: None) -> None:
    cluster.kubectl("apply", "-f", "-", input=experiment("interrupted", duration="10m"))
    wait_for(
        lambda: faults_left(cluster, "interrupted") == ["partition", "config key"], 30, "injection"
    )
    cluster.kubectl("delete", "chaos", "interrupted", "--timeout=60s")
    assert faults_left(cluster, "interrupted") == []


def test_pause_rolls_back_and_is_shown(cluster: Cluster, team: None) -> None:
    cluster.kubectl("apply", "-f", "-", input=experiment("pausable", duration="10m"))
    wait_for(lambda: faults_left(cluster, "pausable"), 30, "injection")
    cluster.kubectl("patch", "chaos", "pausable", "--type=merge", "-p", '{"spec":{"pause":true}}')
    wait_for(lambda: status(cluster, "pausable").get("phase") == "Paused", 30, "Paused")
    wait_for(lambda: faults_left(cluster, "pausable") == [], 30, "rollback on pause")
    cluster.kubectl("delete", "chaos", "pausable", "--timeout=60s")


def polls(operator: OperatorProcess) -> dict[str, float]:
    """The operator's timer polls of ChaosExperiments so far, by the phase each was in."""
    text = httpx.get(f"http://127.0.0.1:{operator['metrics']}/metrics", timeout=5).text
    return {
        sample.labels["phase"]: sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "hive_chaos_polls"
        for sample in family.samples
        if sample.name == "hive_chaos_polls_total"
    }


def test_a_finished_experiment_is_not_polled(
    cluster: Cluster, team: None, operator: OperatorProcess
) -> None:
    latency = [{"type": "latency", "latencyMs": 10}]
    cluster.kubectl("apply", "-f", "-", input=experiment("brief", faults=latency, duration="2s"))
    done = wait_for(
        lambda: status(cluster, "brief").get("phase") == "Completed" and status(cluster, "brief"),
        120,
        "Completed",
    )

    # A running experiment keeps its timer: its polls show that time passes for timers.
    cluster.kubectl("apply", "-f", "-", input=experiment("witness", faults=latency, duration="10m"))
    wait_for(lambda: status(cluster, "witness").get("phase") == "Running", 30, "witness Running")
    start = polls(operator).get("Running", 0)
    wait_for(lambda: polls(operator).get("Running", 0) > start, 30, "a poll of the witness")
    before = polls(operator)
    wait_for(
        lambda: polls(operator).get("Running", 0) >= before["Running"] + 3,
        30,
        "three more polls of the witness",
    )
    after = polls(operator)
    for phase in ("Completed", "Failed"):
        assert after.get(phase, 0) == before.get(phase, 0), f"a {phase} experiment was polled"
    assert status(cluster, "brief") == done
    cluster.kubectl("delete", "chaos", "witness", "--timeout=60s")
    assert faults_left(cluster, "witness") == []
