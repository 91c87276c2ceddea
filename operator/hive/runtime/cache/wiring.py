"""An agent's call cache, from its team's ``spec.cache``: its L1 and L2 sized as declared, L3
in the team's Redis where it has one (keys ``hive:cache:<namespace>/<team>:``), and the
semantic index where the team opts in."""

from __future__ import annotations

from pathlib import Path

from hive.api.agentteam import CacheSpec
from hive.errors import InvalidInput
from hive.runtime.cache.levels import DiskLevel, Level, MemoryLevel, RedisLevel
from hive.runtime.cache.middleware import CallCache
from hive.runtime.cache.multilevel import MultiLevelCache
from hive.runtime.cache.semantic import SemanticIndex
from hive.runtime.memory.embeddings import Embedder

MIB = 1024 * 1024


def team_prefix(namespace: str, team: str) -> str:
    return f"hive:cache:{namespace}/{team}:"


def call_cache(
    spec: CacheSpec,
    *,
    namespace: str,
    team: str,
    agent: str,
    folder: Path,
    redis_url: str | None,
    embedder: Embedder | None = None,
) -> CallCache:
    """The cache middleware of one agent (`folder`: the settings' cache_dir); `embedder` is
    asked for only where ``spec.semantic`` is set."""
    levels: list[Level] = [
        MemoryLevel(spec.memory_mib * MIB),
        DiskLevel(str(folder / namespace / team / agent), spec.disk_mib * MIB),
    ]
    prefix = team_prefix(namespace, team)
    shared = RedisLevel(redis_url, prefix) if redis_url else None
    if shared is not None:
        levels.append(shared)
    semantic = None
    if spec.semantic is not None:
        if embedder is None:
            raise InvalidInput("spec.cache.semantic", "no embeddings model to compare with")
        semantic = SemanticIndex(
            embedder,
            spec.semantic.threshold,
            client=shared.client if shared is not None else None,
            prefix=prefix + "semantic:",
            max_entries=spec.semantic.max_entries,
        )
    return CallCache(
        MultiLevelCache(levels),
        model_ttl_s=float(spec.ttl_seconds),
        all_models=spec.deterministic_model,
        semantic=semantic,
    )
