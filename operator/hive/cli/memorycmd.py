"""`hive memory store|recall|forget|consolidate`: a MemoryStore's semantic memory, by hand.

``--store`` is a YAML file holding the MemoryStore (alone, or beside a team in a team file;
``--name`` picks one of several), or the name of a MemoryStore in the cluster (namespace
``-n``), whose Secret is then read there. For a file the credential comes from
``HIVE_AGENT__MEMORY__SECRET`` (and ``__USERNAME``). Vectors come from
``HIVE_AGENT__EMBEDDINGS__ENDPOINT`` when set, else the local all-MiniLM-L6-v2 model.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from hive.cli.errors import one_line_errors
from hive.errors import InvalidInput
from hive.settings import Settings, get_settings

if TYPE_CHECKING:
    from hive.api.memorystore import MemoryStoreSpec
    from hive.runtime.memory.semantic import SemanticMemory

T = TypeVar("T")


def load_memory_stores(paths: list[Path]) -> dict[str, MemoryStoreSpec]:
    """MemoryStores by name, from every MemoryStore document in `paths`."""
    from hive.cli.teamfile import documents
    from hive.runtime.memory.semantic import store_spec

    stores: dict[str, MemoryStoreSpec] = {}
    for path in paths:
        for doc in documents(path):
            if not isinstance(doc, dict) or doc.get("kind") != "MemoryStore":
                continue
            name = str((doc.get("metadata") or {}).get("name") or "")
            if not name:
                raise InvalidInput(f"{path}: MemoryStore metadata.name", "is required")
            stores[name] = store_spec(doc.get("spec") or {}, f"{path}: MemoryStore {name}")
    return stores


async def cluster_store(
    settings: Settings, name: str, namespace: str
) -> tuple[MemoryStoreSpec, str | None, str | None]:
    """The spec of MemoryStore `namespace`/`name` in the cluster, and the credential (password
    or API key) and Redis ACL user of its Secret when it names one."""
    import base64

    from hive.api.memorystore import USERNAME_KEY
    from hive.kube.children import get_hive_object, get_object
    from hive.kube.client import async_client
    from hive.runtime.memory.semantic import store_spec

    client = async_client(settings.kube, field_manager="hive-cli")
    try:
        found = await get_hive_object(client, "MemoryStore", namespace, name)
        if found is None:
            raise InvalidInput("--store", f"no file and no MemoryStore {namespace}/{name}")
        spec = store_spec(found.get("spec") or {}, f"MemoryStore {namespace}/{name}")
        ref = spec.connection.secret_ref
        if ref is None:
            return spec, None, None
        secret = await get_object(client, "Secret", namespace, ref.name)
        data = {
            k: base64.b64decode(v).decode() for k, v in ((secret or {}).get("data") or {}).items()
        }
        if not data.get(ref.key):
            raise InvalidInput(
                f"MemoryStore {name} spec.connection.secretRef",
                f"Secret '{ref.name}' has no key '{ref.key}'",
            )
        return spec, data[ref.key], data.get(USERNAME_KEY) or None
    finally:
        await client.close()


def open_memory(
    settings: Settings, store: str, name: str | None, namespace: str
) -> tuple[str, SemanticMemory]:
    """The store `--store` names, opened with the embedder of the settings."""
    from hive.runtime.memory.embeddings import embedder_for_store
    from hive.runtime.memory.semantic import SemanticMemory, open_backend

    memory = settings.agent.memory
    path = Path(store)
    if path.is_file():
        stores = load_memory_stores([path])
        if not stores:
            raise InvalidInput("--store", f"{path} holds no MemoryStore document")
        if name is None and len(stores) > 1:
            raise InvalidInput("--name", f"{path} holds several MemoryStores: {', '.join(stores)}")
        store_name = name or next(iter(stores))
        if store_name not in stores:
            raise InvalidInput("--name", f"{path} holds no MemoryStore '{store_name}'")
        spec = stores[store_name]
        secret = memory.secret.get_secret_value() if memory.secret else None
        username = memory.username
    else:
        store_name = store
        spec, secret, username = asyncio.run(cluster_store(settings, store, namespace))
    backend = open_backend(
        store_name,
        spec,
        secret=secret,
        username=username,
        timeout_s=memory.timeout_s,
        redis_scan_limit=memory.redis_scan_limit,
    )
    return store_name, SemanticMemory(
        store_name,
        spec,
        backend,
        embedder_for_store(
            settings.agent.embeddings, spec.embedding.model, spec.embedding.dimensions
        ),
        purge_every_s=memory.purge_expired_s,
    )


def with_memory(
    store: str, name: str | None, namespace: str, work: Callable[[SemanticMemory], Awaitable[T]]
) -> T:
    _, memory = open_memory(get_settings(), store, name, namespace)

    async def run() -> T:
        try:
            return await work(memory)
        finally:
            await memory.close()

    return asyncio.run(run())


def pairs(values: tuple[str, ...], option: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values:
        key, sep, item = value.partition("=")
        if not sep or not key:
            raise InvalidInput(option, f"{value!r} is not KEY=VALUE")
        out[key] = item
    return out


store_option = click.option(
    "--store",
    required=True,
    help="A file with the MemoryStore (or a team file holding one), or the name of a "
    "MemoryStore in the cluster.",
)
name_option = click.option("--name", help="Which MemoryStore of the file (when it has several).")
namespace_option = click.option("--namespace", "-n", default="default", show_default=True)


@click.group()
def memory() -> None:
    """A MemoryStore's semantic memory: store, recall, forget, consolidate."""


