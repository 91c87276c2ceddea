"""Semantic memory: what agents remember across runs, in a MemoryStore's Weaviate collection
or Redis keyspace, recalled by meaning.

:class:`SemanticMemory` turns texts into vectors with the store's embedding model (the
embedder's model and dimensions must be the ones ``spec.embedding`` declares) and keeps them
in a :class:`MemoryBackend`:

- ``store(content, metadata=, importance=, agent=, run=)`` writes one memory; with
  ``retention.ttl`` it expires that long after it was stored (Redis deletes it then; from a
  Weaviate collection it is filtered out of every query, and deleted by the next store at
  least ``purge_every_s`` after the last purge, or by consolidation);
- ``retrieve(query, k=, filters=, min_score=)`` returns the best `k` memories by score
  (similarity x importance x recency decay, see :mod:`hive.runtime.memory.records`) at or
  above the minimum score (``retention.decay.minScore`` unless given), metadata filters
  matching exactly;
- ``forget(id)`` and ``forget_where(filters)`` delete.

The backend's nearest-neighbour search gives candidates (``OVERSAMPLE`` x k of them, at least
``MIN_CANDIDATES``), which are then scored: a memory only recency or importance would put
first must still be among the most similar candidates to be seen. Every backend call passes
the agent's call chain as a ``memory`` call named after the store, so breakers, error
learning and chaos faults apply to it as to a model call. A backend that fails raises
:class:`hive.errors.Unavailable` naming the store; nothing is reported stored unless the
backend acknowledged it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from hive.api.memorystore import Backend, MemoryStoreSpec
from hive.errors import HiveError, InvalidInput
from hive.runtime.memory.embeddings import Embedder
from hive.runtime.memory.records import (
    MemoryRecord,
    Recalled,
    check_filters,
    check_importance,
    check_metadata,
    new_id,
    parse_duration,
    score,
)
from hive.runtime.privacy.wiring import scrub_memory_write
from hive.runtime.resilience.calls import EMPTY, Call, CallKind, Chain

log = logging.getLogger(__name__)
T = TypeVar("T")
OVERSAMPLE = 4
MIN_CANDIDATES = 20
MAX_K = 100
MAX_CONTENT = 20_000  # characters of one memory


class MemoryBackend(Protocol):
    """Where records live. Every method raises Unavailable naming the store when the backend
    does not answer."""

    async def prepare(self, model: str, dimensions: int) -> None:
        """Make ready for vectors of `dimensions` (create the collection on first use); a
        collection made for another size is refused."""

    async def put(self, records: Sequence[MemoryRecord]) -> None:
        """Write (or overwrite, by id) `records`, each with its vector; returns once stored."""

    async def nearest(
        self, vector: Sequence[float], limit: int, filters: Mapping[str, str], now: float
    ) -> list[tuple[MemoryRecord, float]]:
        """Up to `limit` unexpired records matching `filters`, most similar first, with their
        cosine similarity to `vector`."""

    async def records(
        self, filters: Mapping[str, str], *, now: float, vectors: bool, limit: int
    ) -> list[MemoryRecord]:
        """Unexpired records matching `filters` (at most `limit`; more is an error)."""

    async def delete(self, ids: Sequence[str]) -> int:
        """Delete by id; how many existed."""

    async def delete_where(self, filters: Mapping[str, str]) -> int:
        """Delete every record matching `filters`; how many."""

    async def purge_expired(self, now: float) -> int:
        """Delete records whose TTL ran out (a backend that expires keys itself: 0)."""

    async def count(self) -> int: ...

    async def close(self) -> None: ...


class EmbeddingMismatch(InvalidInput):
    """The embedder is not the model the store's vectors were made with."""


def check_embedder(store: str, spec: MemoryStoreSpec, embedder: Embedder) -> None:
    want = spec.embedding
    if embedder.model != want.model or embedder.dimensions != want.dimensions:
        raise EmbeddingMismatch(
            f"MemoryStore {store} spec.embedding",
            f"the store's vectors are {want.model} ({want.dimensions} dimensions), but the "
            f"embedder is {embedder.model} ({embedder.dimensions} dimensions); set "
            "HIVE_AGENT__EMBEDDINGS__MODEL/__DIMENSIONS (or __ENDPOINT) to the store's model",
        )


