"""Semantic memory against a real Weaviate and a real redis-server, with the real embedding
model: store, retrieve, forget, recency decay, TTL, consolidation, a wrong vector size, and a
backend killed mid-run (a clear error; nothing it acknowledged is lost)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import redis

from hive.api.memorystore import MemoryStoreSpec
from hive.dev.services import redis_server_argv
from hive.dev.weaviate import DevWeaviate
from hive.errors import InvalidInput, Unavailable
from hive.ports import free_port
from hive.runtime.memory.consolidation import consolidate
from hive.runtime.memory.embeddings import LocalOnnxEmbedder
from hive.runtime.memory.semantic import EmbeddingMismatch, SemanticMemory, open_backend
from hive.runtime.memory.weaviate_backend import WeaviateBackend
from hive.runtime.models import OpenAICompatible
from tests.scripted_model import scripted_model
from tests.support import redis_server, weaviate_server

pytestmark = pytest.mark.integration
DAY = 86400.0
T0 = 1_800_000_000.0


class Clock:
    """The time memories are stored and retrieved at, moved by the test."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


_names = iter(range(10_000))


def spec_for(
    backend: str, weaviate: DevWeaviate | None, redis_url: str | None, **extra: Any
) -> MemoryStoreSpec:
    number = next(_names)
    if backend == "weaviate":
        assert weaviate is not None
        connection = {"endpoint": weaviate.url, "grpcPort": weaviate.grpc_port}
        collection = f"Memories{number}"
    else:
        assert redis_url is not None
        connection = {"endpoint": redis_url}
        collection = f"memories{number}"
    return MemoryStoreSpec.model_validate(
        {"backend": backend, "connection": connection, "collection": collection, **extra}
    )


@pytest.fixture(params=["weaviate", "redis"])
def backend_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest_asyncio.fixture
async def closing(
    backend_name: str, weaviate: DevWeaviate, redis_url: str, embedder: LocalOnnxEmbedder
) -> AsyncIterator[Any]:
    """Makes a store of the backend under test (a new collection each), closed at the end."""
    made: list[SemanticMemory] = []

    def make(clock: Clock | None = None, **extra: Any) -> SemanticMemory:
        spec = spec_for(backend_name, weaviate, redis_url, **extra)
        memory = SemanticMemory(
            "notes", spec, open_backend("notes", spec), embedder, clock=clock or Clock()
        )
        made.append(memory)
        return memory

    yield make
    for memory in made:
        await memory.close()


async def test_store_retrieve_and_forget(closing: Any) -> None:
    memory: SemanticMemory = closing()
    deploy = await memory.store(
        "Deploying to staging needs the KUBECONFIG variable set to the staging file",
        metadata={"topic": "ops"},
        importance=0.9,
        agent="builder",
        run="r1",
    )
    await memory.store("Paris is the capital of France", metadata={"topic": "geo"}, agent="x")
    await memory.store("The test suite takes four minutes on two cores", agent="builder", run="r2")
    assert await memory.count() == 3

    best = await memory.retrieve("how do I deploy to staging?", k=2)
    assert best[0].record.id == deploy.id
    assert best[0].record.metadata == {"topic": "ops"}
    assert (best[0].record.agent, best[0].record.run) == ("builder", "r1")
    assert best[0].score > best[1].score
    assert 0 < best[0].score <= best[0].similarity <= 1

    only_geo = await memory.retrieve("how do I deploy to staging?", filters={"topic": "geo"})
    assert [r.record.content for r in only_geo] == ["Paris is the capital of France"]
    by_agent = await memory.retrieve("deploy", k=5, filters={"agent": "builder"})
    assert {r.record.run for r in by_agent} == {"r1", "r2"}
    assert await memory.retrieve("deploy", min_score=0.99) == []

    assert await memory.forget(deploy.id) is True
    assert await memory.forget(deploy.id) is False
    assert await memory.forget_where({"agent": "builder"}) == 1
    assert [r.record.agent for r in await memory.retrieve("anything", k=5)] == ["x"]
    with pytest.raises(InvalidInput, match="filters"):
        await memory.forget_where({})


