"""A reasoning trace as a rich Tree for the terminal: the line followed stands out, wrong and
looping steps are marked, candidates not taken are dim.

A run's reasoning (`TeamResult.reasoning`, records from `hive.runtime.reasoning.records`) renders
with `render_record` (one chain-of-thought trace or plan search, to hang under the span or task
that produced it) and `render_run` (a run report's tasks as a tree, each with its reasoning)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.text import Text
from rich.tree import Tree

from hive.runtime.reasoning.thought import StepKind, StepStatus, ThoughtStep, ThoughtTrace

STYLE = {
    StepStatus.ROOT: "bold",
    StepStatus.CHOSEN: "green",
    StepStatus.CANDIDATE: "dim",
    StepStatus.LOOP: "yellow",
    StepStatus.WRONG: "red",
    StepStatus.SUPERSEDED: "dim strike",
    StepStatus.DEAD_END: "dim yellow",
}
MARK = {
    StepStatus.ROOT: "goal",
    StepStatus.CHOSEN: "followed",
    StepStatus.CANDIDATE: "candidate",
    StepStatus.LOOP: "loop",
    StepStatus.WRONG: "wrong",
    StepStatus.SUPERSEDED: "superseded",
    StepStatus.DEAD_END: "dead end",
}


def _label(trace: ThoughtTrace, step: ThoughtStep) -> Text:
    text = Text()
    if step.kind is StepKind.GOAL:
        text.append(f"goal: {step.hypothesis}", style="bold")
        text.append(f"  [{trace.outcome.value}]", style="cyan")
        return text
    answer = trace.answer_step == step.id
    text.append("✔ " if answer else "", style="bold green")
    text.append(f"#{step.id} ", style="cyan")
    if step.kind is StepKind.CORRECTION:
        text.append("correction: ", style="magenta")
    text.append(step.hypothesis, style="bold green" if answer else STYLE[step.status])
    text.append(f"  ({MARK[step.status]}, confidence {step.confidence:.2f})", style="dim")
    if step.note and step.status in (StepStatus.WRONG, StepStatus.LOOP, StepStatus.DEAD_END):
        text.append(f"  — {step.note}", style=STYLE[step.status])
    return text


def render_trace(trace: ThoughtTrace, *, evidence: bool = True) -> Tree:
    """The trace as a Tree: one node per step, with its evidence and conclusion beneath it."""
    nodes: dict[int, Tree] = {}
    for step in trace.steps:
        label = _label(trace, step)
        node = Tree(label) if step.parent is None else nodes[step.parent].add(label)
        nodes[step.id] = node
        if evidence:
            for item in step.evidence:
                node.add(Text(f"• {item}", style="dim"))
        if step.conclusion and step.kind is not StepKind.GOAL:
            node.add(Text(f"→ {step.conclusion}", style="italic"))
    if trace.answer is not None:
        nodes[0].add(Text(f"answer: {trace.answer}", style="bold green"))
    return nodes[0]


def _mcts_tree(search: Mapping[str, Any]) -> Tree:
    node = Tree(
        Text.assemble(
            ("plan search (MCTS): ", "bold magenta"),
            f"{search.get('iterations')} iterations in {search.get('elapsedS')} s, "
            f"stopped by {search.get('stoppedBy')}, {search.get('treeSize')} states, "
            f"value {search.get('value')}",
        )
    )
    for stats in search.get("root") or []:
        node.add(
            Text(
                f"{stats['action']}  (visits {stats['visits']}, value {stats['value']}"
                + (", proven" if stats.get("proven") else "")
                + ")",
                style="green" if stats["action"] == search.get("bestAction") else "dim",
            )
        )
    chosen = search.get("bestSequence") or search.get("plan") or []
    node.add(Text("plan: " + " → ".join(str(a) for a in chosen), style="bold green"))
    return node


def render_record(record: Mapping[str, Any], *, evidence: bool = True) -> Tree:
    """One reasoning record of a run: a chain-of-thought trace or an MCTS plan search."""
    if record.get("kind") == "mcts":
        return _mcts_tree(record.get("search") or {})
    trace = ThoughtTrace.model_validate(record["trace"])
    node = Tree(
        Text.assemble(
            ("chain of thought: ", "bold magenta"),
            f"{len(trace.steps)} steps, {trace.expansions} expansions, "
            f"{trace.corrections} corrections, outcome {trace.outcome.value}",
        )
    )
    node.children.append(render_trace(trace, evidence=evidence))
    return node


def _duration(task: Mapping[str, Any]) -> str:
    return f"{(float(task['end_ms']) - float(task['start_ms'])) / 1000:.3f} s"


def render_run(report: Mapping[str, Any], *, evidence: bool = True) -> Tree:
    """A run report (`hive run --report`) as its tree of tasks, each with its duration and,
    under it, the reasoning it did; reasoning outside any task hangs under the run."""
    profile = report.get("profile") or {}
    tasks: Sequence[Mapping[str, Any]] = profile.get("tasks") or []
    records: Sequence[Mapping[str, Any]] = report.get("reasoning") or []
    root = Tree(
        Text.assemble(
            ("run: ", "bold"),
            str(report.get("task", "")),
            (f"  [{report.get('outcome', '')}, {report.get('duration_s', 0)} s]", "cyan"),
        )
    )
    nodes: dict[str | None, Tree] = {None: root}
    for task in sorted(tasks, key=lambda t: float(t["start_ms"])):  # parents start first
        parent = nodes.get(task.get("parent"), root)
        nodes[task["task_id"]] = parent.add(
            Text.assemble((task["name"], "bold"), (f"  {_duration(task)}", "dim"))
        )
    for record in records:
        nodes.get(record.get("task_id"), root).children.append(
            render_record(record, evidence=evidence)
        )
    return root
