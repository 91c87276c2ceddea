"""Reconciling ToolVersions, SandboxPolicies and MemoryStores."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from hive.kube.children import (
    apply_objects,
    ensure_absent_or_create,
    get_hive_object,
    list_hive_objects,
    prune,
)
from hive.kube.secrets import read_secret
from hive.kube.status import apply_status
from hive.operator.egress import policy_answers
from hive.operator.probes import probe_store
from hive.operator.state import STATE
from hive.reconcile.memorystore import (
    BackendProbe,
    credentials_from_secret,
    parse_store,
    store_status,
)
from hive.reconcile.meta import MANAGED_BY, POLICY_LABEL, Owner
from hive.reconcile.sandboxpolicy import PolicyPlan, plan_policy
from hive.reconcile.toolversion import plan_tool

log = logging.getLogger(__name__)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def _write_status(kind: str, obj: dict[str, Any], status: dict[str, Any]) -> None:
    current = obj.get("status") or {}
    if all(current.get(k) == v for k, v in status.items()):
        return
    meta = obj["metadata"]
    await apply_status(STATE.client(), kind, meta["namespace"], meta["name"], status)


async def reconcile_tool(namespace: str, tool: str) -> None:
    """Every version of `tool` at once: ordering and the migration chain span them all."""
    client = STATE.client()
    objects = [
        o
        for o in await list_hive_objects(client, "ToolVersion", namespace)
        if (o.get("spec") or {}).get("tool") == tool and not o["metadata"].get("deletionTimestamp")
    ]
    teams = await list_hive_objects(client, "AgentTeam", namespace)
    statuses = plan_tool(objects, teams, _now())
    for obj in objects:
        status = statuses.get(obj["metadata"]["name"])
        if status is not None:
            await _write_status("ToolVersion", obj, status.wire())


async def reconcile_policy(namespace: str, name: str) -> PolicyPlan | None:
    """The policy's children and status; its plan's recheck_after_s is when an egress name's
    answer runs out (the work queue runs it again then, which looks the name up again)."""
    client = STATE.client()
    obj = await get_hive_object(client, "SandboxPolicy", namespace, name)
    if obj is None or obj["metadata"].get("deletionTimestamp"):
        return None
    meta, spec = obj["metadata"], obj.get("spec") or {}
    owner = Owner("SandboxPolicy", name, namespace, meta["uid"], meta.get("generation", 0))
    teams = await list_hive_objects(client, "AgentTeam", namespace)
    answers = await policy_answers(STATE.require_settings().operator.egress, spec)
    plan = plan_policy(owner, spec, obj.get("status"), teams, _now(), answers)
    if plan.runtime_class is not None and await ensure_absent_or_create(client, plan.runtime_class):
        log.info("created RuntimeClass %s", plan.runtime_class["metadata"]["name"])
    await apply_objects(client, plan.children)
    keep = {(c["kind"], c["metadata"]["name"]) for c in plan.children}
    labels = {POLICY_LABEL: name, "app.kubernetes.io/managed-by": MANAGED_BY}
    await prune(client, namespace, labels, meta["uid"], keep, ("NetworkPolicy",))
    await _write_status("SandboxPolicy", obj, plan.status.wire())
    return plan


async def reconcile_store(namespace: str, name: str) -> None:
    """Probe the store's backend with the credentials of its Secret; write what was found."""
    client = STATE.client()
    obj = await get_hive_object(client, "MemoryStore", namespace, name)
    if obj is None or obj["metadata"].get("deletionTimestamp"):
        return
    spec = obj.get("spec") or {}
    probe: BackendProbe | None = None
    try:
        store = parse_store(spec)
    except ValueError:
        store = None
    if store is not None:
        settings = STATE.require_settings().operator
        credentials = None
        ref = store.connection.secret_ref
        if ref is not None:
            found = credentials_from_secret(
                ref, store.backend, await read_secret(client, namespace, ref.name)
            )
            if isinstance(found, BackendProbe):
                probe = found  # the Secret or its key is missing: nothing to try with
            else:
                credentials = found
        if probe is None:
            probe = await probe_store(
                store,
                credentials,
                timeout_s=settings.memory_probe_timeout_s,
                count_limit=settings.memory_count_limit,
            )
    status = store_status(
        spec,
        obj.get("status"),
        probe,
        generation=obj["metadata"].get("generation", 0),
        now=_now(),
    )
    await _write_status("MemoryStore", obj, status.wire())
