"""Chunks and their vectors in a MemoryStore's Weaviate collection.

One object per chunk: its text, the document's title and source (absolute path), its character
offsets and position, and the SHA-256 of the file it came from. Hive brings the vectors (the
collection has no vectorizer); Weaviate's BM25 index covers ``text`` and ``title``. Indexing a
file whose hash is already stored does nothing; a changed file gets its new chunks first, then
the old ones are deleted, so a search never finds the file without chunks.

The client is weaviate-client v4's synchronous one; callers on an event loop use the ``a``
methods, which run it in a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import numpy as np
import weaviate
import weaviate.exceptions
from weaviate.classes.config import Configure, DataType, Property, Tokenization
from weaviate.classes.data import DataObject
from weaviate.classes.init import Auth
from weaviate.classes.query import Filter, HybridFusion, MetadataQuery
from weaviate.util import generate_uuid5

from hive.api.memorystore import DEFAULT_GRPC_PORT, Backend, MemoryStoreSpec
from hive.errors import ExternalFailure, InvalidInput, Unavailable
from hive.runtime.memory.embeddings import Embedder
from hive.runtime.memory.weaviate_connect import check_sync
from hive.runtime.rag.chunking import Chunk, TokenChunker
from hive.runtime.rag.documents import Document

CHUNK_PROPERTIES = ("text", "title", "source", "start", "end", "chunk_index", "content_hash")
SEARCHED = ["text", "title"]


@dataclass(frozen=True)
class Hit:
    chunk: Chunk
    score: float  # the query's own score (BM25, 1 - cosine distance, or hybrid)
    vector: np.ndarray  # the chunk's unit vector


@dataclass(frozen=True)
class Indexed:
    source: str
    chunks: int
    outcome: Literal["added", "replaced", "unchanged"]


def connect(spec: MemoryStoreSpec, api_key: str | None = None) -> weaviate.WeaviateClient:
    """A connected client for a Weaviate store; one that cannot be reached is Unavailable."""
    if spec.backend != Backend.WEAVIATE:
        raise InvalidInput(
            "spec.backend", f"documents need a weaviate store, this one is {spec.backend}"
        )
    if spec.connection.secret_ref is not None and not api_key:
        raise InvalidInput(
            "spec.connection.secretRef",
            "the store wants an API key: set HIVE_RAG__WEAVIATE_API_KEY to the Secret's value",
        )
    url = urlsplit(spec.connection.url())
    secure = url.scheme == "https"
    host = url.hostname or "localhost"
    grpc_port = spec.connection.grpc_port or DEFAULT_GRPC_PORT
    try:
        client = weaviate.connect_to_custom(
            http_host=host,
            http_port=url.port or (443 if secure else 80),
            http_secure=secure,
            grpc_host=host,
            grpc_port=grpc_port,
            grpc_secure=secure,
            auth_credentials=Auth.api_key(api_key) if api_key else None,
            skip_init_checks=True,  # they ask pypi.org too; gRPC's health is checked next
        )
        try:
            check_sync(client)
        except BaseException:
            client.close()
            raise
        return client
    except weaviate.exceptions.AuthenticationFailedError as exc:
        raise InvalidInput("HIVE_RAG__WEAVIATE_API_KEY", "Weaviate refused the API key") from exc
    except weaviate.exceptions.WeaviateBaseError as exc:
        where = f"{spec.connection.endpoint} (gRPC {grpc_port})"
        raise Unavailable(f"weaviate at {where}: {_first_line(exc)}") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else exc.__class__.__name__


class ChunkIndex:
    """The document chunks of one Weaviate collection."""

    def __init__(
        self,
        client: weaviate.WeaviateClient,
        collection: str,
        embedder: Embedder,
        chunker: TokenChunker,
    ) -> None:
        self.client = client
        self.name = collection
        self.embedder = embedder
        self.chunker = chunker
        self._ready = False

    def _collection(self) -> Any:
        if not self._ready:
            self.ensure_collection()
        return self.client.collections.use(self.name)

    def ensure_collection(self) -> None:
        """Create the collection for chunks if missing; refuse one that holds something else."""
        try:
            if self.client.collections.exists(self.name):
                config = self.client.collections.use(self.name).config.get()
                have = {p.name for p in config.properties}
                missing = [p for p in CHUNK_PROPERTIES if p not in have]
                if missing and have:
                    raise InvalidInput(
                        "spec.collection",
                        f"collection {self.name} holds other objects than document chunks "
                        f"(no {', '.join(missing)}); give documents a store of their own",
                    )
            else:
                self.client.collections.create(
                    self.name,
                    vector_config=Configure.Vectors.self_provided(),
                    properties=[
                        Property(name="text", data_type=DataType.TEXT),
                        Property(name="title", data_type=DataType.TEXT),
                        Property(
                            name="source",
                            data_type=DataType.TEXT,
                            tokenization=Tokenization.FIELD,
                            index_searchable=False,
                        ),
                        Property(name="start", data_type=DataType.INT),
                        Property(name="end", data_type=DataType.INT),
                        Property(name="chunk_index", data_type=DataType.INT),
                        Property(
                            name="content_hash",
                            data_type=DataType.TEXT,
                            tokenization=Tokenization.FIELD,
                            index_searchable=False,
                        ),
                    ],
                )
        except weaviate.exceptions.WeaviateBaseError as exc:
            raise ExternalFailure(f"weaviate collection {self.name}: {_first_line(exc)}") from exc
        self._ready = True

    def stored_hashes(self, source: str) -> set[str]:
        """The content hashes stored for `source` (one, unless a replacement was cut short)."""
        response = self._collection().query.fetch_objects(
            filters=Filter.by_property("source").equal(source),
            return_properties=["content_hash"],
            limit=10_000,
        )
        return {str(o.properties["content_hash"]) for o in response.objects}

    async def index(self, document: Document) -> Indexed:
        """Store `document`'s chunks unless its content hash is stored already."""
        hashes = await asyncio.to_thread(self.stored_hashes, document.source)
        if hashes == {document.content_hash}:
            count = await asyncio.to_thread(self.count, document.source)
            return Indexed(document.source, count, "unchanged")
        chunks = self.chunker.chunks(document.source, document.title, document.text)
        vectors = await self.embedder.embed([c.text for c in chunks]) if chunks else []
        await asyncio.to_thread(self._replace, document, chunks, vectors)
        return Indexed(document.source, len(chunks), "replaced" if hashes else "added")

    def _replace(self, document: Document, chunks: list[Chunk], vectors: list[list[float]]) -> None:
        collection = self._collection()
        objects = [
            DataObject(
                properties={
                    "text": chunk.text,
                    "title": chunk.title,
                    "source": chunk.source,
                    "start": chunk.start,
                    "end": chunk.end,
                    "chunk_index": chunk.index,
                    "content_hash": document.content_hash,
                },
                vector=vector,
                uuid=generate_uuid5(f"{chunk.source}#{document.content_hash}#{chunk.index}"),
            )
            for chunk, vector in zip(chunks, vectors, strict=True)
        ]
        try:
            if objects:
                result = collection.data.insert_many(objects)
                if result.has_errors:
                    first = next(iter(result.errors.values()))
                    raise ExternalFailure(
                        f"weaviate collection {self.name}: {len(result.errors)} chunks of "
                        f"{document.source} refused: {first.message}"
                    )
            collection.data.delete_many(
                where=Filter.by_property("source").equal(document.source)
                & Filter.by_property("content_hash").not_equal(document.content_hash)
            )
        except weaviate.exceptions.WeaviateBaseError as exc:
            raise ExternalFailure(f"weaviate collection {self.name}: {_first_line(exc)}") from exc

    def count(self, source: str | None = None) -> int:
        collection = self._collection()
        where = Filter.by_property("source").equal(source) if source else None
        result = collection.aggregate.over_all(filters=where, total_count=True)
        return int(result.total_count or 0)

    def chunks_of(self, source: str) -> list[Chunk]:
        """The stored chunks of `source`, in order."""
        response = self._collection().query.fetch_objects(
            filters=Filter.by_property("source").equal(source), limit=10_000
        )
        chunks = [_chunk(o.properties) for o in response.objects]
        return sorted(chunks, key=lambda c: c.index)

    # --- queries --------------------------------------------------------------------------
    def bm25(self, query: str, limit: int) -> list[Hit]:
        return self._query(
            "bm25",
            lambda c: c.query.bm25(
                query,
                query_properties=SEARCHED,
                limit=limit,
                include_vector=True,
                return_metadata=MetadataQuery(score=True),
            ),
        )

    def near_vector(self, vector: Sequence[float], limit: int) -> list[Hit]:
        return self._query(
            "near_vector",
            lambda c: c.query.near_vector(
                list(vector),
                limit=limit,
                include_vector=True,
                return_metadata=MetadataQuery(distance=True),
            ),
        )

    def hybrid(self, query: str, vector: Sequence[float], alpha: float, limit: int) -> list[Hit]:
        return self._query(
            "hybrid",
            lambda c: c.query.hybrid(
                query,
                vector=list(vector),
                alpha=alpha,
                query_properties=SEARCHED,
                fusion_type=HybridFusion.RELATIVE_SCORE,
                limit=limit,
                include_vector=True,
                return_metadata=MetadataQuery(score=True),
            ),
        )

    def _query(self, kind: str, run: Any) -> list[Hit]:
        try:
            response = run(self._collection())
        except weaviate.exceptions.WeaviateBaseError as exc:
            raise Unavailable(f"weaviate {kind} query on {self.name}: {_first_line(exc)}") from exc
        hits = []
        for item in response.objects:
            meta = item.metadata
            if meta.distance is not None:
                score = 1.0 - float(meta.distance)
            else:
                score = float(meta.score or 0.0)
            vector = item.vector.get("default") if isinstance(item.vector, dict) else item.vector
            hits.append(Hit(_chunk(item.properties), score, np.asarray(vector, dtype=np.float32)))
        return hits

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()


def _chunk(properties: Any) -> Chunk:
    return Chunk(
        source=str(properties["source"]),
        title=str(properties.get("title") or ""),
        index=int(properties["chunk_index"]),
        start=int(properties["start"]),
        end=int(properties["end"]),
        text=str(properties["text"]),
        tokens=0,
    )
