"""`hive model serve`: the embedded model's server in the foreground, for a team's model pod;
`hive model serve --embeddings`: the sentence-embedding model's server instead."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import click

from hive.runtime.embedded import EmbeddedModelServer
from hive.settings import EmbeddingsSettings


def serve(host: str, port: int, model_file: Path | None) -> None:
    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        server = EmbeddedModelServer(model_file, host=host, port=port, start_timeout_s=300)
        async with server:
            click.echo(
                f"serving {server.model_name} at {server.base_url} "
                f"(started in {server.startup_s or 0:.1f}s)"
            )
            await stop.wait()

    asyncio.run(main())


def serve_embeddings(host: str, port: int, settings: EmbeddingsSettings) -> None:
    """Serve the local sentence-embedding model's /v1/embeddings until SIGTERM or SIGINT."""
    from hive.runtime.memory.embeddings import LocalOnnxEmbedder
    from hive.runtime.memory.embedserver import EmbeddingServer

    embedder = LocalOnnxEmbedder(
        settings.model_dir,
        model=settings.model,
        dimensions=settings.dimensions,
        max_tokens=settings.max_tokens,
        batch_size=settings.batch_size,
    )

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        async with EmbeddingServer(embedder, host=host, port=port) as server:
            click.echo(
                f"serving {embedder.model} embeddings ({embedder.dimensions} dimensions) at "
                f"{server.base_url}/v1 (loaded in {embedder.load_s or 0:.1f}s)",
            )
            await stop.wait()

    asyncio.run(main())
