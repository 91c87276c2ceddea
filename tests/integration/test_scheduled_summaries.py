"""The operator's scheduled consolidation with consolidation.summarize: a real Weaviate on
loopback, the scripted model server as the summariser, and for the embeddings path a real
`hive model serve --embeddings` process; the operator's own function (consolidate_store) runs
the pass, and its counts are what status.lastConsolidationResult gets."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from hive.api.memorystore import ConsolidationCounts, MemoryStoreSpec
from hive.dev.weaviate import DevWeaviate
from hive.operator.others import SummarizerKeyMissing, consolidate_store
from hive.runtime.memory.embeddings import LocalOnnxEmbedder
from hive.runtime.memory.semantic import SemanticMemory, open_backend
from tests.scripted_model import scripted_model
from tests.support import embeddings_server

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

RELATED = [
    "The CI pipeline runs the linter on every push",
    "The CI pipeline runs the unit tests on every push",
    "The CI pipeline runs the integration tests on every push",
]
SUMMARY = "The CI runs lint, unit tests and integration tests on each push"
_names = iter(range(10_000))


@pytest.fixture(scope="module")
def served_embeddings() -> Iterator[str]:
    """Base URL of a `hive model serve --embeddings` process on a free loopback port."""
    with embeddings_server() as url:
        yield url


def store_spec(weaviate: DevWeaviate, model_url: str, **summarize: Any) -> MemoryStoreSpec:
    return MemoryStoreSpec.model_validate(
        {
            "backend": "weaviate",
            "connection": {"endpoint": weaviate.url, "grpcPort": weaviate.grpc_port},
            "collection": f"Summaries{next(_names)}",
            "consolidation": {
                "schedule": "0 3 * * *",
                "summarize": {
                    "endpoint": model_url,
                    "model": "summarizer",
                    "clusterThreshold": 0.6,
                    "minCluster": 3,
                    **summarize,
                },
            },
        }
    )


async def fill(spec: MemoryStoreSpec, embedder: LocalOnnxEmbedder) -> list[str]:
    """The related memories (their ids), a duplicate of the first and one unrelated memory."""
    memory = SemanticMemory("notes", spec, open_backend("notes", spec), embedder)
    try:
        ids = [(await memory.store(text)).id for text in RELATED]
        await memory.store(RELATED[0] + ".", importance=0.2)  # merged into the first
        await memory.store("Lunch is at noon in the big room")
    finally:
        await memory.close()
    return ids


async def stored(spec: MemoryStoreSpec, embedder: LocalOnnxEmbedder) -> list[Any]:
    memory = SemanticMemory("notes", spec, open_backend("notes", spec), embedder)
    try:
        return list(await memory.records(vectors=True, limit=50))
    finally:
        await memory.close()


async def test_scheduled_consolidation_summarises_a_cluster_with_the_centroid_vector(
    weaviate: DevWeaviate, embedder: LocalOnnxEmbedder
) -> None:
    with scripted_model([{"content": SUMMARY}]) as model:
        spec = store_spec(weaviate, model.url, secretRef={"name": "model-key"})
        sources = await fill(spec, embedder)
        counts = await consolidate_store("notes", spec, None, summarizer_key="sk-test")
        again = await consolidate_store("notes", spec, None, summarizer_key="sk-test")
    assert counts == {
        "before": 5,
        "after": 5,
        "expired": 0,
        "dropped": 0,
        "merged": 1,
        "summaries": 1,
        "summarized": 3,
        "summary_vectors": "centroid",
    }
    wire = ConsolidationCounts.model_validate(counts).wire()
    assert (wire["summaries"], wire["summarized"], wire["summaryVectors"]) == (1, 3, "centroid")
    [asked] = model.requests  # the second pass found nothing left to summarise
    assert all(text in asked["messages"][-1]["content"] for text in RELATED)
    assert model.authorizations == ["Bearer sk-test"]
    assert (again["summaries"], again["after"]) == (0, 5)
    records = {r.id: r for r in await stored(spec, embedder)}
    [summary] = [r for r in records.values() if r.metadata.get("kind") == "summary"]
    assert summary.content == SUMMARY
    assert set(summary.sources) == set(sources)
    assert all(records[s].metadata["summarized_into"] == summary.id for s in sources)
    unit = [np.asarray(records[s].vector) / np.linalg.norm(records[s].vector) for s in sources]
    centroid = np.mean(unit, axis=0)
    assert np.allclose(summary.vector, centroid / np.linalg.norm(centroid), atol=1e-4)


async def test_summaries_are_embedded_at_the_operators_embeddings_endpoint(
    weaviate: DevWeaviate, embedder: LocalOnnxEmbedder, served_embeddings: str
) -> None:
    with scripted_model([{"content": SUMMARY}]) as model:
        spec = store_spec(weaviate, model.url)
        await fill(spec, embedder)
        counts = await consolidate_store("notes", spec, None, embeddings_endpoint=served_embeddings)
    assert (counts["summaries"], counts["summary_vectors"]) == (1, "embeddings")
    [summary] = [r for r in await stored(spec, embedder) if r.metadata.get("kind") == "summary"]
    [expected] = await embedder.embed([SUMMARY])
    assert float(np.dot(summary.vector, expected)) > 0.99


async def test_a_failing_model_is_reported_and_the_other_steps_still_count(
    weaviate: DevWeaviate, embedder: LocalOnnxEmbedder
) -> None:
    with scripted_model([{"status": 400}]) as model:
        spec = store_spec(weaviate, model.url)
        await fill(spec, embedder)
        counts = await consolidate_store("notes", spec, None)
    assert (counts["before"], counts["merged"], counts["after"]) == (5, 1, 4)
    assert (counts["summaries"], counts["summarized"]) == (0, 0)
    assert counts["error"].startswith("summaries: ")
    assert "400" in counts["error"]
    assert ConsolidationCounts.model_validate(counts).error == counts["error"]
    assert not [r for r in await stored(spec, embedder) if r.metadata.get("kind") == "summary"]

    missing = SummarizerKeyMissing(
        "spec.consolidation.summarize.secretRef: Secret 'model-key' not found"
    )
    counts = await consolidate_store("notes", spec, None, summarizer_key=missing)
    assert counts["error"] == (
        "summaries: spec.consolidation.summarize.secretRef: Secret 'model-key' not found"
    )
    assert (counts["before"], counts["after"], counts["summaries"]) == (4, 4, 0)
