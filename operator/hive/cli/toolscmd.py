"""`hive tools`: the ToolVersions agents get, from a cluster namespace or a folder.

`hive tools list` shows every version present — its tool, version, kind, where calls go, whether
it is the one a plain ``*`` range resolves to, deprecation — and with ``-o json`` the input and
output schemas too. With ``--tools DIR`` it reads the folder ``hive run --tools DIR`` would
follow; otherwise the namespace of the kubeconfig's cluster.
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
from hive.runtime.tooling.discovery import ClusterFeed, FolderWatch
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


def rows(catalog: Catalog) -> list[dict[str, Any]]:
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
    return out


async def cluster_catalog(namespace: str) -> Catalog:
    from hive.kube.children import list_hive_objects
    from hive.kube.client import async_client

    client = async_client(get_settings().kube)
    try:
        objects = await list_hive_objects(client, "ToolVersion", namespace)
    finally:
        await client.close()
    catalog = Catalog()
    ClusterFeed(catalog, namespace).on_list(objects)
    return catalog


@tools.command("list")
@click.option(
    "--tools",
    "tools_dir",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="A folder of ToolVersion documents (as hive run --tools DIR reads it).",
)
@click.option("-n", "--namespace", default="default", show_default=True)
@click.option(
    "-o", "--output", type=click.Choice(["table", "json"]), default="table", show_default=True
)
@one_line_errors
def list_tools(tools_dir: Path | None, namespace: str, output: str) -> None:
    """Every tool version present, its kind, source and (-o json) schemas."""
    if tools_dir is not None:
        watch = FolderWatch(tools_dir, Catalog())
        watch.scan()
        catalog = watch.catalog
    else:
        catalog = asyncio.run(cluster_catalog(namespace))
    found = rows(catalog)
    if output == "json":
        click.echo(json.dumps(found, indent=2))
        return
    table = Table("TOOL", "VERSION", "KIND", "SOURCE", "RESOLVED", "DEPRECATED", "PARAMETERS")
    for row in found:
        parameters = ", ".join(sorted((row["inputSchema"].get("properties") or {}).keys()))
        table.add_row(
            row["tool"],
            row["version"],
            row["kind"],
            row["source"],
            "*" if row["resolved"] else "",
            row["deprecationMessage"] or "yes" if row["deprecated"] else "",
            parameters,
        )
    Console().print(table)
