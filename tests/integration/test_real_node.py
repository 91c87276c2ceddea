"""One real node (containerd + kubelet) on the test control plane: pods really run.

The node registers with a taint that only these tests tolerate, so the other tests' pods keep
going to the KWOK nodes; these pods also select the node by its host name. Images are built
locally by hack/node.sh and imported, never pulled.
"""

from __future__ import annotations

import json
import os
import signal
from typing import Any

import pytest

from hive.dev.node import RealNode
from tests.nodepods import (
    NAMESPACE,
    container,
    get_pod,
    pod_manifest,
    running,
    start_pod,
    wait_pod,
)
from tests.support import Cluster

pytestmark = pytest.mark.integration


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


IN_CLUSTER_CLIENT = """
import json, socket, ssl, urllib.request
sa = "/var/run/secrets/kubernetes.io/serviceaccount"
print(socket.gethostbyname("kubernetes.default.svc.cluster.local"))
context = ssl.create_default_context(cafile=f"{sa}/ca.crt")
request = urllib.request.Request(
    "https://kubernetes.default.svc/api",
    headers={"Authorization": "Bearer " + open(f"{sa}/token").read()},
)
print(json.dumps(json.load(urllib.request.urlopen(request, context=context, timeout=20))))
"""


def test_pods_resolve_service_names_and_reach_the_api_server_through_its_service(
    cluster: Cluster, real_node: RealNode, hive_image: str
) -> None:
    """CoreDNS (the kube-dns pod) answers for Services and kube-proxy carries the `kubernetes`
    Service's address to the API server, whose certificate the pod checks: what an in-cluster
    client (the operator, an agent) needs."""
    manifest = pod_manifest(real_node, "incluster", "", image=hive_image)
    manifest["spec"]["automountServiceAccountToken"] = True
    manifest["spec"]["restartPolicy"] = "Never"
    manifest["spec"]["containers"][0]["command"] = ["python3", "-c", IN_CLUSTER_CLIENT]
    cluster.kubectl("create", "-f", "-", input=json.dumps(manifest))
    pod = wait_pod(
        cluster,
        "incluster",
        lambda p: p.get("status", {}).get("phase") in ("Succeeded", "Failed"),
        timeout_s=90,
    )
    logs = cluster.kubectl("logs", "incluster", "-n", NAMESPACE).stdout
    assert pod["status"]["phase"] == "Succeeded", (container(pod), logs)
    address, api = logs.strip().splitlines()
    kubernetes_ip = cluster.kubectl(
        "get", "service", "kubernetes", "-n", "default", "-o", "jsonpath={.spec.clusterIP}"
    ).stdout
    assert address == kubernetes_ip
    assert json.loads(api)["kind"] == "APIVersions"
    assert pod["spec"]["dnsPolicy"] == "ClusterFirst"
