"""Consolidation: a store's memories tidied into fewer, better ones.

One pass over a store (``spec.consolidation``):

1. expired memories are deleted (Weaviate keeps them until then; Redis expires keys itself);
2. memories whose *standing* (their best possible score, see
   :mod:`hive.runtime.memory.records`) is under ``retention.decay.minScore`` are dropped: no
   query can recall them any more;
3. near-duplicates (cosine similarity at or above ``consolidation.similarityThreshold``) are
   merged: the most important (then newest) one stays, with the highest importance of the
   group, the union of their metadata (its own values win) and the merged ones' ids in
   ``sources``; the others are deleted (summaries merge only with summaries, never with their
   sources);
4. with a model (``summarizer``), clusters of related memories (similarity at or above
   ``cluster_threshold`` to the cluster's first memory, at least ``min_cluster`` of them, none
   already summarised) are summarised into one new memory with ``kind=summary``, the
   cluster's highest importance, and the ids of its sources in ``sources``; the sources stay
   (the summary links to them) and are marked ``summarized_into=<summary id>`` so that the
   next pass does not summarise them again.

The operator runs these steps on ``consolidation.schedule``, step 4 with the model of
``consolidation.summarize`` (``hive memory consolidate --summarize-endpoint`` by hand). A
summary's vector is made by the memory's embedder, unless that embedder is
:class:`StoredVectorsOnly` (an operator without an embeddings endpoint, which loads no model of
its own): the summary then takes the normalised centroid of its sources' stored vectors, which
sits among them in the store's vector space as the text embedded would. A model that fails
stops step 4 only: the result keeps the counts of steps 1-3 (and of the summaries made before
the failure) and carries the error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, Protocol

import numpy as np

from hive.api.memorystore import Embedding
from hive.errors import HiveError, InvalidInput
from hive.runtime.memory.records import MemoryRecord, new_id, standing
from hive.runtime.memory.semantic import SemanticMemory

DEFAULT_LIMIT = 50_000  # memories one pass reads (with their vectors)
SUMMARY_KIND = "summary"
SUMMARIZED_INTO = "summarized_into"
EMBEDDINGS = "embeddings"  # how summaries got their vectors: the embedder's
CENTROID = "centroid"  # or the normalised centroid of their sources' stored vectors


class StoredVectorsOnly:
    """The embedder of a consolidation without a model (the operator's): it reads the vectors
    already stored and makes none, so it only declares the store's model and size."""

    def __init__(self, embedding: Embedding) -> None:
        self.model = embedding.model
        self.dimensions = embedding.dimensions

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        raise InvalidInput("summarizer", "a consolidation without a model embeds nothing")


class Summarizer(Protocol):
    """A chat model (OpenAICompatible has this method)."""

    async def complete(self, messages: Sequence[Any], tools: Any = None, **extra: Any) -> Any: ...


@dataclass(frozen=True)
class ConsolidationResult:
    before: int
    after: int
    expired: int = 0
    dropped: int = 0  # standing under minScore
    merged: int = 0  # duplicates folded into another memory
    summaries: int = 0  # new summary memories
    summarized: int = 0  # memories a summary links to
    summary_vectors: str | None = None  # EMBEDDINGS or CENTROID, with a summarizer
    error: str | None = None  # why the summaries stopped (the other steps ran)

    def wire(self) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        if self.summary_vectors is not None:
            extra["summary_vectors"] = self.summary_vectors
        if self.error is not None:
            extra["error"] = self.error
        return {
            "before": self.before,
            "after": self.after,
            "expired": self.expired,
            "dropped": self.dropped,
            "merged": self.merged,
            "summaries": self.summaries,
            "summarized": self.summarized,
            **extra,
        }


def _unit(records: Sequence[MemoryRecord]) -> np.ndarray:
    matrix = np.asarray([r.vector for r in records], dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    unit: np.ndarray = matrix / np.clip(norms, 1e-12, None)
    return unit


def duplicate_groups(records: Sequence[MemoryRecord], threshold: float) -> list[list[int]]:
    """Groups (indexes into `records`, keeper first) of memories at or above `threshold`
    cosine similarity to their keeper; keepers are taken most important, then newest first."""
    if not records:
        return []
    unit = _unit(records)
    order = sorted(
        range(len(records)), key=lambda i: (-records[i].importance, -records[i].created_at)
    )
    taken = np.zeros(len(records), dtype=bool)
    groups = []
    for keeper in order:
        if taken[keeper]:
            continue
        taken[keeper] = True
        similar = (unit @ unit[keeper]) >= threshold
        members = [int(i) for i in np.flatnonzero(similar & ~taken)]
        taken[members] = True
        if members:
            groups.append([keeper, *members])
    return groups


def _duplicates_apart_from_summaries(
    records: Sequence[MemoryRecord], threshold: float
) -> list[list[int]]:
    """duplicate_groups among summaries and among the other memories, never across: a
    summary is by design near its sources (its centroid vector, or its text embedded) and must
    not swallow them."""
    summaries = [i for i, r in enumerate(records) if r.metadata.get("kind") == SUMMARY_KIND]
    others = [i for i, r in enumerate(records) if r.metadata.get("kind") != SUMMARY_KIND]
    groups = []
    for part in (summaries, others):
        for group in duplicate_groups([records[i] for i in part], threshold):
            groups.append([part[i] for i in group])
    return groups


def merged(keeper: MemoryRecord, others: Sequence[MemoryRecord]) -> MemoryRecord:
    metadata: dict[str, str] = {}
    for other in others:
        metadata.update(other.metadata)
    metadata.update(keeper.metadata)
    sources = list(keeper.sources)
    for other in others:
        sources += [other.id, *other.sources]
    return replace(
        keeper,
        importance=max([keeper.importance, *(o.importance for o in others)]),
        metadata=metadata,
        sources=tuple(dict.fromkeys(sources)),
    )


def clusters(records: Sequence[MemoryRecord], threshold: float, min_size: int) -> list[list[int]]:
    """Clusters of related memories: each is an unclustered memory (oldest first) with every
    other unclustered one at or above `threshold` similarity to it, when there are at least
    `min_size` in all."""
    if not records:
        return []
    unit = _unit(records)
    order = sorted(range(len(records)), key=lambda i: records[i].created_at)
    taken = np.zeros(len(records), dtype=bool)
    found = []
    for seed in order:
        if taken[seed]:
            continue
        near = np.flatnonzero(((unit @ unit[seed]) >= threshold) & ~taken)
        if len(near) >= min_size:
            taken[near] = True
            found.append([seed, *(int(i) for i in near if i != seed)])
    return found


def centroid(members: Sequence[MemoryRecord]) -> list[float]:
    """The normalised mean of the members' unit vectors: a summary's vector when no model
    embeds it."""
    mean = _unit(members).mean(axis=0)
    norm = float(np.linalg.norm(mean))
    if norm < 1e-12:
        raise InvalidInput("summarizer", "the cluster's vectors cancel out: no centroid")
    return [float(x) for x in mean / norm]


async def summarize(model: Summarizer, contents: Sequence[str]) -> str:
    listing = "\n".join(f"- {c}" for c in contents)
    reply = await model.complete(
        [
            {
                "role": "system",
                "content": "You merge an agent's related memories into one short memory that "
                "keeps every fact, name and number they hold. Answer with the memory only.",
            },
            {"role": "user", "content": f"Memories:\n{listing}"},
        ]
    )
    text = str(getattr(reply, "content", "") or "").strip()
    if not text:
        raise InvalidInput("summarizer", "the model answered with no summary")
    return text


async def consolidate(
    memory: SemanticMemory,
    *,
    summarizer: Summarizer | None = None,
    cluster_threshold: float = 0.75,
    min_cluster: int = 3,
    similarity_threshold: float | None = None,
    limit: int = DEFAULT_LIMIT,
) -> ConsolidationResult:
    """One consolidation pass over `memory`'s store (see the module's docstring)."""
    threshold = similarity_threshold
    if threshold is None:
        config = memory.spec.consolidation
        threshold = config.similarity_threshold if config else 0.9
    if not 0 < threshold <= 1:
        raise InvalidInput("consolidation.similarityThreshold", f"{threshold} is not in (0, 1]")
    if not 0 < cluster_threshold <= 1:
        raise InvalidInput("cluster_threshold", f"{cluster_threshold} is not in (0, 1]")
    if min_cluster < 2:
        raise InvalidInput("min_cluster", f"{min_cluster}: a cluster has at least 2 memories")
    before = await memory.count()
    now = memory.clock()
    expired = await memory.call("consolidate", lambda: memory.backend.purge_expired(now))
    records = await memory.records(vectors=True, limit=limit)

    low = [r for r in records if standing(r, now, memory.half_life_s) < memory.min_score]
    dropped = await memory.call("consolidate", lambda: memory.backend.delete([r.id for r in low]))
    low_ids = {r.id for r in low}
    records = [r for r in records if r.id not in low_ids]

    merged_away = 0
    groups = _duplicates_apart_from_summaries(records, threshold)
    if groups:
        keepers = [merged(records[g[0]], [records[i] for i in g[1:]]) for g in groups]
        away = [records[i].id for g in groups for i in g[1:]]
        await memory.call("consolidate", lambda: memory.backend.put(keepers))
        merged_away = await memory.call("consolidate", lambda: memory.backend.delete(away))
        gone = set(away)
        by_id = {k.id: k for k in keepers}
        records = [by_id.get(r.id, r) for r in records if r.id not in gone]

    summaries = summarized = 0
    vectors = error = None
    if summarizer is not None:
        vectors = CENTROID if isinstance(memory.embedder, StoredVectorsOnly) else EMBEDDINGS
        open_records = [
            r
            for r in records
            if SUMMARIZED_INTO not in r.metadata and r.metadata.get("kind") != SUMMARY_KIND
        ]
        try:
            for cluster in clusters(open_records, cluster_threshold, min_cluster):
                members = [open_records[i] for i in cluster]
                summary = await _summary(memory, summarizer, members, vectors)
                marked = [
                    replace(m, metadata={**m.metadata, SUMMARIZED_INTO: summary.id})
                    for m in members
                ]
                await memory.call("consolidate", partial(memory.backend.put, marked))
                summaries += 1
                summarized += len(members)
        except HiveError as exc:
            error = f"summaries: {exc}"[:1000]
    after = await memory.count()
    return ConsolidationResult(
        before=before,
        after=after,
        expired=expired,
        dropped=dropped,
        merged=merged_away,
        summaries=summaries,
        summarized=summarized,
        summary_vectors=vectors,
        error=error,
    )


async def _summary(
    memory: SemanticMemory, model: Summarizer, members: Sequence[MemoryRecord], vectors: str
) -> MemoryRecord:
    """The cluster's summary memory, stored: the model's text, the cluster's highest
    importance, the members' ids as its sources."""
    text = await summarize(model, [m.content for m in members])
    importance = max(m.importance for m in members)
    sources = [m.id for m in members]
    if vectors == EMBEDDINGS:
        return await memory.store(
            text,
            metadata={"kind": SUMMARY_KIND},
            importance=importance,
            agent="consolidation",
            sources=sources,
        )
    now = memory.clock()
    record = MemoryRecord(
        id=new_id(),
        content=text,
        importance=importance,
        metadata={"kind": SUMMARY_KIND},
        agent="consolidation",
        run="",
        created_at=now,
        expires_at=now + memory.ttl_s if memory.ttl_s else None,
        sources=tuple(sources),
        vector=centroid(members),
    )
    await memory.call("consolidate", partial(memory.backend.put, [record]))
    return record
