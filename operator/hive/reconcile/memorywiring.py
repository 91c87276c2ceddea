"""How an agent pod reaches its semantic memory: the MemoryStore its team names, given to it.

An agent that uses a store (its ``memoryRef``, else the team's ``spec.memory.storeRef``) gets
in its ConfigMap a ``memoryStore`` entry: the store's name and its spec (endpoint, gRPC port,
collection, embedding, retention, consolidation), beside the team's ``memory``. The store's
``secretRef`` becomes the container's ``HIVE_AGENT__MEMORY__SECRET`` (and, for Redis, the
optional key ``username`` its ``HIVE_AGENT__MEMORY__USERNAME``), read by Kubernetes from the
Secret, never written into the Deployment. Its NetworkPolicy lets it reach the store's ports
(Weaviate: REST and gRPC; Redis: its port). A reference to a store that does not exist is a
problem the team reports (Ready False, MemoryStoreNotFound, naming the field and the store).

An agent that lists the tool ``search-documents`` in a team with ``spec.memory.documents``
gets a ``documentsStore`` entry the same way (the weaviate store whose collection ``hive rag
index`` filled), its API key as ``HIVE_RAG__WEAVIATE_API_KEY`` from the store's Secret, and the
store's ports. A managed store's spec arrives here with its Service as its endpoint
(hive.reconcile.memorybackend.resolved_wire).

A store that changes what its teams are given (its spec, readiness or endpoint) re-reconciles
the teams that name it: `store_digest` and `teams_referencing` tell the operator which.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from hive.api.agentteam import AgentSpec, AgentTeamSpec, memory_store_ref
from hive.api.memorystore import DEFAULT_GRPC_PORT, USERNAME_KEY

JSON = dict[str, Any]
SECRET_ENV = "HIVE_AGENT__MEMORY__SECRET"  # noqa: S105 - the variable's name, not a secret
USERNAME_ENV = "HIVE_AGENT__MEMORY__USERNAME"
DOCUMENTS_KEY_ENV = "HIVE_RAG__WEAVIATE_API_KEY"
DOCUMENT_TOOL = "search-documents"
DEFAULT_PORTS = {"http": 80, "https": 443, "redis": 6379, "rediss": 6379}


@dataclass(frozen=True)
class MemoryWiring:
    """The agent's ``memoryStore`` config entry, its env, the ports it must reach, or what is
    wrong."""

    config: JSON | None = None
    env: list[JSON] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)
    problem: tuple[str, str] | None = None  # (reason, message naming the field)
    documents: JSON | None = None  # the ``documentsStore`` entry (search_documents)


def store_ports(store: Mapping[str, Any]) -> list[int]:
    connection = store.get("connection") or {}
    try:
        parts = urlsplit(str(connection.get("endpoint") or ""))
        port = parts.port or DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        return []
    ports = [port] if port else []
    if store.get("backend") == "weaviate":
        ports.append(int(connection.get("grpcPort") or DEFAULT_GRPC_PORT))
    return sorted(set(ports))


def memory_wiring(
    team: AgentTeamSpec, agent: AgentSpec, index: int, stores: Mapping[str, Mapping[str, Any]]
) -> MemoryWiring:
    """How agent `index` of `team` reaches its store and its documents, from the MemoryStores
    observed (name -> spec); nothing for an agent without either."""
    semantic = _semantic_wiring(team, agent, index, stores)
    if semantic.problem is not None:
        return semantic
    documents = _documents_wiring(team, agent, stores)
    if documents.problem is not None or documents.documents is None:
        return documents if documents.problem is not None else semantic
    return MemoryWiring(
        semantic.config,
        semantic.env + documents.env,
        sorted(set(semantic.ports) | set(documents.ports)),
        documents=documents.documents,
    )


def _documents_wiring(
    team: AgentTeamSpec, agent: AgentSpec, stores: Mapping[str, Mapping[str, Any]]
) -> MemoryWiring:
    documents = team.memory.documents
    if documents is None or DOCUMENT_TOOL not in {t.name for t in agent.tools}:
        return MemoryWiring()
    name = documents.store_ref.name
    where = "spec.memory.documents.storeRef"
    store = stores.get(name)
    if store is None:
        return MemoryWiring(
            problem=("MemoryStoreNotFound", f"{where}: MemoryStore '{name}' not found")
        )
    if store.get("backend") != "weaviate":
        return MemoryWiring(
            problem=(
                "MemoryStoreNotFound",
                f"{where}: MemoryStore '{name}' is {store.get('backend')}; documents are kept "
                "in a weaviate store",
            )
        )
    env: list[JSON] = []
    secret = (store.get("connection") or {}).get("secretRef") or {}
    if secret.get("name"):
        key = {"name": secret["name"], "key": secret.get("key") or "api-key"}
        env.append({"name": DOCUMENTS_KEY_ENV, "valueFrom": {"secretKeyRef": key}})
    entry = {"name": name, "spec": dict(store)}
    return MemoryWiring(env=env, ports=store_ports(store), documents=entry)


def _semantic_wiring(
    team: AgentTeamSpec, agent: AgentSpec, index: int, stores: Mapping[str, Mapping[str, Any]]
) -> MemoryWiring:
    ref = memory_store_ref(team, agent)
    if ref is None:
        return MemoryWiring()
    where = f"spec.agents[{index}].memoryRef" if agent.memory_ref else "spec.memory.storeRef"
    store = stores.get(ref.name)
    if store is None:
        return MemoryWiring(
            problem=("MemoryStoreNotFound", f"{where}: MemoryStore '{ref.name}' not found")
        )
    config = {"name": ref.name, "spec": dict(store)}
    env: list[JSON] = []
    secret = (store.get("connection") or {}).get("secretRef") or {}
    if secret.get("name"):
        key = {"name": secret["name"], "key": secret.get("key") or "api-key"}
        env.append({"name": SECRET_ENV, "valueFrom": {"secretKeyRef": key}})
        if store.get("backend") == "redis":
            user = {"name": secret["name"], "key": USERNAME_KEY, "optional": True}
            env.append({"name": USERNAME_ENV, "valueFrom": {"secretKeyRef": user}})
    return MemoryWiring(config, env, store_ports(store))


def referenced_stores(spec: Mapping[str, Any]) -> set[str]:
    """Names of the MemoryStores a team's spec (as stored) names for semantic memory and for
    its documents."""
    names: set[str] = set()
    memory = spec.get("memory")
    ref = memory.get("storeRef") if isinstance(memory, dict) else None
    if isinstance(ref, dict) and isinstance(ref.get("name"), str):
        names.add(ref["name"])
    documents = memory.get("documents") if isinstance(memory, dict) else None
    ref = documents.get("storeRef") if isinstance(documents, dict) else None
    if isinstance(ref, dict) and isinstance(ref.get("name"), str):
        names.add(ref["name"])
    for agent in spec.get("agents") or []:
        own = agent.get("memoryRef") if isinstance(agent, dict) else None
        if isinstance(own, dict) and isinstance(own.get("name"), str):
            names.add(own["name"])
    return names


def store_digest(store: Mapping[str, Any]) -> str:
    """What a store's teams are given of it: its spec, whether it is ready, its endpoint. A
    change of it re-reconciles them (a status write that changes nothing of it does not)."""
    status = store.get("status") or {}
    seen = {
        "spec": store.get("spec") or {},
        "ready": status.get("ready"),
        "endpoint": status.get("endpoint"),
    }
    return json.dumps(seen, sort_keys=True, default=str)


def teams_referencing(teams: Iterable[Mapping[str, Any]], store: str) -> list[str]:
    """Names of the teams (objects as listed) that name MemoryStore `store` anywhere: their
    memory, an agent's memoryRef, their documents, or their error learning."""
    names = []
    for team in teams:
        spec = team.get("spec") or {}
        learning = ((spec.get("resilience") or {}).get("learning") or {}).get("memoryRef") or {}
        if store in referenced_stores(spec) or learning.get("name") == store:
            names.append(str(team["metadata"]["name"]))
    return sorted(names)
