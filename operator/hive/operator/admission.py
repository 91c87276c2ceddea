"""Validating admission webhooks, one per kind, served by kopf at /validate-<plural>.

Each handler gathers what its rule needs from the API server and asks the pure rules in
`hive.reconcile.admission`; a refusal is HTTP 422 with a message that names the field, and what
is accepted but worth hearing at once comes back as an admission warning (kubectl prints it).
"""

from __future__ import annotations

from typing import Any, Literal

import kopf

from hive.api import GROUP, VERSION
from hive.api.privacy import floor_problem, parse_floor
from hive.kube.children import get_hive_object, list_hive_objects
from hive.operator.state import STATE
from hive.reconcile import admission
from hive.settings import get_settings

OPERATIONS: list[Literal["CREATE", "UPDATE"]] = ["CREATE", "UPDATE"]


def _refuse(problem: str | None) -> None:
    if problem:
        raise kopf.AdmissionError(problem, code=422)


@kopf.on.validate(GROUP, VERSION, "agentteams", id="validate-agentteams", operations=OPERATIONS)
def validate_agent_team(spec: kopf.Spec, **_: Any) -> None:
    _refuse(admission.check_agent_team(dict(spec)))
    _refuse(floor_problem(dict(spec), parse_floor(get_settings().privacy.floor)))


@kopf.on.validate(
    GROUP, VERSION, "sandboxpolicies", id="validate-sandboxpolicies", operations=OPERATIONS
)
def validate_sandbox_policy(spec: kopf.Spec, **_: Any) -> None:
    _refuse(admission.check_sandbox_policy(dict(spec)))


@kopf.on.validate(GROUP, VERSION, "memorystores", id="validate-memorystores", operations=OPERATIONS)
def validate_memory_store(spec: kopf.Spec, **_: Any) -> None:
    _refuse(admission.check_memory_store(dict(spec)))


@kopf.on.validate(GROUP, VERSION, "toolversions", id="validate-toolversions", operations=OPERATIONS)
async def validate_tool_version(
    spec: kopf.Spec, name: str | None, namespace: str | None, warnings: list[str], **_: Any
) -> None:
    tool = spec.get("tool")
    everything = []
    if namespace and isinstance(tool, str):
        everything = await list_hive_objects(STATE.client(), "ToolVersion", namespace)
    siblings = [o for o in everything if (o.get("spec") or {}).get("tool") == tool]
    _refuse(admission.check_tool_version(dict(spec), siblings, name or "", everything))
    warnings.extend(admission.tool_version_warnings(dict(spec), siblings, name or ""))


@kopf.on.validate(
    GROUP, VERSION, "toolversions", id="validate-toolversions-delete", operations=["DELETE"]
)
async def validate_tool_version_delete(body: kopf.Body, namespace: str | None, **_: Any) -> None:
    """A version still the only match of an agent's range is not deleted (the agent named)."""
    tool = (body.get("spec") or {}).get("tool")
    if not namespace or not isinstance(tool, str):
        return
    client = STATE.client()
    siblings = [
        o
        for o in await list_hive_objects(client, "ToolVersion", namespace)
        if (o.get("spec") or {}).get("tool") == tool
    ]
    teams = await list_hive_objects(client, "AgentTeam", namespace)
    _refuse(admission.check_tool_version_delete(dict(body), siblings, teams))


@kopf.on.validate(
    GROUP, VERSION, "chaosexperiments", id="validate-chaosexperiments", operations=OPERATIONS
)
async def validate_chaos_experiment(spec: kopf.Spec, namespace: str | None, **_: Any) -> None:
    selector = spec.get("selector")
    team_name = selector.get("team") if isinstance(selector, dict) else None
    team = None
    if namespace and isinstance(team_name, str) and team_name:
        team = await get_hive_object(STATE.client(), "AgentTeam", namespace, team_name)
    _refuse(admission.check_chaos_experiment(dict(spec), team))
