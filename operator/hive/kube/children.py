"""Observing, applying and pruning the children of Hive objects, with server-side apply.

A level-based reconcile asks for every child each time it runs; `AppliedChildren` keeps that
from becoming a write each time. It remembers, per child, a digest of what was last applied and
the version the API server gave back, and learns from the watch the version each child has now.
A child is applied again only when what is wanted changed, or the child did (edited or deleted
by hand, or never seen): so a resync of unchanged objects writes nothing. The version compared
is the child's metadata.generation where it has one (a Deployment whose status moves is not
applied again), else its resourceVersion; a hand edit of a Deployment's labels or annotations
alone (no new generation) is therefore repaired at its next spec change, not at once. A kind
the operator does not watch (Secrets: never listed nor watched) is read back instead, one GET
where an apply would be, and applied only when its version moved; with `reread_after_s`, a child
read back or applied less than that long ago is taken as it was (the operator reads at most
twice a resync interval: a Secret edited or deleted by hand is made again by the next resync).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from lightkube import ALL_NS, ApiError, codecs
from lightkube.core.selector import build_selector
from lightkube.operators import Operator, exists
from lightkube.resources.apps_v1 import Deployment, StatefulSet
from lightkube.resources.autoscaling_v2 import HorizontalPodAutoscaler
from lightkube.resources.core_v1 import (
    ConfigMap,
    Event,
    Node,
    PersistentVolumeClaim,
    Pod,
    Secret,
    Service,
    ServiceAccount,
)
from lightkube.resources.networking_v1 import NetworkPolicy
from lightkube.resources.node_v1 import RuntimeClass
from lightkube.resources.rbac_authorization_v1 import Role, RoleBinding

from hive.kube.client import ApiClient
from hive.kube.errors import api_errors
from hive.kube.resources import FIELD_MANAGER, resource

APPLY_CONCURRENCY = 16  # an HTTP/1.1 connection each; httpx keeps 20 alive
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
    "Secret": Secret,
    "Node": Node,
    "RuntimeClass": RuntimeClass,
    "HorizontalPodAutoscaler": HorizontalPodAutoscaler,
}


def _what(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata", {})
    where = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{obj['kind']} {where}{meta.get('name')}"


ChildKey = tuple[str, str, str]  # kind, namespace, name


def _key(obj: Mapping[str, Any]) -> ChildKey:
    meta = obj.get("metadata") or {}
    return str(obj.get("kind")), str(meta.get("namespace") or ""), str(meta.get("name"))


def _version(meta: Mapping[str, Any]) -> str:
    """What changes when the child's desired part may have: its generation, else its
    resourceVersion."""
    generation = meta.get("generation")
    return f"g{generation}" if generation else f"r{meta.get('resourceVersion')}"


def digest(obj: Mapping[str, Any]) -> str:
    """What `AppliedChildren` compares (tens of microseconds for a child holding a team's
    config: `apply_objects` makes them in a worker thread)."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


@dataclass
class _Child:
    digest: str | None = None  # of what was last applied (None: only seen on the watch)
    applied_rv: str | None = None  # the resourceVersion the last apply gave back
    applied: str | None = None  # the version (see _version) the last apply gave back
    live: str | None = None  # the version the watch (or the last apply) saw last
    read_at: float | None = None  # a kind not watched: when it was last applied or read back


