"""The multi-level call cache against a real redis-server, the scripted model server and the
local embedding model: reads fall through L1, L2, L3 and fill the levels above; concurrent
misses compute once; a changed ToolVersion's results are not reused; a semantic hit is marked
in the answer's metadata."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from hive.runtime.cache.keys import ToolCaching
from hive.runtime.cache.levels import DiskLevel, MemoryLevel, RedisLevel
from hive.runtime.cache.middleware import CallCache
from hive.runtime.cache.multilevel import MultiLevelCache
from hive.runtime.cache.semantic import SemanticIndex
from hive.runtime.memory.embeddings import LocalOnnxEmbedder
from hive.runtime.models import OpenAICompatible
from hive.runtime.resilience.calls import Chain
from hive.runtime.tools import Tool, ToolRegistry
from tests.scripted_model import scripted_model
from tests.support import redis_server

pytestmark = pytest.mark.integration

PREFIX = "hive:cache:default/research:"


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    with redis_server(tmp_path) as url:
        yield url


def pod_cache(url: str, folder: Path) -> MultiLevelCache:
    """One pod's levels: its memory, its disk folder, the team's Redis."""
    return MultiLevelCache(
        [MemoryLevel(), DiskLevel(str(folder)), RedisLevel(url, PREFIX)], fill_ttl_s=60
    )


@pytest.fixture
async def two_pods(redis_url: str, tmp_path: Path) -> AsyncIterator[tuple[MultiLevelCache, ...]]:
    first, second = pod_cache(redis_url, tmp_path / "a"), pod_cache(redis_url, tmp_path / "b")
    yield first, second
    await first.close()
    await second.close()


async def test_reads_fall_through_and_fill_the_levels_above(
    two_pods: tuple[MultiLevelCache, MultiLevelCache],
) -> None:
    writer, reader = two_pods
    await writer.set("k", b"value", 60)
    assert await reader.get("k") == (b"value", "l3")  # only the team's Redis had it
    assert await reader.get("k") == (b"value", "l1")  # L1 filled on the way up
    reader.levels[0] = MemoryLevel()  # a restarted process: its memory empty, its disk kept
    assert await reader.get("k") == (b"value", "l2")
    stats = reader.stats.as_dict()["levels"]
    assert stats["l3"]["hits"] == 1
    assert stats["l2"]["hits"] == 1
    assert stats["l1"]["hits"] == 1
    assert stats["l1"]["bytesWritten"] == 2 * len(b"value")
    assert await reader.get("absent") is None


async def test_concurrent_misses_of_one_model_request_make_one_call(
    two_pods: tuple[MultiLevelCache, MultiLevelCache],
) -> None:
    cache, other_pod = two_pods
    with scripted_model([{"content": "forty-two"}] * 20) as served:
        model = OpenAICompatible(served.url, "m", chain=Chain((CallCache(cache),)))
        ask = [{"role": "user", "content": "the answer?"}]
        replies = await asyncio.gather(*(model.complete(ask, temperature=0) for _ in range(12)))
        assert {r.content for r in replies} == {"forty-two"}
        assert len(served.requests) == 1
        assert cache.stats.computed == 1
        assert cache.stats.joined == 11
        # Another pod of the team gets it from Redis, marked, with no tokens spent.
        pod_model = OpenAICompatible(served.url, "m", chain=Chain((CallCache(other_pod),)))
        reply = await pod_model.complete(ask, temperature=0)
        assert reply.content == "forty-two"
        assert reply.prompt_tokens == reply.completion_tokens == 0
        assert reply.metadata["cache"]["kind"] == "exact"
        assert reply.metadata["cache"]["level"] == "l3"
        # Not deterministic (no temperature 0, no seed): asked again.
        await model.complete(ask)
        assert len(served.requests) == 2


async def test_a_changed_tool_version_is_not_answered_from_the_cache(
    two_pods: tuple[MultiLevelCache, MultiLevelCache],
) -> None:
    cache, _ = two_pods
    runs: list[dict[str, Any]] = []

    async def lookup(city: str) -> dict[str, Any]:
        runs.append({"city": city})
        return {"city": city, "run": len(runs)}

    def tool(fingerprint: str) -> Tool:
        caching = ToolCaching(ttl_s=60, fingerprint=fingerprint)
        return Tool("lookup", "Looks up", {"type": "object"}, lookup, "1.0.0", cache=caching)

    registry = ToolRegistry(chain=Chain((CallCache(cache),)))
    first = await registry.call(tool("v1"), {"city": "Oslo"})
    assert await registry.call(tool("v1"), {"city": "Oslo"}) == first
    assert len(runs) == 1
    assert await registry.call(tool("v1"), {"city": "Bergen"}) != first  # other arguments
    changed = await registry.call(tool("v2"), {"city": "Oslo"})  # the ToolVersion changed
    assert changed["run"] == 3
    assert len(runs) == 3
    uncached = Tool("lookup", "Looks up", {"type": "object"}, lookup)
    await registry.call(uncached, {"city": "Oslo"})
    await registry.call(uncached, {"city": "Oslo"})
    assert len(runs) == 5  # not declared cacheable: always run


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


async def test_a_similar_conversation_is_a_semantic_hit_marked_in_the_metadata(
    two_pods: tuple[MultiLevelCache, MultiLevelCache], embedder: LocalOnnxEmbedder
) -> None:
    cache, _ = two_pods
    redis_level = cache.levels[2]
    assert isinstance(redis_level, RedisLevel)
    index = SemanticIndex(embedder, 0.85, client=redis_level.client, prefix=PREFIX + "sem:")
    with scripted_model([{"content": "Paris"}, {"content": "Photosynthesis."}]) as served:
        model = OpenAICompatible(served.url, "m", chain=Chain((CallCache(cache, semantic=index),)))
        first = await model.complete(
            [{"role": "user", "content": "What is the capital of France?"}]
        )
        assert first.content == "Paris"
        assert "cache" not in first.metadata
        similar = await model.complete(
            [{"role": "user", "content": "what's the capital of France"}]
        )
        assert similar.content == "Paris"
        assert similar.metadata["cache"]["kind"] == "semantic"
        assert similar.metadata["cache"]["similarity"] >= 0.85
        other = await model.complete([user("How do plants make sugar?")])
        assert other.content == "Photosynthesis."
        assert "cache" not in other.metadata
        assert len(served.requests) == 2


async def test_pods_of_a_team_compute_a_key_once_between_them(
    two_pods: tuple[MultiLevelCache, MultiLevelCache],
) -> None:
    first, second = two_pods
    computed: list[str] = []
    computing, refused, release = asyncio.Event(), asyncio.Event(), asyncio.Event()
    shared = second.shared
    assert shared is not None
    claim = shared.claim

    async def noted_claim(key: str, hold_s: float) -> bool:
        claimed = await claim(key, hold_s)
        if not claimed:
            refused.set()  # the first pod holds it: the second waits for its value
        return claimed

    shared.claim = noted_claim  # type: ignore[method-assign]

    async def slow(pod: str) -> bytes:
        computed.append(pod)
        computing.set()
        await release.wait()
        return b"answer"

    one = asyncio.create_task(first.get_or_compute("shared", lambda: slow("first"), 60))
    await asyncio.wait_for(computing.wait(), 10)
    other = asyncio.create_task(second.get_or_compute("shared", lambda: slow("second"), 60))
    await asyncio.wait_for(refused.wait(), 10)
    release.set()
    assert await one == (b"answer", "miss")
    assert await other == (b"answer", "l3")
    assert computed == ["first"]
    assert second.stats.joined == 1
    assert second.stats.computed == 0
