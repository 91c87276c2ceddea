"""Reading a team file (an AgentTeam manifest, or just its spec) and showing it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from rich.console import Console
from rich.tree import Tree

from hive.api.agentteam import AgentTeamSpec
from hive.api.common import describe_validation_error
from hive.api.sandboxpolicy import SandboxPolicySpec
from hive.errors import InvalidInput


def documents(path: Path) -> list[Any]:
    if not path.is_file():
        raise InvalidInput(str(path), "no such file")
    try:
        return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    except yaml.YAMLError as exc:
        raise InvalidInput(str(path), f"not valid YAML ({exc.__class__.__name__})") from exc


def load_team(path: Path) -> AgentTeamSpec:
    """The AgentTeam of a team file: its only AgentTeam document, or a bare spec."""
    docs = documents(path)
    teams = [d for d in docs if isinstance(d, dict) and d.get("kind") in (None, "AgentTeam")]
    if not docs or not isinstance(docs[0], dict):
        raise InvalidInput(str(path), "expected a mapping (an AgentTeam or its spec)")
    if len(teams) != 1:
        kinds = ", ".join(str(d.get("kind")) for d in docs if isinstance(d, dict))
        raise InvalidInput(f"{path}: kind", f"expected one AgentTeam, got {kinds or 'none'}")
    doc = teams[0]
    spec = doc.get("spec", doc)
    try:
        return AgentTeamSpec.model_validate(spec)
    except ValidationError as exc:
        raise InvalidInput(str(path), describe_validation_error(exc)) from exc


def load_policies(paths: list[Path]) -> dict[str, SandboxPolicySpec]:
    """SandboxPolicies by name, from every SandboxPolicy document in `paths`."""
    policies: dict[str, SandboxPolicySpec] = {}
    for path in paths:
        for doc in documents(path):
            if not isinstance(doc, dict) or doc.get("kind") != "SandboxPolicy":
                continue
            name = str((doc.get("metadata") or {}).get("name") or "")
            try:
                policies[name] = SandboxPolicySpec.model_validate(doc.get("spec") or {})
            except ValidationError as exc:
                where = f"{path}: SandboxPolicy {name}"
                raise InvalidInput(where, describe_validation_error(exc)) from exc
    return policies


def policies_of(team: AgentTeamSpec, known: dict[str, SandboxPolicySpec]) -> dict[str, Any]:
    """Each agent's SandboxPolicy (None without a reference); a missing one is an error."""
    chosen: dict[str, SandboxPolicySpec | None] = {}
    for index, agent in enumerate(team.agents):
        ref = agent.sandbox_policy_ref
        if ref is None:
            chosen[agent.name] = None
        elif ref.name in known:
            chosen[agent.name] = known[ref.name]
        else:
            raise InvalidInput(
                f"spec.agents[{index}].sandboxPolicyRef",
                f"SandboxPolicy '{ref.name}' is in no file given (add it to the team file "
                "or pass --policy FILE)",
            )
    return chosen


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