class AppliedChildren:
    """What was last applied of each child and what the watch says each is now (see above);
    `watched`: the kinds whose every change the watch reports through `seen`."""

    def __init__(
        self,
        watched: Iterable[str],
        *,
        reread_after_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.watched = frozenset(watched)
        self.reread_after_s = reread_after_s
        self._clock = clock
        self._children: dict[ChildKey, _Child] = {}
        # children of kinds not watched, by owner uid: no DELETED event ever drops them
        self._unwatched: dict[str, set[ChildKey]] = {}

    def __len__(self) -> int:
        return len(self._children) + len(self._unwatched)

    def seen(self, obj: Mapping[str, Any], *, deleted: bool) -> bool:
        """Record a watch event of a child; False when it only echoes the operator's own last
        apply of it (same resourceVersion), which wakes nobody."""
        key = _key(obj)
        if deleted:
            self._children.pop(key, None)
            return True
        meta = obj.get("metadata") or {}
        child = self._children.setdefault(key, _Child())
        child.live = _version(meta)
        return meta.get("resourceVersion") != child.applied_rv

    def unchanged(self, obj: Mapping[str, Any], made: str | None = None) -> bool | None:
        """True when applying `obj` (whose digest is `made`, else made here) would change
        nothing: it is what was applied last, and the child is still at the version that apply
        gave back. None when only reading the child can tell (a kind not watched, applied last
        as it is wanted now)."""
        child = self._children.get(_key(obj))
        if child is None or child.applied is None or child.digest != (made or digest(obj)):
            return False
        if obj.get("kind") not in self.watched:
            fresh = child.read_at is not None and (
                self._clock() - child.read_at < self.reread_after_s
            )
            return True if fresh else None
        return child.live == child.applied

    def still_applied(self, obj: Mapping[str, Any], live: Mapping[str, Any] | None) -> bool:
        """Whether `live` (the child as read now) is at the version its last apply gave back."""
        child = self._children.get(_key(obj))
        meta = (live or {}).get("metadata") or {}
        still = child is not None and live is not None and child.applied == _version(meta)
        if still and child is not None:
            child.read_at = self._clock()
        return still

    def applied(
        self,
        obj: Mapping[str, Any],
        resource_version: str | None,
        generation: int | None,
        made: str | None = None,
    ) -> None:
        """Record that `obj` (digest `made`, else made here) was applied and what version the
        API server gave back."""
        version = _version({"resourceVersion": resource_version, "generation": generation})
        key = _key(obj)
        child = self._children[key] = _Child(
            made or digest(obj), resource_version, version, version
        )
        if obj.get("kind") not in self.watched:
            child.read_at = self._clock()
            for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
                self._unwatched.setdefault(str(ref.get("uid")), set()).add(key)

    def forget_owner(self, uid: str) -> None:
        """Drop the children of kinds not watched that the object `uid` owned (it is gone)."""
        for key in self._unwatched.pop(uid, set()):
            self._children.pop(key, None)

    def forget(self, obj: Mapping[str, Any]) -> None:
        """Apply `obj` next time whatever the watch says (its apply failed)."""
        self._children.pop(_key(obj), None)


async def apply_objects(
    client: ApiClient,
    objects: Iterable[Mapping[str, Any]],
    *,
    field_manager: str = FIELD_MANAGER,
    cache: AppliedChildren | None = None,
) -> int:
    """Server-side apply the objects, a few at a time (force: the operator owns these fields);
    with `cache`, only those that it does not hold as unchanged. Returns how many were applied."""
    gate = asyncio.Semaphore(APPLY_CONCURRENCY)

    async def apply_one(obj: Mapping[str, Any], made: str | None) -> None:
        async with gate:
            with api_errors(_what(obj)):
                try:
                    returned = await client.apply(
                        codecs.from_dict(dict(obj)), field_manager=field_manager, force=True
                    )
                except BaseException:
                    if cache is not None:
                        cache.forget(obj)
                    raise
            if cache is not None:
                meta = returned.metadata
                if meta is None:  # an answer without metadata: apply it again next time
                    cache.forget(obj)
                else:
                    cache.applied(obj, meta.resourceVersion, meta.generation, made)

    async def wanted(obj: Mapping[str, Any], made: str | None) -> bool:
        if cache is None:
            return True
        unchanged = cache.unchanged(obj, made)
        if unchanged is None:  # not watched: read it back
            meta = obj["metadata"]
            async with gate:
                live = await get_object(client, obj["kind"], meta.get("namespace"), meta["name"])
            unchanged = cache.still_applied(obj, live)
        return not unchanged

    candidates = list(objects)
    made: list[str | None] = [None] * len(candidates)
    if cache is not None and candidates:
        made = list(await asyncio.to_thread(lambda: [digest(obj) for obj in candidates]))
    verdicts = await asyncio.gather(*(wanted(o, d) for o, d in zip(candidates, made, strict=True)))
    batch = [(o, d) for o, d, apply in zip(candidates, made, verdicts, strict=True) if apply]
    await asyncio.gather(*(apply_one(obj, d) for obj, d in batch))
    return len(batch)


async def list_labelled(
    client: ApiClient, kind: str, namespace: str, labels: Mapping[str, str]
) -> list[dict[str, Any]]:
    """Objects of `kind` in `namespace` carrying every label in `labels`, as plain dicts."""
    return [obj async for obj in each_selected(client, kind, namespace, labels)]


LIST_PAGE = 200  # objects a listing of a whole kind asks for at a time


def label_selector(labels: Mapping[str, str | None]) -> str:
    """The labelSelector of `labels` (a None value: the label with any value)."""
    pairs: dict[str, str | Operator[Any] | Iterable[str] | None] = {
        key: exists() if value is None else value for key, value in labels.items()
    }
    return build_selector(pairs)


async def each_selected(
    client: ApiClient,
    kind: str,
    namespace: str | None,
    labels: Mapping[str, str | None],
    *,
    page: int = LIST_PAGE,
) -> AsyncIterator[dict[str, Any]]:
    """Objects of `kind` in `namespace` (every namespace: None) carrying `labels` (None: the
    label with any value), as plain dicts, listed a page at a time."""
    params = {"labelSelector": label_selector(labels) or None}
    with api_errors(f"{kind} in {namespace or 'all namespaces'}"):
        async for obj in each_listed(client, KIND_RESOURCES[kind], namespace, params, page):
            yield obj


async def each_listed(
    client: ApiClient,
    res: Any,
    namespace: str | None,
    params: Mapping[str, Any] | None = None,
    page: int = LIST_PAGE,
) -> AsyncIterator[dict[str, Any]]:
    """The objects of the lightkube resource `res` in `namespace` (every namespace: None), as
    the API server's JSON, a page at a time: no typed model is made of each (a listing of a
    thousand pods as lightkube's dataclasses costs more than the request). Each item gets the
    apiVersion and kind a listing leaves out of them."""
    generic = client._client  # lightkube's request builder and error translation, its httpx
    where = ALL_NS if namespace is None else namespace
    token: str | None = None
    while True:
        query = {**(params or {}), "limit": page, "continue": token}
        request = generic.prepare_request("list", res, namespace=where, params=query)
        response = await generic._client.send(
            generic._client.build_request(request.method, request.url, params=request.params)
        )
        generic.raise_for_status(response)  # type: ignore[no-untyped-call]
        listed = response.json()
        api_version, kind = listed.get("apiVersion"), str(listed.get("kind") or "")
        for item in listed.get("items") or []:
            item.setdefault("apiVersion", api_version)
            item.setdefault("kind", kind.removesuffix("List"))
            yield item
        token = (listed.get("metadata") or {}).get("continue")
        if not token:
            return


async def prune(
    client: ApiClient,
    namespace: str,
    labels: Mapping[str, str],
    owner_uid: str,
    keep: set[tuple[str, str]],
    kinds: Iterable[str],
) -> list[str]:
    """Delete owned children (by owner uid) not in `keep` ({(kind, name)}). Returns what went.
    The kinds are listed at once."""
    kinds = list(kinds)
    found = await asyncio.gather(*(list_labelled(client, k, namespace, labels) for k in kinds))
    deleted = []
    for kind, objects in zip(kinds, found, strict=True):
        for obj in objects:
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
    with api_errors(f"{kind} in {namespace or 'all namespaces'}"):
        return [o async for o in each_listed(client, resource(kind), namespace)]


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
