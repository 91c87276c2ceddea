"""The agents of a team with spec.memory.documents that list search-documents get the store in
their configuration (a managed store at its Service), its API key from the store's Secret and
egress to its ports; a missing or non-weaviate store is a reason naming the field. A store's
change reaches exactly the teams that name it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import yaml

from hive.reconcile.agentteam import AgentPodSettings, TeamObserved, TeamPlan, plan_team
from hive.reconcile.memorybackend import resolved_wire
from hive.reconcile.memorywiring import (
    DOCUMENTS_KEY_ENV,
    referenced_stores,
    store_digest,
    teams_referencing,
)
from hive.reconcile.meta import Owner
from hive.runtime.pod import PodConfig
from hive.runtime.rag.agents import pod_documents
from hive.settings import Settings

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
OWNER = Owner("AgentTeam", "ops", "default", "uid-1", generation=2)
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


def plan(spec: dict[str, Any], stores: dict[str, Any]) -> TeamPlan:
    pods = AgentPodSettings(image="hive:test")
    return plan_team(OWNER, spec, None, TeamObserved(memory_stores=stores), pods, T0)


def of_agent(p: TeamPlan, kind: str, agent: str) -> dict[str, Any]:
    return next(
        c
        for c in p.children
        if c["kind"] == kind and c["metadata"]["labels"].get("hive.dev/agent") == agent
    )


def config(p: TeamPlan, agent: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(of_agent(p, "ConfigMap", agent)["data"]["agent.yaml"])
    return loaded


def env(p: TeamPlan, agent: str) -> dict[str, Any]:
    container = of_agent(p, "Deployment", agent)["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def egress_ports(p: TeamPlan, agent: str) -> set[int]:
    policy = of_agent(p, "NetworkPolicy", agent)
    return {port["port"] for rule in policy["spec"]["egress"] for port in rule.get("ports", [])}


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
    path.write_text(of_agent(p, "ConfigMap", "reader")["data"]["agent.yaml"])
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
