"""Validating admission webhooks, one per kind, served by kopf at /validate-<plural>.

Each handler gathers what its rule needs from the API server and asks the pure rules in
`hive.reconcile.admission`; a refusal is HTTP 422 with a message that names the field, and what
is accepted but worth hearing at once comes back as an admission warning (kubectl prints it).

The rules are CPU work that grows with the object (a whole spec through pydantic, a policy's
proof); each runs off the event loop (`checked`, hive.operator.offloop), so a large object
stalls neither the watches nor the health endpoint, and is stopped after
``operator.admission_timeout_s``: the object is then refused, the refusal naming the timeout.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal, TypeVar

import kopf

from hive.api import GROUP, VERSION
from hive.api.privacy import floor_problem, parse_floor
from hive.kube.children import get_hive_object, list_hive_objects
from hive.operator.offloop import CheckTimedOut, OffLoop
from hive.operator.state import STATE
from hive.reconcile import admission
from hive.settings import get_settings
from hive.verify.isolation import isolation_problem, sandbox_policy_names

OPERATIONS: list[Literal["CREATE", "UPDATE"]] = ["CREATE", "UPDATE"]
T = TypeVar("T")
_checks: OffLoop | None = None


def _refuse(problem: str | None) -> None:
    if problem:
        raise kopf.AdmissionError(problem, code=422)


def _spinning(seconds: float, check: Callable[..., T]) -> Callable[..., T]:
    """`check`, after `seconds` of pure-Python CPU work (operator.admission_test_spin_s)."""

    def spin_then_check(*args: Any) -> T:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            pass
        return check(*args)

    return spin_then_check


async def checked(kind: str, check: Callable[..., T], *args: Any) -> T:
    """`check(*args)` off the event loop; past the admission timeout the object is refused."""
    global _checks
    operator = get_settings().operator if STATE.settings is None else STATE.settings.operator
    if _checks is None:
        _checks = OffLoop(operator.admission_concurrency)
    spin_s = operator.admission_test_spin_s.get(kind)
    if spin_s:
        check = _spinning(spin_s, check)
    try:
        return await _checks.run(f"{kind} admission", operator.admission_timeout_s, check, *args)
    except CheckTimedOut as exc:
        raise kopf.AdmissionError(
            f"not admitted: {exc} (HIVE_OPERATOR__ADMISSION_TIMEOUT_S); "
            "a smaller object, or a longer timeout, is needed",
            code=422,
        ) from None


def _team_problem(spec: dict[str, Any]) -> str | None:
    return admission.check_agent_team(spec) or floor_problem(
        spec, parse_floor(get_settings().privacy.floor)
    )


@kopf.on.validate(GROUP, VERSION, "agentteams", id="validate-agentteams", operations=OPERATIONS)
async def validate_agent_team(
    spec: kopf.Spec,
    name: str | None = None,
    namespace: str | None = None,
    warnings: list[str] | None = None,
    **_: Any,
) -> None:
    _refuse(await checked("AgentTeam", _team_problem, dict(spec)))
    _refuse(await _isolation_problem(dict(spec), name or "", namespace or "default"))
    if warnings is not None:
        warnings.extend(await checked("AgentTeam", admission.agent_team_warnings, dict(spec)))


async def _isolation_problem(
    spec: dict[str, Any], name: str, namespace: str, changed: dict[str, Any] | None = None
) -> str | None:
    """spec.isolation proved with Z3 over the objects the operator would make for the team, its
    SandboxPolicies read from the API server but those `changed` gives (hive.verify.isolation);
    each solver call within verify.proof_timeout_s, the whole within the admission timeout."""
    if not isinstance(spec.get("isolation"), dict):
        return None
    policies = dict(changed or {})
    for policy in sandbox_policy_names(spec):
        if policy in policies:
            continue
        found = await get_hive_object(STATE.client(), "SandboxPolicy", namespace, policy)
        if found is not None:
            policies[policy] = found.get("spec") or {}
    timeout_ms = int((STATE.settings or get_settings()).verify.proof_timeout_s * 1000)
    return await checked(
        "AgentTeam", isolation_problem, spec, name, namespace, policies, timeout_ms
    )


@kopf.on.validate(
    GROUP, VERSION, "sandboxpolicies", id="validate-sandboxpolicies", operations=OPERATIONS
)
async def validate_sandbox_policy(
    spec: kopf.Spec, name: str | None = None, namespace: str | None = None, **_: Any
) -> None:
    _refuse(await checked("SandboxPolicy", admission.check_sandbox_policy, dict(spec)))
    if name and namespace:
        _refuse(await _bound_isolation_problem(dict(spec), name, namespace))


async def _bound_isolation_problem(policy: dict[str, Any], name: str, namespace: str) -> str | None:
    """A policy (its network mode, its allowlist) that would break the declared isolation of a
    team whose agents use it."""
    for team in await list_hive_objects(STATE.client(), "AgentTeam", namespace):
        spec = team.get("spec") or {}
        if name not in sandbox_policy_names(spec):
            continue
        team_name = str((team.get("metadata") or {}).get("name") or "")
        problem = await _isolation_problem(spec, team_name, namespace, {name: policy})
        if problem:
            return f"AgentTeam {team_name} uses this policy: {problem}"
    return None


@kopf.on.validate(GROUP, VERSION, "memorystores", id="validate-memorystores", operations=OPERATIONS)
async def validate_memory_store(spec: kopf.Spec, **_: Any) -> None:
    _refuse(await checked("MemoryStore", admission.check_memory_store, dict(spec)))


@kopf.on.validate(GROUP, VERSION, "toolversions", id="validate-toolversions", operations=OPERATIONS)
async def validate_tool_version(
    spec: kopf.Spec, name: str | None, namespace: str | None, warnings: list[str], **_: Any
) -> None:
    tool = spec.get("tool")
    everything = []
    if namespace and isinstance(tool, str):
        everything = await list_hive_objects(STATE.client(), "ToolVersion", namespace)
    siblings = [o for o in everything if (o.get("spec") or {}).get("tool") == tool]
    own, kind, wire = name or "", "ToolVersion", dict(spec)
    _refuse(await checked(kind, admission.check_tool_version, wire, siblings, own, everything))
    warnings.extend(await checked(kind, admission.tool_version_warnings, wire, siblings, own))


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
    check = admission.check_tool_version_delete
    _refuse(await checked("ToolVersion", check, dict(body), siblings, teams))


@kopf.on.validate(
    GROUP, VERSION, "chaosexperiments", id="validate-chaosexperiments", operations=OPERATIONS
)
async def validate_chaos_experiment(spec: kopf.Spec, namespace: str | None, **_: Any) -> None:
    selector = spec.get("selector")
    team_name = selector.get("team") if isinstance(selector, dict) else None
    team = None
    if namespace and isinstance(team_name, str) and team_name:
        team = await get_hive_object(STATE.client(), "AgentTeam", namespace, team_name)
    check = admission.check_chaos_experiment
    _refuse(await checked("ChaosExperiment", check, dict(spec), team))
