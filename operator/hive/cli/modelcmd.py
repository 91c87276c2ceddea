"""`hive model serve`: the embedded model's server in the foreground, for a team's model pod."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import click

from hive.runtime.embedded import EmbeddedModelServer


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
