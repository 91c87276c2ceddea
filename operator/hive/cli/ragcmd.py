"""`hive rag`: index documents into a MemoryStore's Weaviate collection and ask them questions.

``--store`` names a MemoryStore manifest (a YAML file, as ``kubectl apply`` takes it; its API
key from HIVE_RAG__WEAVIATE_API_KEY) or a MemoryStore in the cluster by name (namespace ``-n``;
its API key read from the Secret of its ``connection.secretRef``) whose backend is weaviate;
its collection holds the chunks. ``ask`` answers with the team-less chat
model: ``--endpoint``/``--model`` (any OpenAI-compatible server; key from HIVE_MODEL_API_KEY),
else the embedded SmolLM2 started here.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import yaml

from hive.api.common import describe_validation_error
from hive.api.memorystore import MemoryStoreSpec
from hive.cli.errors import one_line_errors
from hive.errors import InvalidInput
from hive.settings import Settings, get_settings

if TYPE_CHECKING:
    from hive.runtime.rag.answering import ChatModel
    from hive.runtime.toolbox import Toolbox

STORE_HELP = (
    "A weaviate MemoryStore whose collection holds the chunks: its manifest (YAML file), or its "
    "name in the cluster (its API key read from its Secret there)."
)
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


def load_store(path: Path, option: str = "--store") -> MemoryStoreSpec:
    """The spec of the MemoryStore manifest in `path`, checked; errors name the field."""
    from pydantic import ValidationError

    try:
        manifest: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidInput(option, f"{path}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise InvalidInput(option, f"{path} is not YAML ({exc.__class__.__name__})") from exc
    if not isinstance(manifest, dict) or manifest.get("kind") != "MemoryStore":
        raise InvalidInput(option, f"{path} is not a MemoryStore manifest (kind: MemoryStore)")
    try:
        return MemoryStoreSpec.model_validate(manifest.get("spec") or {})
    except ValidationError as exc:  # 'spec.connection.endpoint: required, unless managed ...'
        raise InvalidInput(str(path), describe_validation_error(exc)) from exc


@dataclass(frozen=True)
class StoreRef:
    """The store `--store` names: its spec and the API key to reach it with (None: the
    settings' HIVE_RAG__WEAVIATE_API_KEY)."""

    spec: MemoryStoreSpec
    api_key: str | None = None


def resolve_store(store: str, namespace: str) -> StoreRef:
    """A manifest file (also one that is missing, when `store` reads as a path), else the
    MemoryStore `namespace`/`store` in the cluster with the key of its Secret."""
    path = Path(store)
    if path.is_file() or "/" in store or path.suffix in MANIFEST_SUFFIXES:
        return StoreRef(load_store(path))
    from hive.cli.memorycmd import cluster_store

    spec, secret, _ = asyncio.run(cluster_store(get_settings(), store, namespace))
    return StoreRef(spec, secret)


store_option = click.option("--store", "store", required=True, help=STORE_HELP)
namespace_option = click.option(
    "--namespace",
    "-n",
    default="default",
    show_default=True,
    help="Namespace of a MemoryStore named by --store.",
)


@click.group()
def rag() -> None:
    """Documents that answer questions with citations: index files, then ask."""


@rag.command("index")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@store_option
@namespace_option
@one_line_errors
def rag_index(paths: tuple[Path, ...], store: str, namespace: str) -> None:
    """Chunk and index PATHS (files or folders of .md, .txt, .html, .pdf); a file indexed
    before is skipped when unchanged and replaced when changed."""
    asyncio.run(_index(resolve_store(store, namespace), list(paths)))


async def _index(store_ref: StoreRef, paths: list[Path]) -> None:
    from hive.runtime.rag.documents import collect_files, read_document
    from hive.runtime.rag.pipeline import DocumentStore

    files = collect_files(paths)
    if not files:
        raise InvalidInput("PATHS", "no .md, .txt, .html or .pdf files found")
    documents = [read_document(f) for f in files]  # all readable before anything is stored
    spec = store_ref.spec
    with DocumentStore(spec, get_settings(), api_key=store_ref.api_key) as store:
        for document in documents:
            done = await store.index.index(document)
            click.echo(f"{done.outcome:<9} {done.chunks:>4} chunks  {done.source}")
        click.echo(f"{spec.collection}: {store.index.count()} chunks")


@rag.command("ask")
@click.argument("question")
@store_option
@namespace_option
@click.option("-k", "top_k", type=click.IntRange(1, 50), help="Chunks given to the model.")
@click.option("--endpoint", help="Chat-completions base URL (default: the embedded model).")
@click.option("--model", "model_name", default="default", show_default=True, help="Model name.")
@one_line_errors
def rag_ask(
    question: str,
    store: str,
    namespace: str,
    top_k: int | None,
    endpoint: str | None,
    model_name: str,
) -> None:
    """Answer QUESTION from the indexed documents, citing chunks as [n] (listed with their
    source and character offsets), or say it is not found in them."""
    if not question.strip():
        raise InvalidInput("QUESTION", "is empty")
    store_ref = resolve_store(store, namespace)
    click.echo(asyncio.run(_ask(store_ref, question, top_k, endpoint, model_name)))


def give_documents(toolbox: Toolbox, model: ChatModel, settings: Settings) -> None:
    """The documents of `settings.rag.store` behind `toolbox`'s search_documents tool, answered
    by `model`; the store closes with the toolbox."""
    from hive.runtime.rag.answering import Answerer
    from hive.runtime.rag.pipeline import DocumentStore

    assert settings.rag.store is not None
    store = DocumentStore(load_store(settings.rag.store, "HIVE_RAG__STORE"), settings)

    async def close() -> None:
        store.close()

    toolbox.documents = Answerer(store.retriever, model, settings.rag)
    toolbox.closing.append(close)


@asynccontextmanager
async def chat_model(endpoint: str | None, model_name: str) -> AsyncIterator[Any]:
    from hive.runtime.models import OpenAICompatible

    settings = get_settings()
    if endpoint:
        key = settings.model_api_key.get_secret_value() if settings.model_api_key else None
        model = OpenAICompatible(endpoint, model_name, api_key=key)
        try:
            yield model
        finally:
            await model.aclose()
        return
    from hive.runtime.embedded import EmbeddedModelServer, embedded_model_client

    async with EmbeddedModelServer(settings.embedded_model) as server:
        model = embedded_model_client(server, timeout_s=300)
        try:
            yield model
        finally:
            await model.aclose()


async def _ask(
    store_ref: StoreRef, question: str, top_k: int | None, endpoint: str | None, model: str
) -> str:
    from hive.runtime.rag.answering import NOT_FOUND, Answer, Answerer
    from hive.runtime.rag.pipeline import DocumentStore

    settings = get_settings()
    with DocumentStore(store_ref.spec, settings, api_key=store_ref.api_key) as store:
        retrieved = await store.retriever.retrieve(question, top_k)
        if not retrieved.found:  # no model needed to say so
            return render(Answer(question, NOT_FOUND, False, relevance=retrieved.relevance))
        async with chat_model(endpoint, model) as chat:
            answer = await Answerer(store.retriever, chat, settings.rag).answer(retrieved)
    return render(answer)


def render(answer: Any) -> str:
    lines = [answer.text]
    if answer.citations:
        lines.append("")
        for citation in answer.citations:
            chunk = citation.chunk
            lines.append(
                f"[{citation.number}] {chunk.source}:{chunk.start}-{chunk.end}  {chunk.title}"
            )
    if answer.unresolved:
        dropped = ", ".join(f"[{n}]" for n in answer.unresolved)
        lines.append(f"(citations {dropped} named no excerpt and were removed)")
    return "\n".join(lines)
