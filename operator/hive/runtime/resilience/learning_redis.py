"""The team's error patterns and learned recoveries in Redis: one hash per team.

Every pod of the team writes the same hash ``hive:errors:<namespace>:<team>``, so what one agent
learned helps the others and outlives restarts. Fields, per pattern fingerprint ``fp``::

    p:<fp>              the pattern as JSON (error type, dependency, message, category)
    n:<fp>              how often it was seen (HINCRBY, so pods never overwrite each other)
    f:<fp> / l:<fp>     first (HSETNX) and last time seen, ISO 8601
    s:<fp>:<strategy>   successes of a recovery strategy on it
    x:<fp>:<strategy>   failures of that strategy on it

``hive errors --team T`` reads the hash with one HGETALL.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import redis.asyncio as aioredis

from hive.runtime.resilience.patterns import Category, ErrorPattern, Failure


def team_key(namespace: str, team: str) -> str:
    return f"hive:errors:{namespace}:{team}"


class RedisLearningStore:
    def __init__(self, url: str, key: str, *, timeout_s: float = 1.0) -> None:
        self.key = key
        self.client: Any = aioredis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )

    async def seen(self, failure: Failure, at: dt.datetime) -> None:
        fp = failure.fingerprint
        meta = {
            "type": failure.error_type,
            "dependency": failure.dependency,
            "message": failure.message,
            "category": failure.category.value,
        }
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.hset(self.key, f"p:{fp}", json.dumps(meta))
            pipe.hincrby(self.key, f"n:{fp}", 1)
            pipe.hsetnx(self.key, f"f:{fp}", at.isoformat())
            pipe.hset(self.key, f"l:{fp}", at.isoformat())
            await pipe.execute()

    async def outcomes(self, fingerprint: str) -> dict[str, tuple[int, int]]:
        found: dict[str, tuple[int, int]] = {}
        for name, value in (await self.client.hgetall(self.key)).items():
            field = name.decode()
            kind, _, rest = field.partition(":")
            fp, _, strategy = rest.partition(":")
            if fp != fingerprint or kind not in ("s", "x"):
                continue
            ok, bad = found.get(strategy, (0, 0))
            found[strategy] = (ok + int(value), bad) if kind == "s" else (ok, bad + int(value))
        return found

    async def reward(self, fingerprint: str, strategy: str, ok: bool) -> None:
        await self.client.hincrby(self.key, f"{'s' if ok else 'x'}:{fingerprint}:{strategy}", 1)

    async def patterns(self) -> list[ErrorPattern]:
        return parse(
            {k.decode(): v.decode() for k, v in (await self.client.hgetall(self.key)).items()}
        )

    async def close(self) -> None:
        await self.client.aclose()


def parse(fields: dict[str, str]) -> list[ErrorPattern]:
    """Patterns from the hash's fields (see the module's docstring)."""
    patterns: dict[str, ErrorPattern] = {}
    for name, value in fields.items():
        if not name.startswith("p:"):
            continue
        fp = name[2:]
        meta = json.loads(value)
        failure = Failure(
            fp, meta["type"], meta["dependency"], meta["message"], Category(meta["category"])
        )
        first = dt.datetime.fromisoformat(fields.get(f"f:{fp}", fields.get(f"l:{fp}", "")))
        last = dt.datetime.fromisoformat(fields.get(f"l:{fp}", first.isoformat()))
        patterns[fp] = ErrorPattern(failure, int(fields.get(f"n:{fp}", 0)), first, last)
    for name, value in fields.items():
        kind, _, rest = name.partition(":")
        fp, _, strategy = rest.partition(":")
        if kind not in ("s", "x") or fp not in patterns:
            continue
        ok, bad = patterns[fp].outcomes.get(strategy, (0, 0))
        count = int(value)
        patterns[fp].outcomes[strategy] = (ok + count, bad) if kind == "s" else (ok, bad + count)
    return list(patterns.values())
