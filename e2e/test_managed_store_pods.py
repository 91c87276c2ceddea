"""A managed MemoryStore on the real node: the operator runs Redis itself and the store becomes
Ready with a real object count.

The backend's image is built here from the host's Debian redis-server (the same 7.0.15 the
tests' Redis is) and its shared libraries, from scratch with buildah, and imported into the
node (a few seconds; nothing is pulled). The claim binds to a hostPath PersistentVolume made
for it (the local cluster has no provisioner). The StatefulSet's pod runs on the real node,
hardened as the operator makes it (non-root, read-only root filesystem, no capabilities); the
operator probes it at its Service's cluster IP, through the node's kube-proxy, and counts the
memories stored there through that Service. Deleting the store lets the garbage collector take
the StatefulSet, the Service and the claim.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.nodepods import TAINT_KEY
from tests.support import Cluster

from e2e.conftest import OperatorProcess, wait_for
from e2e.test_real_pod_faults import apply
from hive.api.memorystore import MemoryStoreSpec
from hive.dev.node import RealNode
from hive.runtime.memory.embeddings import LocalOnnxEmbedder
from hive.runtime.memory.semantic import SemanticMemory, open_backend

pytestmark = pytest.mark.e2e

STORE = "managed-notes"
NS = "default"
REDIS_USER = 999  # the user the operator runs Redis as
LIBRARY_DIRS = ("/lib", "/lib64", "/usr/lib")


def _libraries(binary: str) -> list[str]:
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    found = []
    for line in out.splitlines():
        path = line.split("=>")[-1].split("(")[0].strip()
        if path.startswith(LIBRARY_DIRS):
            found.append(path)
    return found


@pytest.fixture(scope="module")
def redis_image(real_node: RealNode, tmp_path_factory: pytest.TempPathFactory) -> str:
    """localhost/hive-redis:<version>: the host's redis-server and its libraries, no shell."""
    binary = shutil.which("redis-server")
    assert binary, "redis-server is missing: run hack/testbin.sh"
    version = (
        subprocess.run([binary, "--version"], capture_output=True, text=True, check=True)
        .stdout.split("v=")[1]
        .split()[0]
    )
    name = f"localhost/hive-redis:{version}"
    work = tmp_path_factory.mktemp("redis-image")
    tree = work / "tree"
    for path in [binary, *_libraries(binary)]:
        target = tree / os.path.realpath(path).lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(os.path.realpath(path), target)
        link = tree / path.lstrip("/")
        if link != target and not link.exists():
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(os.path.realpath(path))
    buildah = ["buildah", "--storage-driver", "vfs", "--root", str(work / "root")]
    buildah += ["--runroot", str(work / "run")]

    def run(*args: str) -> str:
        return subprocess.run(
            [*buildah, *args], capture_output=True, text=True, check=True, timeout=300
        ).stdout.strip()

    container = run("from", "--quiet", "scratch")
    for top in sorted(tree.iterdir()):
        run("copy", "--quiet", container, str(top), f"/{top.name}")
    run("config", "--env", "PATH=/usr/bin:/bin", "--entrypoint", '["redis-server"]', container)
    archive = work / "redis.oci.tar"
    run("commit", "--quiet", "--rm", container, f"oci-archive:{archive}:{name}")
    real_node.import_image(archive)
    return name


@pytest.fixture
def volume(cluster: Cluster, real_node: RealNode, tmp_path: Path) -> Iterator[str]:
    """A hostPath PersistentVolume on the real node, bound ahead to the store's claim."""
    folder = tmp_path / "redis-data"
    folder.mkdir()
    os.chown(folder, REDIS_USER, REDIS_USER)
    name = f"{STORE}-data"
    apply(
        cluster,
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": name},
            "spec": {
                "capacity": {"storage": "1Gi"},
                "accessModes": ["ReadWriteOnce"],
                "persistentVolumeReclaimPolicy": "Retain",
                "hostPath": {"path": str(folder), "type": "Directory"},
                "claimRef": {"namespace": NS, "name": f"data-hive-store-{STORE}-0"},
                "nodeAffinity": {
                    "required": {
                        "nodeSelectorTerms": [
                            {
                                "matchExpressions": [
                                    {
                                        "key": "kubernetes.io/hostname",
                                        "operator": "In",
                                        "values": [real_node.name],
                                    }
                                ]
                            }
                        ]
                    }
                },
            },
        },
    )
    try:
        yield name
    finally:
        cluster.kubectl("delete", "pv", name, "--ignore-not-found", "--wait=false")


