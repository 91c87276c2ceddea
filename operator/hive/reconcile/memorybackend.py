"""A managed MemoryStore's backend (``spec.managed: true``): the operator runs Weaviate or Redis
itself, as a StatefulSet of one replica with a PersistentVolumeClaim (its volumeClaimTemplate,
``spec.server.storage``) and a ClusterIP Service that is the store's endpoint.

The pod is hardened like the agents' pods: non-root (the image's own user: 999 for Redis,
1000 for Weaviate), read-only root filesystem (data on the claim, ``/tmp`` an emptyDir), no
privilege escalation, every capability dropped, seccomp RuntimeDefault, no service account
token, requests equal to limits. A ``connection.secretRef`` configures the backend with that
secret (Redis ``requirepass``, Weaviate API-key auth), read by Kubernetes from the Secret.

Owner references make the StatefulSet and the Service go with the store (garbage collection),
and the claim's retention policy ``whenDeleted: Delete`` makes the claim go with the
StatefulSet. With ``spec.retain: true`` the objects carry no owner reference and the policy is
``Retain``: deleting the store leaves all three. Server-side apply removes the references
when retain is turned on later (the operator's field manager owns them), and adds them back
when it is turned off.

Everything here is pure: the objects, the endpoint, and the BackendReady condition read from
the StatefulSet's readyReplicas.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hive.api.common import Condition
from hive.api.memorystore import DEFAULT_GRPC_PORT, Backend, ManagedServer, MemoryStoreSpec
from hive.reconcile.conditions import condition
from hive.reconcile.meta import MANAGED_BY, Owner, child_name

JSON = dict[str, Any]
STORE_LABEL = "hive.dev/memorystore"
COMPONENT = "memory-backend"
WEAVIATE_HTTP_PORT = 8080
REDIS_PORT = 6379
DATA_VOLUME = "data"
PASSWORD_ENV = "HIVE_BACKEND_SECRET"  # noqa: S105 - the variable's name, not a secret
REDIS_USER = 999  # the official redis image's user
WEAVIATE_USER = 1000  # any non-root user: the official weaviate image needs none of root


@dataclass(frozen=True)
class BackendSettings:
    """How the operator builds managed backends (from HIVE_OPERATOR__MANAGED_STORES__* and the
    operator's pod placement)."""

    weaviate_image: str
    redis_image: str
    image_pull_policy: str = "IfNotPresent"
    node_selector: Mapping[str, str] | None = None
    tolerations: tuple[Mapping[str, Any], ...] = ()


def backend_name(store: str) -> str:
    """The StatefulSet's and the Service's name: ``hive-store-<store>``."""
    return child_name("hive-store", store)


def _endpoint(backend: Backend, host: str) -> str:
    if backend == Backend.REDIS:
        return f"redis://{host}:{REDIS_PORT}/0"
    return f"http://{host}:{WEAVIATE_HTTP_PORT}"


def managed_endpoint(store: str, namespace: str, spec: MemoryStoreSpec) -> str:
    """The managed backend's address, through its Service's cluster DNS name."""
    return _endpoint(spec.backend, f"{backend_name(store)}.{namespace}.svc")


def resolved_spec(
    store: str, namespace: str, spec: MemoryStoreSpec, *, cluster_ip: str | None = None
) -> MemoryStoreSpec:
    """The store as its clients reach it: a managed store becomes a store at its Service's
    endpoint (gRPC on 50051), without what only running it needs (managed, retain, server).
    With `cluster_ip`, at the Service's address rather than its name: the operator probes it
    so, which needs no cluster DNS (a local operator reaches it through the node's
    kube-proxy)."""
    if not spec.managed:
        return spec
    endpoint = (
        _endpoint(spec.backend, cluster_ip)
        if cluster_ip
        else managed_endpoint(store, namespace, spec)
    )
    connection = spec.connection.model_copy(update={"endpoint": endpoint})
    return spec.model_copy(
        update={"connection": connection, "managed": False, "retain": False, "server": None}
    )


def resolved_wire(store: str, namespace: str, spec: Mapping[str, Any]) -> JSON:
    """A store's spec as stored (camelCase), a managed one's as its clients reach it
    (`resolved_spec`), as the agents are given it; a spec that does not validate is returned as
    it is."""
    if not spec.get("managed"):
        return dict(spec)
    try:
        parsed = MemoryStoreSpec.model_validate(dict(spec))
    except ValueError:
        return dict(spec)
    return resolved_spec(store, namespace, parsed).wire()


def backend_labels(store: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/managed-by": MANAGED_BY,
        "app.kubernetes.io/component": COMPONENT,
        STORE_LABEL: store,
    }


def backend_objects(owner: Owner, spec: MemoryStoreSpec, settings: BackendSettings) -> list[JSON]:
    """The managed backend of store `owner`: its StatefulSet and Service (nothing for a store
    that is not managed)."""
    if not spec.managed:
        return []
    name = backend_name(owner.name)
    labels = backend_labels(owner.name)
    meta: JSON = {"name": name, "namespace": owner.namespace, "labels": labels}
    if not spec.retain:
        meta["ownerReferences"] = [owner.reference()]
    return [_stateful_set(meta, spec, settings), _service(meta, spec)]


def _ports(spec: MemoryStoreSpec) -> list[JSON]:
    if spec.backend == Backend.REDIS:
        return [{"name": "redis", "port": REDIS_PORT}]
    return [
        {"name": "http", "port": WEAVIATE_HTTP_PORT},
        {"name": "grpc", "port": DEFAULT_GRPC_PORT},
    ]


def _service(meta: JSON, spec: MemoryStoreSpec) -> JSON:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {
            "type": "ClusterIP",
            "selector": {STORE_LABEL: meta["labels"][STORE_LABEL]},
            "ports": [{**p, "targetPort": p["name"], "protocol": "TCP"} for p in _ports(spec)],
        },
    }


