"""A reasoning trace as a rich Tree for the terminal: the line followed stands out, wrong and
looping steps are marked, candidates not taken are dim."""

from __future__ import annotations

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
