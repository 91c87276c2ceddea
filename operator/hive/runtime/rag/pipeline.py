"""A document store opened from a MemoryStore spec: Weaviate client, embedder, chunker,
index, retriever, wired from the settings tree and closed together."""

from __future__ import annotations

from types import TracebackType

from hive.api.memorystore import MemoryStoreSpec
from hive.runtime.memory.embeddings import Embedder, embedder_for_store
from hive.runtime.rag.chunking import TokenChunker, load_tokenizer
from hive.runtime.rag.index import ChunkIndex, connect
from hive.runtime.rag.retrieval import Retriever
from hive.settings import Settings


class DocumentStore:
    """Everything `hive rag` and the search_documents tool need of one store."""

    def __init__(
        self,
        spec: MemoryStoreSpec,
        settings: Settings,
        embedder: Embedder | None = None,
        *,
        api_key: str | None = None,
    ):
        """`api_key`: the store's Weaviate API key (default: HIVE_RAG__WEAVIATE_API_KEY)."""
        rag = settings.rag
        if api_key is None and rag.weaviate_api_key is not None:
            api_key = rag.weaviate_api_key.get_secret_value()
        chunker = TokenChunker(
            load_tokenizer(settings.agent.embeddings.model_dir), rag.chunk_tokens, rag.chunk_overlap
        )
        self.embedder = embedder or embedder_for_store(
            settings.agent.embeddings, spec.embedding.model, spec.embedding.dimensions
        )
        self.index = ChunkIndex(connect(spec, api_key), spec.collection, self.embedder, chunker)
        self.retriever = Retriever(self.index, self.embedder, rag)
        self.settings = settings

    def close(self) -> None:
        self.index.close()

    def __enter__(self) -> DocumentStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
