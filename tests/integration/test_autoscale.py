"""spec.agents[].autoscale on the local control plane, with the operator running: the agent's
HorizontalPodAutoscaler is created with the spec, follows its changes, and goes when the
field does (the Deployment's replicas coming back to the spec's)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hive.kube.resources import apply_crds
from tests.support import Cluster

pytestmark = pytest.mark.integration


def wait_until(check: Callable[[], Any], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"not within {timeout_s}s: {what}"
        time.sleep(0.5)


def test_the_operator_keeps_an_agents_hpa_with_its_spec(cluster: Cluster, tmp_path: Path) -> None:
    from tests.operator_process import OperatorUnderTest

    apply_crds(cluster.client)
    namespace = f"autoscale-{int(time.time() * 1000) % 100000}"
    cluster.kubectl("create", "namespace", namespace)
    operator = OperatorUnderTest(
        cluster.plane, tmp_path / "operator.log", {"HIVE_OPERATOR__NAMESPACE": namespace}
    )
    operator.start()

    def get(kind: str, name: str) -> dict[str, Any] | None:
        got = cluster.kubectl("get", kind, name, "-n", namespace, "-o", "json", check=False)
        return json.loads(got.stdout) if got.returncode == 0 else None

    def patch(body: Any, kind: str = "merge") -> None:
        cluster.kubectl(
            "patch", "agentteam", "hive", "-n", namespace, "--type", kind, "-p", json.dumps(body)
        )

    try:
        team = {
            "apiVersion": "hive.dev/v1alpha1",
            "kind": "AgentTeam",
            "metadata": {"name": "hive", "namespace": namespace},
            "spec": {
                "goal": "count",
                "model": {"name": "m", "endpoint": "http://m:8000/v1"},
                "agents": [
                    {"name": "lead", "role": "senior", "subordinates": ["worker"]},
                    {
                        "name": "worker",
                        "role": "junior",
                        "replicas": 2,
                        "autoscale": {"maxReplicas": 8, "targetQueueDepth": 3},
                    },
                ],
            },
        }
        cluster.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(team), timeout=60)
        hpa = wait_until(lambda: get("hpa", "hive-worker"), 90, "the worker's HPA")
        assert hpa["spec"]["scaleTargetRef"]["name"] == "hive-worker"
        assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 8)
        metric = hpa["spec"]["metrics"][0]["external"]
        assert metric["metric"]["selector"]["matchLabels"] == {"team": "hive", "agent": "worker"}
        assert metric["target"]["averageValue"] == "3"
        assert get("hpa", "hive-lead") is None

        workers: list[dict[str, Any]] = [
            {"name": "lead", "role": "senior", "subordinates": ["worker"]}
        ]
        workers.append(
            {
                "name": "worker",
                "role": "junior",
                "replicas": 2,
                "autoscale": {"minReplicas": 2, "maxReplicas": 5, "targetQueueDepth": 4},
            }
        )
        patch({"spec": {"agents": workers}})

        def updated() -> bool:
            now = get("hpa", "hive-worker") or {"spec": {}}
            spec = now["spec"]
            return (spec.get("minReplicas"), spec.get("maxReplicas")) == (2, 5) and spec["metrics"][
                0
            ]["external"]["target"]["averageValue"] == "4"

        wait_until(updated, 90, "the HPA to follow the spec")

        workers[1].pop("autoscale")
        patch({"spec": {"agents": workers}})
        wait_until(lambda: get("hpa", "hive-worker") is None, 90, "the HPA to go")
        wait_until(
            lambda: (
                ((get("deployment", "hive-worker") or {}).get("spec") or {}).get("replicas") == 2
            ),
            90,
            "the Deployment's replicas back from the spec",
        )
    finally:
        operator.stop()
        cluster.kubectl("delete", "namespace", namespace, "--wait=false")
