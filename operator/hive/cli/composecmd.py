"""`hive tools check FILE` and `hive tools run FILE`: composite tools, checked and run locally.

FILE is a ToolVersion (YAML or JSON) of kind composite, or a source in the composition language
(any other suffix, e.g. ``.hive``). The tools it calls are the ToolVersion documents of
``--tools DIR`` (with the Secret documents their credentials name, as for ``hive run --tools``;
default: FILE's folder). ``check`` prints the plan or the refusal naming the line; ``run``
calls the composite through the same catalog path agents use (versions by range, migrations,
schema checks), with ``--input name=value`` as its arguments, and prints its result as JSON.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import click

from hive.cli.errors import one_line_errors
from hive.errors import InvalidInput

SPEC_SUFFIXES = (".yaml", ".yml", ".json")


def _composite_spec(path: Path) -> tuple[Any, str]:
    """The ToolVersion spec FILE declares (a source file: None) and the source's field name."""
    from pydantic import ValidationError

    from hive.api.common import describe_validation_error
    from hive.api.toolversion import ImplementationKind, ToolVersionSpec
    from hive.cli.teamfile import documents

    if path.suffix not in SPEC_SUFFIXES:
        return None, str(path)
    for doc in documents(path):
        if not isinstance(doc, dict):
            continue
        spec = doc.get("spec") or {}
        kind = (spec.get("implementation") or {}).get("kind")
        if doc.get("kind") == "ToolVersion" and kind == ImplementationKind.COMPOSITE:
            name = (doc.get("metadata") or {}).get("name") or spec.get("tool")
            try:
                parsed = ToolVersionSpec.model_validate(spec)
            except ValidationError as exc:
                problem = describe_validation_error(exc)
                raise InvalidInput(f"{path}: ToolVersion {name}", problem) from None
            return parsed, f"{path}: spec.implementation.composite.source"
    raise InvalidInput(str(path), "holds no ToolVersion of implementation.kind composite")


def _load(path: Path, tools_dir: Path | None) -> tuple[Any, Any, Any]:
    """(the composite's ToolVersion spec, its checked plan, the folder's watch) for FILE."""
    from hive.api.toolversion import ToolVersionSpec
    from hive.runtime.tooling.catalog import Catalog
    from hive.runtime.tooling.compose import check, parse, plan_of
    from hive.runtime.tooling.discovery import FolderWatch

    if not path.is_file():
        raise InvalidInput(str(path), "no such file")
    folder = tools_dir or path.parent
    if not folder.is_dir():
        raise InvalidInput(f"--tools {folder}", "no such folder")
    watch = FolderWatch(folder, Catalog())
    watch.scan()
    spec, where = _composite_spec(path)
    if spec is not None:
        return spec, plan_of(spec, watch.catalog.view(), where), watch
    source = path.read_text()
    composite = parse(source, where)
    plan = check(composite, watch.catalog.view(), where=where)
    spec = ToolVersionSpec.model_validate(
        {
            "tool": composite.name,
            "version": "0.0.0",
            "description": composite.description,
            "inputSchema": plan.input_schema,
            "outputSchema": plan.output_schema,
            "implementation": {"kind": "composite", "composite": {"source": source}},
        }
    )
    return spec, plan, watch


@click.command("check")
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--tools",
    "tools_dir",
    type=click.Path(path_type=Path),
    help="Folder of the ToolVersions it calls (default: FILE's folder).",
)
@one_line_errors
def check_command(file: Path, tools_dir: Path | None) -> None:
    """Check a composite tool: its tools exist in matching versions, types fit, no cycle."""
    spec, plan, _ = _load(file, tools_dir)
    inputs = ", ".join(plan.inputs) or "none"
    click.echo(
        f"{spec.tool} {spec.version}: {len(plan.steps)} steps; inputs {inputs}; "
        f"outputs {', '.join(plan.outputs)}"
    )
    for planned in sorted(plan.steps, key=lambda p: p.step.place.line):
        step = planned.step
        click.echo(
            f"  line {step.place.line}: {step.tool}@{planned.version_range} "
            f"(written for {planned.written_for}, now {planned.newest}) -> {step.target}"
        )


def _arguments(pairs: tuple[str, ...], schema: dict[str, Any]) -> dict[str, Any]:
    """`name=value` pairs: a string parameter takes the text, others its JSON value."""
    properties = schema.get("properties") or {}
    arguments: dict[str, Any] = {}
    for pair in pairs:
        name, equals, text = pair.partition("=")
        if not equals or not name:
            raise InvalidInput(f"--input {pair}", "expected name=value")
        if name not in properties:
            known = ", ".join(properties) or "none"
            raise InvalidInput(f"--input {name}", f"not an input (inputs: {known})")
        if (properties[name] or {}).get("type") == "string":
            arguments[name] = text
            continue
        try:
            arguments[name] = json.loads(text)
        except ValueError:
            arguments[name] = text
    return arguments


async def _run(spec: Any, watch: Any, arguments: dict[str, Any]) -> Any:
    from hive.api.agentteam import ToolRequirement
    from hive.runtime.tooling.catalog import AgentTools, CatalogEntry
    from hive.runtime.tooling.kinds import KindRegistry

    watch.catalog.put(CatalogEntry(spec, f"{spec.tool}-{spec.version}", "hive tools run"))
    requirement = ToolRequirement(name=spec.tool, version=spec.version)
    kinds = KindRegistry.default()
    tools = AgentTools(
        agent="hive-tools-run",
        requirements=[requirement],
        catalog=watch.catalog,
        kinds=kinds,
        secrets_for=watch.secrets_for,
    )
    try:
        await tools.refresh()
        if spec.tool not in tools.tools:
            raise InvalidInput(f"tool {spec.tool}", tools.problems.get(spec.tool, "not built"))
        return await tools.tools[spec.tool].function(**arguments)
    finally:
        await tools.close()
        await kinds.close()


@click.command("run")
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--input",
    "inputs",
    multiple=True,
    metavar="NAME=VALUE",
    help="An input of the composite (JSON for non-string inputs); repeatable.",
)
@click.option(
    "--tools",
    "tools_dir",
    type=click.Path(path_type=Path),
    help="Folder of the ToolVersions it calls (default: FILE's folder).",
)
@one_line_errors
def run_command(file: Path, inputs: tuple[str, ...], tools_dir: Path | None) -> None:
    """Run a composite tool locally and print its result as JSON."""
    spec, plan, watch = _load(file, tools_dir)
    arguments = _arguments(inputs, plan.input_schema)
    result = asyncio.run(_run(spec, watch, arguments))
    click.echo(json.dumps(result, indent=2, sort_keys=True, default=str))


def add_to(group: click.Group) -> None:
    """Register `check` and `run` in the `hive tools` group."""
    group.add_command(check_command)
    group.add_command(run_command)
