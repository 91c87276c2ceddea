"""The protocol-relevant part of a team spec: what the TLA+ model of its run is generated from.

It is read from the spec's mapping (camelCase, as in a team file), with the AgentTeam API's
defaults, so that a team the API would refuse for a protocol reason (an unbounded revision loop,
an unreachable consensus threshold) can still be modelled and refused with a counterexample.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

from hive.api.agentteam import (
    AgentTeamSpec,
    BudgetSpec,
    DelegationSpec,
    NegotiationSpec,
    Pattern,
    SwarmSpec,
)
from hive.errors import InvalidInput


@dataclass(frozen=True)
class TeamProtocol:
    """What a team's run can do, as far as the model checker is concerned."""

    pattern: Pattern
    agents: tuple[str, ...]
    subordinates: dict[str, tuple[str, ...]] = field(default_factory=dict)
    coordinator: str = ""
    max_depth: int = 3
    max_revisions: int | None = 2  # None: the spec sets no bound on the review loop
    approval_required: bool = False
    swarm_rounds: int = 3
    swarm_parts: int = 2
    negotiation_rounds: int = 3
    consensus_percent: int = 66  # the consensus threshold in percent, rounded up
    max_tokens: int | None = None
    tokens_per_call: int = 400
    peer_failures: bool = True
    max_subtasks: int = 6  # a swarm's decomposition, at most (swarm.maxSubtasks)
    deadline: str | None = None  # budget.deadline, RFC 3339
    seconds_per_call: float = 2.0


def _section(spec: dict[str, Any], key: str) -> dict[str, Any]:
    value = spec.get(key) or {}
    if not isinstance(value, dict):
        raise InvalidInput(f"spec.{key}", "expected a mapping")
    return value


def _int(section: dict[str, Any], key: str, default: int, where: str) -> int:
    value = section.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"spec.{where}.{key}", f"expected an integer, got {value!r}")
    return value


def coordinator_of(pattern: Pattern, agents: list[dict[str, Any]]) -> str:
    """The runtime's coordinator: the top senior of a hierarchy, else the first senior or agent."""
    led = {s for a in agents for s in a.get("subordinates") or []}
    if pattern == Pattern.HIERARCHICAL:
        for agent in agents:
            if agent["name"] not in led and agent.get("subordinates"):
                return str(agent["name"])
    for agent in agents:
        if agent.get("role") == "senior":
            return str(agent["name"])
    return str(agents[0]["name"])


def protocol_of(
    spec: dict[str, Any],
    *,
    tokens_per_call: int = 400,
    swarm_parts: int = 2,
    seconds_per_call: float = 2.0,
) -> TeamProtocol:
    """The protocol of a spec mapping; raises InvalidInput naming the field it cannot read.
    The budget's own estimates (budget.tokensPerCall, budget.secondsPerCall) take the place of
    the given defaults."""
    agents = spec.get("agents")
    if not isinstance(agents, list) or not agents:
        raise InvalidInput("spec.agents", "expected a non-empty list of agents")
    for i, agent in enumerate(agents):
        if not isinstance(agent, dict) or not isinstance(agent.get("name"), str):
            raise InvalidInput(f"spec.agents[{i}].name", "every agent needs a name")
    try:
        pattern = Pattern(spec.get("pattern", Pattern.HIERARCHICAL))
    except ValueError as exc:
        raise InvalidInput("spec.pattern", str(exc)) from exc
    delegation, swarm = _section(spec, "delegation"), _section(spec, "swarm")
    negotiation, budget = _section(spec, "negotiation"), _section(spec, "budget")
    revisions = delegation.get("maxRevisions", DelegationSpec().max_revisions)
    if revisions is not None and (isinstance(revisions, bool) or not isinstance(revisions, int)):
        raise InvalidInput("spec.delegation.maxRevisions", f"expected an integer: {revisions!r}")
    threshold = negotiation.get("consensusThreshold", NegotiationSpec().consensus_threshold)
    if isinstance(threshold, bool) or not isinstance(threshold, int | float):
        raise InvalidInput("spec.negotiation.consensusThreshold", f"expected a number: {threshold}")
    max_tokens = budget.get("maxTokens", BudgetSpec().max_tokens)
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int)):
        raise InvalidInput("spec.budget.maxTokens", f"expected an integer: {max_tokens!r}")
    max_subtasks = _int(swarm, "maxSubtasks", SwarmSpec().max_subtasks, "swarm")
    if budget.get("tokensPerCall") is not None:
        tokens_per_call = _int(budget, "tokensPerCall", tokens_per_call, "budget")
    seconds = budget.get("secondsPerCall")
    seconds = seconds_per_call if seconds is None else seconds
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds <= 0:
        raise InvalidInput("spec.budget.secondsPerCall", f"expected a positive number: {seconds}")
    deadline = budget.get("deadline")
    if deadline is not None and not isinstance(deadline, str | dt.datetime):
        raise InvalidInput("spec.budget.deadline", f"expected an RFC 3339 time: {deadline!r}")
    return TeamProtocol(
        pattern=pattern,
        agents=tuple(str(a["name"]) for a in agents),
        subordinates={str(a["name"]): tuple(a.get("subordinates") or []) for a in agents},
        coordinator=coordinator_of(pattern, agents),
        max_depth=_int(delegation, "maxDepth", DelegationSpec().max_depth, "delegation"),
        max_revisions=revisions,
        approval_required=bool(delegation.get("approvalRequired", False)),
        swarm_rounds=_int(swarm, "maxRounds", SwarmSpec().max_rounds, "swarm"),
        swarm_parts=max(1, min(max_subtasks, swarm_parts)),
        negotiation_rounds=_int(
            negotiation, "maxRounds", NegotiationSpec().max_rounds, "negotiation"
        ),
        consensus_percent=math.ceil(round(float(threshold) * 100, 6)),
        max_tokens=max_tokens,
        tokens_per_call=tokens_per_call,
        max_subtasks=max_subtasks,
        deadline=deadline.isoformat() if isinstance(deadline, dt.datetime) else deadline,
        seconds_per_call=float(seconds),
    )


def protocol_of_spec(spec: AgentTeamSpec, *, tokens_per_call: int = 400) -> TeamProtocol:
    """The protocol of an admitted AgentTeam spec."""
    return protocol_of(spec.model_dump(mode="json", by_alias=True), tokens_per_call=tokens_per_call)
