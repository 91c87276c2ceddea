"""A team's semantic cache of model answers: the embedding of each cached conversation, kept
in the team's Redis (a hash per model and tool set) or, without one, in this process; a new
conversation whose embedding is at least `threshold` similar (cosine) to a cached one is
answered with that one's answer."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import redis.asyncio as aioredis

from hive.runtime.memory.embeddings import Embedder


@dataclass(frozen=True)
class SemanticMatch:
    key: str
    similarity: float


class SemanticIndex:
    def __init__(
        self,
        embedder: Embedder,
        threshold: float,
        *,
        client: aioredis.Redis | None = None,
        prefix: str = "",
        max_entries: int = 10_000,
    ) -> None:
        self.embedder = embedder
        self.threshold = threshold
        self.client = client
        self.prefix = prefix
        self.max_entries = max_entries
        self._local: dict[str, dict[str, bytes]] = {}

    async def vector(self, text: str) -> np.ndarray:
        (values,) = await self.embedder.embed([text])
        vector = np.asarray(values, dtype=np.float32)
        norm = float(np.linalg.norm(vector))
        return vector / norm if norm else vector

    async def _entries(self, partition: str) -> dict[str, bytes]:
        if self.client is None:
            return self._local.get(partition, {})
        raw = await self.client.hgetall(self.prefix + partition)
        return {
            (k.decode() if isinstance(k, bytes) else k): v
            for k, v in raw.items()
            if isinstance(v, bytes)
        }

    async def nearest(self, partition: str, vector: np.ndarray) -> SemanticMatch | None:
        """The cached conversation of `partition` most similar to `vector`, if at least
        the threshold."""
        entries = await self._entries(partition)
        if not entries:
            return None
        keys = list(entries)
        matrix = np.frombuffer(b"".join(entries[k] for k in keys), dtype=np.float32)
        if matrix.size != len(keys) * vector.size:
            return None  # vectors of another embedding model: none comparable
        scores = matrix.reshape(len(keys), vector.size) @ vector
        best = int(np.argmax(scores))
        if float(scores[best]) < self.threshold:
            return None
        return SemanticMatch(keys[best], float(scores[best]))

    async def add(self, partition: str, key: str, vector: np.ndarray) -> None:
        data = vector.astype(np.float32).tobytes()
        if self.client is None:
            local = self._local.setdefault(partition, {})
            if len(local) < self.max_entries:
                local[key] = data
            return
        name = self.prefix + partition
        if await self.client.hlen(name) < self.max_entries:
            await self.client.hset(name, key, data)
