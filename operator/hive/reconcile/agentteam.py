"""AgentTeam: from the resource to its status (children come with the CRD reconciliation)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from hive.api.agentteam import AgentTeamSpec, AgentTeamStatus, TeamPhase
from hive.api.common import Condition
from hive.reconcile.conditions import condition, merge_conditions


def describe_validation_error(error: ValidationError, root: str = "spec") -> str:
    """The first problem of a pydantic error as 'spec.agents[0].name: reason'."""
    first = error.errors()[0]
    path = root
    for part in first["loc"]:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return f"{path}: {first['msg']}"


def parse_spec(spec: Mapping[str, Any]) -> AgentTeamSpec:
    return AgentTeamSpec.model_validate(dict(spec))


def team_status(
    spec: Mapping[str, Any],
    previous: Mapping[str, Any] | None,
    *,
    generation: int,
    now: dt.datetime,
) -> AgentTeamStatus:
    """The operator-owned part of the status for a team whose spec is `spec`."""
    old_conditions = [Condition.model_validate(c) for c in (previous or {}).get("conditions", [])]
    try:
        team = parse_spec(spec)
    except ValidationError as exc:
        message = describe_validation_error(exc)
        desired = [
            condition("Ready", False, "InvalidSpec", message, generation=generation, now=now),
            condition("Degraded", True, "InvalidSpec", message, generation=generation, now=now),
        ]
        return AgentTeamStatus(
            phase=TeamPhase.FAILED,
            observed_generation=generation,
            conditions=merge_conditions(old_conditions, desired),
        )
    total = len(team.agents)
    if team.suspend:
        phase, reason, message = TeamPhase.SUSPENDED, "Suspended", "the team is suspended"
    else:
        phase, reason = TeamPhase.RUNNING, "SpecAccepted"
        message = f"{total} agent(s) declared for a {team.pattern} team"
    desired = [
        condition("Ready", True, reason, message, generation=generation, now=now),
        condition(
            "Degraded", False, "AsExpected", "no problem found", generation=generation, now=now
        ),
    ]
    return AgentTeamStatus(
        phase=phase,
        observed_generation=generation,
        agents_total=total,
        conditions=merge_conditions(old_conditions, desired),
    )
