"""Profiles built from a run's events on a clock the test moves: sums, critical path, formats."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from hive.runtime.events import Event, EventKind, current_task
from hive.runtime.profiling import Profiler, flamegraph_svg, speedscope, union_ms

SCHEMA = json.loads(
    (Path(__file__).parent.parent / "data" / "speedscope-file-format-schema.json").read_text()
)


class Run:
    """Publishes events into a profiler at times the test chooses (milliseconds)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.profiler = Profiler(clock=lambda: self.now / 1000)

    def at(self, ms: float, kind: EventKind, agent: str, within: str | None, **data: Any) -> None:
        self.now = ms
        token = current_task.set(within)
        try:
            self.profiler(Event(kind, agent, data))
        finally:
            current_task.reset(token)

    def start(self, ms: float, agent: str, task: str, parent: str | None, **data: Any) -> None:
        self.at(
            ms,
            EventKind.TASK_STARTED,
            agent,
            task,
            task=f"work of {agent}",
            task_id=task,
            parent_task=parent,
            **data,
        )

    def finish(self, ms: float, agent: str, task: str) -> None:
        self.at(ms, EventKind.TASK_FINISHED, agent, task, ok=True, task_id=task)


def sequential() -> Run:
    """lead plans (10 ms), the researcher works (model 30, tool 20, model 10), lead reviews."""
    run = Run()
    run.start(1, "lead", "L", None, queued_ms=0.5)
    run.at(11, EventKind.MODEL_CALLED, "lead", "L", purpose="DelegationPlan", duration_ms=10)
    run.start(12, "researcher", "R", "L", queued_ms=2)
    run.at(12, EventKind.STARTED, "researcher", "R")
    run.at(42, EventKind.MODEL_CALLED, "researcher", "R", step=1, tokens=100, duration_ms=30)
    run.at(62, EventKind.TOOL_CALLED, "researcher", "R", tool="search", duration_ms=20)
    run.at(72, EventKind.MODEL_CALLED, "researcher", "R", step=2, tokens=160, duration_ms=10)
    run.finish(73, "researcher", "R")
    run.at(83, EventKind.MODEL_CALLED, "lead", "L", purpose="Review", duration_ms=10)
    run.finish(85, "lead", "L")
    run.now = 86
    return run


def test_sequential_agents_add_up_to_the_wall_time() -> None:
    profile = sequential().profiler.build(usage={"lead": (40, 0.04), "researcher": (160, 0.16)})
    assert profile["wall_ms"] == 86
    agents = {a["agent"]: a for a in profile["agents"]}
    lead, researcher = agents["lead"], agents["researcher"]
    # the lead's own time is its task less the researcher's task
    assert lead["busy_ms"] == pytest.approx(84 - 61)
    assert (lead["model_ms"], lead["tool_ms"]) == (20, 0)
    assert lead["other_ms"] == pytest.approx(3)
    assert researcher["busy_ms"] == pytest.approx(61)
    assert (researcher["model_ms"], researcher["tool_ms"]) == (40, 20)
    assert (lead["queued_ms"], researcher["queued_ms"]) == (0.5, 2)
    assert (researcher["tokens"], researcher["cost"]) == (160, 0.16)
    assert profile["team_ms"] == pytest.approx(2)  # before the first task and after the last
    busy = sum(a["busy_ms"] for a in profile["agents"])
    assert busy + profile["team_ms"] == pytest.approx(profile["wall_ms"])
    assert busy / profile["wall_ms"] >= 0.95
    assert profile["parallelism"] == pytest.approx(84 / 86, abs=1e-3)


def test_steps_hold_their_tool_calls_tokens_and_share_of_cost() -> None:
    profile = sequential().profiler.build(usage={"lead": (40, 0.04), "researcher": (160, 0.16)})
    steps = [
        (s["agent"], s["step"], s["model_ms"], s["tool_ms"], s["tokens"]) for s in profile["steps"]
    ]
    assert steps == [
        ("lead", "DelegationPlan", 10, 0, 0),
        ("researcher", "step 1", 30, 20, 100),
        ("researcher", "step 2", 10, 0, 60),
        ("lead", "Review", 10, 0, 0),
    ]
    first = profile["steps"][1]
    assert first["tools"] == ["search"]
    assert first["cost"] == pytest.approx(0.1)


