"""A team's semantic memory in one process: the MemoryStores its agents use, opened once.

An agent uses the store its ``memoryRef`` names, else the team's ``spec.memory.storeRef``.
Such an agent gets the ``remember`` and ``recall`` tools (:mod:`hive.runtime.memory.tools`),
and its member recalls the ``spec.memory.recallK`` most relevant memories before each task.
`hive run` builds this from the MemoryStore documents of the team file; an agent pod from
the store its ConfigMap describes (``memoryStore``) and the credential the operator puts in
its environment (``HIVE_AGENT__MEMORY__SECRET``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hive.api.agentteam import AgentSpec, AgentTeamSpec, memory_store_ref
from hive.api.memorystore import MemoryStoreSpec
from hive.errors import InvalidInput
from hive.runtime.memory.embeddings import Embedder
from hive.runtime.memory.semantic import SemanticMemory, open_backend
from hive.runtime.memory.tools import memory_tools, task_recall
from hive.runtime.resilience.calls import EMPTY, Chain
from hive.runtime.tools import Tool
from hive.settings import MemorySettings


def agent_store_field(team: AgentTeamSpec, agent: AgentSpec) -> str:
    index = next(i for i, a in enumerate(team.agents) if a.name == agent.name)
    return f"spec.agents[{index}].memoryRef" if agent.memory_ref else "spec.memory.storeRef"


@dataclass
class TeamMemory:
    """The stores by name (their specs), the embedder they share, and the run's id."""

    team: AgentTeamSpec
    stores: Mapping[str, MemoryStoreSpec]
    embedder: Callable[[], Embedder]  # made on first use (the local model loads then)
    run: str
    settings: MemorySettings = field(default_factory=MemorySettings)
    chain: Chain = EMPTY
    clock: Callable[[], float] = time.time
    opened: dict[str, SemanticMemory] = field(default_factory=dict)
    _embedder: Embedder | None = None

    def __post_init__(self) -> None:
        for agent in self.team.agents:  # every reference resolves, before anything runs
            ref = memory_store_ref(self.team, agent)
            if ref is not None and ref.name not in self.stores:
                raise InvalidInput(
                    agent_store_field(self.team, agent),
                    f"MemoryStore '{ref.name}' not found (add its document to the team file)",
                )

    @property
    def loaded_embedder(self) -> Embedder | None:
        """The embedder the stores use, once one is open: working memory ranks with it too."""
        return self._embedder

    def memory_of(self, agent: AgentSpec) -> SemanticMemory | None:
        ref = memory_store_ref(self.team, agent)
        if ref is None:
            return None
        if ref.name not in self.opened:
            if self._embedder is None:
                self._embedder = self.embedder()
            spec = self.stores[ref.name]
            secret = self.settings.secret.get_secret_value() if self.settings.secret else None
            backend = open_backend(
                ref.name,
                spec,
                secret=secret,
                username=self.settings.username,
                timeout_s=self.settings.timeout_s,
                redis_scan_limit=self.settings.redis_scan_limit,
            )
            self.opened[ref.name] = SemanticMemory(
                ref.name,
                spec,
                backend,
                self._embedder,
                clock=self.clock,
                chain=self.chain,
                purge_every_s=self.settings.purge_expired_s,
            )
        return self.opened[ref.name]

    def tools(self, agent: AgentSpec) -> list[Tool]:
        memory = self.memory_of(agent)
        return memory_tools(memory, agent.name, self.run) if memory is not None else []

    def recall(self, agent: AgentSpec) -> Any:
        """The agent member's Recall, or None (no store, or recallK 0)."""
        memory = self.memory_of(agent)
        if memory is None or self.team.memory.recall_k == 0:
            return None
        return task_recall(memory, self.team.memory.recall_k)

    async def check(self) -> None:
        """Reach every opened store (creating its collection, checking its vector size): an
        unreachable or mismatched store is an error before anything runs."""
        for memory in self.opened.values():
            await memory.count()

    async def close(self) -> None:
        for memory in self.opened.values():
            await memory.close()
        self.opened.clear()
