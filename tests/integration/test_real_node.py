"""One real node (containerd + kubelet) on the test control plane: pods really run.

The node registers with a taint that only these tests tolerate, so the other tests' pods keep
going to the KWOK nodes; these pods also select the node by its host name. Images are built
locally by hack/node.sh and imported, never pulled.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from hive.dev.node import RealNode
from hive.settings import NodeSettings
from tests.support import Cluster, free_port

pytestmark = pytest.mark.integration

NAMESPACE = "realnode"
BUSYBOX = "localhost/hive-busybox:1"
TAINT_KEY = "hive.dev/real-node"


@pytest.fixture(scope="session")
def real_node(cluster: Cluster) -> Iterator[RealNode]:
    settings = NodeSettings(
        kubelet_port=free_port(),
        kubelet_healthz_port=free_port(),
        taints=[f"{TAINT_KEY}=tests:NoSchedule"],
    )
    node = RealNode(cluster.plane, settings)
    try:
        result = node.up()
        print(f"\nreal node {result.name} Ready in {result.seconds:.1f}s")
        node.import_image(node.image_archive("busybox"))
        cluster.kubectl("create", "namespace", NAMESPACE)
        # Pods are refused until the controller manager has made the namespace's account.
        cluster.kubectl(
            "wait", "--for=create", "serviceaccount/default", "-n", NAMESPACE, "--timeout=60s"
        )
        yield node
    finally:
        node.down()


def pod_manifest(
    node: RealNode,
    name: str,
    script: str,
    *,
    image: str = BUSYBOX,
    runtime_class: str | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "nodeSelector": {"kubernetes.io/hostname": node.name},
        "tolerations": [{"key": TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}],
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": 1,
        "containers": [
            {
                "name": "main",
                "image": image,
                "imagePullPolicy": "Never",
                "command": ["/bin/sh", "-c", script],
            }
        ],
    }
    if runtime_class:
        spec["runtimeClassName"] = runtime_class
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": spec,
    }


def get_pod(cluster: Cluster, name: str) -> dict[str, Any]:
    out = cluster.kubectl("get", "pod", name, "-n", NAMESPACE, "-o", "json").stdout
    return dict(json.loads(out))


def wait_pod(
    cluster: Cluster, name: str, done: Callable[[dict[str, Any]], bool], timeout_s: float = 120
) -> dict[str, Any]:
    """Poll the pod until `done(pod)`; fail with its status after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    pod = get_pod(cluster, name)
    while not done(pod):
        if time.monotonic() > deadline:
            status = json.dumps(pod.get("status", {}), indent=1)[-1500:]
            pytest.fail(f"pod {name}: condition not met in {timeout_s:.0f}s; status: {status}")
        time.sleep(0.1)
        pod = get_pod(cluster, name)
    return pod


def container(pod: dict[str, Any]) -> dict[str, Any]:
    statuses = pod.get("status", {}).get("containerStatuses") or [{}]
    return dict(statuses[0])


def running(pod: dict[str, Any]) -> bool:
    return pod.get("status", {}).get("phase") == "Running" and "running" in container(pod).get(
        "state", {}
    )


def start_pod(cluster: Cluster, manifest: dict[str, Any]) -> float:
    """Create the pod and wait until it runs; returns create → Running in seconds."""
    started = time.monotonic()
    cluster.kubectl("create", "-f", "-", input=json.dumps(manifest))
    wait_pod(cluster, manifest["metadata"]["name"], running)
    return time.monotonic() - started


def test_a_runc_pod_runs_a_local_image_and_its_logs_are_read(
    cluster: Cluster, real_node: RealNode
) -> None:
    manifest = pod_manifest(real_node, "hello", "echo hello from runc; exec sleep 3600")
    seconds = start_pod(cluster, manifest)
    print(f"\nrunc pod create -> Running: {seconds:.2f}s")
    pod = get_pod(cluster, "hello")
    assert pod["spec"]["nodeName"] == real_node.name
    logs = cluster.kubectl("logs", "hello", "-n", NAMESPACE).stdout
    assert "hello from runc" in logs
    exec_out = cluster.kubectl("exec", "hello", "-n", NAMESPACE, "--", "cat", "/proc/1/cmdline")
    assert "sleep" in exec_out.stdout


def test_a_gvisor_pod_runs_under_runsc(cluster: Cluster, real_node: RealNode) -> None:
    manifest = pod_manifest(
        real_node, "sandboxed", "dmesg; exec sleep 3600", runtime_class="gvisor"
    )
    seconds = start_pod(cluster, manifest)
    print(f"\nrunsc pod create -> Running: {seconds:.2f}s")
    logs = cluster.kubectl("logs", "sandboxed", "-n", NAMESPACE).stdout
    assert "gVisor" in logs, logs
    assert "gVisor" in cluster.kubectl("exec", "sandboxed", "-n", NAMESPACE, "--", "dmesg").stdout


def test_a_missing_image_is_reported_not_pulled(cluster: Cluster, real_node: RealNode) -> None:
    manifest = pod_manifest(real_node, "missing", "true", image="localhost/hive-missing:0")
    cluster.kubectl("create", "-f", "-", input=json.dumps(manifest))

    def refused(pod: dict[str, Any]) -> bool:
        reason = container(pod).get("state", {}).get("waiting", {}).get("reason")
        return reason in ("ErrImageNeverPull", "ImagePullBackOff")

    pod = wait_pod(cluster, "missing", refused, timeout_s=60)
    waiting = container(pod)["state"]["waiting"]
    assert "localhost/hive-missing:0" in waiting.get("message", ""), waiting


def test_a_killed_container_is_restarted(cluster: Cluster, real_node: RealNode) -> None:
    start_pod(cluster, pod_manifest(real_node, "phoenix", "exec sleep 3600"))
    before = container(get_pod(cluster, "phoenix"))
    os.kill(real_node.container_pid(before["containerID"]), signal.SIGKILL)

    def restarted(pod: dict[str, Any]) -> bool:
        return container(pod).get("restartCount", 0) >= 1 and running(pod)

    after = container(wait_pod(cluster, "phoenix", restarted, timeout_s=90))
    assert after["containerID"] != before["containerID"]
    assert after["lastState"]["terminated"]["exitCode"] == 137
