"""Nodes of the local cluster: fake ones that KWOK plays the kubelet for, and the API side of
the one real node (its pod CIDR, the RuntimeClass its runsc handler serves, its cluster add-ons,
readiness, removal)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from lightkube import ApiError, Client, codecs
from lightkube.models.core_v1 import NodeSpec, NodeStatus
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import Node, Pod
from lightkube.resources.node_v1 import RuntimeClass

from hive.errors import InvalidInput, Unavailable
from hive.kube.client import sync_client
from hive.kube.errors import api_errors, from_api_error
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


def _client(kubeconfig: Path) -> Client:
    return sync_client(KubeSettings(kubeconfig=kubeconfig), field_manager="hive-dev")


def _ready(node: Node) -> bool:
    conditions = (node.status.conditions if node.status else None) or []
    return any(c.type == "Ready" and c.status == "True" for c in conditions)


def _wait_for(
    what: str,
    get: Callable[[], Any],
    done: Callable[[Any], str | None],
    *,
    timeout_s: float,
    alive: Callable[[], str | None],
    absent: str = "not found",
) -> None:
    """Poll `get()` (None while the object does not exist) until `done(object)` says None (it
    returns how far the object is otherwise); raise Unavailable with what died or how far it
    got. `alive` returns what died (a one-line reason) or None while the processes run."""
    deadline = time.monotonic() + timeout_s
    last = absent
    while time.monotonic() < deadline:
        dead = alive()
        if dead:
            raise Unavailable(dead)
        try:
            obj = get()
        except ApiError as exc:
            if exc.status.code != 404:
                raise from_api_error(exc, what) from exc
        else:
            progress = done(obj)
            if progress is None:
                return
            last = progress
        time.sleep(0.5)
    raise Unavailable(f"{what}: {last} after {timeout_s:.0f}s")


def wait_real_node(
    kubeconfig: Path,
    name: str,
    *,
    pod_cidr: str,
    timeout_s: float,
    alive: Callable[[], str | None],
) -> None:
    """Wait for the kubelet to register node `name`, give it `pod_cidr` (the CNI bridge's range,
    which a NetworkPolicy enforcer reads from spec.podCIDR) and wait until it is Ready."""
    client = _client(kubeconfig)

    def ready(node: Node) -> str | None:
        if node.spec is None or not node.spec.podCIDR:
            client.patch(Node, name, {"spec": {"podCIDR": pod_cidr, "podCIDRs": [pod_cidr]}})
        return None if _ready(node) else "registered, not Ready"

    _wait_for(
        f"node {name}",
        lambda: client.get(Node, name),
        ready,
        timeout_s=timeout_s,
        alive=alive,
        absent="not registered",
    )


def node_ready(kubeconfig: Path, name: str) -> bool:
    try:
        return _ready(_client(kubeconfig).get(Node, name))
    except ApiError:
        return False


def ensure_runtime_class(kubeconfig: Path, name: str, handler: str) -> None:
    """The RuntimeClass `name` with `handler`, as a SandboxPolicy would make it."""
    runtime_class = RuntimeClass(metadata=ObjectMeta(name=name), handler=handler)
    _client(kubeconfig).apply(runtime_class, force=True)


def drain_real_node(kubeconfig: Path, name: str, *, timeout_s: float) -> int:
    """Cordon node `name` and delete its pods (1 s grace) so that the kubelet stops their
    sandboxes and releases their network; returns how many pods were still there at the end."""
    client = _client(kubeconfig)
    try:
        with api_errors(f"Node {name}"):
            client.patch(Node, name, {"spec": {"unschedulable": True}})
    except InvalidInput:  # no such node
        return 0
    deadline = time.monotonic() + timeout_s
    while True:
        with api_errors(f"pods on node {name}"):
            pods = list(client.list(Pod, namespace="*", fields={"spec.nodeName": name}))
        if not pods or time.monotonic() > deadline:
            return len(pods)
        for pod in pods:
            meta = pod.metadata
            if meta is None or meta.name is None or meta.deletionTimestamp is not None:
                continue
            try:
                client.delete(Pod, meta.name, namespace=meta.namespace, grace_period=1)
            except ApiError as exc:
                if exc.status.code != 404:
                    raise from_api_error(exc, f"Pod {meta.namespace}/{meta.name}") from exc
        time.sleep(0.5)


def delete_node(kubeconfig: Path, name: str) -> bool:
    try:
        with api_errors(f"Node {name}"):
            _client(kubeconfig).delete(Node, name)
    except InvalidInput:  # no such node
        return False
    return True


def apply_manifests(kubeconfig: Path, objects: Sequence[Mapping[str, Any]]) -> None:
    """Server-side apply plain manifests (a real node's cluster add-ons)."""
    client = _client(kubeconfig)
    for obj in objects:
        resource = codecs.from_dict(dict(obj))
        with api_errors(f"{obj['kind']} {obj['metadata']['name']}"):
            client.apply(resource, force=True)


def delete_manifests(kubeconfig: Path, objects: Sequence[Mapping[str, Any]]) -> None:
    """Delete what :func:`apply_manifests` applied; what is gone already is fine."""
    client = _client(kubeconfig)
    for obj in reversed(objects):
        kind: Any = type(codecs.from_dict(dict(obj)))
        meta = obj["metadata"]
        try:
            client.delete(kind, meta["name"], namespace=meta.get("namespace"))
        except ApiError as exc:
            if exc.status.code != 404:
                raise from_api_error(exc, f"{obj['kind']} {meta['name']}") from exc


def wait_deployment_available(
    kubeconfig: Path,
    namespace: str,
    name: str,
    *,
    timeout_s: float,
    alive: Callable[[], str | None],
) -> None:
    """Wait until Deployment `name` has all its replicas available."""
    client = _client(kubeconfig)

    def available(dep: Deployment) -> str | None:
        want = dep.spec.replicas if dep.spec and dep.spec.replicas is not None else 1
        have = (dep.status.availableReplicas if dep.status else None) or 0
        return None if have >= want else f"{have}/{want} available"

    _wait_for(
        f"Deployment {namespace}/{name}",
        lambda: client.get(Deployment, name, namespace=namespace),
        available,
        timeout_s=timeout_s,
        alive=alive,
    )
