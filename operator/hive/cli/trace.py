"""`hive trace`: look at a team run's OpenTelemetry trace (from Jaeger's query API), or at a
reasoning trace saved as JSON (`ThoughtTrace.save`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from hive.cli.errors import one_line_errors
from hive.errors import InvalidInput

if TYPE_CHECKING:
    from rich.tree import Tree

    from hive.runtime.tracing.query import SpanNode, TraceTree
    from hive.settings import Settings


@click.group()
def trace() -> None:
    """Traces: a team run's spans across its agents, or an agent's saved reasoning."""


@trace.command()
@click.argument("file", type=click.Path(path_type=Path), required=False)
@click.option("--team", help="Show the trace of this AgentTeam's last run (status.run.traceId).")
@click.option("-n", "--namespace", default="default", show_default=True, help="The team's.")
@click.option("--trace-id", help="Show this trace (32 hex digits) from the tracing backend.")
@click.option(
    "--query-url",
    help="Jaeger's query API (default: HIVE_TRACING__QUERY_URL, else the one hive dev up runs).",
)
@click.option("--evidence/--no-evidence", default=True, show_default=True, help="Show evidence.")
@click.option("--width", type=int, help="Wrap at this many columns (default: the terminal's).")
@one_line_errors
def show(
    file: Path | None,
    team: str | None,
    namespace: str,
    trace_id: str | None,
    query_url: str | None,
    evidence: bool,
    width: int | None,
) -> None:
    """Show a trace as a tree: the reasoning trace in FILE, or with --team / --trace-id a run's
    spans (agent, duration, tokens, errors) from the tracing backend."""
    from rich.console import Console

    console = Console(width=width, highlight=False)  # sys.stdout when printing
    chosen = [name for name, v in (("FILE", file), ("--team", team), ("--trace-id", trace_id)) if v]
    if len(chosen) != 1:
        raise InvalidInput("hive trace show", "give one of FILE, --team or --trace-id")
    if file is not None:
        show_reasoning(console, file, evidence)
        return
    from hive.runtime.tracing.query import fetch_trace
    from hive.settings import get_settings

    settings = get_settings()
    if team is not None:
        trace_id = team_trace_id(settings, namespace, team)
    assert trace_id is not None
    url = query_url or settings.tracing.query_url or default_query_url(settings)
    tree = fetch_trace(url, trace_id)
    console.print(render_spans(tree))
    spans = tree.spans()
    tokens_in = sum(s.input_tokens or 0 for s in spans)
    tokens_out = sum(s.output_tokens or 0 for s in spans)
    errors = sum(1 for s in spans if s.error)
    console.print(
        f"trace {tree.trace_id}: {len(spans)} spans from {len(tree.services)} services, "
        f"{tokens_in} input + {tokens_out} output tokens, {errors} errors",
        style="dim",
    )


def show_reasoning(console: object, file: Path, evidence: bool) -> None:
    from rich.console import Console

    from hive.runtime.reasoning.render import render_trace
    from hive.runtime.reasoning.thought import ThoughtTrace

    assert isinstance(console, Console)
    loaded = ThoughtTrace.load(file)
    console.print(render_trace(loaded, evidence=evidence))
    summary = (
        f"{len(loaded.steps)} steps, {loaded.expansions} expansions, "
        f"{loaded.corrections} corrections, outcome {loaded.outcome.value}"
    )
    console.print(summary, style="dim")


def default_query_url(settings: Settings) -> str:
    dev = settings.dev
    return f"http://{dev.host}:{dev.jaeger.query_port}"


def team_trace_id(settings: Settings, namespace: str, team: str) -> str:
    """The trace id the team's coordinator recorded with its last run."""
    from hive.kube.client import async_client
    from hive.kube.status import team_run

    async def read() -> str | None:
        client = async_client(settings.kube, field_manager="hive-trace")
        try:
            run = await team_run(client, namespace, team)
        finally:
            await client.close()
        return run.trace_id if run is not None else None

    found = asyncio.run(read())
    if found is None:
        raise InvalidInput(
            f"AgentTeam {namespace}/{team}",
            "has no traced run (status.run.traceId is empty: no run yet, or tracing is off)",
        )
    return found


def label(node: SpanNode) -> str:
    from rich.markup import escape

    parts = [f"[bold]{escape(node.name)}[/]", f"[cyan]{escape(node.service)}[/]"]
    pod = node.process.get("k8s.pod.name")
    if pod:  # which replica of the agent, when it ran in a pod
        parts[-1] += f" [dim]pod {escape(str(pod))}[/]"
    parts.append(f"{node.duration_us / 1000:.1f} ms")
    if node.input_tokens is not None or node.output_tokens is not None:
        parts.append(f"tokens {node.input_tokens or 0} in / {node.output_tokens or 0} out")
    if node.error:
        parts.append(f"[red]error: {escape(node.error[:200])}[/]")
    return "  ".join(parts)


def render_spans(tree: TraceTree) -> Tree:
    from rich.tree import Tree

    from hive.runtime.reasoning.render import render_record
    from hive.runtime.tracing.events import REASONING

    top = Tree(f"trace {tree.trace_id}")

    def add(branch: Tree, node: SpanNode) -> None:
        child = branch.add(label(node))
        reasoning = node.attributes.get(REASONING)
        if isinstance(reasoning, str):  # a chain of thought or a plan search, under its span
            with contextlib.suppress(ValueError):
                child.children.append(render_record(json.loads(reasoning)))
        for grandchild in node.children:
            add(child, grandchild)

    for root in tree.roots:
        add(top, root)
    return top
