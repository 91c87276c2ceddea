"""Reasoning kept with a team run: what an agent acts on after it reasons, and the records of
every reasoning trace and plan search of a run, each tied to the task that produced it.

A `ReasoningRecorder` subscribes to the team's bus and keeps one record per finished trace
(`thought-finished`, the whole tree) and per plan search (`plan-searched`, the statistics), with
the agent and the id of the team task the event was published in (`current_task`). The records
go into the run report (`TeamResult.reasoning`), and `hive.runtime.reasoning.render` draws them
under the task that produced them.
"""

from __future__ import annotations

from typing import Any

from hive.runtime.events import Event, EventKind, current_task
from hive.runtime.reasoning.thought import Outcome, ThoughtTrace

CHAIN_OF_THOUGHT = "chain-of-thought"
MCTS = "mcts"


def briefing(trace: ThoughtTrace) -> str:
    """The line of reasoning the agent followed, as text to act on (its answer when it has one)."""
    end = trace.answer_step if trace.answer_step is not None else trace.current
    lines = ["Your reasoning on this task (chain of thought):"]
    for step in trace.path(end)[1:]:
        line = f"- {step.hypothesis}"
        if step.conclusion:
            line += f" -> {step.conclusion}"
        lines.append(f"{line} (confidence {step.confidence:.2f})")
    if trace.outcome is Outcome.ANSWERED:
        lines.append(f"It concluded: {trace.answer}")
    else:
        lines.append(f"It ended without an answer ({trace.outcome.value}); decide from the above.")
    lines.append("Act on it: check with your tools where that helps, then give the final answer.")
    return "\n".join(lines)


def reasoning_record(event: Event) -> dict[str, Any] | None:
    """The record of a finished reasoning trace or plan search (JSON-able), None for other
    events; `task_id` is the team task the event is published in (read while it is)."""
    if event.kind is EventKind.THOUGHT_FINISHED:
        record = event.data.get("record") or {}
        return {
            "kind": CHAIN_OF_THOUGHT,
            "agent": event.agent,
            "task_id": current_task.get(),
            "at": event.at.isoformat(),
            "outcome": event.data.get("outcome"),
            "answer": event.data.get("answer"),
            "steps": event.data.get("steps"),
            "expansions": event.data.get("expansions"),
            "corrections": event.data.get("corrections"),
            "confidence": _answer_confidence(record),
            "trace": record,
        }
    if event.kind is EventKind.PLAN_SEARCHED:
        return {
            "kind": MCTS,
            "agent": event.agent,
            "task_id": current_task.get(),
            "at": event.at.isoformat(),
            "search": dict(event.data),
        }
    return None


class ReasoningRecorder:
    """Bus subscriber: keeps the reasoning records of one run, in the order they finished."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def __call__(self, event: Event) -> None:
        record = reasoning_record(event)
        if record is not None:
            self.records.append(record)


def _answer_confidence(record: dict[str, Any]) -> float | None:
    step = record.get("answer_step")
    steps = record.get("steps") or []
    if isinstance(step, int) and 0 <= step < len(steps):
        return float(steps[step].get("confidence", 0.0))
    return None