def _secret_env(spec: MemoryStoreSpec) -> list[JSON]:
    ref = spec.connection.secret_ref
    if ref is None:
        return []
    key = {"name": ref.name, "key": ref.key}
    return [{"name": PASSWORD_ENV, "valueFrom": {"secretKeyRef": key}}]


def _redis_container(spec: MemoryStoreSpec, image: str) -> JSON:
    args = ["--port", str(REDIS_PORT), "--dir", "/data", "--appendonly", "yes"]
    args += ["--protected-mode", "no"]  # reached through the Service, not loopback
    if spec.connection.secret_ref is not None:
        args += ["--requirepass", f"$({PASSWORD_ENV})"]
    return {
        "name": "redis",
        "image": image,
        "command": ["redis-server"],
        "args": args,
        "env": _secret_env(spec),
        "readinessProbe": {"tcpSocket": {"port": "redis"}, "periodSeconds": 5},
        "livenessProbe": {"tcpSocket": {"port": "redis"}, "periodSeconds": 20},
        "volumeMounts": [{"name": DATA_VOLUME, "mountPath": "/data"}],
    }


def _weaviate_container(spec: MemoryStoreSpec, image: str) -> JSON:
    env: list[JSON] = [
        {"name": "PERSISTENCE_DATA_PATH", "value": "/var/lib/weaviate"},
        {"name": "DEFAULT_VECTORIZER_MODULE", "value": "none"},  # Hive brings its own vectors
        {"name": "ENABLE_MODULES", "value": ""},
        {"name": "DISABLE_TELEMETRY", "value": "true"},
        {"name": "CLUSTER_HOSTNAME", "value": "node1"},
        # its memberlist and Raft on the pod's own address (else it may pick none it can use)
        {"name": "CLUSTER_BIND_ADDR", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {
            "name": "CLUSTER_ADVERTISE_ADDR",
            "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}},
        },
        {"name": "GRPC_PORT", "value": str(DEFAULT_GRPC_PORT)},
        {"name": "GO_PROFILING_DISABLE", "value": "true"},  # no pprof listener
    ]
    if spec.connection.secret_ref is None:
        env.append({"name": "AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED", "value": "true"})
    else:
        env += _secret_env(spec)
        env += [
            {"name": "AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED", "value": "false"},
            {"name": "AUTHENTICATION_APIKEY_ENABLED", "value": "true"},
            {"name": "AUTHENTICATION_APIKEY_ALLOWED_KEYS", "value": f"$({PASSWORD_ENV})"},
            {"name": "AUTHENTICATION_APIKEY_USERS", "value": "hive"},
        ]
    return {
        "name": "weaviate",
        "image": image,
        "args": ["--host", "0.0.0.0", "--port", str(WEAVIATE_HTTP_PORT), "--scheme", "http"],  # noqa: S104
        "env": env,
        "readinessProbe": {
            "httpGet": {"path": "/v1/.well-known/ready", "port": "http"},
            "periodSeconds": 5,
        },
        "livenessProbe": {
            "httpGet": {"path": "/v1/.well-known/live", "port": "http"},
            "periodSeconds": 20,
            "failureThreshold": 6,
        },
        "volumeMounts": [{"name": DATA_VOLUME, "mountPath": "/var/lib/weaviate"}],
    }


def _stateful_set(meta: JSON, spec: MemoryStoreSpec, settings: BackendSettings) -> JSON:
    server = spec.server or ManagedServer()
    redis = spec.backend == Backend.REDIS
    image = server.image or (settings.redis_image if redis else settings.weaviate_image)
    container = _redis_container(spec, image) if redis else _weaviate_container(spec, image)
    user = REDIS_USER if redis else WEAVIATE_USER
    resources = {"cpu": server.resources.cpu, "memory": server.resources.memory}
    container.update(
        {
            "imagePullPolicy": settings.image_pull_policy,
            "ports": [
                {"name": p["name"], "containerPort": p["port"], "protocol": "TCP"}
                for p in _ports(spec)
            ],
            "resources": {"requests": resources, "limits": resources},
            "securityContext": {
                "allowPrivilegeEscalation": False,
                "readOnlyRootFilesystem": True,
                "capabilities": {"drop": ["ALL"]},
            },
        }
    )
    container["volumeMounts"].append({"name": "tmp", "mountPath": "/tmp"})  # noqa: S108
    pod_spec: JSON = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": user,
            "runAsGroup": user,
            "fsGroup": user,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": [{"name": "tmp", "emptyDir": {}}],
    }
    node_selector = {**(settings.node_selector or {}), **server.scheduling.node_selector}
    if node_selector:
        pod_spec["nodeSelector"] = node_selector
    tolerations = [dict(t) for t in settings.tolerations] + [
        t.model_dump(by_alias=True, exclude_none=True, mode="json")
        for t in server.scheduling.tolerations
    ]
    if tolerations:
        pod_spec["tolerations"] = tolerations
    claim: JSON = {
        "metadata": {"name": DATA_VOLUME},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": server.storage}},
        },
    }
    if server.storage_class_name:
        claim["spec"]["storageClassName"] = server.storage_class_name
    kept = "Retain" if spec.retain else "Delete"
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": meta,
        "spec": {
            "replicas": 1,
            "serviceName": meta["name"],
            "selector": {"matchLabels": {STORE_LABEL: meta["labels"][STORE_LABEL]}},
            "persistentVolumeClaimRetentionPolicy": {"whenDeleted": kept, "whenScaled": "Retain"},
            "template": {"metadata": {"labels": meta["labels"]}, "spec": pod_spec},
            "volumeClaimTemplates": [claim],
        },
    }


