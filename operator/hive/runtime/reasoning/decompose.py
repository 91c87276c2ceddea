"""A model-driven decomposer: ask a ChatModel for a plan of subgoals and check it as a graph.

The answer must parse (`parse_plan`) and build (`GoalGraph.build`: no unknown prerequisite, no
input from nowhere, no cycle, not too many subgoals). Whatever is wrong is sent back to the
model, a bounded number of times; then `InvalidModelOutput` says what the last problem was.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from hive.errors import InvalidInput
from hive.runtime.agent import ChatModel
from hive.runtime.events import EventBus, EventKind
from hive.runtime.models import Message
from hive.runtime.reasoning.asking import ask
from hive.runtime.reasoning.goals import GoalGraph, PlanIn, parse_plan
from hive.runtime.reasoning.signals import emit

SYSTEM = (
    "You break a goal into subgoals that agents can work on in parallel. Each subgoal has a "
    "short unique name, a description, the data it consumes (inputs) and produces (outputs), "
    "the subgoals it explicitly requires, and an effort estimate in minutes. A subgoal that "
    "consumes data must name it exactly as another subgoal's output, unless the data is given. "
    "There must be no circular dependencies. Answer with only a JSON object."
)


async def decompose(
    model: ChatModel,
    goal: str,
    *,
    max_subgoals: int = 12,
    repair_rounds: int = 2,
    given: Iterable[str] = (),
    context: str = "",
    bus: EventBus | None = None,
    agent: str = "planner",
) -> GoalGraph:
    """Ask `model` to decompose `goal`; returns the checked graph or raises InvalidModelOutput."""
    if not goal.strip():
        raise InvalidInput("goal", "must not be empty")
    if max_subgoals < 1:
        raise InvalidInput("max_subgoals", f"must be at least 1, not {max_subgoals}")
    available = tuple(given)
    schema = PlanIn.model_json_schema()
    prompt = [f"Goal: {goal}"]
    if context:
        prompt.append(f"Context: {context}")
    if available:
        prompt.append(f"Data already given: {', '.join(available)}")
    prompt.append(
        f"Use at most {max_subgoals} subgoals. Answer with a JSON object matching this schema: "
        f"{json.dumps(schema)}"
    )
    messages: list[Message] = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "\n".join(prompt)},
    ]

    def check(text: str) -> GoalGraph:
        subgoals = parse_plan(text)
        if not subgoals:
            raise InvalidInput("plan.subgoals", "is empty; give at least one subgoal")
        if len(subgoals) > max_subgoals:
            raise InvalidInput(
                "plan.subgoals", f"has {len(subgoals)} subgoals, at most {max_subgoals} allowed"
            )
        return GoalGraph.build(subgoals, given=available)

    graph = await ask(model, messages, check, what="plan", schema=schema, repairs=repair_rounds)
    path, length = graph.critical_path()
    await emit(
        bus,
        EventKind.PLAN_DECOMPOSED,
        agent,
        goal=goal,
        subgoals=len(graph),
        levels=graph.levels(),
        critical_path=path,
        estimated_time=length,
        total_effort=graph.total_effort,
    )
    return graph
