"""Observing, applying and pruning the children of Hive objects, with server-side apply."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any

from lightkube import ALL_NS, ApiError, codecs
from lightkube.resources.apps_v1 import Deployment, StatefulSet
from lightkube.resources.core_v1 import (
    ConfigMap,
    Event,
    Node,
    PersistentVolumeClaim,
    Pod,
    Service,
    ServiceAccount,
)
from lightkube.resources.networking_v1 import NetworkPolicy
from lightkube.resources.node_v1 import RuntimeClass
from lightkube.resources.rbac_authorization_v1 import Role, RoleBinding

from hive.kube.client import ApiClient
from hive.kube.errors import api_errors
from hive.kube.resources import FIELD_MANAGER, resource

APPLY_CONCURRENCY = 6
KIND_RESOURCES: dict[str, Any] = {  # kind -> lightkube resource class
    "ServiceAccount": ServiceAccount,
    "Role": Role,
    "RoleBinding": RoleBinding,
    "ConfigMap": ConfigMap,
    "Deployment": Deployment,
    "StatefulSet": StatefulSet,
    "PersistentVolumeClaim": PersistentVolumeClaim,
    "Service": Service,
    "NetworkPolicy": NetworkPolicy,
    "Pod": Pod,
    "Node": Node,
    "RuntimeClass": RuntimeClass,
}


def _what(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata", {})
    where = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{obj['kind']} {where}{meta.get('name')}"


async def apply_objects(
    client: ApiClient, objects: Iterable[Mapping[str, Any]], *, field_manager: str = FIELD_MANAGER
) -> int:
    """Server-side apply the objects, a few at a time (force: the operator owns these fields)."""
    gate = asyncio.Semaphore(APPLY_CONCURRENCY)

    async def apply_one(obj: Mapping[str, Any]) -> None:
        async with gate:
            with api_errors(_what(obj)):
                await client.apply(
                    codecs.from_dict(dict(obj)), field_manager=field_manager, force=True
                )

    batch = list(objects)
    await asyncio.gather(*(apply_one(obj) for obj in batch))
    return len(batch)


async def list_labelled(
    client: ApiClient, kind: str, namespace: str, labels: Mapping[str, str]
) -> list[dict[str, Any]]:
    """Objects of `kind` in `namespace` carrying every label in `labels`, as plain dicts."""
    res = KIND_RESOURCES[kind]
    out = []
    with api_errors(f"{kind} in {namespace}"):
        async for item in client.list(res, namespace=namespace, labels=dict(labels)):
            out.append(item.to_dict())
    return out


async def prune(
    client: ApiClient,
    namespace: str,
    labels: Mapping[str, str],
    owner_uid: str,
    keep: set[tuple[str, str]],
    kinds: Iterable[str],
) -> list[str]:
    """Delete owned children (by owner uid) not in `keep` ({(kind, name)}). Returns what went."""
    deleted = []
    for kind in kinds:
        for obj in await list_labelled(client, kind, namespace, labels):
            meta = obj["metadata"]
            owned = any(ref.get("uid") == owner_uid for ref in meta.get("ownerReferences", []))
            if owned and (kind, meta["name"]) not in keep:
                await delete(client, kind, namespace, meta["name"])
                deleted.append(f"{kind}/{meta['name']}")
    return deleted


async def delete(client: ApiClient, kind: str, namespace: str | None, name: str) -> bool:
    """Delete if present; True when something was deleted."""
    try:
        await client.delete(KIND_RESOURCES[kind], name, namespace=namespace)
    except ApiError as exc:
        if exc.status.code == 404:
            return False
        with api_errors(f"{kind} {namespace}/{name}"):
            raise
    return True


async def get_object(
    client: ApiClient, kind: str, namespace: str | None, name: str
) -> dict[str, Any] | None:
    """An object of a built-in `kind` (None `namespace` for a cluster-wide one) as a dict, or
    None when it does not exist."""
    try:
        obj = await client.get(KIND_RESOURCES[kind], name, namespace=namespace)
    except ApiError as exc:
        if exc.status.code == 404:
            return None
        with api_errors(f"{kind} {namespace + '/' if namespace else ''}{name}"):
            raise
    return dict(obj.to_dict())


async def latest_event(
    client: ApiClient, namespace: str, object_name: str, reason: str
) -> str | None:
    """The message of the latest event with `reason` about the object `object_name`."""
    fields: dict[str, Any] = {"involvedObject.name": object_name, "reason": reason}
    with api_errors(f"events of {namespace}/{object_name}"):
        found = [e async for e in client.list(Event, namespace=namespace, fields=fields)]
    if not found:
        return None

    def when(event: Event) -> str:
        stamp = event.lastTimestamp or event.eventTime or event.metadata.creationTimestamp
        return stamp.isoformat() if stamp is not None else ""

    return " ".join((max(found, key=when).message or "").split()) or None


async def get_hive_object(
    client: ApiClient, kind: str, namespace: str, name: str
) -> dict[str, Any] | None:
    """A Hive custom object as a dict, or None when it does not exist."""
    try:
        obj = await client.get(resource(kind), name, namespace=namespace)
    except ApiError as exc:
        if exc.status.code == 404:
            return None
        with api_errors(f"{kind} {namespace}/{name}"):
            raise
    return dict(obj.to_dict())


async def list_hive_objects(
    client: ApiClient, kind: str, namespace: str | None
) -> list[dict[str, Any]]:
    """Objects of a Hive kind in `namespace`, or in every namespace when it is None."""
    where = ALL_NS if namespace is None else namespace
    with api_errors(f"{kind} in {namespace or 'all namespaces'}"):
        return [dict(o.to_dict()) async for o in client.list(resource(kind), namespace=where)]


async def ensure_absent_or_create(client: ApiClient, obj: Mapping[str, Any]) -> bool:
    """Create `obj` unless one of that name exists (never take another's over). True if made."""
    try:
        await client.create(codecs.from_dict(dict(obj)), field_manager=FIELD_MANAGER)
    except ApiError as exc:
        if exc.status.code == 409:
            return False
        with api_errors(_what(obj)):
            raise
    return True


async def delete_pods(client: ApiClient, namespace: str, labels: Mapping[str, str]) -> list[str]:
    """Delete every pod carrying `labels`; returns their names."""
    names = [p["metadata"]["name"] for p in await list_labelled(client, "Pod", namespace, labels)]
    for name in names:
        await delete(client, "Pod", namespace, name)
    return names