async def test_an_older_memory_with_equal_similarity_ranks_lower(closing: Any) -> None:
    clock = Clock()
    memory: SemanticMemory = closing(
        clock, retention={"decay": {"halfLife": "1d", "minScore": 0.01}}
    )
    text = "The build cache lives in /var/cache/hive"
    old = await memory.store(text, importance=0.5)
    clock.now += 2 * DAY
    new = await memory.store(text, importance=0.5)
    clock.now += 1 * DAY  # the old one is 3 days old, the new one 1 day

    found = await memory.retrieve("where is the build cache?", k=2)
    assert [r.record.id for r in found] == [new.id, old.id]
    assert found[0].similarity == pytest.approx(found[1].similarity, abs=1e-4)
    assert found[1].score / found[0].score == pytest.approx(0.25, rel=1e-3)  # two half-lives

    clock.now += 10 * DAY  # both far under minScore now
    assert await memory.retrieve("where is the build cache?", k=2) == []


async def test_importance_breaks_a_tie_of_equal_similarity(closing: Any) -> None:
    memory: SemanticMemory = closing()
    text = "Reviews need two approvals on the main branch"
    low = await memory.store(text, importance=0.1)
    high = await memory.store(text, importance=1.0)
    found = await memory.retrieve("how many approvals does a review need?", k=2)
    assert [r.record.id for r in found] == [high.id, low.id]


async def test_expired_memories_are_never_recalled_and_are_deleted(
    closing: Any, backend_name: str
) -> None:
    clock = Clock(time.time())
    memory: SemanticMemory = closing(clock, retention={"ttl": "2s"})
    await memory.store("A short-lived note about the lunch order")
    assert len(await memory.retrieve("lunch order")) == 1
    if backend_name == "redis":  # Redis deletes the key itself, in real time
        deadline = time.monotonic() + 15
        while await memory.count():
            assert time.monotonic() < deadline, "Redis kept an expired memory"
            await _sleep(0.1)
        return
    clock.now += 3  # Weaviate: past its TTL it is filtered out, then deleted by consolidation
    assert await memory.retrieve("lunch order") == []
    assert await memory.count() == 1
    result = await consolidate(memory)
    assert (result.before, result.expired, result.after) == (1, 1, 0)


async def test_a_store_deletes_what_expired_at_most_once_a_purge_interval(
    weaviate: DevWeaviate, embedder: LocalOnnxEmbedder
) -> None:
    clock = Clock()
    spec = spec_for("weaviate", weaviate, None, retention={"ttl": "2h"})
    memory = SemanticMemory(
        "notes", spec, open_backend("notes", spec), embedder, clock=clock, purge_every_s=3 * 3600
    )
    try:
        await memory.store("The coffee machine is being repaired")  # purges (nothing yet)
        clock.now += 2 * 3600 + 1  # that memory expired
        await memory.store("The parking garage closes at ten")  # no purge: within 3h of the last
        assert await memory.count() == 2  # the expired one is still there, filtered out
        assert len(await memory.retrieve("coffee machine", k=5, min_score=0)) == 1
        clock.now += 3600  # 3h since the last purge
        await memory.store("The new badge readers take the old badges")
        kept = {r.content for r in await memory.records(limit=10)}
        assert kept == {
            "The parking garage closes at ten",
            "The new badge readers take the old badges",
        }
        assert await memory.count() == 2
    finally:
        await memory.close()


async def _sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)


async def test_consolidation_merges_known_duplicates_and_drops_the_forgotten(
    closing: Any,
) -> None:
    clock = Clock()
    memory: SemanticMemory = closing(
        clock,
        retention={"decay": {"halfLife": "1d", "minScore": 0.1}},
        consolidation={"schedule": "0 3 * * *", "similarityThreshold": 0.9},
    )
    stale = await memory.store("The old VPN endpoint was vpn1.example.com", importance=0.2)
    clock.now += 5 * DAY  # stale: 0.6 * 0.5**5 < 0.1; no query can recall it any more
    first = await memory.store(
        "The release branch is cut every Tuesday morning", metadata={"team": "platform"}
    )
    second = await memory.store(
        "The release branch is cut every Tuesday morning.", importance=0.8, metadata={"x": "1"}
    )
    other = await memory.store("Use the blue button to open the incident channel")

    result = await consolidate(memory)
    assert (result.before, result.dropped, result.merged, result.after) == (4, 1, 1, 2)
    kept = {r.id: r for r in await memory.records(limit=10)}
    assert set(kept) == {second.id, other.id}  # the more important duplicate stays
    assert kept[second.id].sources == (first.id,)
    assert kept[second.id].metadata == {"team": "platform", "x": "1"}
    assert kept[second.id].importance == 0.8
    assert stale.id not in kept
    again = await consolidate(memory)  # nothing left to do
    assert (again.before, again.after, again.merged, again.dropped) == (2, 2, 0, 0)


