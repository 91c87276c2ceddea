"""Chain-of-thought traces: expansion and selection by a (fake) model, self-correction, loop
detection, bounds, events, JSON round trips, the rich rendering and `hive trace show`."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from hive.cli.trace import trace as trace_cli
from hive.errors import InvalidInput
from hive.runtime.events import EventBus, EventKind
from hive.runtime.models import Message, Reply
from hive.runtime.reasoning.render import render_trace
from hive.runtime.reasoning.thought import (
    Outcome,
    StepKind,
    StepStatus,
    ThoughtEngine,
    ThoughtLimits,
    ThoughtTrace,
    same_thought,
)

CORRECTED = EventKind.THOUGHT_CORRECTED
LOOP = EventKind.THOUGHT_LOOP
GOAL = "Which pod is crash-looping, and why?"


class QueueModel:
    """A ChatModel answering from a queue, recording every question (last message)."""

    model = "fake"

    def __init__(self, *answers: Any) -> None:
        self.answers = [a if isinstance(a, str) else json.dumps(a) for a in answers]
        self.asked: list[str] = []

    async def complete(
        self,
        messages: Sequence[Message],
        tools: Sequence[dict[str, Any]] | None = None,
        **extra: Any,
    ) -> Reply:
        assert extra == {"response_format": {"type": "json_object"}}
        self.asked.append(messages[-1]["content"])
        if not self.answers:
            raise AssertionError(f"unexpected question: {messages[-1]['content'][:200]}")
        return Reply(content=self.answers.pop(0), tool_calls=[], finish_reason="stop")


def branch(hypothesis: str, confidence: float = 0.5, **more: Any) -> dict[str, Any]:
    return {"hypothesis": hypothesis, "confidence": confidence, **more}


def branches(*items: dict[str, Any]) -> dict[str, Any]:
    return {"branches": list(items)}


LOGS = branch("Read the logs of pods in CrashLoopBackOff", 0.7, evidence=["api-7f restarts 12x"])
EVENTS = branch("Look at the namespace events first", 0.4)
ANSWER = branch(
    "The OOMKilled reason in api-7f's last state",
    0.9,
    evidence=["lastState.terminated.reason: OOMKilled"],
    conclusion="api-7f is OOMKilled: its 128Mi limit is too low",
    final=True,
)


async def test_solve_expands_selects_verifies_and_publishes() -> None:
    model = QueueModel(
        branches(LOGS, EVENTS),
        {"choice": 0, "reason": "logs say most"},
        branches(ANSWER),
        {"correct": True, "reason": "matches the evidence"},
    )
    bus = EventBus()
    trace = await ThoughtEngine(model, bus=bus, agent="sre").solve(
        GOAL, context=["namespace shop"], constraints=["read-only"]
    )
    assert trace.outcome is Outcome.ANSWERED
    assert trace.answer == "api-7f is OOMKilled: its 128Mi limit is too low"
    assert [(s.id, s.parent, s.depth, s.status) for s in trace.steps] == [
        (0, None, 0, StepStatus.ROOT),
        (1, 0, 1, StepStatus.CHOSEN),
        (2, 0, 1, StepStatus.CANDIDATE),
        (3, 1, 2, StepStatus.CHOSEN),
    ]
    assert trace.steps[0].evidence == ["namespace shop"]
    assert trace.steps[1].note == "logs say most"
    assert trace.answer_step == 3
    assert trace.expansions == 2
    # the model saw the goal, the constraints, and the line so far
    assert "Constraints: read-only" in model.asked[0]
    assert "step 1: Read the logs" in model.asked[2]
    assert "evidence: api-7f restarts 12x" in model.asked[2]
    assert "0: Read the logs of pods in CrashLoopBackOff (confidence 0.7)" in model.asked[1]
    kinds = [str(e.kind) for e in bus.history]
    assert kinds == ["thought-started", "thought-expanded", "thought-expanded", "thought-finished"]
    assert all(e.agent == "sre" and e.data["trace"] == trace.id for e in bus.history)
    assert bus.history[1].data["candidates"] == [1, 2]
    assert bus.history[-1].data["outcome"] == "answered"
    assert ThoughtTrace.model_validate(bus.history[-1].data["record"]) == trace


async def test_a_failed_check_is_corrected_by_branching_from_the_wrong_step() -> None:
    wrong = branch("The image tag is wrong", 0.8, conclusion="bad image", final=True)
    model = QueueModel(
        branches(wrong),
        {"correct": False, "reason": "the image pulled fine"},
        ANSWER,  # the correction
        {"correct": True},
    )
    bus = EventBus()
    trace = await ThoughtEngine(model, bus=bus).solve(GOAL)
    assert trace.outcome is Outcome.ANSWERED
    first, correction = trace.steps[1], trace.steps[2]
    assert first.status is StepStatus.WRONG
    assert first.note == "the image pulled fine"
    assert correction.parent == first.id
    assert correction.kind is StepKind.CORRECTION
    assert correction.status is StepStatus.CHOSEN
    assert trace.answer_step == correction.id
    assert trace.corrections == 1
    assert "Step 1 is wrong: the image pulled fine" in model.asked[2]
    corrected = [e for e in bus.history if e.kind == CORRECTED]
    assert corrected[0].data == {
        "trace": trace.id,
        "wrong": 1,
        "reason": "the image pulled fine",
        "correction": 2,
        "loop": False,
    }


async def test_correcting_marks_what_grew_from_the_step_superseded() -> None:
    model = QueueModel(
        branches(LOGS),
        branches(branch("api-7f logs show a panic", 0.6), branch("db logs are quiet", 0.2)),
        branch("Check the events instead", 0.5),
    )
    engine = ThoughtEngine(model, limits=ThoughtLimits(select_with_model=False))
    trace = await engine.start(GOAL)
    await engine.expand(trace)
    await engine.expand(trace)
    correction = await engine.correct(trace, 1, "those logs rotated")
    assert [s.status for s in trace.steps] == [
        StepStatus.ROOT,
        StepStatus.WRONG,
        StepStatus.SUPERSEDED,
        StepStatus.SUPERSEDED,
        StepStatus.CHOSEN,
    ]
    assert trace.current == correction.id == 4
    with pytest.raises(InvalidInput, match="step 2 is superseded"):
        await engine.expand(trace, 2)
    with pytest.raises(InvalidInput, match="the goal itself cannot be marked wrong"):
        await engine.correct(trace, 0, "no")


async def test_steps_repeating_an_ancestor_are_loops_and_never_followed() -> None:
    model = QueueModel(
        branches(LOGS),
        # the first repeats step 1 (case and punctuation aside), the second the goal
        branches(
            branch("read the logs of pods in crashloopbackoff!", 0.99),
            branch("which pod is crash looping and why", 0.9),
            branch("Compare memory use with the limit", 0.3),
        ),
    )
    bus = EventBus()
    engine = ThoughtEngine(model, bus=bus, limits=ThoughtLimits(select_with_model=True))
    trace = await engine.start(GOAL)
    await engine.expand(trace)
    chosen = await engine.expand(trace)  # one usable candidate: no choice question
    assert chosen.hypothesis == "Compare memory use with the limit"
    assert [s.status for s in trace.steps[2:]] == [
        StepStatus.LOOP,
        StepStatus.LOOP,
        StepStatus.CHOSEN,
    ]
    loops = [e.data["step"] for e in bus.history if e.kind == LOOP]
    assert loops == [2, 3]
    assert len(model.asked) == 2


async def test_when_every_step_loops_the_engine_backtracks() -> None:
    model = QueueModel(
        branches(LOGS, EVENTS),
        {"choice": 0},
        branches(branch(LOGS["hypothesis"], 0.9)),  # only a loop: step 1 is a dead end
        branches(ANSWER),  # from the events candidate
        {"correct": True},
    )
    trace = await ThoughtEngine(model).solve(GOAL)
    assert trace.outcome is Outcome.ANSWERED
    assert trace.steps[1].status is StepStatus.DEAD_END
    assert trace.steps[3].status is StepStatus.LOOP
    assert trace.steps[2].status is StepStatus.CHOSEN  # backtracked to
    assert trace.steps[4].parent == 2
    assert trace.answer_step == 4


async def test_depth_and_expansion_limits_always_end_the_run() -> None:
    counter = iter(range(1000))

    class Endless:
        model = "endless"
        calls = 0

        async def complete(self, messages: Sequence[Message], *a: Any, **k: Any) -> Reply:
            self.calls += 1
            new = [branch(f"idea {next(counter)}", 0.5) for _ in range(3)]
            return Reply(content=json.dumps(branches(*new)), tool_calls=[], finish_reason="stop")

    model = Endless()
    limits = ThoughtLimits(max_branches=2, max_depth=2, max_expansions=50, verify=False)
    limits = ThoughtLimits(**{**limits.__dict__, "select_with_model": False})
    trace = await ThoughtEngine(model, limits=limits).solve(GOAL)
    # depth 2 with 2 candidates each: 1 expansion of the goal + 2 of depth-1 steps, then only
    # depth-2 steps are left, which may not grow: the tree is exhausted
    assert trace.outcome is Outcome.EXHAUSTED
    assert trace.expansions == 3 == model.calls
    assert max(s.depth for s in trace.steps) == 2
    assert all(len(trace.children(s.id)) <= 2 for s in trace.steps)

    model = Endless()
    tight = ThoughtLimits(max_depth=8, max_expansions=4, select_with_model=False)
    trace = await ThoughtEngine(model, limits=tight).solve(GOAL)
    assert trace.outcome is Outcome.OUT_OF_BUDGET
    assert trace.expansions == 4 == model.calls
    assert len(trace.steps) == 1 + 4 * 3


async def test_corrections_are_bounded() -> None:
    def final(n: int) -> dict[str, Any]:
        return branch(f"guess {n}", 0.5, conclusion=f"answer {n}", final=True)

    model = QueueModel(
        branches(final(0)),
        {"correct": False, "reason": "no"},
        final(1),
        {"correct": False, "reason": "still no"},
        final(2),
        {"correct": False, "reason": "no again"},
    )
    trace = await ThoughtEngine(model, limits=ThoughtLimits(max_corrections=2)).solve(GOAL)
    assert trace.outcome is Outcome.OUT_OF_BUDGET
    assert trace.corrections == 2
    assert trace.answer is None
    assert [s.status for s in trace.steps[1:]] == [StepStatus.WRONG] * 3


async def test_a_choice_out_of_range_is_repaired() -> None:
    model = QueueModel(
        branches(LOGS, EVENTS),
        {"choice": 5},
        {"choice": 1, "reason": "cheaper"},
    )
    engine = ThoughtEngine(model)
    trace = await engine.start(GOAL)
    chosen = await engine.expand(trace)
    assert chosen.hypothesis == EVENTS["hypothesis"]
    assert model.asked[2].startswith("That was not usable: choice: must be between 0 and 1")


def test_limits_and_goal_are_checked() -> None:
    with pytest.raises(InvalidInput, match=r"limits\.max_depth: must be at least 1, not 0"):
        ThoughtLimits(max_depth=0)
    with pytest.raises(InvalidInput, match=r"limits\.max_corrections"):
        ThoughtLimits(max_corrections=-1)


async def test_an_empty_goal_is_refused() -> None:
    with pytest.raises(InvalidInput, match="goal: must not be empty"):
        await ThoughtEngine(QueueModel()).start(" ")


def test_same_thought_ignores_case_spacing_and_punctuation() -> None:
    assert same_thought("Read the  logs!", "read the logs")
    assert not same_thought("read the logs", "read the events")


# --- property: whatever the model says, the run ends and the tree stays sound -------------------


class RandomModel:
    """Answers every question validly but at random, from a small vocabulary (so loops happen)."""

    model = "random"

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)  # noqa: S311 - test data
        self.calls = 0

    async def complete(self, messages: Sequence[Message], *a: Any, **k: Any) -> Reply:
        self.calls += 1
        question = messages[-1]["content"]
        rng = self.rng

        def one() -> dict[str, Any]:
            final = rng.random() < 0.2
            return branch(
                f"idea {rng.randrange(6)}",
                round(rng.random(), 2),
                conclusion="done" if final else None,
                final=final,
            )

        if "Which next step" in question:
            answer: Any = {"choice": 0}
        elif "Check the answer" in question:
            answer = {"correct": rng.random() < 0.5, "reason": "random"}
        elif "is wrong" in question:
            answer = one()
        else:
            answer = branches(*(one() for _ in range(rng.randrange(1, 5))))
        return Reply(content=json.dumps(answer), tool_calls=[], finish_reason="stop")


@settings(max_examples=60, deadline=None)
@given(
    st.integers(0, 10_000),
    st.integers(1, 3),
    st.integers(1, 4),
    st.integers(1, 10),
    st.integers(0, 3),
)
async def test_any_model_gives_a_bounded_sound_trace(
    seed: int, branching: int, depth: int, expansions: int, corrections: int
) -> None:
    limits = ThoughtLimits(
        max_branches=branching,
        max_depth=depth,
        max_expansions=expansions,
        max_corrections=corrections,
    )
    model = RandomModel(seed)
    trace = await ThoughtEngine(model, limits=limits).solve(GOAL)
    assert trace.outcome is not Outcome.IN_PROGRESS
    assert trace.expansions <= expansions
    assert trace.corrections <= corrections
    # every expansion asks at most twice (branches, choice); each correction twice (check, fix)
    assert model.calls <= 2 * expansions + 2 * corrections + 1
    for step in trace.steps[1:]:
        assert step.depth <= depth + corrections  # corrections branch below the step they fix
        assert len([c for c in trace.children(step.id) if c.kind is StepKind.STEP]) <= branching
        if step.status in (StepStatus.CHOSEN, StepStatus.CANDIDATE):
            ancestors = trace.path(step.id)[:-1]
            assert not any(same_thought(step.hypothesis, a.hypothesis) for a in ancestors)
    if trace.outcome is Outcome.ANSWERED:
        assert trace.answer_step is not None
        assert trace.steps[trace.answer_step].final
    assert ThoughtTrace.from_json(trace.to_json()) == trace


# --- files, rendering, the CLI ------------------------------------------------------------------


async def solved_trace() -> ThoughtTrace:
    wrong = branch("The image tag is wrong", 0.8, conclusion="bad image", final=True)
    model = QueueModel(
        branches(wrong, EVENTS, branch(GOAL, 0.3)),  # the last one loops back to the goal
        {"choice": 0},
        {"correct": False, "reason": "the image pulled fine"},
        ANSWER,
        {"correct": True},
    )
    return await ThoughtEngine(model).solve(GOAL, context=["namespace shop"])


async def test_traces_round_trip_through_json_files(tmp_path: Path) -> None:
    trace = await solved_trace()
    path = tmp_path / "trace.json"
    trace.save(path)
    loaded = ThoughtTrace.load(path)
    assert loaded == trace
    assert json.loads(path.read_text())["steps"][1]["status"] == "wrong"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(version=9), "version: Value error, format version 9 is not 1"),
        (lambda d: d["steps"][2].update(parent=4), "steps[2].parent must be an earlier step"),
        (lambda d: d["steps"][1].update(depth=3), "steps[1].depth must be its parent's depth + 1"),
        (lambda d: d["steps"][1].update(confidence=2), "steps[1].confidence"),
        (lambda d: d.update(steps=[]), "a trace has at least its goal step"),
        (lambda d: d.update(current=99), "current 99 is not a step"),
    ],
)
async def test_broken_trace_files_are_refused_naming_the_place(mutate: Any, message: str) -> None:
    data = json.loads((await solved_trace()).to_json())
    mutate(data)
    with pytest.raises(InvalidInput) as caught:
        ThoughtTrace.from_json(json.dumps(data), "t.json")
    assert str(caught.value).startswith("t.json")
    assert message in str(caught.value)


async def test_the_tree_shows_the_followed_line_and_the_rest() -> None:
    console = Console(record=True, width=200, color_system=None)
    console.print(render_trace(await solved_trace()))
    text = console.export_text()
    lines = text.splitlines()
    assert lines[0] == f"goal: {GOAL}  [answered]"
    assert "#1 The image tag is wrong  (wrong, confidence 0.80)  — the image pulled fine" in text
    assert "#2 Look at the namespace events first  (candidate, confidence 0.40)" in text
    assert "#3 Which pod is crash-looping, and why?  (loop, confidence 0.30)" in text
    assert "✔ #4 correction: The OOMKilled reason in api-7f's last state" in text
    assert "• lastState.terminated.reason: OOMKilled" in text
    assert "answer: api-7f is OOMKilled: its 128Mi limit is too low" in text
    # the correction hangs below the step it corrects
    at = {n: i for i, line in enumerate(lines) for n in ("#1 ", "#4 ") if n in line}
    indent = {n: len(lines[i]) - len(lines[i].lstrip("│ ├└─")) for n, i in at.items()}
    assert indent["#4 "] > indent["#1 "]


async def test_hive_trace_show(tmp_path: Path) -> None:
    path = tmp_path / "trace.json"
    (await solved_trace()).save(path)
    result = CliRunner().invoke(trace_cli, ["show", str(path), "--width", "160"])
    assert result.exit_code == 0, result.output
    assert f"goal: {GOAL}" in result.output
    assert "answer: api-7f is OOMKilled" in result.output
    assert "5 steps, 1 expansions, 1 corrections, outcome answered" in result.output
    quiet = CliRunner().invoke(trace_cli, ["show", str(path), "--no-evidence", "--width", "160"])
    assert "lastState.terminated.reason" not in quiet.output


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        ("{not json", "not JSON (Expecting property name enclosed in double quotes at line 1)"),
        ('{"goal": "g", "steps": []}', "a trace has at least its goal step"),
    ],
)
def test_hive_trace_show_errors_are_one_line(
    tmp_path: Path, content: str | None, message: str
) -> None:
    path = tmp_path / "trace.json"
    if content is not None:
        path.write_text(content)
    result = CliRunner().invoke(trace_cli, ["show", str(path)])
    assert result.exit_code == 1
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"hive: error: {path}")
    assert message in line


def test_hive_trace_show_refuses_a_folder(tmp_path: Path) -> None:
    result = CliRunner().invoke(trace_cli, ["show", str(tmp_path)])
    assert result.exit_code == 1
    assert result.stderr.strip() == f"hive: error: {tmp_path}: is a folder, not a trace file"