@dataclass
class SemanticMemory:
    """One MemoryStore, used by one process."""

    name: str
    spec: MemoryStoreSpec
    backend: MemoryBackend
    embedder: Embedder
    clock: Callable[[], float] = time.time
    chain: Chain = EMPTY  # the agent's call chain: memory calls pass it as kind memory
    purge_every_s: float = 60.0  # expired memories deleted by a store at most this often
    _prepared: bool = field(default=False, init=False)
    _last_purge: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        check_embedder(self.name, self.spec, self.embedder)
        retention = self.spec.retention
        self.ttl_s = parse_duration(retention.ttl, "spec.retention.ttl") if retention.ttl else None
        decay = retention.decay
        self.half_life_s = (
            parse_duration(decay.half_life, "spec.retention.decay.halfLife") if decay else None
        )
        self.min_score = decay.min_score if decay else 0.0

    async def call(self, operation: str, transport: Callable[[], Awaitable[T]]) -> T:
        return await self.chain.run(Call(CallKind.MEMORY, self.name, operation), transport)

    async def _ready(self) -> None:
        if not self._prepared:
            dims = self.spec.embedding.dimensions
            await self.call(
                "prepare", lambda: self.backend.prepare(self.spec.embedding.model, dims)
            )
            self._prepared = True

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return await self.embedder.embed(list(texts))

    async def store(
        self,
        content: str,
        *,
        metadata: Mapping[str, object] | None = None,
        importance: float = 0.5,
        agent: str = "",
        run: str = "",
        sources: Sequence[str] = (),
    ) -> MemoryRecord:
        """Remember `content`; the record as stored (its id to forget it by)."""
        text = content.strip()
        if not text:
            raise InvalidInput("content", "is empty")
        if len(text) > MAX_CONTENT:
            raise InvalidInput("content", f"{len(text)} characters; at most {MAX_CONTENT}")
        text = scrub_memory_write(self.chain, self.name, text)  # spec.privacy memoryWrites
        now = self.clock()
        record = MemoryRecord(
            id=new_id(),
            content=text,
            importance=check_importance(importance),
            metadata=check_metadata(metadata),
            agent=agent,
            run=run,
            created_at=now,
            expires_at=now + self.ttl_s if self.ttl_s else None,
            sources=tuple(sources),
            vector=(await self.embed([text]))[0],
        )
        await self._ready()
        await self.call("store", lambda: self.backend.put([record]))
        await self._purge_expired(now)
        return record

    async def _purge_expired(self, now: float) -> None:
        """With a TTL, delete the memories past it, at most every `purge_every_s`: a Weaviate
        collection only filters them out of queries (Redis expires them itself and has none
        to delete). A failure is logged, not raised: the memory just stored is stored."""
        if self.ttl_s is None:
            return
        if self._last_purge is not None and now - self._last_purge < self.purge_every_s:
            return
        self._last_purge = now
        try:
            purged = await self.call("purge", lambda: self.backend.purge_expired(now))
        except HiveError as exc:
            log.warning("MemoryStore %s: expired memories not deleted: %s", self.name, exc)
            return
        if purged:
            log.info("MemoryStore %s: %d expired memories deleted", self.name, purged)

    async def retrieve(
        self,
        query: str,
        k: int = 5,
        *,
        filters: Mapping[str, str] | None = None,
        min_score: float | None = None,
    ) -> list[Recalled]:
        """The `k` best memories for `query` at or above the minimum score, best first."""
        if not 1 <= k <= MAX_K:
            raise InvalidInput("k", f"{k} is not between 1 and {MAX_K}")
        floor = self.min_score if min_score is None else min_score
        if not 0.0 <= floor <= 1.0:
            raise InvalidInput("min_score", f"{floor} is not between 0 and 1")
        checked = check_filters(filters)
        vector = (await self.embed([query]))[0]
        await self._ready()
        now = self.clock()
        limit = max(k * OVERSAMPLE, MIN_CANDIDATES)
        candidates = await self.call(
            "retrieve", lambda: self.backend.nearest(vector, limit, checked, now)
        )
        return self.rank(candidates, now, k, floor)

    def rank(
        self, candidates: Sequence[tuple[MemoryRecord, float]], now: float, k: int, floor: float
    ) -> list[Recalled]:
        scored = [
            Recalled(r, sim, score(sim, r.importance, now - r.created_at, self.half_life_s))
            for r, sim in candidates
        ]
        kept = [r for r in scored if r.score >= floor]
        kept.sort(key=lambda r: (-r.score, -r.record.created_at, r.record.id))
        return kept[:k]

    async def forget(self, memory_id: str) -> bool:
        """Delete one memory; False when there was none with that id."""
        await self._ready()
        return await self.call("forget", lambda: self.backend.delete([memory_id])) > 0

    async def forget_where(self, filters: Mapping[str, str]) -> int:
        """Delete every memory whose metadata (or agent, run) matches `filters`."""
        checked = check_filters(filters)
        if not checked:
            raise InvalidInput("filters", "at least one filter is needed to forget by filter")
        await self._ready()
        return await self.call("forget", lambda: self.backend.delete_where(checked))

    async def records(
        self, filters: Mapping[str, str] | None = None, *, vectors: bool = False, limit: int
    ) -> list[MemoryRecord]:
        await self._ready()
        checked = check_filters(filters)
        now = self.clock()
        return await self.call(
            "list", lambda: self.backend.records(checked, now=now, vectors=vectors, limit=limit)
        )

    async def count(self) -> int:
        await self._ready()
        return await self.call("count", self.backend.count)

    async def close(self) -> None:
        await self.backend.close()


def store_spec(data: Mapping[str, Any], where: str) -> MemoryStoreSpec:
    """A MemoryStore's spec from a mapping (a manifest's spec), with errors naming `where`."""
    from pydantic import ValidationError

    from hive.api.common import describe_validation_error

    try:
        return MemoryStoreSpec.model_validate(dict(data))
    except ValidationError as exc:
        raise InvalidInput(where, describe_validation_error(exc)) from exc


def open_backend(
    name: str,
    spec: MemoryStoreSpec,
    *,
    secret: str | None = None,
    username: str | None = None,
    timeout_s: float = 10.0,
    redis_scan_limit: int = 10_000,
) -> MemoryBackend:
    """The backend of a MemoryStore: Weaviate (API key `secret`) or Redis (password `secret`,
    ACL user `username`)."""
    if spec.backend == Backend.WEAVIATE:
        from hive.runtime.memory.weaviate_backend import WeaviateBackend

        return WeaviateBackend(name, spec, api_key=secret, timeout_s=timeout_s)
    from hive.runtime.memory.redis_backend import RedisBackend

    return RedisBackend(
        name,
        spec,
        password=secret,
        username=username,
        timeout_s=timeout_s,
        scan_limit=redis_scan_limit,
    )
