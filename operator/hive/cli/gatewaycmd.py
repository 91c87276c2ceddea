"""`hive gateway serve`: the model gateway in front of the teams' routes."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from hive.api.gateway import GatewayUsage
from hive.cli.errors import one_line_errors
from hive.settings import KubeSettings, get_settings

if TYPE_CHECKING:
    from hive.runtime.gateway.config import GatewayConfig
    from hive.runtime.gateway.keys import TeamKeys
    from hive.runtime.gateway.server import Report

USAGE_FIELD_MANAGER = "hive-gateway"


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
    listens. Routes' API keys (secretRef) come from the Secrets of gateway.report_namespace
    where it is set, else from HIVE_GATEWAY__ROUTE_KEYS__<route>."""
    from hive.runtime.gateway.config import load
    from hive.runtime.gateway.keys import from_settings
    from hive.runtime.gateway.server import serve as run_server

    everything = get_settings()
    settings = everything.gateway
    config = load(list(files))
    click.echo(f"gateway for {', '.join(sorted(config.teams))}", err=True)
    report: Report | None = None
    if settings.report_namespace:
        report = usage_reporter(everything.kube, settings.report_namespace)
        keys = read_route_keys(everything.kube, settings.report_namespace, config)
    else:
        keys = {
            name: from_settings(team.gateway, settings.route_keys)
            for name, team in config.teams.items()
        }
    run_server(
        config,
        host or settings.host,
        port if port is not None else settings.port,
        max_wait_s=settings.max_wait_s if max_wait_s is None else max_wait_s,
        report=report,
        report_interval_s=settings.report_interval_s,
        keys=keys,
    )


def read_route_keys(kube: KubeSettings, namespace: str, config: GatewayConfig) -> TeamKeys:
    """The routes' API keys from the Secrets they name, read once as the gateway starts (a
    rotated key takes a restart: ``kubectl rollout restart deployment/<team>-gateway``)."""
    from hive.kube.client import async_client
    from hive.kube.toolversions import read_secret_keys
    from hive.runtime.gateway.keys import from_secrets, secret_refs

    refs = secret_refs(config)
    if not refs:
        return {}

    async def read() -> dict[str, str]:
        client = async_client(kube)
        try:
            return dict(await read_secret_keys(client, namespace, refs))
        finally:
            await client.close()

    return from_secrets(config, asyncio.run(read()))


def usage_reporter(kube: KubeSettings, namespace: str) -> Report:
    """Writes a team's status.usage with server-side apply, as the gateway's field manager
    (the only writer of that field)."""
    from hive.kube.client import async_client
    from hive.kube.status import apply_status

    clients: list[Any] = []

    async def report(team: str, usage: dict[str, Any]) -> None:
        if not clients:  # made in the serving loop, on first use
            clients.append(async_client(kube, field_manager=USAGE_FIELD_MANAGER))
        wire = GatewayUsage.model_validate(usage).wire()
        await apply_status(
            clients[0],
            "AgentTeam",
            namespace,
            team,
            {"usage": wire},
            field_manager=USAGE_FIELD_MANAGER,
        )

    return report
