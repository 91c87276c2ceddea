"""kill -9 of the operator in the middle of work: on restart everything converges.

Many teams are applied and a chaos experiment is running when the operator dies. While it is
down, the experiment and one team are deleted. After the restart every remaining team is Ready,
the deleted ones left nothing behind, and no chaos fault remains.
"""

from __future__ import annotations

import json

import pytest
import yaml
from tests.support import Cluster

from e2e.conftest import SAMPLE, OperatorProcess, wait_for

pytestmark = pytest.mark.e2e
TEAMS = 30


def team(name: str) -> dict:  # type: ignore[type-arg]
    doc = yaml.safe_load(SAMPLE.read_text())
    doc["metadata"]["name"] = name
    doc["metadata"]["labels"] = {"suite": "crash"}
    # an external model: thirty embedded model servers would only load KWOK, not the operator
    doc["spec"]["model"] = {
        "provider": "openai-compatible",
        "endpoint": "http://vllm.models.svc:8000/v1",
        "name": "qwen2.5",
    }
    return doc


def chaos() -> dict:  # type: ignore[type-arg]
    return {
        "apiVersion": "hive.dev/v1alpha1",
        "kind": "ChaosExperiment",
        "metadata": {"name": "during-crash", "namespace": "default"},
        "spec": {
            "selector": {"team": "crash-0", "mode": "all"},
            "faults": [{"type": "network-partition"}, {"type": "error", "errorMessage": "boom"}],
            "duration": "10m",
        },
    }


def items(cluster: Cluster, *args: str) -> list[dict]:  # type: ignore[type-arg]
    return json.loads(cluster.kubectl("get", *args, "-o", "json").stdout)["items"]


def test_kill_9_mid_reconcile_then_restart_converges(
    cluster: Cluster, operator: OperatorProcess
) -> None:
    docs = [team(f"crash-{i}") for i in range(TEAMS)]
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))
    cluster.kubectl("wait", "--for=condition=Ready", "agentteam/crash-0", "--timeout=60s")
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(chaos()))
    wait_for(
        lambda: (
            cluster.kubectl("get", "networkpolicy", "chaos-during-crash", check=False).returncode
            == 0
        ),
        30,
        "the partition",
    )

    operator.kill()  # most teams are still being reconciled
    try:
        cluster.kubectl("delete", "chaos", "during-crash", "--wait=false")
        cluster.kubectl("delete", "agentteam", "crash-1", "--wait=false")
        held = [c["metadata"]["name"] for c in items(cluster, "chaos")]
        assert "during-crash" in held, "held by its finalizer while the operator is away"
    finally:
        operator.start()

    cluster.kubectl(
        "wait",
        "--for=condition=Ready",
        "agentteam",
        "-l",
        "suite=crash",
        "--timeout=180s",
        timeout=200,
    )
    cluster.kubectl("wait", "--for=delete", "chaos/during-crash", "--timeout=60s", timeout=90)
    assert (
        cluster.kubectl("get", "networkpolicy", "chaos-during-crash", check=False).returncode != 0
    )
    faults = cluster.kubectl("get", "configmap", "crash-0-faults", "-o", "json", check=False)
    if faults.returncode == 0:
        assert not json.loads(faults.stdout).get("data"), "a chaos fault was left behind"

    teams = {t["metadata"]["uid"]: t["metadata"]["name"] for t in items(cluster, "agentteams")}
    assert "crash-1" not in teams.values()
    assert sum(name.startswith("crash-") for name in teams.values()) == TEAMS - 1

    def orphans() -> list[str]:
        found = []
        for kind in (
            "deployments",
            "serviceaccounts",
            "roles",
            "rolebindings",
            "configmaps",
            "networkpolicies",
            "services",
        ):
            for obj in items(cluster, kind, "-l", "hive.dev/team"):
                refs = obj["metadata"].get("ownerReferences", [])
                if not any(r["uid"] in teams for r in refs):
                    found.append(f"{kind}/{obj['metadata']['name']}")
        return found

    wait_for(lambda: not orphans(), 90, "garbage collection of crash-1's children")
    for name in [f"crash-{i}" for i in range(TEAMS) if i != 1]:
        deployments = items(cluster, "deployments", "-l", f"hive.dev/team={name},hive.dev/agent")
        assert len(deployments) == 3, "one per agent (the embedded model's is apart)"
    cluster.kubectl("delete", "agentteam", "-l", "suite=crash", "--wait=false")
