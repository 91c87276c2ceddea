"""A team's prefetcher from its ``spec.cache.prefetch``: the Markov model in the team's Redis
(keys ``hive:prefetch:<namespace>/<team>:``), else in this process."""

from __future__ import annotations

from collections.abc import Callable

from hive.api.agentteam import PrefetchSpec
from hive.runtime.prefetch.markov import MemoryTransitions, RedisTransitions, TransitionStore
from hive.runtime.prefetch.prefetcher import Prefetcher
from hive.runtime.tools import ToolRegistry


def prefetcher(
    spec: PrefetchSpec,
    *,
    namespace: str,
    team: str,
    redis_url: str | None,
    registry_of: Callable[[str], ToolRegistry | None],
) -> Prefetcher:
    store: TransitionStore = (
        RedisTransitions(redis_url, f"hive:prefetch:{namespace}/{team}:")
        if redis_url
        else MemoryTransitions()
    )
    return Prefetcher(store, registry_of, confidence=spec.confidence, min_samples=spec.min_samples)