def get(cluster: Cluster, kind: str, name: str) -> dict[str, Any] | None:
    got = cluster.kubectl("get", kind, name, "-n", NS, "-o", "json", check=False)
    if got.returncode != 0:
        assert "NotFound" in got.stderr, got.stderr
        return None
    found: dict[str, Any] = json.loads(got.stdout)
    return found


def store_status(cluster: Cluster) -> dict[str, Any]:
    found = get(cluster, "memorystore", STORE) or {}
    status: dict[str, Any] = found.get("status") or {}
    return status


async def remember(endpoint: str, facts: list[str]) -> None:
    spec = MemoryStoreSpec.model_validate(
        {"backend": "redis", "connection": {"endpoint": endpoint}, "collection": "notes"}
    )
    memory = SemanticMemory(STORE, spec, open_backend(STORE, spec), LocalOnnxEmbedder())
    try:
        for fact in facts:
            await memory.store(fact)
    finally:
        await memory.close()


def test_a_managed_redis_runs_on_the_node_and_the_store_counts_its_memories(
    cluster: Cluster,
    operator: OperatorProcess,
    real_node: RealNode,
    redis_image: str,
    volume: str,
) -> None:
    scheduling = {
        "nodeSelector": {"kubernetes.io/hostname": real_node.name},
        "tolerations": [{"key": TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}],
    }
    manifest = {
        "apiVersion": "hive.dev/v1alpha1",
        "kind": "MemoryStore",
        "metadata": {"name": STORE, "namespace": NS},
        "spec": {
            "backend": "redis",
            "managed": True,
            "collection": "notes",
            "server": {
                "image": redis_image,
                "scheduling": scheduling,
                "resources": {"cpu": "250m", "memory": "128Mi"},
            },
        },
    }
    apply(cluster, manifest)
    try:

        def ready() -> dict[str, Any] | None:
            status = store_status(cluster)
            return status if status.get("ready") else None

        status = wait_for(ready, 120, "the managed Redis to be Ready")
        assert status is not None
        conditions = {c["type"]: c for c in status["conditions"]}
        assert conditions["BackendReady"]["reason"] == "ReplicaReady"
        assert status["backendVersion"] == redis_image.rsplit(":", 1)[1]
        assert status["endpoint"] == f"redis://hive-store-{STORE}.{NS}.svc:6379/0"
        service = get(cluster, "service", f"hive-store-{STORE}")
        assert service is not None
        address = f"redis://{service['spec']['clusterIP']}:6379/0"  # as the operator probes
        facts = ["The launch window opens at dawn", "The rover's battery lasts nine hours"]
        asyncio.run(remember(address, facts))
        # a label wakes the store's reconcile now (the resync would, later)
        cluster.kubectl("label", "memorystore", STORE, "-n", NS, "hive.dev/counted=yes")
        wait_for(
            lambda: store_status(cluster).get("objectCount") == len(facts),
            60,
            "the store to count the memories",
        )
        pod = get(cluster, "pod", f"hive-store-{STORE}-0")
        assert pod is not None
        assert pod["spec"]["nodeName"] == real_node.name
        box = pod["spec"]["containers"][0]["securityContext"]
        assert box["readOnlyRootFilesystem"] is True
    finally:
        cluster.kubectl("delete", "memorystore", STORE, "-n", NS, "--ignore-not-found")
    wait_for(
        lambda: (
            get(cluster, "statefulset", f"hive-store-{STORE}") is None
            and get(cluster, "service", f"hive-store-{STORE}") is None
            and get(cluster, "pvc", f"data-hive-store-{STORE}-0") is None
        ),
        120,
        "the garbage collector to take the StatefulSet, Service and claim",
    )
