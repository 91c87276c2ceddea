"""Admission rules: what makes a resource invalid, as one message that names the field.

Pure functions. The webhook gathers the related objects they need (the other versions of a
tool, the team a chaos experiment selects) and passes them in. Rules that need nothing else
also live in the models (pydantic and CEL), so the API server, the webhook, ``hive run`` and
the operator all give the same answer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from hive.api.agentteam import AgentTeamSpec, coordinator_of
from hive.api.chaos import ChaosExperimentSpec, SelectorMode
from hive.api.common import describe_validation_error
from hive.api.memorystore import MemoryStoreSpec
from hive.api.sandboxpolicy import SandboxPolicySpec
from hive.api.semver import less, ordered, satisfies
from hive.api.toolversion import ImplementationKind, ToolVersionSpec
from hive.errors import HiveError
from hive.reconcile.openapi import inline_document_problem
from hive.reconcile.sandboxpolicy import verify
from hive.runtime.tooling.compose.kind import plan_of, tools_of

JSON = Mapping[str, Any]


def _parse(model: type[BaseModel], spec: JSON) -> tuple[Any, str | None]:
    try:
        return model.model_validate(dict(spec)), None
    except ValidationError as exc:
        return None, describe_validation_error(exc)


def check_agent_team(spec: JSON) -> str | None:
    return _parse(AgentTeamSpec, spec)[1]


def agent_team_warnings(spec: JSON) -> list[str]:
    """What admission accepts but the user should hear at once: an agent whose declared peers
    leave out the coordinator of a team that debugs interactively cannot reach its debugger,
    so its own calls never stop at a breakpoint."""
    team, problem = _parse(AgentTeamSpec, spec)
    if problem or not isinstance(team, AgentTeamSpec) or not team.debug.interactive:
        return []
    if team.isolation is None:
        return []
    coordinator = coordinator_of(team)
    return [
        f"spec.isolation.peers[{i}]: {entry.agent} may not reach the coordinator {coordinator}, "
        "so its model and tool calls do not stop at the debugger (spec.debug.interactive); "
        f"add {coordinator} to its peers to debug it"
        for i, entry in enumerate(team.isolation.peers)
        if entry.agent != coordinator and coordinator not in entry.peers
    ]


def check_sandbox_policy(spec: JSON) -> str | None:
    policy, problem = _parse(SandboxPolicySpec, spec)
    if problem:
        return problem
    proof = verify(policy)
    return None if proof.holds else f"{_spec(proof.message)} (the policy cannot hold)"


def check_memory_store(spec: JSON) -> str | None:
    return _parse(MemoryStoreSpec, spec)[1]


def _sibling_versions(siblings: Sequence[JSON], own_name: str) -> dict[str, str]:
    """Version -> object name of the tool's other ToolVersions."""
    versions: dict[str, str] = {}
    for other in siblings:
        name = other.get("metadata", {}).get("name", "?")
        version = (other.get("spec") or {}).get("version")
        if name != own_name and isinstance(version, str):
            versions[version] = name
    return versions


def check_tool_version(
    spec: JSON,
    siblings: Sequence[JSON],
    own_name: str,
    namespace_versions: Sequence[JSON] | None = None,
) -> str | None:
    """`siblings`: the other ToolVersion objects of the same tool in the namespace;
    `namespace_versions`: every ToolVersion there, which a composite is checked against (its
    tools exist in matching versions, types fit, no cycle; the refusal names the line).

    A migration from a version that does not exist (yet) is not refused here: GitOps tools
    apply a folder in their own order, so the predecessor may arrive a moment later. It is
    warned about (`tool_version_warnings`) and reported Ready=False until it exists.
    """
    tool, problem = _parse(ToolVersionSpec, spec)
    if problem:
        return problem
    assert isinstance(tool, ToolVersionSpec)
    problem = inline_document_problem(tool)  # kind openapi: the document in the spec
    if problem:
        return problem
    if tool.implementation.kind == ImplementationKind.COMPOSITE:
        problem = check_composite(
            tool, siblings if namespace_versions is None else namespace_versions, own_name
        )
        if problem:
            return problem
    versions = _sibling_versions(siblings, own_name)
    if tool.version in versions:
        owner = versions[tool.version]
        return f"spec.version: {tool.tool} {tool.version} is already declared by {owner}"
    migration = tool.migration
    if migration and not less(migration.from_version, tool.version):
        return f"spec.migration.from: {migration.from_version} is not older than {tool.version}"
    older = [v for v in ordered(versions) if less(v, tool.version)]
    if not older:
        return None
    previous = older[-1]
    if migration is None:
        return (
            f"spec.migration: required, {tool.tool} {previous} is older; a chain with a hole "
            "leaves its callers nowhere to go"
        )
    if less(migration.from_version, previous):
        return (
            f"spec.migration.from: {migration.from_version} skips {previous} (a hole in the chain)"
        )
    return None


