"""Pods on the real node for tests: manifests that land there, and waiting on their state."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hive.dev.node import RealNode
from tests.support import Cluster

NAMESPACE = "realnode"
BUSYBOX = "localhost/hive-busybox:3"
TAINT_KEY = "hive.dev/real-node"


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


def import_built_image(node: RealNode, name: str, build_script: Path) -> str:
    """Import the image `build_script` built (images/<name>.oci.tar) into the node; its name.

    Fails, naming the script, when the archive is older than what the script would build now."""
    archive = node.image_archive(name)
    image = archive.with_name(f"{name}.image").read_text().strip()
    wanted = subprocess.run(
        ["bash", str(build_script), "--print"], capture_output=True, text=True, check=True
    ).stdout.split()[-1]
    assert image == wanted, f"{archive} holds {image}, not {wanted}: run {build_script}"
    started = time.monotonic()
    node.import_image(archive)
    print(f"\n{name} image {image} imported in {time.monotonic() - started:.1f}s")
    return image


def connects_from(
    cluster: Cluster, pod: str, host: str, port: int, namespace: str = "default"
) -> str:
    """Can `pod` (an image with python3) open a TCP connection to host:port? "open" when it
    can, else "closed" and why."""
    code = (
        "import socket\n"
        "try:\n"
        f"    socket.create_connection(('{host}', {port}), timeout=3).close(); print('open')\n"
        "except OSError as exc:\n"
        "    print('closed', exc)\n"
    )
    argv = ("exec", pod, "-n", namespace, "--", "python3", "-c", code)
    return str(cluster.kubectl(*argv, timeout=60).stdout.strip())
