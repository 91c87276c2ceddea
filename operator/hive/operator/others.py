"""Reconciling ToolVersions, SandboxPolicies and MemoryStores (a managed store's backend run;
probed each time; consolidated on their consolidation.schedule)."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from hive.api.common import Condition
from hive.api.memorystore import ConsolidationCounts, MemoryStoreSpec, MemoryStoreStatus
from hive.errors import HiveError
from hive.kube.children import (
    apply_objects,
    ensure_absent_or_create,
    get_hive_object,
    get_object,
    list_hive_objects,
    prune,
)
from hive.kube.secrets import read_secret
from hive.kube.status import apply_status
from hive.operator.egress import policy_answers
from hive.operator.mcp import DISCOVERY, without_session_fields
from hive.operator.openapi import with_openapi_functions
from hive.operator.probes import probe_store
from hive.operator.state import STATE
from hive.reconcile.consolidation import (
    consolidation_due,
    next_consolidation,
    parse_time,
    seconds_until_next,
)
from hive.reconcile.memorybackend import (
    BackendSettings,
    backend_condition,
    backend_name,
    backend_objects,
    claim_name,
    resolved_spec,
    resolved_wire,
)
from hive.reconcile.memorystore import (
    BackendProbe,
    Credentials,
    credentials_from_secret,
    parse_store,
    store_status,
)
from hive.reconcile.meta import MANAGED_BY, POLICY_LABEL, Owner
from hive.reconcile.sandboxpolicy import PolicyPlan, plan_policy
from hive.reconcile.sandboxpolicy import plan_timed_out as policy_plan_timed_out
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


@dataclass(frozen=True)
class ToolRun:
    """When to reconcile the tool again by itself: to read OpenAPI documents again."""

    recheck_after_s: float | None = None


async def reconcile_tool(namespace: str, tool: str) -> ToolRun:
    """Every version of `tool` at once: ordering and the migration chain span them all."""
    client = STATE.client()
    objects = [
        o
        for o in await list_hive_objects(client, "ToolVersion", namespace)
        if (o.get("spec") or {}).get("tool") == tool and not o["metadata"].get("deletionTimestamp")
    ]
    teams = await list_hive_objects(client, "AgentTeam", namespace)
    window_s = STATE.require_settings().tools.calls_window_s
    statuses = plan_tool(objects, teams, _now(), window_s)
    rechecks: list[float] = []
    for obj in objects:
        status = statuses.get(obj["metadata"]["name"])
        if status is not None:
            status, recheck = await with_openapi_functions(
                client, obj, status, _now(), STATE.require_settings().operator
            )
            if recheck is not None:
                rechecks.append(recheck)
            await _write_status("ToolVersion", obj, without_session_fields(status.wire()))
    await DISCOVERY.sync(namespace, tool, objects)  # kind mcp: sessions with the servers
    return ToolRun(min(rechecks, default=None))


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
    timeout_s = STATE.require_settings().operator.plan_timeout_s
    planning = asyncio.to_thread(
        plan_policy, owner, spec, obj.get("status"), teams, _now(), answers
    )
    try:  # off the event loop, as the teams' plans (hive.operator.teams)
        plan = await asyncio.wait_for(planning, timeout_s)
    except TimeoutError:
        log.warning("SandboxPolicy %s/%s: planning took over %gs", namespace, name, timeout_s)
        timed_out = policy_plan_timed_out(owner, obj.get("status"), timeout_s, _now())
        await _write_status("SandboxPolicy", obj, timed_out.wire())
        return None
    if plan.runtime_class is not None and await ensure_absent_or_create(client, plan.runtime_class):
        log.info("created RuntimeClass %s", plan.runtime_class["metadata"]["name"])
    await apply_objects(client, plan.children)
    keep = {(c["kind"], c["metadata"]["name"]) for c in plan.children}
    labels = {POLICY_LABEL: name, "app.kubernetes.io/managed-by": MANAGED_BY}
    await prune(client, namespace, labels, meta["uid"], keep, ("NetworkPolicy",))
    await _write_status("SandboxPolicy", obj, plan.status.wire())
    return plan


@dataclass(frozen=True)
class StoreRun:
    """When to reconcile the store again by itself: its next consolidation, or soon for a
    managed backend that does not answer yet."""

    recheck_after_s: float | None = None


def _backend_settings() -> BackendSettings:
    operator = STATE.require_settings().operator
    return BackendSettings(
        weaviate_image=operator.managed_stores.weaviate_image,
        redis_image=operator.managed_stores.redis_image,
        image_pull_policy=operator.pod_pull_policy,
        node_selector=operator.pod_node_selector,
        tolerations=tuple(operator.pod_tolerations),
    )


@dataclass(frozen=True)
class ManagedBackend:
    """A managed store's backend as the operator found it after applying it."""

    ready: Condition  # BackendReady
    cluster_ip: str | None  # its Service's, which the probe goes to


