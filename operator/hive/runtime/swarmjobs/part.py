"""One part of a swarm Job, in its pod (``hive swarm part``): read the prompt of the pod's
completion index from the team's Redis, answer it with the team's model, record the answer.

A part answered before (the Job retried the pod) is left as it is. A model that fails records
the failure as the part's answer, so the coordinator says why rather than waiting; the pod
still exits 0 (the Job counts it complete: the answer, not the pod, carries the outcome).
"""

from __future__ import annotations

import redis.asyncio as aioredis

from hive.errors import HiveError
from hive.runtime.models import OpenAICompatible
from hive.runtime.swarmjobs.parts import JobParts

SYSTEM = "You work on one part of a larger task for your team. Answer your part only."


async def answer_part(
    redis_url: str, namespace: str, team: str, job: str, index: int, model: OpenAICompatible
) -> bool:
    """True where this pod recorded the part's answer (False: it was answered before)."""
    client: aioredis.Redis = aioredis.Redis.from_url(redis_url)
    try:
        parts = JobParts(client, namespace, team, job)
        if index in await parts.answers():
            return False
        prompt = await parts.prompt(index)
        try:
            reply = await model.complete(
                [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}]
            )
        except HiveError as exc:
            return await parts.record(index, None, f"the model failed: {exc}")
        return await parts.record(index, reply.content or "")
    finally:
        await client.aclose()
