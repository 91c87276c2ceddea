"""`hive gateway serve`: the model gateway in front of the teams' routes."""

from __future__ import annotations

from pathlib import Path

import click

from hive.cli.errors import one_line_errors
from hive.settings import get_settings


@click.group()
def gateway() -> None:
    """The model gateway: an OpenAI-compatible API in front of the teams' model routes."""


@gateway.command("serve")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--host", help="Address to listen on (default: gateway.host, 127.0.0.1).")
@click.option("--port", type=int, help="Port to listen on (default: gateway.port, 8090).")
@click.option(
    "--max-wait",
    "max_wait_s",
    type=float,
    help="Seconds a call waits for a rate-limited route before it is answered 429.",
)
@one_line_errors
def serve(
    files: tuple[Path, ...], host: str | None, port: int | None, max_wait_s: float | None
) -> None:
    """Serve the routes of the teams in FILES (AgentTeam manifests with spec.model.gateway, or
    the gateway config the operator writes) until interrupted; prints its base URL once it
    listens."""
    from hive.runtime.gateway.config import load
    from hive.runtime.gateway.server import serve as run_server

    settings = get_settings().gateway
    config = load(list(files))
    click.echo(f"gateway for {', '.join(sorted(config.teams))}", err=True)
    run_server(
        config,
        host or settings.host,
        port if port is not None else settings.port,
        max_wait_s=settings.max_wait_s if max_wait_s is None else max_wait_s,
    )
