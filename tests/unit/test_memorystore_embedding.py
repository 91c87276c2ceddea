"""A MemoryStore's spec.embedding: a model that gives vectors of one size only is refused with
another size (admission and the store's Ready condition name the field); models that can
shorten their vectors, and models Hive does not know, are taken at the size the store names."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from hive.reconcile.admission import check_memory_store
from hive.reconcile.memorystore import store_status

WEAVIATE: dict[str, Any] = {
    "backend": "weaviate",
    "connection": {"endpoint": "http://weaviate.data:8080"},
    "collection": "AgentMemory",
}


def with_embedding(model: str, dimensions: int) -> dict[str, Any]:
    return {**WEAVIATE, "embedding": {"model": model, "dimensions": dimensions}}


@pytest.mark.parametrize(
    ("model", "dimensions", "size"),
    [
        ("all-MiniLM-L6-v2", 768, 384),
        ("sentence-transformers/all-mpnet-base-v2", 384, 768),
        ("BAAI/bge-large-en-v1.5", 768, 1024),
        ("text-embedding-ada-002", 3072, 1536),
    ],
)
def test_a_model_of_one_size_with_another_is_refused_naming_the_field(
    model: str, dimensions: int, size: int
) -> None:
    problem = check_memory_store(with_embedding(model, dimensions))
    assert problem == (
        f"spec.embedding.dimensions: {model} gives {size}-dimensional vectors, not {dimensions}"
    )


@pytest.mark.parametrize(
    ("model", "dimensions"),
    [
        ("all-MiniLM-L6-v2", 384),
        ("sentence-transformers/all-MiniLM-L6-v2", 384),
        ("text-embedding-3-small", 256),  # shortened, as OpenAI's v3 models allow
        ("team-embedder", 99),  # not known here: the endpoint answers for it
    ],
)
def test_right_sizes_and_unknown_models_are_accepted(model: str, dimensions: int) -> None:
    assert check_memory_store(with_embedding(model, dimensions)) is None


def test_the_store_is_not_ready_with_the_field_named() -> None:
    spec = with_embedding("all-MiniLM-L6-v2", 1536)
    status = store_status(
        spec, None, None, generation=1, now=dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    )
    (ready,) = [c for c in status.wire()["conditions"] if c["type"] == "Ready"]
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
    assert "spec.embedding.dimensions: all-MiniLM-L6-v2 gives 384" in ready["message"]