def test_the_critical_path_covers_the_wall_time_in_order() -> None:
    profile = sequential().profiler.build()
    path = profile["critical_path"]
    assert sum(s["ms"] for s in path) == pytest.approx(86)
    assert [s["start_ms"] for s in path] == sorted(s["start_ms"] for s in path)
    leaves = [s["stack"][-1] for s in path]
    assert leaves[0] == "run"
    assert "researcher: tool search" in leaves
    assert "researcher: model (step 1)" in leaves
    assert leaves[-1] == "run"


def parallel() -> Run:
    """Two subordinates at once: a for 40 ms, b for 60 ms; the run waits on b."""
    run = Run()
    run.start(0, "lead", "L", None)
    run.start(10, "a", "A", "L")
    run.start(10, "b", "B", "L")
    run.at(50, EventKind.MODEL_CALLED, "a", "A", step=1, tokens=10, duration_ms=40)
    run.finish(50, "a", "A")
    run.at(70, EventKind.MODEL_CALLED, "b", "B", step=1, tokens=10, duration_ms=60)
    run.finish(70, "b", "B")
    run.finish(80, "lead", "L")
    run.now = 80
    return run


def test_parallel_work_counts_each_agents_own_time_and_the_path_follows_the_slowest() -> None:
    profile = parallel().profiler.build()
    agents = {a["agent"]: a["busy_ms"] for a in profile["agents"]}
    assert agents == {"lead": pytest.approx(20), "a": pytest.approx(40), "b": pytest.approx(60)}
    assert profile["parallelism"] == pytest.approx(120 / 80)
    on_path = {s["stack"][-1] for s in profile["critical_path"]}
    assert "b: model (step 1)" in on_path
    assert not any(s.startswith("a:") for s in on_path)
    assert sum(s["ms"] for s in profile["critical_path"]) == pytest.approx(80)


def test_a_task_that_never_finished_lasts_until_the_end() -> None:
    run = Run()
    run.start(5, "lead", "L", None)
    run.now = 30
    profile = run.profiler.build()
    assert profile["tasks"][0]["end_ms"] == 30
    assert profile["agents"][0]["busy_ms"] == pytest.approx(25)


def test_union_of_intervals() -> None:
    assert union_ms([(0, 10), (5, 15), (20, 25)]) == 20
    assert union_ms([]) == 0


@pytest.mark.parametrize("make", [sequential, parallel])
def test_speedscope_json_follows_the_file_format(make: Any) -> None:
    profile = make().profiler.build()
    document = json.loads(json.dumps(speedscope(profile, "bees")))
    jsonschema.validate(document, SCHEMA)
    sampled, evented = document["profiles"]
    assert sampled["type"] == "sampled"
    assert len(sampled["samples"]) == len(sampled["weights"])
    assert sum(sampled["weights"]) == pytest.approx(profile["busy_ms"] + profile["team_ms"])
    # evented frames open and close like a stack, at times that never go back
    opened: list[int] = []
    last = 0.0
    for event in evented["events"]:
        assert event["at"] >= last
        last = event["at"]
        if event["type"] == "O":
            opened.append(event["frame"])
        else:
            assert opened.pop() == event["frame"]
    assert not opened
    assert last == pytest.approx(profile["wall_ms"])


def test_the_flame_graph_is_an_svg_with_a_box_per_stack_frame() -> None:
    profile = sequential().profiler.build()
    svg = ET.fromstring(flamegraph_svg(profile, title="bees"))  # noqa: S314 - our own output
    assert svg.tag == "{http://www.w3.org/2000/svg}svg"
    titles = [t.text or "" for t in svg.iter("{http://www.w3.org/2000/svg}title")]
    assert any(t.startswith("researcher: tool search (20.0 ms)") for t in titles)
    assert any(t.startswith("run (86.0 ms)") for t in titles)