def claim_name(store: str) -> str:
    """The claim the StatefulSet controller makes from the template for the one replica."""
    return f"{DATA_VOLUME}-{backend_name(store)}-0"


def backend_condition(
    stateful_set: Mapping[str, Any] | None,
    claim: Mapping[str, Any] | None = None,
    *,
    generation: int,
    now: dt.datetime,
) -> Condition:
    """BackendReady from the StatefulSet: its ready replicas, or that it is not there; while
    not ready, the message says what became of its claim (none yet, Pending, Bound)."""
    if stateful_set is None:
        return condition(
            "BackendReady",
            False,
            "StatefulSetMissing",
            "the backend's StatefulSet does not exist yet",
            generation=generation,
            now=now,
        )
    name = stateful_set.get("metadata", {}).get("name", "?")
    status = stateful_set.get("status") or {}
    ready = int(status.get("readyReplicas") or 0)
    wanted = int((stateful_set.get("spec") or {}).get("replicas") or 1)
    message = f"StatefulSet {name}: {ready}/{wanted} replicas ready"
    if ready < wanted:
        if claim is None:
            message += "; its PersistentVolumeClaim does not exist yet"
        else:
            claim_meta = claim.get("metadata") or {}
            phase = (claim.get("status") or {}).get("phase") or "Pending"
            message += f"; PersistentVolumeClaim {claim_meta.get('name')} is {phase}"
    if ready >= wanted:
        return condition(
            "BackendReady", True, "ReplicaReady", message, generation=generation, now=now
        )
    return condition(
        "BackendReady", False, "ReplicaNotReady", message, generation=generation, now=now
    )
