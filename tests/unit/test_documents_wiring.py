"""The agents of a team with spec.memory.documents that list search-documents get the store in
their configuration (a managed store at its Service), its API key from the store's Secret and
egress to its ports; a missing or non-weaviate store is a reason naming the field. A store's
change reaches exactly the teams that name it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hive.reconcile.memorybackend import resolved_wire
from hive.reconcile.memorywiring import (
    DOCUMENTS_KEY_ENV,
    referenced_stores,
    store_digest,
    teams_referencing,
)
from hive.runtime.pod import PodConfig
from hive.runtime.rag.agents import pod_documents
from hive.settings import Settings
from tests.unit.planned import child, config, egress_ports, env, plan

DOCS = {
    "backend": "weaviate",
    "connection": {
        "endpoint": "http://weaviate.data:8080",
        "grpcPort": 50052,
        "secretRef": {"name": "weaviate-key", "key": "api-key"},
    },
    "collection": "Handbook",
}


def team(top_k: int | None = 4, store: str = "handbook") -> dict[str, Any]:
    documents: dict[str, Any] = {"storeRef": {"name": store}}
    if top_k is not None:
        documents["topK"] = top_k
    return {
        "goal": "answer from the handbook",
        "model": {"name": "m", "endpoint": "http://vllm:8000/v1"},
        "memory": {"documents": documents},
        "agents": [
            {
                "name": "lead",
                "role": "senior",
                "subordinates": ["reader"],
            },
            {"name": "reader", "role": "junior", "tools": [{"name": "search-documents"}]},
        ],
    }


def test_the_agent_listing_search_documents_gets_the_store_its_key_and_its_ports() -> None:
    p = plan(team(), {"handbook": DOCS})
    reader = config(p, "reader")
    assert reader["documentsStore"] == {"name": "handbook", "spec": DOCS}
    assert reader["memory"]["documents"] == {"storeRef": {"name": "handbook"}, "topK": 4}
    key = env(p, "reader")[DOCUMENTS_KEY_ENV]
    assert key == {"secretKeyRef": {"name": "weaviate-key", "key": "api-key"}}
    assert {8080, 50052} <= egress_ports(p, "reader")
    assert "HIVE_AGENT__EMBEDDINGS__ENDPOINT" in env(p, "reader")  # the team's embeddings
    lead = config(p, "lead")  # lists no search-documents: nothing of the store
    assert "documentsStore" not in lead
    assert DOCUMENTS_KEY_ENV not in env(p, "lead")


def test_a_managed_store_is_given_at_its_service() -> None:
    managed = {"backend": "weaviate", "managed": True, "collection": "Handbook"}
    p = plan(team(), {"handbook": resolved_wire("handbook", "default", managed)})
    spec = config(p, "reader")["documentsStore"]["spec"]
    assert spec["connection"]["endpoint"] == "http://hive-store-handbook.default.svc:8080"
    assert {8080, 50051} <= egress_ports(p, "reader")


def test_a_missing_or_redis_store_names_the_field() -> None:
    missing = plan(team(), {})
    ready = next(c for c in missing.status.conditions if c.type == "Ready")
    assert ready.reason == "MemoryStoreNotFound"
    assert "spec.memory.documents.storeRef: MemoryStore 'handbook' not found" in ready.message
    redis = {"backend": "redis", "connection": {"endpoint": "redis://r:6379"}, "collection": "h"}
    wrong = plan(team(), {"handbook": redis})
    ready = next(c for c in wrong.status.conditions if c.type == "Ready")
    assert "is redis; documents are kept in a weaviate store" in ready.message


def test_the_pod_reads_the_store_back_with_its_top_k(tmp_path: Path) -> None:
    p = plan(team(top_k=7), {"handbook": DOCS})
    path = tmp_path / "agent.yaml"
    path.write_text(child(p, "ConfigMap", "reader")["data"]["agent.yaml"])
    loaded = PodConfig.load(path, "reader")
    assert loaded.documents_store == {"name": "handbook", "spec": DOCS}
    documents = pod_documents(loaded, model=object(), settings=Settings())  # type: ignore[arg-type]
    assert documents is not None
    assert documents.settings.top_k == 7
    assert documents.spec.collection == "Handbook"


def stored(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": spec}


def test_a_store_reaches_exactly_the_teams_that_name_it() -> None:
    with_docs = stored("readers", team(store="handbook"))
    with_memory = stored("keepers", {"memory": {"storeRef": {"name": "handbook"}}, "agents": []})
    with_agent = stored("one", {"agents": [{"name": "a", "memoryRef": {"name": "handbook"}}]})
    learning = {"resilience": {"learning": {"memoryRef": {"name": "handbook"}}}, "agents": []}
    other = stored("other", {"memory": {"storeRef": {"name": "elsewhere"}}, "agents": []})
    teams = [with_docs, with_memory, with_agent, stored("learners", learning), other]
    assert teams_referencing(teams, "handbook") == ["keepers", "learners", "one", "readers"]
    assert referenced_stores(team(store="handbook")) == {"handbook"}


def test_only_what_teams_are_given_of_a_store_changes_its_digest() -> None:
    store = {"spec": DOCS, "status": {"ready": False, "objectCount": 1}}
    counted = {"spec": DOCS, "status": {"ready": False, "objectCount": 9}}
    assert store_digest(store) == store_digest(counted)
    assert store_digest(store) != store_digest({"spec": DOCS, "status": {"ready": True}})
    moved = {"spec": DOCS, "status": {"ready": False, "endpoint": "http://x:8080"}}
    assert store_digest(store) != store_digest(moved)