@memory.command("store")
@store_option
@name_option
@namespace_option
@click.argument("content")
@click.option("--importance", type=click.FloatRange(0, 1), default=0.5, show_default=True)
@click.option("--meta", "meta", multiple=True, help="Metadata KEY=VALUE (repeatable).")
@click.option("--agent", default="", help="Who stores it (default: nobody in particular).")
@one_line_errors
def store_command(
    store: str,
    name: str | None,
    namespace: str,
    content: str,
    importance: float,
    meta: tuple[str, ...],
    agent: str,
) -> None:
    """Remember CONTENT; prints its id."""
    metadata = pairs(meta, "--meta")

    async def work(memory: SemanticMemory) -> str:
        record = await memory.store(content, metadata=metadata, importance=importance, agent=agent)
        return record.id

    click.echo(with_memory(store, name, namespace, work))


@memory.command("recall")
@store_option
@name_option
@namespace_option
@click.argument("query")
@click.option("-k", "k", type=click.IntRange(1, 100), default=5, show_default=True)
@click.option("--filter", "filters", multiple=True, help="Metadata KEY=VALUE that must match.")
@click.option("--min-score", type=click.FloatRange(0, 1), help="Default: the store's minScore.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per memory.")
@one_line_errors
def recall_command(
    store: str,
    name: str | None,
    namespace: str,
    query: str,
    k: int,
    filters: tuple[str, ...],
    min_score: float | None,
    as_json: bool,
) -> None:
    """The memories most relevant to QUERY, best first, with score and similarity."""
    wanted = pairs(filters, "--filter")

    async def work(memory: SemanticMemory) -> list[Any]:
        return await memory.retrieve(query, k, filters=wanted, min_score=min_score)

    for found in with_memory(store, name, namespace, work):
        record = found.record
        if as_json:
            line = {
                "id": record.id,
                "score": found.score,
                "similarity": found.similarity,
                "importance": record.importance,
                "agent": record.agent,
                "run": record.run,
                "metadata": dict(record.metadata),
                "content": record.content,
            }
            click.echo(json.dumps(line))
        else:
            click.echo(f"{found.score:.3f} {record.id} {record.content}")


@memory.command("forget")
@store_option
@name_option
@namespace_option
@click.argument("memory_id", required=False)
@click.option("--filter", "filters", multiple=True, help="Forget all that match KEY=VALUE.")
@one_line_errors
def forget_command(
    store: str, name: str | None, namespace: str, memory_id: str | None, filters: tuple[str, ...]
) -> None:
    """Forget the memory MEMORY_ID, or every memory matching --filter; prints how many."""
    wanted = pairs(filters, "--filter")
    if (memory_id is None) == (not wanted):
        raise InvalidInput("MEMORY_ID", "give an id or --filter KEY=VALUE (not both)")

    async def work(memory: SemanticMemory) -> int:
        if memory_id is not None:
            return int(await memory.forget(memory_id))
        return await memory.forget_where(wanted)

    click.echo(with_memory(store, name, namespace, work))


@memory.command("consolidate")
@store_option
@name_option
@namespace_option
@click.option(
    "--summarize-endpoint",
    help="Chat-completions base URL of a model that summarises clusters of related memories "
    "(without it: expired, low and duplicate memories only).",
)
@click.option("--summarize-model", help="The model's name at that endpoint.")
@click.option("--cluster-threshold", type=click.FloatRange(0, 1), default=0.75, show_default=True)
@click.option("--min-cluster", type=click.IntRange(2, 1000), default=3, show_default=True)
@one_line_errors
def consolidate_command(
    store: str,
    name: str | None,
    namespace: str,
    summarize_endpoint: str | None,
    summarize_model: str | None,
    cluster_threshold: float,
    min_cluster: int,
) -> None:
    """Merge near-duplicates, drop what can no longer be recalled, summarise clusters; prints
    the counts as JSON (with "error" when the model failed: the other steps still ran, and the
    exit status is then 1)."""
    from hive.runtime.memory.consolidation import consolidate
    from hive.runtime.models import OpenAICompatible

    if bool(summarize_endpoint) != bool(summarize_model):
        raise InvalidInput("--summarize-model", "goes with --summarize-endpoint (both or none)")

    async def work(memory: SemanticMemory) -> dict[str, Any]:
        model = None
        if summarize_endpoint and summarize_model:
            key = get_settings().model_api_key
            model = OpenAICompatible(
                summarize_endpoint,
                summarize_model,
                api_key=key.get_secret_value() if key else None,
            )
        try:
            result = await consolidate(
                memory,
                summarizer=model,
                cluster_threshold=cluster_threshold,
                min_cluster=min_cluster,
            )
        finally:
            if model is not None:
                await model.aclose()
        return result.wire()

    counts = with_memory(store, name, namespace, work)
    click.echo(json.dumps(counts))
    if "error" in counts:
        raise SystemExit(1)
