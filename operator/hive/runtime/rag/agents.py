"""An agent pod's documents: the search_documents tool over its team's ``spec.memory.documents``.

The operator writes the store into the agent's ConfigMap (``documentsStore``: name and spec,
a managed store's endpoint filled in) and its API key into HIVE_RAG__WEAVIATE_API_KEY; vectors
come from the team's embeddings server (HIVE_AGENT__EMBEDDINGS__ENDPOINT). The store is opened
on the first question, so a Weaviate that is not up yet fails that question, not the pod; the
answers are written by the agent's own model, from ``topK`` chunks (else HIVE_RAG__TOP_K).
"""

from __future__ import annotations

import asyncio

from hive.api.memorystore import MemoryStoreSpec
from hive.runtime.memory.semantic import store_spec
from hive.runtime.pod import PodConfig
from hive.runtime.rag.answering import Answer, Answerer, ChatModel
from hive.runtime.rag.pipeline import DocumentStore
from hive.settings import Settings


class StoreDocuments(Answerer):
    """An Answerer whose store opens on its first question and closes with the pod."""

    def __init__(self, spec: MemoryStoreSpec, model: ChatModel, settings: Settings) -> None:
        self.spec = spec
        self.model = model
        self.all_settings = settings
        self.settings = settings.rag
        self._store: DocumentStore | None = None
        self._opening = asyncio.Lock()

    async def ask(self, question: str, k: int | None = None) -> Answer:
        async with self._opening:
            if self._store is None:
                self._store = await asyncio.to_thread(DocumentStore, self.spec, self.all_settings)
                self.retriever = self._store.retriever
        return await super().ask(question, k)

    async def close(self) -> None:
        if self._store is not None:
            await asyncio.to_thread(self._store.close)
            self._store = None


def pod_documents(config: PodConfig, model: ChatModel, settings: Settings) -> StoreDocuments | None:
    """The documents the operator gave the agent (its ConfigMap's ``documentsStore``), answered
    by `model`; None when it has none."""
    entry = config.documents_store
    documents = config.spec.memory.documents
    if entry is None or documents is None:
        return None
    name = str(entry.get("name") or "")
    spec = store_spec(entry.get("spec") or {}, f"documentsStore {name}")
    if documents.top_k is not None:
        settings = settings.model_copy(
            update={"rag": settings.rag.model_copy(update={"top_k": documents.top_k})}
        )
    return StoreDocuments(spec, model, settings)
