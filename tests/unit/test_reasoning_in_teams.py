"""The team-facing side of reasoning: spec fields, what an agent acts on, records and rendering."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from rich.console import Console

from hive.api.agentteam import AgentSpec
from hive.runtime.events import Event, EventKind, current_task
from hive.runtime.reasoning.records import ReasoningRecorder, briefing
from hive.runtime.reasoning.render import render_record
from hive.runtime.reasoning.thought import (
    Outcome,
    StepKind,
    StepStatus,
    ThoughtStep,
    ThoughtTrace,
)


def test_planning_with_mcts_needs_subordinates() -> None:
    with pytest.raises(ValidationError, match="planning: mcts plans work for subordinates"):
        AgentSpec.model_validate({"name": "solo", "role": "senior", "planning": "mcts"})
    senior = AgentSpec.model_validate(
        {
            "name": "lead",
            "role": "senior",
            "subordinates": ["a"],
            "planning": "mcts",
            "mcts": {"iterations": 5, "timeS": 2},
        }
    )
    assert senior.mcts.iterations == 5
    assert senior.mcts.time_s == 2
    with pytest.raises(ValidationError, match="reasoning"):
        AgentSpec.model_validate({"name": "a", "role": "junior", "reasoning": "intuition"})


def answered_trace() -> ThoughtTrace:
    return ThoughtTrace(
        goal="Where is the food?",
        steps=[
            ThoughtStep(
                id=0,
                depth=0,
                kind=StepKind.GOAL,
                status=StepStatus.ROOT,
                hypothesis="Where is the food?",
                confidence=0.5,
            ),
            ThoughtStep(
                id=1,
                parent=0,
                depth=1,
                status=StepStatus.CHOSEN,
                hypothesis="Follow the dance",
                conclusion="North, 200 m",
                confidence=0.8,
                final=True,
            ),
        ],
        current=1,
        outcome=Outcome.ANSWERED,
        answer="North, 200 m",
        answer_step=1,
        expansions=1,
    )


def test_the_briefing_is_the_line_followed_and_its_answer() -> None:
    text = briefing(answered_trace())
    assert "- Follow the dance -> North, 200 m (confidence 0.80)" in text
    assert "It concluded: North, 200 m" in text


def test_records_are_tied_to_the_task_their_event_was_published_in() -> None:
    recorder = ReasoningRecorder()
    trace = answered_trace()
    token = current_task.set("task-1")
    try:
        recorder(
            Event(
                EventKind.THOUGHT_FINISHED,
                "worker",
                {"outcome": "answered", "record": trace.model_dump(mode="json")},
            )
        )
    finally:
        current_task.reset(token)
    recorder(Event(EventKind.PLAN_SEARCHED, "lead", {"iterations": 4, "root": []}))
    recorder(Event(EventKind.MODEL_CALLED, "lead", {}))  # not reasoning
    cot, mcts = recorder.records
    assert (cot["kind"], cot["agent"], cot["task_id"], cot["confidence"]) == (
        "chain-of-thought",
        "worker",
        "task-1",
        0.8,
    )
    assert (mcts["kind"], mcts["task_id"], mcts["search"]["iterations"]) == ("mcts", None, 4)

    console = Console(width=120, record=True)
    console.print(render_record(cot))
    console.print(render_record(mcts))
    text = console.export_text()
    assert "chain of thought: 2 steps, 1 expansions" in text
    assert "✔ #1 Follow the dance" in text
    assert "plan search (MCTS): 4 iterations" in text
