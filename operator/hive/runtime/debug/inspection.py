"""What the user can look at while the run is paused, as JSON-able data: the messages of the
last model request, the plan, the budgets, the delegation tree, the last model request and
response (of the paused agent, else of every agent)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hive.runtime.debug.session import reply_wire
from hive.runtime.events import EventKind

if TYPE_CHECKING:
    from hive.runtime.debug.debugger import Debugger


def focus(debugger: Debugger) -> str | None:
    """The agent the paused stop point is about."""
    if debugger.paused is None:
        return None
    return debugger.paused.stop.agent


def messages(debugger: Debugger) -> dict[str, Any]:
    """The messages of each agent's last model request (the paused agent's alone if it has
    one), with the edit waiting for an agent's next request."""
    agent = focus(debugger)
    chosen = [agent] if agent in debugger.last_model else list(debugger.last_model)
    return {
        name: {
            "messages": debugger.last_model[name][0],
            "next_edit": debugger.pending_edits.get(name),
        }
        for name in chosen
    }


def model(debugger: Debugger) -> dict[str, Any]:
    """The last model request and response of the paused agent (else of every agent)."""
    agent = focus(debugger)
    chosen = [agent] if agent in debugger.last_model else list(debugger.last_model)
    return {
        name: {
            "request": debugger.last_model[name][0],
            "response": reply_wire(debugger.last_model[name][1]),
        }
        for name in chosen
    }


def plan(debugger: Debugger) -> dict[str, Any]:
    """The subtasks each senior planned (decomposed events), and the swarm's plan."""
    planned = [
        {"agent": agent, "subtasks": about.get("subtasks", [])}
        for kind, agent, _, about, _ in debugger.session.trail
        if kind == EventKind.DECOMPOSED.value
    ]
    team = debugger.team
    return {"decomposed": planned, "plan": list(team.roster.plan) if team else []}


def budgets(debugger: Debugger) -> dict[str, Any]:
    """The team's budget and what the run used of it, on the run's clock (pauses left out)."""
    team = debugger.team
    used = {"paused_s": round(debugger.clock.paused_s, 3)}
    if team is None:
        return used
    budget = team.spec.budget
    return {
        **used,
        "max_tokens": budget.max_tokens,
        "deadline": budget.deadline.isoformat() if budget.deadline else None,
        "tokens": team.roster.tokens(),
        "tokens_by_agent": {m.name: m.tokens() for m in team.roster.members.values()},
    }


def tree(debugger: Debugger) -> dict[str, Any]:
    """The delegations so far as a tree: senior -> subordinate, the task, review, revisions."""
    team = debugger.team
    if team is None:
        return {"lines": []}
    lines = [team.coordinator]
    for record in team.roster.delegations:
        indent = "  " * (len(record.chain) - 1)
        review = "unreviewed" if record.review is None else f"review {record.review:.2f}"
        lines.append(
            f"{indent}└ {record.subordinate}: {record.task[:60]} ({review}, "
            f"{record.revisions} revision(s){'' if record.ok else ', failed'})"
        )
    return {"lines": lines}


VIEWS: dict[str, Callable[[Debugger], Any]] = {
    "messages": messages,
    "plan": plan,
    "budgets": budgets,
    "tree": tree,
    "model": model,
}
