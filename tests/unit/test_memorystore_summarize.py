"""spec.consolidation.summarize: what a MemoryStore's scheduled summaries need, and the error
naming the field when it is missing or wrong (the store's Ready condition: InvalidSpec)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from hive.api.memorystore import ConsolidationCounts
from hive.reconcile.memorystore import parse_store, store_status

WEAVIATE: dict[str, Any] = {
    "backend": "weaviate",
    "connection": {"endpoint": "http://weaviate.data:8080"},
    "collection": "AgentMemory",
}
SUMMARIZE: dict[str, Any] = {"endpoint": "http://models.ai:8000/v1", "model": "qwen"}


def with_summarize(**summarize: Any) -> dict[str, Any]:
    return {**WEAVIATE, "consolidation": {"schedule": "0 3 * * *", "summarize": summarize}}


def invalid_message(spec: dict[str, Any]) -> str:
    status = store_status(
        spec, None, None, generation=1, now=dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    )
    (ready,) = [c for c in status.wire()["conditions"] if c["type"] == "Ready"]
    assert ready["reason"] == "InvalidSpec"
    return str(ready["message"])


def test_defaults_and_a_key_in_a_secret() -> None:
    store = parse_store(with_summarize(**SUMMARIZE, secretRef={"name": "model-key"}))
    assert store.consolidation is not None
    summarize = store.consolidation.summarize
    assert summarize is not None
    assert (summarize.endpoint, summarize.model) == ("http://models.ai:8000/v1", "qwen")
    assert (summarize.cluster_threshold, summarize.min_cluster) == (0.75, 3)
    assert summarize.secret_ref is not None
    assert summarize.secret_ref.key == "api-key"


@pytest.mark.parametrize(
    ("summarize", "field"),
    [
        ({"model": "qwen"}, "spec.consolidation.summarize.endpoint"),
        ({"endpoint": "http://models.ai:8000/v1"}, "spec.consolidation.summarize.model"),
        ({**SUMMARIZE, "endpoint": "models.ai:8000"}, "spec.consolidation.summarize.endpoint"),
        ({**SUMMARIZE, "model": ""}, "spec.consolidation.summarize.model"),
        ({**SUMMARIZE, "clusterThreshold": 0}, "spec.consolidation.summarize.clusterThreshold"),
        ({**SUMMARIZE, "clusterThreshold": 1.5}, "spec.consolidation.summarize.clusterThreshold"),
        ({**SUMMARIZE, "minCluster": 1}, "spec.consolidation.summarize.minCluster"),
        ({**SUMMARIZE, "secretRef": {}}, "spec.consolidation.summarize.secretRef.name"),
        ({**SUMMARIZE, "teamRef": "a"}, "spec.consolidation.summarize.teamRef"),
    ],
)
def test_a_missing_or_invalid_field_is_named(summarize: dict[str, Any], field: str) -> None:
    assert invalid_message(with_summarize(**summarize)).startswith(field)


def test_the_status_counts_carry_summaries_and_how_their_vectors_were_made() -> None:
    counts = ConsolidationCounts.model_validate(
        {"before": 5, "after": 5, "merged": 1, "summaries": 1, "summarized": 3}
        | {"summary_vectors": "centroid", "error": "summaries: model down"}
    )
    assert counts.wire() == {
        "before": 5,
        "after": 5,
        "expired": 0,
        "dropped": 0,
        "merged": 1,
        "summaries": 1,
        "summarized": 3,
        "summaryVectors": "centroid",
        "error": "summaries: model down",
    }


def test_the_crd_requires_the_endpoint_and_the_model() -> None:
    from hive.api.crd import openapi_schema
    from hive.api.memorystore import MemoryStoreSpec

    schema = openapi_schema(MemoryStoreSpec)
    summarize = schema["properties"]["consolidation"]["properties"]["summarize"]
    assert sorted(summarize["required"]) == ["endpoint", "model"]
    assert summarize["properties"]["minCluster"]["minimum"] == 2
