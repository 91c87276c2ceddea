"""The operator consolidates a MemoryStore on its schedule, against the real API server and a
real Weaviate: a store whose consolidation is due is consolidated (duplicates merged) and its
status says when and what; one that is not due is left alone and reconciled again at the next
cron time. With consolidation.summarize, the scripted model server summarises a cluster, its API
key read from a real Secret, and the status counts the summaries."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hive.api.memorystore import MemoryStoreSpec
from hive.dev.weaviate import DevWeaviate
from hive.kube.resources import apply_crds
from hive.operator.others import reconcile_store
from hive.operator.state import STATE
from hive.runtime.memory.embeddings import LocalOnnxEmbedder
from hive.runtime.memory.semantic import SemanticMemory, open_backend
from hive.settings import KubeSettings, OperatorSettings, Settings
from tests.scripted_model import scripted_model
from tests.support import Cluster

pytestmark = pytest.mark.integration

NS = "memory-schedule"


@pytest.fixture(scope="module")
def operator_state(cluster: Cluster) -> Iterator[None]:
    apply_crds(cluster.client)
    cluster.kubectl("create", "namespace", NS, check=False)
    before = (STATE.settings, STATE._client)
    STATE.settings = Settings(
        kube=KubeSettings(kubeconfig=cluster.kubeconfig),
        operator=OperatorSettings(memory_probe_timeout_s=5),
    )
    STATE._client = None
    try:
        yield
    finally:
        STATE.settings, STATE._client = before


def status(cluster: Cluster, name: str) -> dict[str, Any]:
    got = cluster.kubectl("get", "memorystore", name, "-n", NS, "-o", "json")
    found: dict[str, Any] = json.loads(got.stdout).get("status") or {}
    return found


async def test_a_due_store_is_consolidated_and_the_next_run_is_scheduled(
    cluster: Cluster, operator_state: None, weaviate: DevWeaviate, tmp_path: Path
) -> None:
    spec: dict[str, Any] = {
        "backend": "weaviate",
        "connection": {"endpoint": weaviate.url, "grpcPort": weaviate.grpc_port},
        "collection": "ScheduledNotes",
        "consolidation": {"schedule": "0 3 * * *", "similarityThreshold": 0.9},
    }
    memory = SemanticMemory(
        "nightly",
        MemoryStoreSpec.model_validate(spec),
        open_backend("nightly", MemoryStoreSpec.model_validate(spec)),
        LocalOnnxEmbedder(),
    )
    try:
        await memory.store("Deploys freeze on Friday afternoons")
        await memory.store("Deploys freeze on Friday afternoons.")
        await memory.store("The coffee machine is on the second floor")
    finally:
        await memory.close()
    manifest = {
        "apiVersion": "hive.dev/v1alpha1",
        "kind": "MemoryStore",
        "metadata": {"name": "nightly", "namespace": NS},
        "spec": spec,
    }
    path = tmp_path / "store.json"
    path.write_text(json.dumps(manifest))
    cluster.kubectl("apply", "-f", str(path))

    # Just created: the first consolidation is at the next 03:00, nothing happens now.
    run = await reconcile_store(NS, "nightly")
    assert run is not None
    assert run.recheck_after_s is not None
    assert 0 < run.recheck_after_s <= 86400
    first = status(cluster, "nightly")
    assert "lastConsolidation" not in first
    next_at = dt.datetime.fromisoformat(first["nextConsolidation"].replace("Z", "+00:00"))
    assert (next_at.hour, next_at.minute) == (3, 0)

    # The last consolidation was two days ago: it is due.
    long_ago = (dt.datetime.now(dt.UTC) - dt.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    cluster.kubectl(
        "patch", "memorystore", "nightly", "-n", NS, "--subresource=status", "--type=merge",
        "-p", json.dumps({"status": {"lastConsolidation": long_ago}}),
    )  # fmt: skip
    await reconcile_store(NS, "nightly")
    done = status(cluster, "nightly")
    assert done["lastConsolidation"] > long_ago
    assert done["lastConsolidationResult"] == {
        "before": 3,
        "after": 2,
        "expired": 0,
        "dropped": 0,
        "merged": 1,
        "summaries": 0,
        "summarized": 0,
    }
    assert done["objectCount"] == 2  # what the store holds after the consolidation

    # Reconciled again the same day: not due, the counts stay.
    await reconcile_store(NS, "nightly")
    again = status(cluster, "nightly")
    assert again["lastConsolidation"] == done["lastConsolidation"]
    assert again["lastConsolidationResult"] == done["lastConsolidationResult"]


def due(cluster: Cluster, name: str) -> None:
    long_ago = (dt.datetime.now(dt.UTC) - dt.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    cluster.kubectl(
        "patch", "memorystore", name, "-n", NS, "--subresource=status", "--type=merge",
        "-p", json.dumps({"status": {"lastConsolidation": long_ago}}),
    )  # fmt: skip


async def test_a_due_store_with_summarize_is_summarised_by_its_model(
    cluster: Cluster, operator_state: None, weaviate: DevWeaviate, tmp_path: Path
) -> None:
    related = [
        "The CI pipeline runs the linter on every push",
        "The CI pipeline runs the unit tests on every push",
        "The CI pipeline runs the integration tests on every push",
    ]
    with scripted_model([{"content": "The CI lints and tests each push"}]) as model:
        spec: dict[str, Any] = {
            "backend": "weaviate",
            "connection": {"endpoint": weaviate.url, "grpcPort": weaviate.grpc_port},
            "collection": "SummarisedNotes",
            "consolidation": {
                "schedule": "0 3 * * *",
                "summarize": {
                    "endpoint": model.url,
                    "model": "summarizer",
                    "secretRef": {"name": "summarizer-key", "key": "token"},
                    "clusterThreshold": 0.6,
                },
            },
        }
        parsed = MemoryStoreSpec.model_validate(spec)
        memory = SemanticMemory(
            "summarised", parsed, open_backend("summarised", parsed), LocalOnnxEmbedder()
        )
        try:
            for text in related:
                await memory.store(text)
            await memory.store("The coffee machine is on the second floor")
        finally:
            await memory.close()
        cluster.kubectl(
            "create", "secret", "generic", "summarizer-key", "-n", NS, "--from-literal=token=sk-1"
        )
        manifest = {
            "apiVersion": "hive.dev/v1alpha1",
            "kind": "MemoryStore",
            "metadata": {"name": "summarised", "namespace": NS},
            "spec": spec,
        }
        path = tmp_path / "store.json"
        path.write_text(json.dumps(manifest))
        cluster.kubectl("apply", "-f", str(path))
        await reconcile_store(NS, "summarised")
        due(cluster, "summarised")
        await reconcile_store(NS, "summarised")
    result = status(cluster, "summarised")["lastConsolidationResult"]
    assert result == {
        "before": 4,
        "after": 5,
        "expired": 0,
        "dropped": 0,
        "merged": 0,
        "summaries": 1,
        "summarized": 3,
        "summaryVectors": "centroid",  # the operator here has no embeddings endpoint
    }
    assert model.authorizations == ["Bearer sk-1"]
