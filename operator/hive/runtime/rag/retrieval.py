"""Finding the chunks that answer a question: BM25 and vector search, fused, then reranked.

- ``bm25`` and ``vector`` modes run one Weaviate query each (for comparison and tests).
- ``hybrid`` fuses the two, by reciprocal-rank fusion of separate BM25 and near-vector queries
  (``fusion="rrf"``: each chunk scores the sum of 1/(k + rank) over the lists it is in), or by
  Weaviate's hybrid query with `alpha` and relative-score fusion (``fusion="relative_score"``).
- ``rerank="sentence"`` reorders the fused candidates by a blend of their fused score and the
  best cosine similarity between the question and one of their sentences (the local embedding
  model scores each sentence). No cross-encoder ships in a package (checked on PyPI: flashrank
  and the like download their weights at run time), and maximal marginal relevance lowered
  recall@3 on the shipped question set, so it was dropped. bench/rag_quality.py measures it.

Whether anything relevant was found at all is judged apart from the ranking: the cosine
similarity between the question's vector and the best chosen chunk's, against
``rag.min_relevance`` (fused scores are relative to one query and say nothing absolute).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Literal

import numpy as np

from hive.errors import InvalidInput
from hive.runtime.memory.embeddings import Embedder
from hive.runtime.rag.index import ChunkIndex, Hit
from hive.settings import RagSettings

Mode = Literal["hybrid", "vector", "bm25"]
MODES: tuple[Mode, ...] = ("hybrid", "vector", "bm25")


@dataclass(frozen=True)
class Retrieved:
    question: str
    hits: list[Hit]  # best first
    relevance: float  # cosine of the question and its most similar chosen chunk
    found: bool  # relevance reached rag.min_relevance


def reciprocal_rank_fusion(rankings: list[list[Hit]], k: int) -> list[Hit]:
    """The hits of all `rankings`, each scored sum(1 / (k + rank)), best first (rank from 1)."""
    scores: dict[tuple[str, int], float] = {}
    first_seen: dict[tuple[str, int], Hit] = {}
    for ranking in rankings:
        for rank, hit in enumerate(ranking, start=1):
            key = (hit.chunk.source, hit.chunk.index)
            scores[key] = scores.get(key, 0.0) + 1.0 / (k + rank)
            first_seen.setdefault(key, hit)
    order = sorted(scores, key=lambda key: -scores[key])
    return [Hit(first_seen[key].chunk, scores[key], first_seen[key].vector) for key in order]


SENTENCE = re.compile(r"(?<=[.!?])\s+|\n\s*\n")


def sentences(text: str) -> list[str]:
    return [s.strip() for s in SENTENCE.split(text) if len(s.strip()) > 3] or [text]


class Retriever:
    """Questions in, the `k` most useful chunks of a :class:`ChunkIndex` out."""

    def __init__(self, index: ChunkIndex, embedder: Embedder, settings: RagSettings) -> None:
        self.index = index
        self.embedder = embedder
        self.settings = settings

    async def retrieve(
        self,
        question: str,
        k: int | None = None,
        *,
        mode: Mode = "hybrid",
        fusion: str | None = None,
        rerank: str | None = None,
    ) -> Retrieved:
        if not question.strip():
            raise InvalidInput("question", "is empty")
        if mode not in MODES:
            raise InvalidInput("mode", f"{mode!r} is not one of {', '.join(MODES)}")
        settings = self.settings
        k = k or settings.top_k
        fusion = fusion or settings.fusion
        rerank = rerank or settings.rerank
        pool = max(settings.candidates, k)
        vector = (await self.embedder.embed([question]))[0]
        if mode == "bm25":
            hits = await asyncio.to_thread(self.index.bm25, question, pool)
        elif mode == "vector":
            hits = await asyncio.to_thread(self.index.near_vector, vector, pool)
        elif fusion == "rrf":
            lexical, semantic = await asyncio.gather(
                asyncio.to_thread(self.index.bm25, question, pool),
                asyncio.to_thread(self.index.near_vector, vector, pool),
            )
            hits = reciprocal_rank_fusion([lexical, semantic], settings.rrf_k)
        elif fusion == "relative_score":
            hits = await asyncio.to_thread(
                self.index.hybrid, question, vector, settings.alpha, pool
            )
        else:
            raise InvalidInput("rag.fusion", f"{fusion!r} is not rrf or relative_score")
        if rerank == "sentence":
            hits = await self.sentence_rerank(vector, hits)
        elif rerank != "none":
            raise InvalidInput("rag.rerank", f"{rerank!r} is not none or sentence")
        hits = hits[:k]
        query = np.asarray(vector, dtype=np.float32)
        relevance = max((float(h.vector @ query) for h in hits), default=-1.0)
        return Retrieved(question, hits, relevance, relevance >= settings.min_relevance)

    async def sentence_rerank(self, vector: list[float], hits: list[Hit]) -> list[Hit]:
        """`hits` reordered by a blend of their fused score and the best cosine between the
        question and one of their sentences (each scaled to 0..1 within `hits`)."""
        if len(hits) <= 1:
            return hits
        pieces = [sentences(h.chunk.text) for h in hits]
        flat = [p for group in pieces for p in group]
        vectors = np.asarray(await self.embedder.embed(flat), dtype=np.float32)
        cosines = vectors @ np.asarray(vector, dtype=np.float32)
        best, at = [], 0
        for group in pieces:
            best.append(float(cosines[at : at + len(group)].max()))
            at += len(group)
        weight = self.settings.rerank_weight
        fused = _scaled(np.array([h.score for h in hits]))
        local = _scaled(np.array(best))
        blended = weight * local + (1 - weight) * fused
        order = np.argsort(-blended, kind="stable")
        return [Hit(hits[i].chunk, float(blended[i]), hits[i].vector) for i in order]


def _scaled(values: np.ndarray) -> np.ndarray:
    span = values.max() - values.min()
    return (values - values.min()) / span if span > 0 else np.ones_like(values)
