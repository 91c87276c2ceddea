"""Fake nodes that KWOK plays the kubelet for."""

from __future__ import annotations

from pathlib import Path

from lightkube.models.core_v1 import NodeSpec, NodeStatus
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Node

from hive.kube.client import sync_client
from hive.settings import KubeSettings

KWOK_ANNOTATION = "kwok.x-k8s.io/node"


def fake_node(name: str) -> Node:
    capacity = {"cpu": "32", "memory": "256Gi", "pods": "250", "ephemeral-storage": "500Gi"}
    return Node(
        metadata=ObjectMeta(
            name=name,
            annotations={KWOK_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
            labels={
                "type": "kwok",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "hive.dev/runtime-gvisor": "true",
            },
        ),
        spec=NodeSpec(),
        status=NodeStatus(capacity=capacity, allocatable=capacity),
    )


def ensure_fake_nodes(kubeconfig: Path, count: int) -> list[str]:
    """Apply `count` KWOK nodes named kwok-node-0..N-1; returns their names."""
    client = sync_client(KubeSettings(kubeconfig=kubeconfig), field_manager="hive-dev")
    names = [f"kwok-node-{i}" for i in range(count)]
    for name in names:
        client.apply(fake_node(name), force=True)
    return names
