"""A MemoryStore on Redis: one hash per memory, expiry by Redis itself, retrieval by exact
brute force over a bounded store.

The redis-server Hive runs (and plain Redis anywhere) has no vector search module, so a Redis
store can:

- store, overwrite and forget memories natively: ``<collection>:<id>`` is a hash (content,
  metadata as JSON, importance, agent, run, created/expiry times, sources, the vector as
  float32 bytes), written in one MULTI/EXEC;
- expire them natively: with ``retention.ttl`` each key gets EXPIREAT, and Redis deletes it;
- retrieve by exact cosine similarity (numpy) over every memory of the store, read with SCAN,
  as long as the store holds at most ``scan_limit`` memories (``HIVE_AGENT__MEMORY__
  REDIS_SCAN_LIMIT``, 10,000 by default). A bigger store refuses retrieval, listing and
  filtered forgetting with an error that says so: use a Weaviate store for that many.

Each retrieval reads the whole store (about 1.6 KB per 384-d memory), so it costs time in
proportion to the store's size; that is the price of exactness without an index.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import numpy as np
import redis.asyncio as aioredis
from redis.exceptions import AuthenticationError, RedisError, ResponseError

from hive.api.memorystore import MemoryStoreSpec
from hive.errors import ExternalFailure, InvalidInput, Unavailable
from hive.runtime.memory.records import MemoryRecord

ID_LENGTH = 36  # a UUID's text
READ_BATCH = 500


class RedisBackend:
    """The memories of one store, under the key prefix ``<collection>:``."""

    def __init__(
        self,
        name: str,
        spec: MemoryStoreSpec,
        *,
        password: str | None = None,
        username: str | None = None,
        timeout_s: float = 10.0,
        scan_limit: int = 10_000,
        client: aioredis.Redis | None = None,
    ) -> None:
        self.name = name
        self.spec = spec
        self.prefix = f"{spec.collection}:"
        self.scan_limit = scan_limit
        self.client = client or aioredis.Redis.from_url(
            spec.connection.url(),
            password=password,
            username=username,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
        )

    @property
    def where(self) -> str:
        endpoint = self.spec.connection.url().rpartition("@")[2]
        return f"MemoryStore {self.name} (redis at {endpoint})"

    def _fail(self, exc: RedisError, doing: str) -> Exception:
        if isinstance(exc, AuthenticationError) or "NOAUTH" in str(exc) or "WRONGPASS" in str(exc):
            return InvalidInput(
                f"{self.where} spec.connection.secretRef", "Redis refused the login"
            )
        if isinstance(exc, ResponseError):
            return ExternalFailure(f"{self.where}: {doing} failed: {exc}")
        return Unavailable(f"{self.where}: {doing} failed: {exc.__class__.__name__}: {exc}")

    async def _keys(self) -> list[bytes]:
        """Every memory key of the store; more than `scan_limit` is refused."""
        keys: list[bytes] = []
        try:
            async for key in self.client.scan_iter(match=f"{self.prefix}*", count=1000):
                if len(key) - len(self.prefix) != ID_LENGTH:
                    continue  # another store's prefix that starts with this one
                if len(keys) == self.scan_limit:
                    raise InvalidInput(
                        "HIVE_AGENT__MEMORY__REDIS_SCAN_LIMIT",
                        f"{self.where} holds more than {self.scan_limit} memories; a Redis store "
                        "is searched by brute force up to that many (use a Weaviate store for "
                        "more, or raise the limit)",
                    )
                keys.append(key)
        except RedisError as exc:
            raise self._fail(exc, "listing memories") from exc
        return keys

    async def _read(self, keys: Sequence[bytes], vectors: bool) -> list[MemoryRecord]:
        records: list[MemoryRecord] = []
        try:
            for start in range(0, len(keys), READ_BATCH):
                pipe = self.client.pipeline(transaction=False)
                for key in keys[start : start + READ_BATCH]:
                    pipe.hgetall(key)
                for key, fields in zip(
                    keys[start : start + READ_BATCH], await pipe.execute(), strict=True
                ):
                    if fields:  # gone (expired, forgotten) since the scan
                        records.append(_record(key[len(self.prefix) :].decode(), fields, vectors))
        except RedisError as exc:
            raise self._fail(exc, "reading memories") from exc
        return records

    async def prepare(self, model: str, dimensions: int) -> None:
        try:
            await self.client.ping()
            sample = None
            async for key in self.client.scan_iter(match=f"{self.prefix}*", count=1000):
                if len(key) - len(self.prefix) == ID_LENGTH:
                    sample = await self.client.hget(key, "vector")
                    if sample is not None:
                        break
        except RedisError as exc:
            raise self._fail(exc, "connecting") from exc
        if sample is not None and len(sample) // 4 != dimensions:
            raise InvalidInput(
                f"MemoryStore {self.name} spec.embedding.dimensions",
                f"{dimensions}, but the Redis keys {self.prefix}* hold {len(sample) // 4}-"
                "dimensional vectors (made with another model); use another collection or the "
                "model they were made with",
            )

    async def put(self, records: Sequence[MemoryRecord]) -> None:
        try:
            pipe = self.client.pipeline(transaction=True)
            for record in records:
                key = self.prefix + record.id
                pipe.delete(key)
                pipe.hset(key, mapping=_fields(record))  # type: ignore[arg-type]
                if record.expires_at is not None:
                    pipe.pexpireat(key, int(record.expires_at * 1000))
            await pipe.execute()
        except RedisError as exc:
            raise self._fail(exc, "storing") from exc

    async def nearest(
        self, vector: Sequence[float], limit: int, filters: Mapping[str, str], now: float
    ) -> list[tuple[MemoryRecord, float]]:
        records = [
            r
            for r in await self._read(await self._keys(), vectors=True)
            if r.matches(filters) and (r.expires_at is None or r.expires_at > now)
        ]
        if not records:
            return []
        matrix = np.asarray([r.vector for r in records], dtype=np.float32)
        query = np.asarray(vector, dtype=np.float32)
        norms = np.linalg.norm(matrix, axis=1) * max(float(np.linalg.norm(query)), 1e-12)
        similarity = (matrix @ query) / np.clip(norms, 1e-12, None)
        order = np.argsort(-similarity, kind="stable")[:limit]
        return [(_without_vector(records[i]), float(similarity[i])) for i in order]

    async def records(
        self, filters: Mapping[str, str], *, now: float, vectors: bool, limit: int
    ) -> list[MemoryRecord]:
        found = [
            r
            for r in await self._read(await self._keys(), vectors=vectors)
            if r.matches(filters) and (r.expires_at is None or r.expires_at > now)
        ]
        if len(found) > limit:
            raise InvalidInput("limit", f"{self.where} holds more than {limit} matching memories")
        return found

    async def delete(self, ids: Sequence[str]) -> int:
        if not ids:
            return 0
        try:
            return int(await self.client.delete(*(self.prefix + i for i in ids)))
        except RedisError as exc:
            raise self._fail(exc, "forgetting") from exc

    async def delete_where(self, filters: Mapping[str, str]) -> int:
        chosen = [r.id for r in await self._read(await self._keys(), False) if r.matches(filters)]
        return await self.delete(chosen)

    async def purge_expired(self, now: float) -> int:
        return 0  # Redis deletes expired keys itself

    async def count(self) -> int:
        return len(await self._keys())

    async def close(self) -> None:
        await self.client.aclose()


def _fields(record: MemoryRecord) -> dict[str | bytes, str | bytes]:
    return {
        "content": record.content,
        "metadata": json.dumps(dict(record.metadata), sort_keys=True),
        "importance": repr(record.importance),
        "agent": record.agent,
        "run": record.run,
        "created_at": repr(record.created_at),
        "expires_at": repr(record.expires_at or 0.0),
        "sources": json.dumps(list(record.sources)),
        "vector": np.asarray(record.vector or [], dtype=np.float32).tobytes(),
    }


def _record(memory_id: str, fields: Mapping[bytes, bytes], vectors: bool) -> MemoryRecord:
    def text(name: str) -> str:
        return fields.get(name.encode(), b"").decode()

    expires = float(text("expires_at") or 0.0)
    raw = fields.get(b"vector", b"")
    return MemoryRecord(
        id=memory_id,
        content=text("content"),
        importance=float(text("importance") or 0.0),
        metadata=json.loads(text("metadata") or "{}"),
        agent=text("agent"),
        run=text("run"),
        created_at=float(text("created_at") or 0.0),
        expires_at=expires or None,
        sources=tuple(json.loads(text("sources") or "[]")),
        vector=np.frombuffer(raw, dtype=np.float32).tolist() if vectors and raw else None,
    )


def _without_vector(record: MemoryRecord) -> MemoryRecord:
    from dataclasses import replace

    return replace(record, vector=None)