async def run_backend(obj: dict[str, Any], store: MemoryStoreSpec) -> ManagedBackend:
    """Apply a managed store's StatefulSet and Service; their state now."""
    client = STATE.client()
    meta = obj["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    owner = Owner("MemoryStore", name, namespace, meta["uid"])
    await apply_objects(client, backend_objects(owner, store, _backend_settings()))
    stateful_set = await get_object(client, "StatefulSet", namespace, backend_name(name))
    claim = await get_object(client, "PersistentVolumeClaim", namespace, claim_name(name))
    service = await get_object(client, "Service", namespace, backend_name(name))
    generation = meta.get("generation", 0)
    ip = ((service or {}).get("spec") or {}).get("clusterIP")
    return ManagedBackend(
        backend_condition(stateful_set, claim, generation=generation, now=_now()),
        ip if isinstance(ip, str) and ip and ip != "None" else None,
    )


async def reconcile_store(namespace: str, name: str) -> StoreRun | None:
    """Run a managed store's backend; probe the store's backend with the credentials of its
    Secret; consolidate it when its schedule says so; write what was found and done."""
    client = STATE.client()
    obj = await get_hive_object(client, "MemoryStore", namespace, name)
    if obj is None or obj["metadata"].get("deletionTimestamp"):
        return None
    spec = obj.get("spec") or {}
    generation = obj["metadata"].get("generation", 0)
    probe: BackendProbe | None = None
    credentials: Credentials | None = None
    more: list[Condition] = []
    managed = False
    try:
        store = parse_store(spec)
    except ValueError:
        store = None
    if store is not None and store.managed:
        managed = True
        backend = await run_backend(obj, store)
        more.append(backend.ready)
        store = resolved_spec(name, namespace, store, cluster_ip=backend.cluster_ip)
    if store is not None:
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
            probe = await _probe(store, credentials)
    now = _now()

    def status_with(probe: BackendProbe | None) -> MemoryStoreStatus:
        wire = resolved_wire(name, namespace, spec)
        return store_status(
            wire, obj.get("status"), probe, generation=generation, now=now, more=more
        )

    status = status_with(probe)
    run = StoreRun()
    if store is not None and store.consolidation is not None:
        previous = obj.get("status") or {}
        schedule = store.consolidation.schedule
        last = parse_time(previous.get("lastConsolidation"))
        counts = previous.get("lastConsolidationResult")
        created = parse_time(obj["metadata"].get("creationTimestamp")) or now
        if (
            probe is not None
            and probe.reachable
            and consolidation_due(schedule, last, created, now)
        ):
            summarize = store.consolidation.summarize
            summarizer_key: str | SummarizerKeyMissing | None = None
            if summarize is not None and summarize.secret_ref is not None:
                ref = summarize.secret_ref
                data = await read_secret(client, namespace, ref.name)
                summarizer_key = (data or {}).get(ref.key) or SummarizerKeyMissing(
                    f"spec.consolidation.summarize.secretRef: Secret '{ref.name}' "
                    + ("not found" if data is None else f"has no key '{ref.key}'")
                )
            counts = await consolidate_store(
                name,
                store,
                credentials,
                summarizer_key=summarizer_key,
                embeddings_endpoint=STATE.require_settings().operator.embeddings_endpoint,
            )
            last = now
            # what the store holds now, not before the consolidation merged and dropped
            probe = await _probe(store, credentials)
            status = status_with(probe)
        status = status.model_copy(
            update={
                "last_consolidation": last,
                "last_consolidation_result": (
                    ConsolidationCounts.model_validate(counts) if counts else None
                ),
                "next_consolidation": next_consolidation(schedule, now),
            }
        )
        run = StoreRun(seconds_until_next(schedule, now))
    if managed and (probe is None or not probe.reachable):
        # a backend starting up, or its Service not routed yet: probed again soon, not at the
        # resync
        soon = STATE.require_settings().operator.managed_stores.recheck_s
        run = StoreRun(min(run.recheck_after_s or soon, soon))
    await _write_status("MemoryStore", obj, status.wire())
    return run


async def _probe(store: MemoryStoreSpec, credentials: Credentials | None) -> BackendProbe:
    settings = STATE.require_settings().operator
    return await probe_store(
        store,
        credentials,
        timeout_s=settings.memory_probe_timeout_s,
        count_limit=settings.memory_count_limit,
    )


@dataclass(frozen=True)
class SummarizerKeyMissing:
    """The Secret of consolidation.summarize.secretRef, or its key, is missing: the
    consolidation runs without summaries and reports this."""

    reason: str


async def consolidate_store(
    name: str,
    store: MemoryStoreSpec,
    credentials: Credentials | None,
    *,
    summarizer_key: str | SummarizerKeyMissing | None = None,
    embeddings_endpoint: str | None = None,
) -> dict[str, Any]:
    """One consolidation: expired, forgotten and duplicate memories, and with
    consolidation.summarize clusters summarised by its model (API key `summarizer_key`); its
    counts, or the error that stopped it (a model's error keeps the other steps' counts).

    Summaries are embedded at `embeddings_endpoint` (the operator's, shared with teams) when
    set; else they take the centroid of their sources' stored vectors, so that the operator
    needs no embedding model of its own."""
    from hive.runtime.memory.consolidation import StoredVectorsOnly, consolidate
    from hive.runtime.memory.embeddings import Embedder, OpenAIEmbeddings
    from hive.runtime.memory.semantic import SemanticMemory, open_backend
    from hive.runtime.models import OpenAICompatible

    config = store.consolidation
    summarize = config.summarize if config is not None else None
    missing_key = summarizer_key if isinstance(summarizer_key, SummarizerKeyMissing) else None
    model: OpenAICompatible | None = None
    embedder: Embedder = StoredVectorsOnly(store.embedding)
    if summarize is not None and missing_key is None:
        model = OpenAICompatible(
            summarize.endpoint,
            summarize.model,
            api_key=summarizer_key if isinstance(summarizer_key, str) else None,
        )
        if embeddings_endpoint:
            embedder = OpenAIEmbeddings(
                embeddings_endpoint,
                model=store.embedding.model,
                dimensions=store.embedding.dimensions,
                start_wait_s=0,
            )

    backend = open_backend(
        name,
        store,
        secret=credentials.secret if credentials else None,
        username=credentials.username if credentials else None,
    )
    memory = SemanticMemory(name, store, backend, embedder)
    try:
        result = await consolidate(
            memory,
            summarizer=model,
            cluster_threshold=summarize.cluster_threshold if summarize else 0.75,
            min_cluster=summarize.min_cluster if summarize else 3,
        )
    except HiveError as exc:
        log.warning("MemoryStore %s: consolidation failed: %s", name, exc)
        return {"before": 0, "after": 0, "error": str(exc)[:1000]}
    finally:
        await memory.close()
        if model is not None:
            await model.aclose()
        if isinstance(embedder, OpenAIEmbeddings):
            await embedder.aclose()
    counts = result.wire()
    if missing_key is not None:
        counts["error"] = f"summaries: {missing_key.reason}"
    if "error" in counts:
        log.warning("MemoryStore %s consolidated, with an error: %s", name, counts)
    else:
        log.info("MemoryStore %s consolidated: %s", name, counts)
    return counts