async def test_clusters_are_summarised_into_one_memory_linking_its_sources(
    closing: Any,
) -> None:
    memory: SemanticMemory = closing()
    texts = [
        "The CI pipeline runs the linter on every push",
        "The CI pipeline runs the unit tests on every push",
        "The CI pipeline runs the integration tests on every push",
    ]
    sources = [await memory.store(t) for t in texts]
    await memory.store("Lunch is at noon in the big room")
    summary_text = "The CI runs lint, unit tests and integration tests on each push"
    with scripted_model([{"content": summary_text}]) as server:
        model = OpenAICompatible(server.url, "summarizer")
        result = await consolidate(memory, summarizer=model, cluster_threshold=0.6, min_cluster=3)
        again = await consolidate(memory, summarizer=model, cluster_threshold=0.6, min_cluster=3)
        await model.aclose()
    assert (result.summaries, result.summarized, result.before, result.after) == (1, 3, 4, 5)
    [asked] = server.requests  # the second pass asked nothing: its sources are summarised
    assert all(t in asked["messages"][-1]["content"] for t in texts)
    [summary] = await memory.records({"kind": "summary"}, limit=10)
    assert set(summary.sources) == {s.id for s in sources}
    assert summary.content == summary_text
    linked = await memory.records({"summarized_into": summary.id}, limit=10)
    assert {r.id for r in linked} == {s.id for s in sources}
    assert (again.summaries, again.after) == (0, 5)


async def test_a_collection_made_for_other_dimensions_is_refused(
    weaviate: DevWeaviate, embedder: LocalOnnxEmbedder
) -> None:
    spec = spec_for("weaviate", weaviate, None)
    memory = SemanticMemory("notes", spec, open_backend("notes", spec), embedder)
    await memory.store("made with 384 dimensions")
    await memory.close()
    other = WeaviateBackend("notes", spec)
    try:
        with pytest.raises(InvalidInput, match=r"768, but Weaviate collection \S+ holds 384"):
            await other.prepare("all-mpnet-base-v2", 768)
    finally:
        await other.close()


def test_an_embedder_of_another_model_is_refused(embedder: LocalOnnxEmbedder) -> None:
    spec = MemoryStoreSpec.model_validate(
        {
            "backend": "redis",
            "connection": {"endpoint": "redis://127.0.0.1:1/0"},
            "collection": "m",
            "embedding": {"model": "text-embedding-3-small", "dimensions": 1536},
        }
    )
    with pytest.raises(EmbeddingMismatch) as caught:
        SemanticMemory("notes", spec, open_backend("notes", spec), embedder)
    message = str(caught.value)
    assert "text-embedding-3-small (1536 dimensions)" in message
    assert "all-MiniLM-L6-v2 (384 dimensions)" in message


def _kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


