"""The `remember` and `recall` tools an agent with a memory store gets, and the recall that
puts its most relevant memories into its context before each task.

``remember(content, importance=0.5, metadata={})`` stores a memory with the agent's name and
the run's id as its source; ``recall(query, k=5, filters={})`` returns the best memories with
their scores. :func:`task_recall` is a :data:`hive.runtime.teams.members.Recall`: before a
member works on a task it retrieves the top ``k`` memories for the task (at or above the
store's minScore) and the member puts their contents into its agent's context.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from hive.errors import HiveError
from hive.runtime.memory.semantic import SemanticMemory
from hive.runtime.tools import Tool

log = logging.getLogger(__name__)
REMEMBER = "remember"
RECALL = "recall"
MEMORY_TOOLS = frozenset({REMEMBER, RECALL})


def remember_tool(memory: SemanticMemory, agent: str, run: str) -> Tool:
    async def remember(
        content: str, importance: float = 0.5, metadata: dict[str, str] | None = None
    ) -> dict[str, Any]:
        record = await memory.store(
            content, importance=importance, metadata=metadata, agent=agent, run=run
        )
        return {"id": record.id, "stored": True}

    return Tool(
        name=REMEMBER,
        description="Store something worth knowing in later tasks and runs (a fact, a "
        "decision, a lesson learned). Later, recall finds it by meaning.",
        parameters={
            "type": "object",
            "properties": {
                "content": {"type": "string", "minLength": 1, "maxLength": 20000},
                "importance": {"type": "number", "minimum": 0, "maximum": 1},
                "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
            },
            "required": ["content"],
            "additionalProperties": False,
        },
        function=remember,
    )


def recall_tool(memory: SemanticMemory) -> Tool:
    async def recall(
        query: str, k: int = 5, filters: dict[str, str] | None = None
    ) -> list[dict[str, Any]]:
        found = await memory.retrieve(query, k, filters=filters)
        return [
            {
                "id": r.record.id,
                "content": r.record.content,
                "score": round(r.score, 4),
                "agent": r.record.agent,
                "metadata": dict(r.record.metadata),
            }
            for r in found
        ]

    return Tool(
        name=RECALL,
        description="Find what the team remembered earlier that is relevant to a query, most "
        "relevant first.",
        parameters={
            "type": "object",
            "properties": {
                "query": {"type": "string", "minLength": 1},
                "k": {"type": "integer", "minimum": 1, "maximum": 20},
                "filters": {"type": "object", "additionalProperties": {"type": "string"}},
            },
            "required": ["query"],
            "additionalProperties": False,
        },
        function=recall,
    )


def memory_tools(memory: SemanticMemory, agent: str, run: str) -> list[Tool]:
    return [remember_tool(memory, agent, run), recall_tool(memory)]


def task_recall(memory: SemanticMemory, k: int, min_score: float | None = None) -> Any:
    """A member's Recall: the contents of the `k` best memories for a task. A store that
    fails is logged and the task goes on without memories (the call chain has already
    counted the failure)."""

    async def recall(task: str) -> Sequence[str]:
        try:
            found = await memory.retrieve(task, k, min_score=min_score)
        except HiveError as exc:
            log.warning("no memories recalled from %s: %s", memory.name, exc)
            return []
        return [r.record.content for r in found]

    return recall
