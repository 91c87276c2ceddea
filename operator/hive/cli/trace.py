"""`hive trace`: look at reasoning traces saved as JSON (`ThoughtTrace.save`)."""

from __future__ import annotations

from pathlib import Path

import click

from hive.cli.errors import one_line_errors


@click.group()
def trace() -> None:
    """Reasoning traces: trees of thought steps an agent saved as JSON."""


@trace.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--evidence/--no-evidence", default=True, show_default=True, help="Show evidence.")
@click.option("--width", type=int, help="Wrap at this many columns (default: the terminal's).")
@one_line_errors
def show(file: Path, evidence: bool, width: int | None) -> None:
    """Show the reasoning trace in FILE as a tree."""
    from rich.console import Console

    from hive.runtime.reasoning.render import render_trace
    from hive.runtime.reasoning.thought import ThoughtTrace

    loaded = ThoughtTrace.load(file)
    console = Console(width=width, highlight=False)  # sys.stdout when printing
    console.print(render_trace(loaded, evidence=evidence))
    summary = (
        f"{len(loaded.steps)} steps, {loaded.expansions} expansions, "
        f"{loaded.corrections} corrections, outcome {loaded.outcome.value}"
    )
    console.print(summary, style="dim")
