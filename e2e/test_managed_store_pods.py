"""Managed MemoryStores on the real node: the operator runs Redis, and Weaviate, itself and the
store becomes Ready with a real object count.

The backends' images are built here from scratch with buildah and imported into the node
(nothing is pulled): Redis from the host's Debian redis-server (the same 7.0.15 the tests' Redis
is) and its shared libraries; Weaviate from the static server make testbin built (1.35.2), as
/bin/weaviate, the official image's entrypoint. The claim binds to a hostPath PersistentVolume
made for it (the local cluster has no provisioner). The StatefulSet's pod runs on the real node,
hardened as the operator makes it (non-root, read-only root filesystem, no capabilities); the
operator probes it at its Service's cluster IP, through the node's kube-proxy, and counts the
memories stored there through that Service. A store with a secretRef gets a Redis that asks
for that password (and the operator gives it). Deleting the store lets the garbage collector
take the StatefulSet, the Service and the claim.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from tests.nodepods import TAINT_KEY
from tests.support import Cluster

from e2e.conftest import OperatorProcess, wait_for
from e2e.test_real_pod_faults import apply
from hive.api.memorystore import MemoryStoreSpec
from hive.dev.node import RealNode
from hive.errors import HiveError
from hive.runtime.memory.embeddings import LocalOnnxEmbedder
from hive.runtime.memory.semantic import SemanticMemory, open_backend

pytestmark = pytest.mark.e2e

NS = "default"
LIBRARY_DIRS = ("/lib", "/lib64", "/usr/lib")


def _libraries(binary: str) -> list[str]:
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    found = []
    for line in out.splitlines():
        path = line.split("=>")[-1].split("(")[0].strip()
        if path.startswith(LIBRARY_DIRS):
            found.append(path)
    return found


def host_files(tree: Path, paths: list[str]) -> None:
    """Copy the host's `paths` into `tree` at the same places (a symbolic link stays a link
    to its copied target)."""
    for path in paths:
        target = tree / os.path.realpath(path).lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(os.path.realpath(path), target)
        link = tree / path.lstrip("/")
        if link != target and not link.exists():
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(os.path.realpath(path))


def scratch_image(node: RealNode, work: Path, tree: Path, name: str, entrypoint: str) -> str:
    """Image `name` from scratch holding `tree`, built with buildah, imported into the node."""
    buildah = ["buildah", "--storage-driver", "vfs", "--root", str(work / "root")]
    buildah += ["--runroot", str(work / "run")]

    def run(*args: str) -> str:
        return subprocess.run(
            [*buildah, *args], capture_output=True, text=True, check=True, timeout=300
        ).stdout.strip()

    container = run("from", "--quiet", "scratch")
    for top in sorted(tree.iterdir()):
        run("copy", "--quiet", container, str(top), f"/{top.name}")
    run("config", "--env", "PATH=/usr/bin:/bin", "--entrypoint", f'["{entrypoint}"]', container)
    archive = work / "image.oci.tar"
    run("commit", "--quiet", "--rm", container, f"oci-archive:{archive}:{name}")
    node.import_image(archive)
    return name


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
    work = tmp_path_factory.mktemp("redis-image")
    host_files(work / "tree", [binary, *_libraries(binary)])
    name = f"localhost/hive-redis:{version}"
    return scratch_image(real_node, work, work / "tree", name, "redis-server")


@pytest.fixture(scope="module")
def weaviate_image(
    cluster: Cluster, real_node: RealNode, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """localhost/hive-weaviate:<version>: the Weaviate server make testbin built (static), as
    /bin/weaviate, the official image's entrypoint."""
    binary = cluster.plane.settings.testbin_dir / "weaviate-server"
    assert binary.exists(), "weaviate-server is missing: run hack/testbin.sh"
    version = os.path.realpath(binary).rsplit("-v", 1)[1]
    work = tmp_path_factory.mktemp("weaviate-image")
    (work / "tree" / "bin").mkdir(parents=True)
    shutil.copy2(os.path.realpath(binary), work / "tree" / "bin" / "weaviate")
    name = f"localhost/hive-weaviate:{version}"
    return scratch_image(real_node, work, work / "tree", name, "/bin/weaviate")


@dataclass(frozen=True)
class Backend:
    name: str
    user: int  # the user the operator runs it as: its volume's owner
    collection: str
    port: int
    password: str | None = None  # in the store's Secret: the operator configures the backend

    @property
    def store(self) -> str:
        return f"managed-{self.name}" + ("-locked" if self.password else "")

    def url(self, host: str) -> str:
        scheme, path = ("redis", "/0") if self.name == "redis" else ("http", "")
        return f"{scheme}://{host}:{self.port}{path}"


BACKENDS = [
    Backend("redis", 999, "notes", 6379),
    Backend("redis", 999, "notes", 6379, password="e2e-redis-password"),
    Backend("weaviate", 1000, "ManagedNotes", 8080),
]


