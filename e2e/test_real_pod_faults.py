"""What a team says when its pods cannot run on the real node, and how it recovers.

An image the node does not have, a RuntimeClass whose handler the node lacks, and a node that
goes NotReady (its kubelet stopped): each makes the team Ready=False with the reason in the
pod's or the node's own words, the operator keeps running, and the team is Ready again by
itself once the cause is gone.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from tests.scripted_model import scripted_model
from tests.support import Cluster

from e2e.conftest import OperatorProcess, wait_for
from e2e.test_agent_pods import real_team
from hive.dev.node import RealNode

pytestmark = pytest.mark.e2e


def solo_team(name: str, node: RealNode, endpoint: str, **agent: Any) -> dict[str, Any]:
    return real_team(name, node, endpoint, "Stay up", [{"name": "solo", "role": "junior", **agent}])


def ready_condition(cluster: Cluster, team: str) -> dict[str, Any]:
    obj = json.loads(cluster.kubectl("get", "agentteam", team, "-o", "json").stdout)
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond["type"] == "Ready":
            return dict(cond)
    return {}


def wait_ready(cluster: Cluster, team: str, status: str, timeout_s: float) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        cond = ready_condition(cluster, team)
        return cond if cond.get("status") == status else None

    return wait_for(reached, timeout_s, f"{team} Ready={status}")


def apply(cluster: Cluster, obj: dict[str, Any]) -> None:
    cluster.kubectl("apply", "-f", "-", input=json.dumps(obj))


def test_a_missing_image_is_reported_and_the_team_recovers_once_it_is_there(
    cluster: Cluster, operator: OperatorProcess, real_node: RealNode, hive_image: str
) -> None:
    with scripted_model([], host=real_node.gateway()) as model:
        real_node.ctr("images", "rm", hive_image)
        try:
            apply(cluster, solo_team("imageless", real_node, model.url))
            cond = wait_ready(cluster, "imageless", "False", 120)
            wait_for(
                lambda: ready_condition(cluster, "imageless").get("reason") == "PodsFailing",
                120,
                "reason PodsFailing",
            )
            cond = ready_condition(cluster, "imageless")
            assert "agent solo: container agent: ErrImageNeverPull" in cond["message"], cond
            assert hive_image in cond["message"]
        finally:
            real_node.import_image(real_node.image_archive("hive"))
        try:
            # The kubelet tries again on its own; nothing is deleted or restarted.
            cond = wait_ready(cluster, "imageless", "True", 240)
            assert cond["reason"] == "AllAgentsAvailable"
        finally:
            cluster.kubectl("delete", "agentteam", "imageless", "--wait=false")


def test_a_runtime_handler_the_node_lacks_is_reported_in_the_runtimes_words(
    cluster: Cluster, operator: OperatorProcess, real_node: RealNode
) -> None:
    apply(
        cluster,
        {
            "apiVersion": "node.k8s.io/v1",
            "kind": "RuntimeClass",
            "metadata": {"name": "kata"},
            "handler": "kata-qemu",
        },
    )
    policy = {
        "apiVersion": "hive.dev/v1alpha1",
        "kind": "SandboxPolicy",
        "metadata": {"name": "kata", "namespace": "default"},
        "spec": {"runtimeClassName": "kata", "network": {"mode": "none"}},
    }
    apply(cluster, policy)
    with scripted_model([], host=real_node.gateway()) as model:
        team = solo_team("handlerless", real_node, model.url, sandboxPolicyRef={"name": "kata"})
        apply(cluster, team)
        try:

            def reported() -> dict[str, Any] | None:
                cond = ready_condition(cluster, "handlerless")
                return cond if "cannot start" in cond.get("message", "") else None

            cond = wait_for(reported, 120, "the runtime's words in the team's condition")
            assert cond["status"] == "False"
            assert cond["reason"] == "PodsFailing"
            assert "FailedCreatePodSandBox" in cond["message"]
            assert "kata-qemu" in cond["message"]
            # The fix: a RuntimeClass the node has. The pods are made again, and run.
            policy["spec"]["runtimeClassName"] = "gvisor"
            apply(cluster, policy)
            cond = wait_ready(cluster, "handlerless", "True", 180)
            assert cond["reason"] == "AllAgentsAvailable"
        finally:
            cluster.kubectl("delete", "agentteam", "handlerless", "--wait=false")
            cluster.kubectl("delete", "sandboxpolicy", "kata", "--wait=false")
            cluster.kubectl("delete", "runtimeclass", "kata")


def test_a_node_gone_not_ready_is_reported_and_the_team_recovers_with_it(
    cluster: Cluster, operator: OperatorProcess, real_node: RealNode
) -> None:
    with scripted_model([], host=real_node.gateway()) as model:
        apply(cluster, solo_team("stranded", real_node, model.url))
        try:
            wait_ready(cluster, "stranded", "True", 180)
            real_node.processes.stop("kubelet")
            try:
                # The node controller marks the node NotReady once its lease has lapsed
                # (node-monitor-grace-period), then the pods on it not Ready.
                def reported() -> dict[str, Any] | None:
                    cond = ready_condition(cluster, "stranded")
                    return cond if cond.get("reason") == "NodeNotReady" else None

                cond = wait_for(reported, 180, "reason NodeNotReady")
                assert cond["status"] == "False"
                assert f"agent solo: node {real_node.name} is NotReady" in cond["message"]
                assert operator.table.get("operator").alive()  # type: ignore[union-attr]
            finally:
                real_node.restart_kubelet()
            cond = wait_ready(cluster, "stranded", "True", 180)
            assert cond["reason"] == "AllAgentsAvailable"
        finally:
            cluster.kubectl("delete", "agentteam", "stranded", "--wait=false")
