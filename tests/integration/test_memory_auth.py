"""An agent's semantic memory on a store that wants credentials: a real redis-server with a
password (requirepass) and a real Weaviate with API-key authentication. The right credential
works; a wrong or missing one is a clear error naming the store and its
``spec.connection.secretRef``, on the first call, for storing and retrieving alike."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hive.api.memorystore import MemoryStoreSpec
from hive.dev.weaviate import DevWeaviate
from hive.errors import InvalidInput
from hive.runtime.memory.embeddings import LocalOnnxEmbedder
from hive.runtime.memory.semantic import SemanticMemory, open_backend
from tests.support import redis_server, weaviate_server

pytestmark = pytest.mark.integration

PASSWORD = "s3cret"
API_KEY = "memory-key"


@pytest.fixture(scope="module")
def guarded_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with redis_server(tmp_path_factory.mktemp("redis"), password=PASSWORD) as url:
        yield url


@pytest.fixture(scope="module")
def keyed_weaviate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevWeaviate]:
    with weaviate_server(tmp_path_factory.mktemp("weaviate"), api_key=API_KEY) as server:
        yield server


def redis_spec(url: str) -> MemoryStoreSpec:
    return MemoryStoreSpec.model_validate(
        {
            "backend": "redis",
            "connection": {"endpoint": url, "secretRef": {"name": "redis", "key": "password"}},
            "collection": "guarded",
        }
    )


def weaviate_spec(server: DevWeaviate) -> MemoryStoreSpec:
    connection = {
        "endpoint": server.url,
        "grpcPort": server.grpc_port,
        "secretRef": {"name": "weaviate", "key": "apiKey"},
    }
    return MemoryStoreSpec.model_validate(
        {"backend": "weaviate", "connection": connection, "collection": "Guarded"}
    )


async def test_redis_works_with_its_password_and_refuses_a_wrong_or_missing_one(
    guarded_redis: str, embedder: LocalOnnxEmbedder
) -> None:
    spec = redis_spec(guarded_redis)
    right = SemanticMemory("notes", spec, open_backend("notes", spec, secret=PASSWORD), embedder)
    try:
        stored = await right.store("The password manager is the team vault")
        [found] = await right.retrieve("where are passwords kept?", k=1)
        assert found.record.id == stored.id
    finally:
        await right.close()

    for secret in ("not-it", None):
        memory = SemanticMemory("notes", spec, open_backend("notes", spec, secret=secret), embedder)
        try:
            with pytest.raises(InvalidInput) as refused:
                await memory.store("written with the wrong credential")
            where = f"MemoryStore notes (redis at {guarded_redis})"
            assert refused.value.field == f"{where} spec.connection.secretRef"
            assert refused.value.problem == "Redis refused the login"
            with pytest.raises(InvalidInput, match="Redis refused the login"):
                await memory.retrieve("passwords")
        finally:
            await memory.close()


async def test_weaviate_works_with_its_api_key_and_refuses_a_wrong_or_missing_one(
    keyed_weaviate: DevWeaviate, embedder: LocalOnnxEmbedder
) -> None:
    spec = weaviate_spec(keyed_weaviate)
    right = SemanticMemory("notes", spec, open_backend("notes", spec, secret=API_KEY), embedder)
    try:
        stored = await right.store("The on-call rota is in the shared calendar")
        [found] = await right.retrieve("where is the on-call rota?", k=1)
        assert found.record.id == stored.id
    finally:
        await right.close()

    for secret in ("wrong-key", None):
        memory = SemanticMemory(
            "notes", spec, open_backend("notes", spec, secret=secret, timeout_s=5), embedder
        )
        try:
            with pytest.raises(InvalidInput) as refused:
                await memory.retrieve("on-call rota")
            where = f"MemoryStore notes (weaviate at {keyed_weaviate.url})"
            assert refused.value.field == f"{where} spec.connection.secretRef"
            assert refused.value.problem == "the API key was refused"
            with pytest.raises(InvalidInput, match="the API key was refused"):
                await memory.store("written with the wrong credential")
        finally:
            await memory.close()