def hostpath_volume(cluster: Cluster, node: RealNode, folder: Path, backend: Backend) -> str:
    """A hostPath PersistentVolume on the real node, bound ahead to the store's claim."""
    folder.mkdir()
    os.chown(folder, backend.user, backend.user)
    name = f"{backend.store}-data"
    on_the_node = {"key": "kubernetes.io/hostname", "operator": "In", "values": [node.name]}
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
                "claimRef": {"namespace": NS, "name": f"data-hive-store-{backend.store}-0"},
                "nodeAffinity": {
                    "required": {"nodeSelectorTerms": [{"matchExpressions": [on_the_node]}]}
                },
            },
        },
    )
    return name


def get(cluster: Cluster, kind: str, name: str) -> dict[str, Any] | None:
    got = cluster.kubectl("get", kind, name, "-n", NS, "-o", "json", check=False)
    if got.returncode != 0:
        assert "NotFound" in got.stderr, got.stderr
        return None
    found: dict[str, Any] = json.loads(got.stdout)
    return found


def store_status(cluster: Cluster, store: str) -> dict[str, Any]:
    found = get(cluster, "memorystore", store) or {}
    status: dict[str, Any] = found.get("status") or {}
    return status


async def remember(backend: Backend, endpoint: str, facts: list[str]) -> None:
    spec = MemoryStoreSpec.model_validate(
        {
            "backend": backend.name,
            "connection": {"endpoint": endpoint},
            "collection": backend.collection,
        }
    )
    opened = open_backend(backend.store, spec, secret=backend.password)
    memory = SemanticMemory(backend.store, spec, opened, LocalOnnxEmbedder())
    try:
        for fact in facts:
            await memory.store(fact)
    finally:
        await memory.close()


@pytest.mark.parametrize("backend", BACKENDS, ids=lambda b: b.store)
def test_a_managed_backend_runs_on_the_node_and_the_store_counts_its_memories(
    cluster: Cluster,
    operator: OperatorProcess,
    real_node: RealNode,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    backend: Backend,
) -> None:
    image: str = request.getfixturevalue(f"{backend.name}_image")
    volume = hostpath_volume(cluster, real_node, tmp_path / "data", backend)
    store = backend.store
    scheduling = {
        "nodeSelector": {"kubernetes.io/hostname": real_node.name},
        "tolerations": [{"key": TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}],
    }
    manifest = {
        "apiVersion": "hive.dev/v1alpha1",
        "kind": "MemoryStore",
        "metadata": {"name": store, "namespace": NS},
        "spec": {
            "backend": backend.name,
            "managed": True,
            "collection": backend.collection,
            "server": {
                "image": image,
                "scheduling": scheduling,
                "resources": {"cpu": "500m", "memory": "1Gi"},
            },
        },
    }
    if backend.password:
        secret = f"{store}-credentials"
        cluster.kubectl(
            "create", "secret", "generic", secret, "-n", NS,
            f"--from-literal=password={backend.password}",
        )  # fmt: skip
        manifest["spec"]["connection"] = {"secretRef": {"name": secret, "key": "password"}}
    apply(cluster, manifest)
    try:

        def ready() -> dict[str, Any] | None:
            status = store_status(cluster, store)
            return status if status.get("ready") else None

        status = wait_for(ready, 120, f"the managed {backend.name} to be Ready")
        assert status is not None
        conditions = {c["type"]: c for c in status["conditions"]}
        assert conditions["BackendReady"]["reason"] == "ReplicaReady"
        assert status["backendVersion"] == image.rsplit(":", 1)[1]
        assert status["endpoint"] == backend.url(f"hive-store-{store}.{NS}.svc")
        service = get(cluster, "service", f"hive-store-{store}")
        assert service is not None
        address = backend.url(service["spec"]["clusterIP"])  # as the operator probes it
        facts = ["The launch window opens at dawn", "The rover's battery lasts nine hours"]
        asyncio.run(remember(backend, address, facts))
        # a label wakes the store's reconcile now (the resync would, later)
        cluster.kubectl("label", "memorystore", store, "-n", NS, "hive.dev/counted=yes")
        wait_for(
            lambda: store_status(cluster, store).get("objectCount") == len(facts),
            60,
            "the store to count the memories",
        )
        if backend.password:  # the backend asks for it: without it, nothing is counted
            with pytest.raises(HiveError):
                asyncio.run(remember(replace(backend, password=None), address, facts))
        pod = get(cluster, "pod", f"hive-store-{store}-0")
        assert pod is not None
        assert pod["spec"]["nodeName"] == real_node.name
        box = pod["spec"]["containers"][0]["securityContext"]
        assert box["readOnlyRootFilesystem"] is True
    finally:
        cluster.kubectl("delete", "memorystore", store, "-n", NS, "--ignore-not-found")
    try:
        wait_for(
            lambda: (
                get(cluster, "statefulset", f"hive-store-{store}") is None
                and get(cluster, "service", f"hive-store-{store}") is None
                and get(cluster, "pvc", f"data-hive-store-{store}-0") is None
            ),
            120,
            "the garbage collector to take the StatefulSet, Service and claim",
        )
    finally:
        cluster.kubectl("delete", "pv", volume, "--ignore-not-found", "--wait=false")
        if backend.password:
            cluster.kubectl("delete", "secret", f"{store}-credentials", "-n", NS)
