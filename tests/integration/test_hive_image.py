"""The Hive image, built here (hack/build-image.sh), run on the real node.

The archive is imported into the node's containerd and never pulled. One pod asks the image's
`hive` for its version under the image's own user; the other is the operator's own: the pod
template of the embedded-model Deployment that `plan_team` builds for a team whose model is
`embedded`, with the local image and the real node's toleration and node selector added. It runs
`hive model serve` as uid 65532 on a read-only root filesystem (the builder's /tmp emptyDir the
only writable path) and answers the OpenAI models endpoint on its pod IP.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from hive.dev.node import RealNode
from hive.reconcile.agentteam import MODEL_PORT, AgentPodSettings, TeamObserved, plan_team
from hive.reconcile.meta import Owner
from tests.nodepods import (
    NAMESPACE,
    TAINT_KEY,
    container,
    get_pod,
    start_pod,
    wait_pod,
)
from tests.support import Cluster

pytestmark = pytest.mark.integration

TEAM = "embedded"
MODEL_POD = "hive-model"
VERSION_POD = "hive-version"


def on_the_node(node: RealNode, spec: dict[str, Any]) -> dict[str, Any]:
    spec = dict(spec)
    spec["nodeSelector"] = {"kubernetes.io/hostname": node.name}
    spec["tolerations"] = [{"key": TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}]
    spec["terminationGracePeriodSeconds"] = 1
    return spec


def delete_pod(cluster: Cluster, name: str) -> None:
    cluster.kubectl(
        "delete", "pod", name, "-n", NAMESPACE, "--ignore-not-found", "--timeout=60s",
        check=False, timeout=90,
    )  # fmt: skip


def model_pod_manifest(node: RealNode, image: str) -> dict[str, Any]:
    """The operator's embedded-model pod: its Deployment's template as a bare pod."""
    owner = Owner("AgentTeam", TEAM, NAMESPACE, "uid-hive-image", generation=1)
    spec = {
        "goal": "answer",
        "model": {"provider": "embedded", "name": "smollm2-135m-instruct"},
        "agents": [{"name": "solo", "role": "junior"}],
    }
    pods = AgentPodSettings(image=image, image_pull_policy="Never")
    plan = plan_team(owner, spec, None, TeamObserved(), pods, dt.datetime.now(dt.UTC))
    found = [
        c
        for c in plan.children
        if c["kind"] == "Deployment" and c["metadata"]["name"].endswith("model")
    ]
    assert len(found) == 1, f"no embedded-model Deployment in the plan: {plan.status}"
    template = found[0]["spec"]["template"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": MODEL_POD,
            "namespace": NAMESPACE,
            "labels": template["metadata"]["labels"],
        },
        "spec": on_the_node(node, template["spec"]),
    }


def test_hive_answers_its_version_as_the_images_non_root_user(
    cluster: Cluster, real_node: RealNode, hive_image: str
) -> None:
    spec = on_the_node(
        real_node,
        {
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "restartPolicy": "Never",
            # no runAsUser: the kubelet refuses to start the image's user if it is root
            "securityContext": {"runAsNonRoot": True},
            "containers": [
                {
                    "name": "main",
                    "image": hive_image,
                    "imagePullPolicy": "Never",
                    "args": ["--version"],
                    "securityContext": {"readOnlyRootFilesystem": True},
                }
            ],
        },
    )
    manifest = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": VERSION_POD, "namespace": NAMESPACE},
        "spec": spec,
    }
    try:
        cluster.kubectl("create", "-f", "-", input=json.dumps(manifest))
        pod = wait_pod(
            cluster,
            VERSION_POD,
            lambda p: p.get("status", {}).get("phase") in ("Succeeded", "Failed"),
        )
        logs = cluster.kubectl("logs", VERSION_POD, "-n", NAMESPACE).stdout
        assert pod["status"]["phase"] == "Succeeded", (container(pod), logs)
        assert logs.strip() == f"hive, version {importlib.metadata.version('hive')}"
    finally:
        delete_pod(cluster, VERSION_POD)


@pytest.fixture(scope="module")
def model_pod(cluster: Cluster, real_node: RealNode, hive_image: str) -> Iterator[str]:
    try:
        seconds = start_pod(cluster, model_pod_manifest(real_node, hive_image))
        print(f"model pod create -> Running: {seconds:.2f}s")
        yield str(get_pod(cluster, MODEL_POD)["status"]["podIP"])
    finally:
        delete_pod(cluster, MODEL_POD)


def test_the_operators_model_pod_serves_the_embedded_model(
    cluster: Cluster, model_pod: str
) -> None:
    url = f"http://{model_pod}:{MODEL_PORT}/v1/models"
    started = time.monotonic()
    deadline = started + 120
    while True:
        try:
            response = httpx.get(url, timeout=2)
            if response.status_code == 200:
                break
        except httpx.TransportError:
            pass
        logs = cluster.kubectl("logs", MODEL_POD, "-n", NAMESPACE, check=False).stdout
        assert time.monotonic() < deadline, f"{url} did not answer in 120s; logs: {logs[-2000:]}"
        assert "running" in container(get_pod(cluster, MODEL_POD)).get("state", {}), logs[-2000:]
        time.sleep(0.2)
    print(f"\nmodel answered /v1/models {time.monotonic() - started:.1f}s after Running")
    models = [m["id"] for m in response.json()["data"]]
    assert len(models) == 1, models
    assert models == ["SmolLM2-135M-Instruct"], models
    # llama.cpp, as compiled on the host, runs the model in the image: four tokens of it
    completion = httpx.post(
        url.replace("/models", "/completions"),
        json={"prompt": "The capital of France is", "max_tokens": 4, "temperature": 0},
        timeout=60,
    )
    assert completion.status_code == 200, completion.text
    assert completion.json()["usage"]["completion_tokens"] >= 1, completion.json()
    wait_pod(cluster, MODEL_POD, lambda p: container(p).get("ready") is True, timeout_s=60)


def test_the_model_pod_runs_non_root_on_a_read_only_root(cluster: Cluster, model_pod: str) -> None:
    pod = get_pod(cluster, MODEL_POD)
    assert pod["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
    status = cluster.kubectl("exec", MODEL_POD, "-n", NAMESPACE, "--", "cat", "/proc/1/status")
    fields = dict(line.split(":", 1) for line in status.stdout.splitlines())
    assert fields["Uid"].split() == ["65532"] * 4
    assert int(fields["CapEff"], 16) == 0
    refused = cluster.kubectl(
        "exec", MODEL_POD, "-n", NAMESPACE, "--", "touch", "/opt/hive/probe", check=False
    )
    assert refused.returncode != 0
    assert "Read-only file system" in refused.stderr
    cluster.kubectl("exec", MODEL_POD, "-n", NAMESPACE, "--", "touch", "/tmp/probe")
