"""Reads that fall through the levels (L1, L2, L3) and fill the ones above the level that had
the value; a miss computed once per key in this process however many callers wait for it
(single-flight); hits, misses and bytes counted per level, for Prometheus and the run report."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Counter

from hive.runtime.cache.levels import Level, RedisLevel

CACHE_LOOKUPS = Counter(
    "hive_cache_lookups_total",
    "Cache lookups of an agent's calls by level (l1, l2, l3, semantic) and outcome (hit, miss).",
    ["level", "outcome"],
)
CACHE_BYTES = Counter(
    "hive_cache_bytes_total",
    "Bytes an agent's caches read (hits) and wrote (fills), by level and direction.",
    ["level", "direction"],
)
MISS = "miss"


@dataclass
class LevelStats:
    hits: int = 0
    misses: int = 0
    bytes_read: int = 0
    bytes_written: int = 0

    @property
    def hit_rate(self) -> float:
        looked = self.hits + self.misses
        return self.hits / looked if looked else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "hits": self.hits,
            "misses": self.misses,
            "hitRate": round(self.hit_rate, 4),
            "bytesRead": self.bytes_read,
            "bytesWritten": self.bytes_written,
        }


@dataclass
class CacheStats:
    """Per level; `computed`: misses of every level that ran the call, `joined`: callers that
    waited for another's computation instead of running the call again."""

    levels: dict[str, LevelStats] = field(default_factory=dict)
    computed: int = 0
    joined: int = 0

    def level(self, name: str) -> LevelStats:
        stats = self.levels.get(name)
        if stats is None:
            stats = self.levels[name] = LevelStats()
        return stats

    def as_dict(self) -> dict[str, Any]:
        return {
            "levels": {name: s.as_dict() for name, s in self.levels.items()},
            "computed": self.computed,
            "joined": self.joined,
        }


class MultiLevelCache:
    """Levels from the nearest (L1) to the farthest (L3)."""

    def __init__(
        self, levels: Sequence[Level], *, fill_ttl_s: float = 300.0, claim_s: float = 30.0
    ) -> None:
        self.levels = list(levels)
        self.fill_ttl_s = fill_ttl_s  # how long upper levels keep a value a lower one had
        # with a shared level, how long another pod's claim on a key is waited for at most
        self.claim_s = claim_s
        self.shared = next((lv for lv in self.levels if isinstance(lv, RedisLevel)), None)
        self.stats = CacheStats()
        self._inflight: dict[str, asyncio.Future[bytes | None]] = {}
        self._counters = {
            level.name: (
                CACHE_LOOKUPS.labels(level.name, "hit"),
                CACHE_LOOKUPS.labels(level.name, "miss"),
                CACHE_BYTES.labels(level.name, "read"),
                CACHE_BYTES.labels(level.name, "written"),
            )
            for level in self.levels
        }

    async def get(self, key: str) -> tuple[bytes, str] | None:
        """The value and the level that had it (the levels above it filled), or None."""
        for index, level in enumerate(self.levels):
            value = await level.get(key)
            stats = self.stats.level(level.name)
            hit, miss, read, _ = self._counters[level.name]
            if value is None:
                stats.misses += 1
                miss.inc()
                continue
            stats.hits += 1
            stats.bytes_read += len(value)
            hit.inc()
            read.inc(len(value))
            for upper in self.levels[:index]:
                await self._fill(upper, key, value, self.fill_ttl_s)
            return value, level.name
        return None

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        for level in self.levels:
            await self._fill(level, key, value, ttl_s)

    async def _fill(self, level: Level, key: str, value: bytes, ttl_s: float) -> None:
        await level.set(key, value, ttl_s)
        self.stats.level(level.name).bytes_written += len(value)
        self._counters[level.name][3].inc(len(value))

    async def get_or_compute(
        self, key: str, compute: Callable[[], Awaitable[bytes | None]], ttl_s: float
    ) -> tuple[bytes | None, str]:
        """The cached value and its level, else `compute()`'s (stored at every level unless
        None) and ``"miss"``. Concurrent callers of one key share one computation; its
        failure is raised to each of them and nothing is stored. With a shared level (Redis),
        a key another pod claimed is waited for there (up to `claim_s`) instead of computed."""
        found = await self.get(key)
        if found is not None:
            return found
        waiting = self._inflight.get(key)
        if waiting is not None:
            self.stats.joined += 1
            return await asyncio.shield(waiting), MISS
        future: asyncio.Future[bytes | None] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            from_pod = await self._wait_for_other_pod(key)
            if from_pod is not None:
                future.set_result(from_pod[0])
                return from_pod
            self.stats.computed += 1
            try:
                value = await compute()
                if value is not None:
                    await self.set(key, value, ttl_s)
            finally:
                if self.shared is not None:
                    await self.shared.release(key)
            future.set_result(value)
            return value, MISS
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning without waiters
            raise
        finally:
            del self._inflight[key]

    async def _wait_for_other_pod(self, key: str) -> tuple[bytes, str] | None:
        """None where this pod is to compute `key` (it claimed it, or no other pod's value
        came within `claim_s`); else the value another pod of the team computed."""
        shared = self.shared
        if shared is None or await shared.claim(key, self.claim_s):
            return None
        deadline = asyncio.get_running_loop().time() + self.claim_s
        delay = 0.005
        while asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(delay)  # the other pod's answer, looked for with backoff
            delay = min(delay * 2, 0.2)
            found = await self.get(key)
            if found is not None:
                self.stats.joined += 1
                return found
            if await shared.claim(key, self.claim_s):  # its claim lapsed: ours now
                return None
        return None

    async def close(self) -> None:
        for level in self.levels:
            await level.close()
