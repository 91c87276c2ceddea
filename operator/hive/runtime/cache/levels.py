"""The three levels a cached value can live in, each bounded: L1 this process's memory
(cachetools, size in bytes and a TTL per entry), L2 a local disk folder (diskcache, size
limit), L3 the team's Redis (shared by its pods; SET with an expiry)."""

from __future__ import annotations

import time
from typing import Any, Protocol

import diskcache
import redis.asyncio as aioredis
from cachetools import TLRUCache


class Level(Protocol):
    name: str

    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl_s: float) -> None: ...

    async def close(self) -> None: ...


def _expires(_key: str, entry: tuple[bytes, float], _now: float) -> float:
    return entry[1]


def _size(entry: tuple[bytes, float]) -> int:
    return len(entry[0]) + 64


class MemoryLevel:
    """L1: at most `max_bytes` of values in this process, each until its own expiry."""

    name = "l1"

    def __init__(self, max_bytes: int = 64 * 1024 * 1024) -> None:
        self._entries: TLRUCache[str, tuple[bytes, float]] = TLRUCache(
            maxsize=max_bytes, ttu=_expires, timer=time.monotonic, getsizeof=_size
        )

    async def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        return entry[0] if entry is not None else None

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        if _size((value, 0.0)) <= self._entries.maxsize:
            self._entries[key] = (value, time.monotonic() + ttl_s)

    async def close(self) -> None:
        self._entries.clear()


class DiskLevel:
    """L2: a diskcache folder of at most `max_bytes` (least recently stored evicted first).
    Its reads are local SQLite lookups of tens of microseconds, made in the event loop."""

    name = "l2"

    def __init__(self, folder: str, max_bytes: int = 1024 * 1024 * 1024) -> None:
        self._cache = diskcache.Cache(folder, size_limit=max_bytes)

    async def get(self, key: str) -> bytes | None:
        value: Any = self._cache.get(key)
        return value if isinstance(value, bytes) else None

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        self._cache.set(key, value, expire=ttl_s)

    async def close(self) -> None:
        self._cache.close()


class RedisLevel:
    """L3: keys under `prefix` in the team's Redis, shared by all its pods."""

    name = "l3"

    def __init__(self, url: str, prefix: str, *, password: str | None = None) -> None:
        self.prefix = prefix
        self.client: aioredis.Redis = aioredis.Redis.from_url(url, password=password)

    async def get(self, key: str) -> bytes | None:
        value = await self.client.get(self.prefix + key)
        return value if isinstance(value, bytes) else None

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        await self.client.set(self.prefix + key, value, px=max(1, int(ttl_s * 1000)))

    async def claim(self, key: str, hold_s: float) -> bool:
        """Whether this pod computes `key` (no other pod of the team claimed it within
        `hold_s`): the cross-pod half of single flight."""
        claimed = await self.client.set(
            f"{self.prefix}computing:{key}", b"1", nx=True, px=max(1, int(hold_s * 1000))
        )
        return bool(claimed)

    async def release(self, key: str) -> None:
        await self.client.delete(f"{self.prefix}computing:{key}")

    async def close(self) -> None:
        await self.client.aclose()
