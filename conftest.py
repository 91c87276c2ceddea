"""Shared fixtures: one real control plane on loopback for the whole test run, one real
node beside it for the tests that run pods, and one real Weaviate server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.nodepods import NAMESPACE, TAINT_KEY, import_built_image
from tests.support import (
    REPO,
    Cluster,
    dev_settings,
    free_port,
    jaeger_server,
    weaviate_server,
)

from hive.dev.controlplane import ControlPlane
from hive.dev.node import RealNode
from hive.dev.tracing import DevJaeger
from hive.dev.weaviate import DevWeaviate
from hive.kube.client import sync_client
from hive.settings import KubeSettings, NodeSettings


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One real control plane (etcd, kube-apiserver, controllers, KWOK) for the whole run."""
    plane = ControlPlane(dev_settings(tmp_path_factory.mktemp("controlplane")))
    try:
        plane.up()
        client = sync_client(KubeSettings(kubeconfig=plane.kubeconfig), field_manager="hive-tests")
        yield Cluster(plane, client)
    finally:
        plane.down(purge=True)


@pytest.fixture(scope="session")
def real_node(cluster: Cluster) -> Iterator[RealNode]:
    """One real node on the session's control plane, tainted so only pods that ask land there;
    the busybox image imported and the tests' namespace made."""
    settings = NodeSettings(
        kubelet_port=free_port(),
        kubelet_healthz_port=free_port(),
        kube_router_health_port=free_port(),
        kube_proxy_healthz_port=free_port(),
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
    # kube-router's --cleanup-config panics: down() removes its chains and ipsets itself.
    leftovers = RealNode.kube_router_leftovers()
    assert not leftovers, f"kube-router left these on the host: {leftovers}"


@pytest.fixture(scope="session")
def hive_image(cluster: Cluster, real_node: RealNode) -> str:
    """The Hive image hack/build-image.sh built, imported into the real node once."""
    return import_built_image(real_node, "hive", REPO / "hack" / "build-image.sh")


@pytest.fixture(scope="session")
def sandbox_image(cluster: Cluster, real_node: RealNode) -> str:
    """The sandbox image sandbox-images/build-image.sh built, imported into the real node once."""
    return import_built_image(real_node, "sandbox", REPO / "sandbox-images" / "build-image.sh")


@pytest.fixture(scope="session")
def weaviate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevWeaviate]:
    """One real Weaviate (anonymous access, no vectorizer) on free loopback ports for the whole
    run; stopped at the end."""
    with weaviate_server(tmp_path_factory.mktemp("weaviate")) as server:
        yield server


@pytest.fixture(scope="session")
def jaeger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevJaeger]:
    """One real Jaeger v2 (all-in-one, in-memory traces) on free loopback ports for the whole
    run: OTLP over HTTP at `.otlp_endpoint`, the query API at `.query_url`; stopped at the end."""
    with jaeger_server(tmp_path_factory.mktemp("jaeger")) as server:
        yield server
