"""Reading a team file (an AgentTeam manifest, or just its spec) and showing it."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError
from rich.console import Console
from rich.tree import Tree

from hive.api.agentteam import AgentTeamSpec
from hive.api.common import describe_validation_error
from hive.errors import InvalidInput


def load_team(path: Path) -> AgentTeamSpec:
    if not path.is_file():
        raise InvalidInput(str(path), "no such file")
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise InvalidInput(str(path), f"not valid YAML ({exc.__class__.__name__})") from exc
    if not isinstance(doc, dict):
        raise InvalidInput(str(path), "expected a mapping (an AgentTeam or its spec)")
    spec = doc.get("spec", doc) if doc.get("kind") in (None, "AgentTeam") else None
    if spec is None:
        raise InvalidInput(f"{path}: kind", f"expected AgentTeam, got {doc.get('kind')}")
    try:
        return AgentTeamSpec.model_validate(spec)
    except ValidationError as exc:
        raise InvalidInput(str(path), describe_validation_error(exc)) from exc


def show_team(team: AgentTeamSpec, task: str | None, console: Console | None = None) -> None:
    console = console or Console()
    by_name = {a.name: a for a in team.agents}
    subordinate = {s for a in team.agents for s in a.subordinates}
    tree = Tree(f"[bold]{team.pattern}[/] team: {task or team.goal}")

    def add(node: Tree, name: str, seen: frozenset[str]) -> None:
        spec = by_name.get(name)
        label = f"{name} [dim]({spec.role if spec else 'unknown'})[/]"
        branch = node.add(label)
        if spec and name not in seen:
            for sub in spec.subordinates:
                add(branch, sub, seen | {name})

    for top in [a.name for a in team.agents if a.name not in subordinate]:
        add(tree, top, frozenset())
    console.print(tree)