async def test_weaviate_killed_mid_run_is_a_clear_error_and_loses_nothing_acknowledged(
    tmp_path: Path, embedder: LocalOnnxEmbedder
) -> None:
    with weaviate_server(tmp_path) as server:
        spec = spec_for("weaviate", server, None)
        memory = SemanticMemory("notes", spec, open_backend("notes", spec, timeout_s=3), embedder)
        stored = [await memory.store(f"Fact number {i}: the sky was clear") for i in range(5)]
        record = server.processes.get("weaviate")
        assert record is not None
        _kill(record.pid)
        with pytest.raises(Unavailable, match=r"MemoryStore notes \(weaviate at http"):
            await memory.store("written while the store is down")
        with pytest.raises(Unavailable, match="MemoryStore notes"):
            await memory.retrieve("the sky")
        await memory.close()
        server.up()
        again = SemanticMemory("notes", spec, open_backend("notes", spec), embedder)
        deadline = time.monotonic() + 30
        while True:  # REST answers first; gRPC a moment later
            try:
                await again.count()
                break
            except Unavailable:
                assert time.monotonic() < deadline, "the restarted Weaviate never answered gRPC"
                await _sleep(0.2)
        try:
            # Every acknowledged memory is there. (Its HNSW entry may not be: weaviate-server
            # 1.35 can lose the last entries of its vector index's commit log to a SIGKILL,
            # while the object itself is kept; see the report of this change.)
            kept = {r.id for r in await again.records(limit=100)}
            assert kept == {r.id for r in stored}
            found = await again.retrieve("was the sky clear?", k=5)
            assert found
            assert {r.record.id for r in found} <= kept
        finally:
            await again.close()


async def test_redis_killed_mid_run_is_a_clear_error_and_loses_nothing_acknowledged(
    tmp_path: Path, embedder: LocalOnnxEmbedder
) -> None:
    port = free_port()
    # every write synced before it is acknowledged, as a store that must not lose one runs
    argv = [
        *redis_server_argv("redis-server", port, tmp_path),
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
    ]

    def start() -> subprocess.Popen[bytes]:
        server = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
        client = redis.Redis(port=port, socket_timeout=1)
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                client.close()
                return server
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not answer"
                assert server.poll() is None, "redis-server exited"
                time.sleep(0.05)

    server = start()
    url = f"redis://127.0.0.1:{port}/0"
    try:
        spec = spec_for("redis", None, url)
        memory = SemanticMemory("notes", spec, open_backend("notes", spec, timeout_s=3), embedder)
        stored = [await memory.store(f"Fact number {i}: the sea was calm") for i in range(5)]
        _kill(server.pid)
        with pytest.raises(Unavailable, match=r"MemoryStore notes \(redis at redis://127.0.0.1"):
            await memory.store("written while the store is down")
        await memory.close()
        server = start()
        again = SemanticMemory("notes", spec, open_backend("notes", spec), embedder)
        try:
            assert {r.id for r in await again.records(limit=100)} == {r.id for r in stored}
        finally:
            await again.close()
    finally:
        server.terminate()
        server.wait(timeout=10)


async def test_a_redis_store_beyond_its_scan_limit_refuses_retrieval(
    redis_url: str, embedder: LocalOnnxEmbedder
) -> None:
    spec = spec_for("redis", None, redis_url)
    memory = SemanticMemory(
        "notes", spec, open_backend("notes", spec, redis_scan_limit=2), embedder
    )
    try:
        for i in range(3):
            await memory.store(f"note {i}")
        with pytest.raises(InvalidInput, match="holds more than 2 memories"):
            await memory.retrieve("note")
    finally:
        await memory.close()


async def test_the_operators_scheduled_consolidation_needs_no_model(
    weaviate: DevWeaviate, embedder: LocalOnnxEmbedder
) -> None:
    from hive.operator.others import consolidate_store

    spec = spec_for(
        "weaviate",
        weaviate,
        None,
        consolidation={"schedule": "0 3 * * *", "similarityThreshold": 0.9},
    )
    memory = SemanticMemory("notes", spec, open_backend("notes", spec), embedder)
    try:
        await memory.store("Backups run at two in the morning")
        await memory.store("Backups run at two in the morning.")
        await memory.store("The on-call phone is in the top drawer")
    finally:
        await memory.close()
    counts = await consolidate_store("notes", spec, None)
    assert counts == {
        "before": 3,
        "after": 2,
        "expired": 0,
        "dropped": 0,
        "merged": 1,
        "summaries": 0,
        "summarized": 0,
    }

    unreachable = spec.model_copy(
        update={"connection": spec.connection.model_copy(update={"grpc_port": free_port()})}
    )
    failed = await consolidate_store("notes", unreachable, None)
    assert "MemoryStore notes (weaviate at http" in failed["error"]
