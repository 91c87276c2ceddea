"""One swarm Job's parts in the team's Redis: the prompt of each completion index, written by
the coordinator before it creates the Job, and the answer each part's pod records.

Keys ``hive:swarmjob:<namespace>/<team>:<job>:prompts`` and ``...:answers`` (hashes by
completion index), kept a day. An answer is recorded once per index (HSETNX): a pod the Job
retries finds its index answered and leaves it.
"""

from __future__ import annotations

import json
from typing import Any

import redis.asyncio as aioredis

from hive.errors import InvalidInput

KEEP_S = 86400


class JobParts:
    def __init__(self, client: aioredis.Redis, namespace: str, team: str, job: str) -> None:
        self.client = client
        base = f"hive:swarmjob:{namespace}/{team}:{job}"
        self.prompts_key, self.answers_key = f"{base}:prompts", f"{base}:answers"

    async def put_prompts(self, prompts: list[str]) -> None:
        """The prompts of indexes 0..n-1, before the Job exists."""
        if not prompts:
            return
        await self.client.hset(self.prompts_key, mapping={str(i): p for i, p in enumerate(prompts)})
        await self.client.expire(self.prompts_key, KEEP_S)

    async def prompt(self, index: int) -> str:
        raw = await self.client.hget(self.prompts_key, str(index))
        if raw is None:
            raise InvalidInput(
                "JOB_COMPLETION_INDEX", f"no prompt for part {index} ({self.prompts_key})"
            )
        return raw.decode() if isinstance(raw, bytes) else str(raw)

    async def record(self, index: int, output: str | None, error: str | None = None) -> bool:
        """Record the part's answer (or why it has none); False where it was recorded before."""
        answer = json.dumps({"ok": error is None, "output": output or "", "error": error})
        first = await self.client.hsetnx(self.answers_key, str(index), answer)
        await self.client.expire(self.answers_key, KEEP_S)
        return bool(first)

    async def answers(self) -> dict[int, dict[str, Any]]:
        raw = await self.client.hgetall(self.answers_key)
        return {int(k): json.loads(v) for k, v in raw.items()}
