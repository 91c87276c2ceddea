"""The cache as a middleware of an agent's call chain: model completions of deterministic
requests answered from the cache by exact key (and, where the team opts in, by a similar
cached conversation, the answer marked so in ``Reply.metadata["cache"]``); tool calls whose
ToolVersion declares them cacheable (the chain's ``call.request["cache"]``) answered from it
by tool, ToolVersion and arguments. Everything else passes through."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from hive.runtime.cache.keys import (
    ToolCaching,
    conversation_text,
    deterministic,
    digest,
    model_key,
    tool_key,
)
from hive.runtime.cache.multilevel import CACHE_LOOKUPS, MISS, MultiLevelCache
from hive.runtime.cache.semantic import SemanticIndex
from hive.runtime.models import Reply, ToolCall
from hive.runtime.resilience.calls import Call, CallKind, Proceed


def encode_reply(reply: Reply) -> bytes:
    return json.dumps(
        {
            "content": reply.content,
            "toolCalls": [[c.id, c.name, c.arguments] for c in reply.tool_calls],
            "finishReason": reply.finish_reason,
            "tokens": [reply.prompt_tokens, reply.completion_tokens],
        },
        separators=(",", ":"),
    ).encode()


def decode_reply(data: bytes, how: dict[str, Any]) -> Reply:
    """A cached answer: no tokens spent on it (those it saved in its metadata)."""
    raw = json.loads(data)
    return Reply(
        content=raw["content"],
        tool_calls=[ToolCall(*c) for c in raw["toolCalls"]],
        finish_reason=raw["finishReason"],
        metadata={"cache": {**how, "savedTokens": sum(raw["tokens"])}},
    )


class CallCache:
    """Model answers of requests at temperature 0 or seeded are reused; with `all_models`
    (the team's model answers deterministically) those of every request."""

    def __init__(
        self,
        cache: MultiLevelCache,
        *,
        model_ttl_s: float = 3600.0,
        all_models: bool = False,
        semantic: SemanticIndex | None = None,
    ) -> None:
        self.cache = cache
        self.model_ttl_s = model_ttl_s
        self.all_models = all_models
        self.semantic = semantic
        self.semantic_hits = 0

    def report(self) -> dict[str, Any]:
        """Hits, misses and bytes per level, for the run report."""
        return {**self.cache.stats.as_dict(), "semanticHits": self.semantic_hits}

    async def close(self) -> None:
        await self.cache.close()

    async def __call__(self, call: Call, proceed: Proceed[Any]) -> Any:
        if call.request is None:
            return await proceed()
        if call.kind is CallKind.MODEL:
            return await self._model(call, call.request, proceed)
        caching = call.request.get("cache")
        if call.kind is CallKind.TOOL and isinstance(caching, ToolCaching):
            return await self._tool(call, call.request, caching, proceed)
        return await proceed()

    async def _model(self, call: Call, request: dict[str, Any], proceed: Proceed[Any]) -> Any:
        options = request.get("options") or {}
        exact = self.all_models or deterministic(options)
        if not exact and self.semantic is None:
            return await proceed()
        messages, tools = request["messages"], request.get("tools")
        key = model_key(call.dependency, messages, tools, options)
        if exact:
            found = await self.cache.get(key)
            if found is not None:
                return decode_reply(found[0], {"kind": "exact", "level": found[1]})
        if self.semantic is None:
            return await self._compute(key, proceed, encode_reply, self.model_ttl_s)
        partition = digest([call.dependency, list(tools or ()), options])
        vector = await self.semantic.vector(conversation_text(messages))
        match = await self.semantic.nearest(partition, vector)
        if match is not None:
            found = await self.cache.get(match.key)
            if found is not None:
                self.semantic_hits += 1
                CACHE_LOOKUPS.labels("semantic", "hit").inc()
                how = {"kind": "semantic", "level": found[1], "similarity": match.similarity}
                return decode_reply(found[0], how)
        CACHE_LOOKUPS.labels("semantic", "miss").inc()
        reply = await self._compute(key, proceed, encode_reply, self.model_ttl_s)
        await self.semantic.add(partition, key, vector)
        return reply

    async def _tool(
        self, call: Call, request: dict[str, Any], caching: ToolCaching, proceed: Proceed[Any]
    ) -> Any:
        key = tool_key(call.dependency, caching.fingerprint, request.get("arguments") or {})
        return await self._compute(key, proceed, _encode_json, caching.ttl_s, _decode_json)

    async def _compute(
        self,
        key: str,
        proceed: Proceed[Any],
        encode: Callable[[Any], bytes | None],
        ttl_s: float,
        decode: Callable[[bytes], Any] | None = None,
    ) -> Any:
        """The cached value of `key` (decoded), else `proceed()`'s, stored; one `proceed()`
        for concurrent callers of a key in this process."""
        computed: list[Any] = []

        async def run() -> bytes | None:
            result = await proceed()
            computed.append(result)
            return encode(result)

        value, level = await self.cache.get_or_compute(key, run, ttl_s)
        if computed:
            return computed[0]
        if value is None:  # another caller's result could not be stored: make the call
            return await proceed()
        if decode is None:
            shared = level if level != MISS else "shared"  # another caller's, just now
            return decode_reply(value, {"kind": "exact", "level": shared})
        return decode(value)


def _encode_json(result: Any) -> bytes | None:
    """A tool's result as JSON, or None (not stored) where it is not JSON."""
    try:
        return json.dumps(result, separators=(",", ":")).encode()
    except (TypeError, ValueError):
        return None


def _decode_json(data: bytes) -> Any:
    return json.loads(data)
