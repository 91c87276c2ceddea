"""A team's agent pods reach their semantic memory: the MemoryStore (the team's storeRef or an
agent's own memoryRef) in the agent's configuration, its credential from the store's Secret,
egress to its ports; a missing store is a clear reason. The pod reads that configuration back
into the same store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hive.errors import InvalidInput
from hive.reconcile.agentteam import AgentPodSettings
from hive.reconcile.memorywiring import SECRET_ENV, USERNAME_ENV, referenced_stores
from hive.runtime.pod import PodConfig
from tests.unit.planned import child, config, egress_ports, env, plan, ready

WEAVIATE = {
    "backend": "weaviate",
    "connection": {
        "endpoint": "http://weaviate.data:8080",
        "grpcPort": 50052,
        "secretRef": {"name": "weaviate-key", "key": "api-key"},
    },
    "collection": "OpsNotes",
    "retention": {"ttl": "30d"},
}
REDIS = {
    "backend": "redis",
    "connection": {"endpoint": "redis://redis.data:6380/1", "secretRef": {"name": "redis-pw"}},
    "collection": "notes",
}


def spec(team_store: str | None = "notes", agent_store: str | None = None) -> dict[str, Any]:
    lead: dict[str, Any] = {"name": "lead", "role": "senior", "subordinates": ["helper"]}
    helper: dict[str, Any] = {"name": "helper", "role": "junior"}
    if agent_store:
        helper["memoryRef"] = {"name": agent_store}
    out: dict[str, Any] = {
        "goal": "keep staging up",
        "model": {"name": "m", "endpoint": "http://vllm:8000/v1"},
        "agents": [lead, helper],
    }
    if team_store:
        out["memory"] = {"storeRef": {"name": team_store}, "recallK": 4}
    return out


def test_every_agent_gets_the_teams_store_its_key_and_egress_to_it() -> None:
    p = plan(spec(), {"notes": WEAVIATE})
    for agent in ("lead", "helper"):
        assert config(p, agent)["memoryStore"] == {"name": "notes", "spec": WEAVIATE}
        assert config(p, agent)["memory"]["recallK"] == 4
        assert env(p, agent)[SECRET_ENV] == {
            "secretKeyRef": {"name": "weaviate-key", "key": "api-key"}
        }
        assert {8080, 50052} <= egress_ports(p, agent)
    assert ready(p).reason != "MemoryStoreNotFound"


def test_an_agents_own_store_wins_and_a_redis_user_is_optional() -> None:
    p = plan(spec(agent_store="private"), {"notes": WEAVIATE, "private": REDIS})
    assert config(p, "lead")["memoryStore"]["name"] == "notes"
    assert config(p, "helper")["memoryStore"]["name"] == "private"
    assert env(p, "helper")[USERNAME_ENV] == {
        "secretKeyRef": {"name": "redis-pw", "key": "username", "optional": True}
    }
    assert 6380 in egress_ports(p, "helper")
    assert 6380 not in egress_ports(p, "lead")


def test_a_team_without_memory_gets_nothing_of_it() -> None:
    p = plan(spec(None), {})
    assert "memoryStore" not in config(p, "lead")
    assert "memory" not in config(p, "lead")
    assert SECRET_ENV not in env(p, "lead")


def test_a_missing_store_is_named_in_the_teams_ready_condition() -> None:
    p = plan(spec(agent_store="gone"), {"notes": WEAVIATE})
    assert (ready(p).status, ready(p).reason) == ("False", "MemoryStoreNotFound")
    assert "spec.agents[1].memoryRef: MemoryStore 'gone' not found" in ready(p).message


def test_the_operator_reads_every_store_a_team_names() -> None:
    assert referenced_stores(spec(agent_store="private")) == {"notes", "private"}
    assert referenced_stores(spec(None)) == set()


def test_the_pod_reads_its_store_back_and_refuses_a_missing_one(tmp_path: Path) -> None:
    p = plan(spec(), {"notes": WEAVIATE})
    path = tmp_path / "agent.yaml"
    path.write_text(child(p, "ConfigMap", "helper")["data"]["agent.yaml"])
    loaded = PodConfig.load(path, "helper")
    assert loaded.memory_store == {"name": "notes", "spec": WEAVIATE}
    assert loaded.spec.memory.store_ref is not None
    assert loaded.spec.memory.recall_k == 4

    from hive.runtime.memory.team import TeamMemory

    with pytest.raises(InvalidInput, match=r"spec.memory.storeRef: MemoryStore 'notes' not found"):
        TeamMemory(team=loaded.spec, stores={}, embedder=lambda: None, run="r")  # type: ignore[arg-type,return-value]


def test_the_pod_opens_its_store_with_its_embedder(tmp_path: Path) -> None:
    from hive.cli.agent import pod_memory
    from hive.runtime.resilience.calls import EMPTY
    from hive.settings import Settings

    p = plan(spec(), {"notes": WEAVIATE})
    path = tmp_path / "agent.yaml"
    path.write_text(child(p, "ConfigMap", "lead")["data"]["agent.yaml"])
    config = PodConfig.load(path, "lead")
    settings = Settings.model_validate({"agent": {"embeddings": {"endpoint": "http://emb:8000"}}})
    memory = pod_memory(config, settings, EMPTY)
    assert memory is not None
    lead = config.agent_spec("lead")
    assert [t.name for t in memory.tools(lead)] == ["remember", "recall"]
    assert memory.recall(lead) is not None
    assert memory.run.startswith("ops-")

    wrong = Settings.model_validate({"agent": {"embeddings": {"dimensions": 768}}})
    with pytest.raises(InvalidInput, match=r"all-MiniLM-L6-v2 \(384 dimensions\), but the embed"):
        pod_memory(config, wrong, EMPTY)


def test_the_pod_asks_its_embeddings_endpoint_for_the_stores_model(tmp_path: Path) -> None:
    from hive.cli.agent import pod_memory
    from hive.runtime.memory.embeddings import OpenAIEmbeddings
    from hive.runtime.resilience.calls import EMPTY
    from hive.settings import Settings

    other = {**WEAVIATE, "embedding": {"model": "team-embedder-v2", "dimensions": 512}}
    p = plan(spec(), {"notes": other})
    path = tmp_path / "agent.yaml"
    path.write_text(child(p, "ConfigMap", "lead")["data"]["agent.yaml"])
    config = PodConfig.load(path, "lead")
    served = Settings.model_validate({"agent": {"embeddings": {"endpoint": "http://emb:8000"}}})
    memory = pod_memory(config, served, EMPTY)
    assert memory is not None
    embedder = memory.opened["notes"].embedder
    assert isinstance(embedder, OpenAIEmbeddings)
    assert (embedder.model, embedder.dimensions) == ("team-embedder-v2", 512)

    with pytest.raises(InvalidInput, match=r"team-embedder-v2 \(512 dimensions\), but the embed"):
        pod_memory(config, Settings(), EMPTY)  # the local model is all-MiniLM-L6-v2 only


def test_chaos_faults_can_aim_at_the_teams_store_and_an_agents_own() -> None:
    from hive.api.agentteam import AgentTeamSpec
    from hive.runtime.resilience.calls import CallKind
    from hive.runtime.resilience.faultspec import dependencies_of

    team = AgentTeamSpec.model_validate(spec(agent_store="private"))
    assert dependencies_of(team)[CallKind.MEMORY] == {"notes", "private"}


def test_agents_with_memory_embed_with_the_teams_embeddings_server_or_the_operators() -> None:
    p = plan(spec(), {"notes": WEAVIATE})
    server = next(
        c
        for c in p.children
        if c["kind"] == "Deployment" and c["metadata"]["name"] == "ops-embeddings"
    )
    (container,) = server["spec"]["template"]["spec"]["containers"]
    assert container["args"][:2] == ["model", "serve"]
    assert "--embeddings" in container["args"]
    assert container["resources"]["limits"]["memory"] == "768Mi"
    assert ("Service", "ops-embeddings") in {(c["kind"], c["metadata"]["name"]) for c in p.children}
    for agent in ("lead", "helper"):
        assert env(p, agent)["HIVE_AGENT__EMBEDDINGS__ENDPOINT"] == (
            "http://ops-embeddings.default.svc:8080"
        )
    shared = AgentPodSettings(image="hive:test", embeddings_endpoint="http://embed.ai:80")
    with_shared = plan(spec(), {"notes": WEAVIATE}, shared)
    assert "ops-embeddings" not in {c["metadata"]["name"] for c in with_shared.children}
    assert env(with_shared, "lead")["HIVE_AGENT__EMBEDDINGS__ENDPOINT"] == "http://embed.ai:80"
    without = plan(spec(team_store=None), {})
    assert "ops-embeddings" not in {c["metadata"]["name"] for c in without.children}