def check_composite(tool: ToolVersionSpec, others: Sequence[JSON], own_name: str) -> str | None:
    """Why the composite `tool` cannot run against the ToolVersions `others`, or None."""
    specs = []
    for other in others:
        if other.get("metadata", {}).get("name") == own_name:
            continue
        spec, problem = _parse(ToolVersionSpec, other.get("spec") or {})
        if problem is None:
            specs.append(spec)
    try:
        plan_of(tool, tools_of(specs))
    except HiveError as exc:
        return str(exc)
    return None


def tool_version_warnings(spec: JSON, siblings: Sequence[JSON], own_name: str) -> list[str]:
    """What admission accepts but the user should hear at once: a migration from nowhere."""
    tool, problem = _parse(ToolVersionSpec, spec)
    if problem or not isinstance(tool, ToolVersionSpec) or tool.migration is None:
        return []
    versions = _sibling_versions(siblings, own_name)
    source = tool.migration.from_version
    if source in versions:
        return []
    known = (
        f"versions: {', '.join(ordered(versions))}"
        if versions
        else f"no other version of {tool.tool} exists"
    )
    return [
        f"spec.migration.from: {tool.tool} {source} does not exist ({known}); this version "
        f"stays Ready=False (MigrationChainBroken) until {source} is applied"
    ]


def check_tool_version_delete(
    obj: JSON, siblings: Sequence[JSON], teams: Sequence[JSON]
) -> str | None:
    """Deleting a version is refused while it is the only version present that an agent's
    range allows: the agent's calls would fail. `siblings`: the tool's other versions."""
    spec = obj.get("spec") or {}
    tool, version = spec.get("tool"), spec.get("version")
    if not isinstance(tool, str) or not isinstance(version, str):
        return None
    own = (obj.get("metadata") or {}).get("name")
    others: list[str] = []
    for sibling in siblings:
        other = (sibling.get("spec") or {}).get("version")
        if (sibling.get("metadata") or {}).get("name") != own and isinstance(other, str):
            others += [other] if other != version else []
    stranded = []
    for team in teams:
        team_name = (team.get("metadata") or {}).get("name", "?")
        for agent in (team.get("spec") or {}).get("agents") or []:
            for requirement in agent.get("tools") or []:
                if requirement.get("name") != tool:
                    continue
                wanted = str(requirement.get("version", "*"))
                try:
                    if satisfies(version, wanted) and not any(satisfies(v, wanted) for v in others):
                        stranded.append(f"{team_name}/{agent.get('name')} ({wanted!r})")
                except (ValueError, TypeError):
                    continue
    if not stranded:
        return None
    name = (obj.get("metadata") or {}).get("name")
    return (
        f"ToolVersion {name} ({tool} {version}) is the only version matching the range of "
        f"{', '.join(stranded)}: apply a version the range allows, or change the range, first"
    )


def check_chaos_experiment(spec: JSON, team: JSON | None) -> str | None:
    """`team`: the AgentTeam the selector names, when it exists."""
    experiment, problem = _parse(ChaosExperimentSpec, spec)
    if problem:
        return problem
    assert isinstance(experiment, ChaosExperimentSpec)
    if team is None:
        return None
    selector = experiment.selector
    members = [a.get("name") for a in (team.get("spec") or {}).get("agents") or []]
    for index, agent in enumerate(selector.agents):
        if agent not in members:
            return (
                f"spec.selector.agents[{index}]: '{agent}' is not an agent of team "
                f"{selector.team} (agents: {', '.join(str(m) for m in members)})"
            )
    candidates = len(selector.agents) or len(members)
    if selector.mode == SelectorMode.FIXED and (selector.value or 0) > candidates:
        return (
            f"spec.selector.value: {selector.value} agents asked for, but the selector can "
            f"match only {candidates}"
        )
    return None


def _spec(message: str) -> str:
    return message if message.startswith("spec.") else f"spec.{message}"


SIMPLE_CHECKS: dict[str, Callable[[JSON], str | None]] = {
    "AgentTeam": check_agent_team,
    "SandboxPolicy": check_sandbox_policy,
    "MemoryStore": check_memory_store,
}
