"""`hive tools`: the ToolVersions agents get, from a cluster namespace or a folder.

`hive tools list` shows every version present — its tool, version, kind, where calls go, whether
it is the one a plain ``*`` range resolves to, deprecation — and the functions an agent gets
from it with their parameters (an openapi version's operations, an mcp server's tools, a
composite's inputs; `hive.runtime.tooling.offers`), or why it offers none now; with ``-o json``
the version's schemas and each function's JSON Schema too. With ``--tools DIR`` it reads the
folder ``hive run --tools DIR`` would follow and the servers of ``--mcp [NAME=]SERVER`` as
``hive run`` takes them; otherwise the namespace of the kubeconfig's cluster.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from hive.cli.errors import one_line_errors
from hive.errors import HiveError
from hive.runtime.tooling.catalog import Catalog, CatalogEntry
from hive.runtime.tooling.discovery import ClusterFeed, FolderWatch, command_line_servers
from hive.runtime.tooling.kinds import KindRegistry
from hive.runtime.tooling.offers import Offer, SecretsFor, offers
from hive.settings import get_settings


@click.group()
def tools() -> None:
    """ToolVersions: the tools agents get, their versions and schemas."""


def source_of(entry: CatalogEntry) -> str:
    """Where calls of the version go, in a few words."""
    implementation = entry.spec.implementation
    if implementation.ref:
        return implementation.ref
    detail = implementation.model_dump(
        mode="json", by_alias=True, exclude_none=True, exclude={"kind", "timeout_seconds"}
    )
    detail.pop("retries", None)
    for value in detail.values():
        if isinstance(value, dict):
            for key in ("url", "configMapRef", "command"):
                if key in value:
                    return f"{key}: {json.dumps(value[key])}"
            if "document" in value:
                return "inline document"
            if "source" in value:
                return "composite source"
    return str(implementation.kind)


def rows(
    catalog: Catalog, offered: dict[tuple[str, str], Offer] | None = None
) -> list[dict[str, Any]]:
    out = []
    for tool in catalog.tools():
        try:
            resolved = catalog.resolve(tool).target.spec.version
        except HiveError:
            resolved = None
        for entry in catalog.entries(tool):
            spec = entry.spec
            out.append(
                {
                    "tool": spec.tool,
                    "version": spec.version,
                    "kind": str(spec.implementation.kind),
                    "source": source_of(entry),
                    "from": entry.source,
                    "resolved": spec.version == resolved,
                    "deprecated": spec.deprecation.deprecated,
                    "deprecationMessage": spec.deprecation.message,
                    "description": spec.description,
                    "inputSchema": spec.input_schema,
                    "outputSchema": spec.output_schema,
                }
            )
            offer = (offered or {}).get((spec.tool, spec.version))
            if offer is not None:
                out[-1]["functions"] = offer.describe()
                out[-1]["problem"] = offer.problem
    return out


async def offered_by(
    catalog: Catalog, kinds: KindRegistry, secrets_for: SecretsFor | None, namespace: str
) -> dict[tuple[str, str], Offer]:
    try:
        return await offers(catalog, kinds, secrets_for, namespace)
    finally:
        await kinds.close()


async def cluster_rows(namespace: str) -> list[dict[str, Any]]:
    """The namespace's versions with what each offers, its OpenAPI documents read from their
    ConfigMaps and its credentials from their Secrets, as an agent pod of the namespace would."""
    from hive.cli.clustertools import ClusterTools
    from hive.kube.children import list_hive_objects
    from hive.kube.client import async_client

    client = async_client(get_settings().kube)
    try:
        objects = await list_hive_objects(client, "ToolVersion", namespace)
        tools = ClusterTools(client, namespace)
        ClusterFeed(tools.catalog, namespace).on_list(objects)
        offered = await offered_by(tools.catalog, tools.kinds(), tools.secrets_for, namespace)
    finally:
        await client.close()
    return rows(tools.catalog, offered)


async def local_rows(catalog: Catalog, secrets_for: SecretsFor | None) -> list[dict[str, Any]]:
    """A folder's versions (and the command line's servers) with what each offers, as hive run
    would build them."""
    offered = await offered_by(catalog, KindRegistry.default(), secrets_for, "default")
    return rows(catalog, offered)


def _functions_cell(row: dict[str, Any]) -> str:
    if row.get("problem"):
        return f"none: {row['problem']}"
    lines = []
    for function in row.get("functions", []):
        parameters = ", ".join(sorted((function["parameters"].get("properties") or {}).keys()))
        lines.append(f"{function['name']}({parameters})")
    return "\n".join(lines)


@tools.command("list")
@click.option(
    "--tools",
    "tools_dir",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="A folder of ToolVersion documents (as hive run --tools DIR reads it).",
)
@click.option(
    "--mcp",
    "mcp_servers",
    multiple=True,
    metavar="[NAME=]SERVER",
    help="An MCP server's tools as ToolVersion NAME (default mcp), beside the --tools folder's, "
    "as hive run --mcp gives them; SERVER a streamable-HTTP URL or stdio:COMMAND ARGS. "
    "Repeatable; lists no cluster.",
)
@click.option("-n", "--namespace", default="default", show_default=True)
@click.option(
    "-o", "--output", type=click.Choice(["table", "json"]), default="table", show_default=True
)
@one_line_errors
def list_tools(
    tools_dir: Path | None, mcp_servers: tuple[str, ...], namespace: str, output: str
) -> None:
    """Every tool version present, its kind, source, the functions agents get from it and
    (-o json) their schemas."""
    servers = command_line_servers(mcp_servers)
    if tools_dir is not None:
        watch = FolderWatch(tools_dir, Catalog(), fixed=servers)
        watch.scan()
        found = asyncio.run(local_rows(watch.catalog, watch.secrets_for))
    elif servers:
        found = asyncio.run(local_rows(Catalog(servers), None))
    else:
        found = asyncio.run(cluster_rows(namespace))
    if output == "json":
        click.echo(json.dumps(found, indent=2))
        return
    table = Table("TOOL", "VERSION", "KIND", "SOURCE", "RESOLVED", "DEPRECATED", "FUNCTIONS")
    for row in found:
        table.add_row(
            row["tool"],
            row["version"],
            row["kind"],
            row["source"],
            "*" if row["resolved"] else "",
            row["deprecationMessage"] or "yes" if row["deprecated"] else "",
            _functions_cell(row),
        )
    Console().print(table)
