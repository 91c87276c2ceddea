"""A first-order Markov model of a team's tool calls: how often each call (a tool with its
arguments) followed each other, kept in the team's Redis so that every pod of the team learns
into one model and a restarted pod keeps it; or, without Redis, in this process."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

import redis.asyncio as aioredis

from hive.runtime.cache.keys import canonical, digest


@dataclass(frozen=True)
class ToolCallShape:
    """One call: the tool and its arguments (its signature is their digest)."""

    tool: str
    arguments: dict[str, Any]

    @property
    def signature(self) -> str:
        return f"{self.tool}:{digest(self.arguments)[:24]}"

    def encode(self) -> str:
        return canonical({"tool": self.tool, "arguments": self.arguments})

    @staticmethod
    def decode(data: str | bytes) -> ToolCallShape:
        raw = json.loads(data)
        return ToolCallShape(raw["tool"], raw["arguments"])


@dataclass(frozen=True)
class Prediction:
    call: ToolCallShape
    confidence: float  # times it followed / times the current call was followed by any
    samples: int  # times the current call was followed by any


class TransitionStore(Protocol):
    async def observe(self, previous: ToolCallShape, current: ToolCallShape) -> None: ...

    async def predict(self, current: ToolCallShape) -> Prediction | None: ...

    async def close(self) -> None: ...


class MemoryTransitions:
    def __init__(self) -> None:
        self.counts: dict[str, dict[str, int]] = {}
        self.calls: dict[str, ToolCallShape] = {}

    async def observe(self, previous: ToolCallShape, current: ToolCallShape) -> None:
        following = self.counts.setdefault(previous.signature, {})
        following[current.signature] = following.get(current.signature, 0) + 1
        self.calls[current.signature] = current

    async def predict(self, current: ToolCallShape) -> Prediction | None:
        following = self.counts.get(current.signature)
        if not following:
            return None
        best = max(following, key=lambda s: following[s])
        total = sum(following.values())
        return Prediction(self.calls[best], following[best] / total, total)

    async def close(self) -> None:
        return None


class RedisTransitions:
    """Keys under `prefix`: ``next:<signature>`` a hash of the calls that followed it and their
    counts, ``calls`` a hash of each signature's tool and arguments."""

    def __init__(self, url: str, prefix: str) -> None:
        self.prefix = prefix
        self.client: aioredis.Redis = aioredis.Redis.from_url(url)

    async def observe(self, previous: ToolCallShape, current: ToolCallShape) -> None:
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.hincrby(f"{self.prefix}next:{previous.signature}", current.signature, 1)
            pipe.hset(f"{self.prefix}calls", current.signature, current.encode())
            await pipe.execute()

    async def predict(self, current: ToolCallShape) -> Prediction | None:
        raw = await self.client.hgetall(f"{self.prefix}next:{current.signature}")
        if not raw:
            return None
        following = {_text(k): int(v) for k, v in raw.items()}
        best = max(following, key=lambda s: following[s])
        data = await self.client.hget(f"{self.prefix}calls", best)
        if data is None:
            return None
        total = sum(following.values())
        return Prediction(ToolCallShape.decode(data), following[best] / total, total)

    async def close(self) -> None:
        await self.client.aclose()


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
