"""Fixtures shared by the integration tests."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from hive.dev.node import RealNode
from hive.settings import NodeSettings
from tests.nodepods import NAMESPACE, TAINT_KEY
from tests.support import Cluster, free_port


@pytest.fixture
def host_listener() -> Iterator[int]:
    """A port on the host's loopback that accepts connections: what a sandbox must not reach."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


@pytest.fixture(scope="session")
def real_node(cluster: Cluster) -> Iterator[RealNode]:
    """One real node on the session's control plane, tainted so only pods that ask land there;
    the busybox image imported and the tests' namespace made."""
    settings = NodeSettings(
        kubelet_port=free_port(),
        kubelet_healthz_port=free_port(),
        kube_router_health_port=free_port(),
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
