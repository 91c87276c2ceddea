"""Pod start latency on the real node: create → Running for runc and runsc (gVisor) pods.

    python bench/node_pods.py [--pods 5]

Starts a control plane and a real node (containerd + kubelet) in a temporary folder, imports the
busybox image built by ``make testbin``, then creates ``--pods`` pods one after the other for
each runtime and times each from the create request to the pod reporting its container running.
Needs root and ``make testbin``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.nodepods import BUSYBOX
from tests.support import dev_settings

from hive.dev.controlplane import ControlPlane
from hive.dev.node import RealNode


def kubectl(plane: ControlPlane, *args: str, stdin: str | None = None) -> str:
    env = {**os.environ, "KUBECONFIG": str(plane.kubeconfig)}
    done = subprocess.run(
        [str(plane.binary("kubectl")), *args],
        input=stdin,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout


def pod(node: RealNode, name: str, runtime_class: str | None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "nodeSelector": {"kubernetes.io/hostname": node.name},
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": 1,
        "containers": [
            {
                "name": "main",
                "image": BUSYBOX,
                "imagePullPolicy": "Never",
                "command": ["/bin/sleep", "3600"],
            }
        ],
    }
    if runtime_class:
        spec["runtimeClassName"] = runtime_class
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def time_pod(plane: ControlPlane, manifest: dict[str, Any], timeout_s: float = 120) -> float:
    name = manifest["metadata"]["name"]
    started = time.perf_counter()
    kubectl(plane, "create", "-f", "-", stdin=json.dumps(manifest))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = json.loads(kubectl(plane, "get", "pod", name, "-o", "json"))
        statuses = got.get("status", {}).get("containerStatuses") or [{}]
        if "running" in statuses[0].get("state", {}):
            return time.perf_counter() - started
        time.sleep(0.05)
    raise SystemExit(f"pod {name} not running after {timeout_s:.0f}s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pods", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        plane = ControlPlane(dev_settings(Path(folder), kwok_nodes=0))
        node = RealNode(plane)
        try:
            plane.up()
            up = node.up()
            print(f"real node {up.name} Ready in {up.seconds:.1f}s", flush=True)
            node.import_image(node.image_archive("busybox"))
            # Pods are refused until the controller manager has made the namespace's account.
            kubectl(plane, "wait", "--for=create", "serviceaccount/default", "--timeout=60s")
            figures: dict[str, list[float]] = {}
            for runtime in ("runc", "gvisor"):
                for i in range(args.pods):
                    name = f"{runtime}-{i}"
                    manifest = pod(node, name, None if runtime == "runc" else runtime)
                    seconds = time_pod(plane, manifest)
                    figures.setdefault(runtime, []).append(seconds)
                    print(f"{name}: create -> Running {seconds:.2f}s", flush=True)
                    kubectl(plane, "delete", "pod", name, "--wait=true")
            for runtime, values in figures.items():
                print(
                    f"{runtime:7s} create -> Running: median {statistics.median(values):.2f}s, "
                    f"min {min(values):.2f}s, max {max(values):.2f}s over {len(values)} pods"
                )
        finally:
            plane.down(purge=True)


if __name__ == "__main__":
    main()
