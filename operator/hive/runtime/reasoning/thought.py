"""Chain-of-thought reasoning: traces as trees of steps that a model expands and corrects.

A trace starts from its goal (step 0). Each expansion asks the model for up to `max_branches`
candidate next steps (hypothesis, evidence, conclusion, confidence, whether it answers the
goal), drops candidates that repeat an ancestor's hypothesis (a loop), and asks the model to
choose among the rest; every candidate stays in the tree, so the trace records the roads not
taken and backtracking has somewhere to go. Self-correction marks a step wrong (and what grew
from it superseded) and asks for a corrected step branching from it.

`ThoughtEngine.solve` runs the loop: expand from the current step until a step answers the
goal, check that answer with the model (a failed check is a self-correction), and when a line
loops or reaches the depth limit, backtrack to the most confident candidate left. Depth,
branching, expansions and corrections are all bounded, so a run always ends, with an outcome
that says how.

Traces publish events on the EventBus, export to JSON and load back (`ThoughtTrace.load`
checks the tree), and render as a rich Tree (`hive.runtime.reasoning.render`).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from hive.errors import HiveError, InvalidInput
from hive.runtime.agent import ChatModel
from hive.runtime.events import EventBus, EventKind
from hive.runtime.models import Message
from hive.runtime.reasoning.asking import ask, describe, pydantic_parser
from hive.runtime.reasoning.signals import emit

FORMAT_VERSION = 1


class StepStatus(StrEnum):
    ROOT = "root"  # the goal itself
    CHOSEN = "chosen"  # on a line the model chose to follow
    CANDIDATE = "candidate"  # proposed, not (yet) followed
    LOOP = "loop"  # repeats an ancestor's hypothesis; never followed
    WRONG = "wrong"  # marked wrong by self-correction
    SUPERSEDED = "superseded"  # grew from a step later marked wrong
    DEAD_END = "dead-end"  # nothing usable grew from it


class StepKind(StrEnum):
    GOAL = "goal"
    STEP = "step"
    CORRECTION = "correction"


class Outcome(StrEnum):
    IN_PROGRESS = "in-progress"
    ANSWERED = "answered"
    EXHAUSTED = "exhausted"  # every line looped, failed or hit the depth limit
    OUT_OF_BUDGET = "out-of-budget"  # expansions or corrections used up


class ThoughtStep(BaseModel):
    """One step of reasoning: a hypothesis with its evidence, maybe a conclusion."""

    id: int = Field(ge=0)
    parent: int | None = None
    depth: int = Field(ge=0)
    kind: StepKind = StepKind.STEP
    status: StepStatus = StepStatus.CANDIDATE
    hypothesis: str
    evidence: list[str] = Field(default_factory=list)
    conclusion: str | None = None
    confidence: float = Field(ge=0, le=1)
    final: bool = False  # this step's conclusion answers the goal
    note: str = ""  # why it was chosen, corrected, dropped


class ThoughtTrace(BaseModel):
    """A tree of reasoning steps toward one goal; step ids are positions in `steps`."""

    version: int = FORMAT_VERSION
    id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    goal: str
    constraints: list[str] = Field(default_factory=list)
    steps: list[ThoughtStep] = Field(default_factory=list)
    current: int = 0
    outcome: Outcome = Outcome.IN_PROGRESS
    answer: str | None = None
    answer_step: int | None = None
    expansions: int = 0
    corrections: int = 0

    @field_validator("version")
    @classmethod
    def _known_version(cls, value: int) -> int:
        if value != FORMAT_VERSION:
            raise ValueError(f"format version {value} is not {FORMAT_VERSION}")
        return value

    @model_validator(mode="after")
    def _is_a_tree(self) -> ThoughtTrace:
        if not self.steps:
            raise ValueError("a trace has at least its goal step")
        for index, step in enumerate(self.steps):
            if step.id != index:
                raise ValueError(f"steps[{index}] has id {step.id}; ids are positions")
            if index == 0:
                if step.parent is not None or step.depth != 0:
                    raise ValueError("steps[0] is the goal: no parent, depth 0")
                continue
            if step.parent is None or not 0 <= step.parent < index:
                raise ValueError(f"steps[{index}].parent must be an earlier step")
            if step.depth != self.steps[step.parent].depth + 1:
                raise ValueError(f"steps[{index}].depth must be its parent's depth + 1")
        for name, value in (("current", self.current), ("answer_step", self.answer_step)):
            if value is not None and not 0 <= value < len(self.steps):
                raise ValueError(f"{name} {value} is not a step")
        return self

    # --- reading ------------------------------------------------------------------------------

    def step(self, step_id: int) -> ThoughtStep:
        if not 0 <= step_id < len(self.steps):
            raise InvalidInput("step", f"trace has no step {step_id} (it has {len(self.steps)})")
        return self.steps[step_id]

    def children(self, step_id: int) -> list[ThoughtStep]:
        return [s for s in self.steps if s.parent == step_id]

    def path(self, step_id: int) -> list[ThoughtStep]:
        """The steps from the goal down to `step_id`."""
        line: list[ThoughtStep] = []
        current: int | None = step_id
        while current is not None:
            line.append(self.step(current))
            current = line[-1].parent
        return line[::-1]

    def descendants(self, step_id: int) -> list[ThoughtStep]:
        below: set[int] = {step_id}
        found: list[ThoughtStep] = []
        for step in self.steps[step_id + 1 :]:  # parents precede children
            if step.parent in below:
                below.add(step.id)
                found.append(step)
        return found

    # --- files --------------------------------------------------------------------------------

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)

    @classmethod
    def from_json(cls, text: str, source: str = "trace") -> ThoughtTrace:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidInput(source, f"not JSON ({exc.msg} at line {exc.lineno})") from exc
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise describe(exc, source) from exc

    def save(self, path: Path) -> None:
        path.write_text(self.to_json() + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> ThoughtTrace:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise InvalidInput(str(path), "no such file") from exc
        except IsADirectoryError as exc:
            raise InvalidInput(str(path), "is a folder, not a trace file") from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidInput(str(path), f"cannot be read ({exc.__class__.__name__})") from exc
        return cls.from_json(text, str(path))


def same_thought(a: str, b: str) -> bool:
    """Two hypotheses say the same when they match ignoring case, spacing and punctuation."""
    return _normal(a) == _normal(b)


def _normal(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


# --- what the model is asked for ----------------------------------------------------------------


class Branch(BaseModel):
    hypothesis: str = Field(min_length=1, description="The next idea to pursue.")
    evidence: list[str] = Field(default_factory=list, description="Facts supporting it.")
    conclusion: str | None = Field(default=None, description="What follows, if anything yet.")
    confidence: float = Field(ge=0, le=1, description="How likely it is right, 0 to 1.")
    final: bool = Field(default=False, description="True if the conclusion answers the goal.")


class Branches(BaseModel):
    branches: list[Branch] = Field(min_length=1)


class Choice(BaseModel):
    choice: int = Field(ge=0, description="Index of the branch to follow.")
    reason: str = ""


class Verdict(BaseModel):
    correct: bool
    reason: str = ""


class ReasoningLimit(HiveError):
    """An expansion was refused: the depth limit, or every candidate repeats an ancestor."""


@dataclass(frozen=True)
class ThoughtLimits:
    max_branches: int = 3  # candidates kept per expansion
    max_depth: int = 8  # steps below the goal
    max_expansions: int = 16  # model expansions per solve
    max_corrections: int = 3  # self-corrections per solve
    verify: bool = True  # ask the model to check an answer before accepting it
    select_with_model: bool = True  # else the most confident candidate is followed

    def __post_init__(self) -> None:
        for name in ("max_branches", "max_depth", "max_expansions"):
            if getattr(self, name) < 1:
                raise InvalidInput(
                    f"limits.{name}", f"must be at least 1, not {getattr(self, name)}"
                )
        if self.max_corrections < 0:
            raise InvalidInput("limits.max_corrections", "must be 0 or more")


SYSTEM = (
    "You reason step by step toward a goal. Each step has a hypothesis, evidence for it, "
    "a conclusion when one follows, and your confidence from 0 to 1. Answer with only a JSON "
    "object."
)


class ThoughtEngine:
    """Expands, corrects and runs reasoning traces with a ChatModel."""

    def __init__(
        self,
        model: ChatModel,
        *,
        limits: ThoughtLimits | None = None,
        bus: EventBus | None = None,
        agent: str = "reasoner",
        repairs: int = 2,
    ) -> None:
        self.model = model
        self.limits = limits or ThoughtLimits()
        self.bus = bus
        self.agent = agent
        self.repairs = repairs

    async def _emit(self, kind: EventKind, trace: ThoughtTrace, **data: Any) -> None:
        await emit(self.bus, kind, self.agent, trace=trace.id, **data)

    def _conversation(self, trace: ThoughtTrace, at: int, task: str) -> list[Message]:
        lines = [f"Goal: {trace.goal}"]
        if trace.constraints:
            lines.append("Constraints: " + "; ".join(trace.constraints))
        lines.append("Reasoning so far:")
        for step in trace.path(at)[1:]:
            lines.append(f"- step {step.id}: {step.hypothesis}")
            lines.extend(f"    evidence: {e}" for e in step.evidence)
            if step.conclusion:
                lines.append(f"    so: {step.conclusion}")
        if at == 0:
            lines.append("- (nothing yet)")
        lines.append(task)
        return [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": "\n".join(lines)},
        ]

    async def start(
        self, goal: str, *, context: Sequence[str] = (), constraints: Sequence[str] = ()
    ) -> ThoughtTrace:
        """A new trace whose step 0 is the goal, with `context` as its evidence."""
        if not goal.strip():
            raise InvalidInput("goal", "must not be empty")
        root = ThoughtStep(
            id=0,
            depth=0,
            kind=StepKind.GOAL,
            status=StepStatus.ROOT,
            hypothesis=goal,
            evidence=list(context),
            confidence=0.5,
        )
        trace = ThoughtTrace(goal=goal, constraints=list(constraints), steps=[root])
        await self._emit(EventKind.THOUGHT_STARTED, trace, goal=goal)
        return trace

    def _add(
        self, trace: ThoughtTrace, parent: int, branch: Branch, kind: StepKind, note: str = ""
    ) -> ThoughtStep:
        line = trace.path(parent)
        looping = any(same_thought(branch.hypothesis, s.hypothesis) for s in line)
        step = ThoughtStep(
            id=len(trace.steps),
            parent=parent,
            depth=line[-1].depth + 1,
            kind=kind,
            status=StepStatus.LOOP if looping else StepStatus.CANDIDATE,
            hypothesis=branch.hypothesis,
            evidence=list(branch.evidence),
            conclusion=branch.conclusion,
            confidence=branch.confidence,
            final=branch.final,
            note=note or ("repeats an earlier step" if looping else ""),
        )
        trace.steps.append(step)
        return step

    async def expand(self, trace: ThoughtTrace, parent: int | None = None) -> ThoughtStep:
        """Grow candidates below `parent` (default: the current step) and follow one of them.

        Raises ReasoningLimit at the depth limit, or when every candidate repeats an ancestor.
        """
        at = trace.current if parent is None else parent
        base = trace.step(at)
        if base.status in (StepStatus.WRONG, StepStatus.SUPERSEDED, StepStatus.LOOP):
            raise InvalidInput("parent", f"step {at} is {base.status.value}; expand another")
        if base.depth >= self.limits.max_depth:
            base.status = StepStatus.DEAD_END if at else base.status
            raise ReasoningLimit(f"step {at} is at the depth limit of {self.limits.max_depth}")
        answer = await ask(
            self.model,
            self._conversation(
                trace,
                at,
                f"Propose up to {self.limits.max_branches} different next steps as "
                '{"branches": [{"hypothesis", "evidence", "conclusion", "confidence", "final"}]}.',
            ),
            pydantic_parser(Branches, "branches"),
            what="reasoning branches",
            schema=Branches.model_json_schema(),
            repairs=self.repairs,
        )
        trace.expansions += 1
        added = [
            self._add(trace, at, b, StepKind.STEP)
            for b in answer.branches[: self.limits.max_branches]
        ]
        usable = [s for s in added if s.status is StepStatus.CANDIDATE]
        for step in added:
            if step.status is StepStatus.LOOP:
                await self._emit(
                    EventKind.THOUGHT_LOOP, trace, step=step.id, hypothesis=step.hypothesis
                )
        if not usable:
            if at:
                base.status = StepStatus.DEAD_END
                base.note = "every next step repeated an earlier one"
            raise ReasoningLimit(f"every step proposed after step {at} repeats an earlier one")
        if base.status is StepStatus.CANDIDATE:
            base.status = StepStatus.CHOSEN  # growing from a step follows it
        chosen, reason = await self._choose(trace, at, usable)
        chosen.status = StepStatus.CHOSEN
        chosen.note = reason
        trace.current = chosen.id
        await self._emit(
            EventKind.THOUGHT_EXPANDED,
            trace,
            parent=at,
            candidates=[s.id for s in added],
            chosen=chosen.id,
            hypothesis=chosen.hypothesis,
            confidence=chosen.confidence,
        )
        return chosen

    async def _choose(
        self, trace: ThoughtTrace, at: int, usable: list[ThoughtStep]
    ) -> tuple[ThoughtStep, str]:
        if len(usable) == 1 or not self.limits.select_with_model:
            best = max(usable, key=lambda s: s.confidence)  # first of equals
            return best, "the only candidate" if len(usable) == 1 else "the most confident"
        options = "\n".join(
            f"{i}: {s.hypothesis} (confidence {s.confidence:g})" for i, s in enumerate(usable)
        )

        def parse(text: str) -> Choice:
            choice = pydantic_parser(Choice, "choice")(text)
            if choice.choice >= len(usable):
                raise InvalidInput("choice", f"must be between 0 and {len(usable) - 1}")
            return choice

        picked = await ask(
            self.model,
            self._conversation(
                trace,
                at,
                f"Which next step is most promising?\n{options}\n"
                'Answer {"choice": <index>, "reason": "..."}.',
            ),
            parse,
            what="choice",
            schema=Choice.model_json_schema(),
            repairs=self.repairs,
        )
        return usable[picked.choice], picked.reason

    async def correct(self, trace: ThoughtTrace, step_id: int, reason: str) -> ThoughtStep:
        """Mark `step_id` wrong (what grew from it superseded) and follow a corrected step.

        The correction branches from the wrong step, so the tree shows what it corrects; a
        correction that repeats a hypothesis on its line is a loop, and ReasoningLimit.
        """
        wrong = trace.step(step_id)
        if step_id == 0:
            raise InvalidInput("step", "the goal itself cannot be marked wrong")
        wrong.status = StepStatus.WRONG
        wrong.note = reason
        for step in trace.descendants(step_id):
            if step.status not in (StepStatus.LOOP, StepStatus.WRONG):
                step.status = StepStatus.SUPERSEDED
        trace.corrections += 1
        branch = await ask(
            self.model,
            self._conversation(
                trace,
                step_id,
                f"Step {step_id} is wrong: {reason}. Give one corrected step instead, as "
                '{"hypothesis", "evidence", "conclusion", "confidence", "final"}.',
            ),
            pydantic_parser(Branch, "correction"),
            what="correction",
            schema=Branch.model_json_schema(),
            repairs=self.repairs,
        )
        step = self._add(trace, step_id, branch, StepKind.CORRECTION, note=f"corrects {step_id}")
        await self._emit(
            EventKind.THOUGHT_CORRECTED,
            trace,
            wrong=step_id,
            reason=reason,
            correction=step.id,
            loop=step.status is StepStatus.LOOP,
        )
        if step.status is StepStatus.LOOP:
            raise ReasoningLimit(f"the correction of step {step_id} repeats an earlier step")
        step.status = StepStatus.CHOSEN
        trace.current = step.id
        return step

    async def _verified(self, trace: ThoughtTrace, step: ThoughtStep) -> Verdict:
        return await ask(
            self.model,
            self._conversation(
                trace,
                step.id,
                f"Check the answer: {step.conclusion}. Is it correct and does it meet the goal "
                'and constraints? Answer {"correct": true|false, "reason": "..."}.',
            ),
            pydantic_parser(Verdict, "verdict"),
            what="verdict",
            schema=Verdict.model_json_schema(),
            repairs=self.repairs,
        )

    def _backtrack(self, trace: ThoughtTrace) -> bool:
        """Follow the most confident candidate left anywhere in the tree; False if none."""
        left = [s for s in trace.steps if s.status is StepStatus.CANDIDATE]
        if not left:
            return False
        best = max(left, key=lambda s: (s.confidence, -s.depth))
        best.status = StepStatus.CHOSEN
        best.note = best.note or "backtracked to"
        trace.current = best.id
        return True

    async def solve(
        self, goal: str, *, context: Sequence[str] = (), constraints: Sequence[str] = ()
    ) -> ThoughtTrace:
        """Reason toward `goal` within the limits; the trace's outcome says how it ended."""
        trace = await self.start(goal, context=context, constraints=constraints)
        return await self.resume(trace)

    async def resume(self, trace: ThoughtTrace) -> ThoughtTrace:
        """Go on reasoning in `trace` from its current step until an outcome."""
        limits = self.limits
        while trace.outcome is Outcome.IN_PROGRESS:
            step = trace.step(trace.current)
            if step.final and step.status is StepStatus.CHOSEN:
                verdict = Verdict(correct=True)
                if limits.verify:
                    verdict = await self._verified(trace, step)
                if verdict.correct:
                    trace.outcome = Outcome.ANSWERED
                    trace.answer = step.conclusion or step.hypothesis
                    trace.answer_step = step.id
                    break
                if trace.corrections >= limits.max_corrections:
                    step.status = StepStatus.WRONG
                    step.note = verdict.reason
                    trace.outcome = Outcome.OUT_OF_BUDGET
                    break
                try:
                    await self.correct(trace, step.id, verdict.reason or "the check failed")
                except ReasoningLimit:
                    if not self._backtrack(trace):
                        trace.outcome = Outcome.EXHAUSTED
                continue
            if trace.expansions >= limits.max_expansions:
                trace.outcome = Outcome.OUT_OF_BUDGET
                break
            try:
                await self.expand(trace)
            except ReasoningLimit:
                if not self._backtrack(trace):
                    trace.outcome = Outcome.EXHAUSTED
        await self._emit(
            EventKind.THOUGHT_FINISHED,
            trace,
            outcome=trace.outcome.value,
            answer=trace.answer,
            steps=len(trace.steps),
            expansions=trace.expansions,
            corrections=trace.corrections,
            record=trace.model_dump(mode="json"),  # the whole tree, for debuggers and exports
        )
        return trace
