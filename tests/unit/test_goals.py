"""Goal decomposition: the dependency graph (levels, critical path, cycles), plans from model
output, the parallel runner, and the model-driven decomposer against a fake ChatModel."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hive.errors import InvalidInput
from hive.runtime.events import EventBus, EventKind
from hive.runtime.models import InvalidModelOutput, Message, Reply
from hive.runtime.reasoning.decompose import decompose
from hive.runtime.reasoning.goals import (
    GoalGraph,
    Phase,
    PlanCycle,
    PlanFailed,
    PlanProgress,
    Subgoal,
    parse_plan,
    run_plan,
)

RESEARCH = [
    Subgoal("collect", "gather sources", outputs=("sources",), effort=3),
    Subgoal("summarise", inputs=("sources",), outputs=("summary",), effort=2),
    Subgoal("figures", inputs=("sources",), outputs=("charts",), effort=5),
    Subgoal("outline", inputs=("brief",), outputs=("outline",), effort=1),
    Subgoal("write", inputs=("summary", "charts", "outline"), outputs=("report",), effort=4),
    Subgoal("review", requires=("write",), effort=1),
]


def research() -> GoalGraph:
    return GoalGraph.build(RESEARCH, given=["brief"])


# --- the graph on a known plan ------------------------------------------------------------------


def test_edges_come_from_requires_and_data_flow() -> None:
    graph = research()
    assert graph.dependencies("collect") == []
    assert graph.dependencies("summarise") == ["collect"]
    assert graph.dependencies("write") == ["summarise", "figures", "outline"]
    assert graph.dependencies("review") == ["write"]
    assert graph.dependents("collect") == ["summarise", "figures"]
    assert graph.descendants("figures") == {"write", "review"}


def test_levels_critical_path_and_times() -> None:
    graph = research()
    assert graph.levels() == [
        ["collect", "outline"],
        ["summarise", "figures"],
        ["write"],
        ["review"],
    ]
    assert graph.critical_path() == (["collect", "figures", "write", "review"], 13.0)
    assert graph.total_effort == 16.0
    assert graph.estimated_time == 13.0


def test_status_is_camel_case_and_json_able() -> None:
    status = research().to_status({"collect": Phase.DONE, "figures": Phase.RUNNING})
    assert status[0] == {"name": "collect", "phase": "done", "dependsOn": [], "effort": 3.0}
    by_name = {entry["name"]: entry for entry in status}
    assert by_name["figures"]["phase"] == "running"
    assert by_name["write"] == {
        "name": "write",
        "phase": "pending",
        "dependsOn": ["summarise", "figures", "outline"],
        "effort": 4.0,
    }
    assert json.loads(json.dumps(status)) == status


def test_an_empty_plan_is_an_empty_graph() -> None:
    graph = GoalGraph.build([])
    assert (graph.levels(), graph.critical_path(), graph.total_effort) == ([], ([], 0.0), 0.0)


@pytest.mark.parametrize(
    ("subgoals", "field", "problem"),
    [
        (
            [Subgoal("a", inputs=("data",))],
            "subgoal 'a'.inputs",
            "nothing produces 'data' and it is not given",
        ),
        (
            [Subgoal("a", requires=("ghost",))],
            "subgoal 'a'.requires",
            "no subgoal is named 'ghost'",
        ),
        ([Subgoal("a"), Subgoal("a")], "subgoal 'a'", "the name is used twice"),
        ([Subgoal("")], "subgoals[0].name", "must not be empty"),
        (
            [Subgoal("a", outputs=("x",)), Subgoal("b", outputs=("x",))],
            "subgoal 'b'.outputs",
            "'x' is also produced by subgoal 'a'",
        ),
        ([Subgoal("a", effort=-1)], "subgoal 'a'.effort", "must be 0 or more, not -1"),
        ([Subgoal("a", effort=float("nan"))], "subgoal 'a'.effort", "must be 0 or more, not nan"),
    ],
)
def test_bad_plans_name_the_subgoal(subgoals: list[Subgoal], field: str, problem: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        GoalGraph.build(subgoals)
    assert (caught.value.field, caught.value.problem) == (field, problem)


def test_a_cycle_names_its_subgoals_in_order() -> None:
    plan = [
        Subgoal("start"),
        Subgoal("a", requires=("start", "c")),
        Subgoal("b", inputs=("from-a",), outputs=("from-b",)),
        Subgoal("c", inputs=("from-b",)),
        Subgoal("a-out", requires=("a",), outputs=("from-a",)),
    ]
    with pytest.raises(PlanCycle) as caught:
        GoalGraph.build(plan)
    assert isinstance(caught.value, InvalidInput)
    assert sorted(caught.value.cycle) == ["a", "a-out", "b", "c"]
    assert "cycle: a -> a-out -> b -> c -> a" in str(caught.value)


def test_a_subgoal_requiring_itself_is_a_cycle() -> None:
    with pytest.raises(PlanCycle, match="a -> a"):
        GoalGraph.build([Subgoal("a", requires=("a",))])


def test_unknown_names_are_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="no subgoal is named 'nope'"):
        research().dependencies("nope")


# --- properties on random graphs ----------------------------------------------------------------


@st.composite
def dags(draw: st.DrawFn) -> tuple[list[Subgoal], set[tuple[str, str]]]:
    """A random DAG (edges go from lower to higher index), shuffled, with edges made both ways:
    explicit requires and data flow."""
    n = draw(st.integers(1, 8))
    names = [f"g{i}" for i in range(n)]
    edges = {
        (names[i], names[j]) for i, j in itertools.combinations(range(n), 2) if draw(st.booleans())
    }
    efforts = [draw(st.integers(0, 9)) for _ in range(n)]
    by_data = {edge: draw(st.booleans()) for edge in sorted(edges)}
    subgoals = [
        Subgoal(
            name,
            inputs=tuple(f"{u}-out" for (u, v) in sorted(edges) if v == name and by_data[(u, v)]),
            outputs=(f"{name}-out",),
            requires=tuple(u for (u, v) in sorted(edges) if v == name and not by_data[(u, v)]),
            effort=float(efforts[i]),
        )
        for i, name in enumerate(names)
    ]
    return draw(st.permutations(subgoals)), edges


def longest_by_brute_force(subgoals: list[Subgoal], edges: set[tuple[str, str]]) -> float:
    effort = {s.name: s.effort for s in subgoals}
    after: dict[str, list[str]] = {s.name: [] for s in subgoals}
    for u, v in edges:
        after[u].append(v)

    def every_path(start: str) -> list[list[str]]:
        tails = [p for nxt in after[start] for p in every_path(nxt)] or [[]]
        return [[start, *tail] for tail in tails]

    return max(sum(effort[n] for n in p) for s in subgoals for p in every_path(s.name))


@settings(max_examples=150, deadline=None)
@given(dags())
def test_critical_path_is_the_longest_path(
    case: tuple[list[Subgoal], set[tuple[str, str]]],
) -> None:
    subgoals, edges = case
    graph = GoalGraph.build(subgoals)
    path, length = graph.critical_path()
    assert length == longest_by_brute_force(subgoals, edges)
    assert all((u, v) in edges for u, v in itertools.pairwise(path))  # a real chain
    assert sum(graph.subgoals[n].effort for n in path) == length
    assert graph.estimated_time == length <= graph.total_effort


@settings(max_examples=150, deadline=None)
@given(dags())
def test_parallel_groups_respect_every_dependency(
    case: tuple[list[Subgoal], set[tuple[str, str]]],
) -> None:
    subgoals, edges = case
    graph = GoalGraph.build(subgoals)
    groups = graph.levels()
    level = {name: k for k, group in enumerate(groups) for name in group}
    assert sorted(level) == sorted(s.name for s in subgoals)  # each exactly once
    assert sum(len(g) for g in groups) == len(subgoals)
    for u, v in edges:
        assert level[u] < level[v]
    for name, k in level.items():  # as early as possible
        assert k == 0 or any(level[p] == k - 1 for p in graph.dependencies(name))
    order = graph.order()
    assert all(order.index(u) < order.index(v) for u, v in edges)


@st.composite
def digraphs(draw: st.DrawFn) -> tuple[list[Subgoal], set[tuple[str, str]]]:
    """Any directed graph on up to 7 subgoals (edge u -> v: u must run before v)."""
    n = draw(st.integers(1, 7))
    names = [f"g{i}" for i in range(n)]
    edges = set(draw(st.lists(st.tuples(st.sampled_from(names), st.sampled_from(names)))))
    subgoals = [
        Subgoal(name, requires=tuple(sorted(u for (u, v) in edges if v == name))) for name in names
    ]
    return subgoals, edges


def has_cycle_by_brute_force(names: list[str], edges: set[tuple[str, str]]) -> bool:
    reach = {(u, v) for u, v in edges}
    for k, i, j in itertools.product(names, repeat=3):  # Floyd-Warshall closure, k outermost
        if (i, k) in reach and (k, j) in reach:
            reach.add((i, j))
    return any((n, n) in reach for n in names)


@settings(max_examples=200, deadline=None)
@given(digraphs())
def test_cycles_are_always_found_and_named(
    case: tuple[list[Subgoal], set[tuple[str, str]]],
) -> None:
    subgoals, edges = case
    cyclic = has_cycle_by_brute_force([s.name for s in subgoals], edges)
    if not cyclic:
        GoalGraph.build(subgoals)
        return
    with pytest.raises(PlanCycle) as caught:
        GoalGraph.build(subgoals)
    cycle = caught.value.cycle
    assert len(set(cycle)) == len(cycle) >= 1
    for u, v in zip(cycle, [*cycle[1:], cycle[0]], strict=True):
        assert (u, v) in edges, f"{u} -> {v} is not an edge of {edges}"
    for name in cycle:
        assert name in str(caught.value)


# --- plans from model output --------------------------------------------------------------------


def test_parse_plan_reads_fenced_json_and_common_spellings() -> None:
    text = (
        "Here is the plan:\n```json\n"
        '{"subgoals": [{"name": "a", "outputs": ["x"], "estimatedEffort": 2},'
        ' {"id": "b", "inputs": ["x"], "dependsOn": ["a"], "description": "use x"}]}\n```\nDone.'
    )
    assert parse_plan(text) == [
        Subgoal("a", outputs=("x",), effort=2.0),
        Subgoal("b", "use x", inputs=("x",), requires=("a",)),
    ]
    assert parse_plan([{"name": "solo"}]) == [Subgoal("solo")]
    assert parse_plan({"subgoals": []}) == []


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ("I think we should first...", "plan: not JSON"),
        ('{"steps": []}', "plan.subgoals: missing"),
        ('{"subgoals": [{"name": "a", "effort": -2}]}', "plan.subgoals[0].effort:"),
        ('{"subgoals": [{"description": "no name"}]}', "plan.subgoals[0].name: Field required"),
        ('"just a string"', "plan: expected an object with 'subgoals', not str"),
    ],
)
def test_parse_plan_errors_name_the_place(answer: str, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_plan(answer)
    assert str(caught.value).startswith(message)


# --- running a plan -----------------------------------------------------------------------------


async def test_run_plan_passes_results_and_runs_independent_work_in_parallel() -> None:
    started: dict[str, asyncio.Event] = {s.name: asyncio.Event() for s in RESEARCH}
    seen_inputs: dict[str, dict[str, Any]] = {}
    finished: list[str] = []

    async def execute(subgoal: Subgoal, inputs: dict[str, Any]) -> str:
        seen_inputs[subgoal.name] = inputs
        started[subgoal.name].set()
        # summarise and figures only finish once both have started: serial execution would
        # wait here for ever, so the timeout below turns that into a failure, not a hang
        partner = {"summarise": "figures", "figures": "summarise"}.get(subgoal.name)
        if partner:
            await started[partner].wait()
        for prerequisite in inputs:
            assert prerequisite in finished
        finished.append(subgoal.name)
        return f"{subgoal.name}-result"

    results = await asyncio.wait_for(run_plan(research(), execute, max_parallel=4), 5)
    assert results == {s.name: f"{s.name}-result" for s in RESEARCH}
    assert seen_inputs["write"] == {
        "summarise": "summarise-result",
        "figures": "figures-result",
        "outline": "outline-result",
    }
    assert seen_inputs["collect"] == {}


async def test_run_plan_never_runs_more_than_max_parallel() -> None:
    running = peak = 0
    release = asyncio.Event()

    async def execute(subgoal: Subgoal, inputs: dict[str, Any]) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        if peak == 2:
            release.set()
        await release.wait()
        await asyncio.sleep(0)
        running -= 1

    graph = GoalGraph.build([Subgoal(f"s{i}") for i in range(6)])
    await asyncio.wait_for(run_plan(graph, execute, max_parallel=2), 5)
    assert peak == 2


async def test_a_failure_skips_its_dependents_and_is_reported() -> None:
    progress: list[PlanProgress] = []

    async def execute(subgoal: Subgoal, inputs: dict[str, Any]) -> str:
        if subgoal.name == "figures":
            raise RuntimeError("the plotting library is missing")
        return subgoal.name

    async def on_progress(snapshot: PlanProgress) -> None:
        progress.append(snapshot)

    bus = EventBus()
    with pytest.raises(PlanFailed) as caught:
        await asyncio.wait_for(
            run_plan(research(), execute, on_progress=on_progress, bus=bus, agent="lead"), 5
        )
    failure = caught.value
    assert failure.errors == {"figures": "the plotting library is missing"}
    assert failure.skipped == ["write", "review"]
    assert failure.results == {"collect": "collect", "summarise": "summarise", "outline": "outline"}
    assert str(failure) == (
        "subgoal 'figures' failed: the plotting library is missing; skipped 2 that depend on it"
    )
    last = progress[-1]
    assert last.finished
    assert dict(last.phases) == {
        "collect": Phase.DONE,
        "outline": Phase.DONE,
        "summarise": Phase.DONE,
        "figures": Phase.FAILED,
        "write": Phase.SKIPPED,
        "review": Phase.SKIPPED,
    }
    assert (last.count(Phase.DONE), last.count(Phase.SKIPPED)) == (3, 2)
    assert {e["name"]: e["phase"] for e in last.to_status()}["write"] == "skipped"
    # every subgoal went pending -> running -> done/failed, or pending -> skipped
    changes = [(p.subgoal, p.phases[p.subgoal]) for p in progress]
    assert ("figures", Phase.RUNNING) in changes
    assert ("write", Phase.RUNNING) not in changes
    published = [
        (e.agent, e.data["subgoal"], e.data["phase"], e.data["error"])
        for e in bus.history
        if e.data["subgoal"] in ("figures", "write")
    ]
    assert published == [
        ("lead", "figures", "running", None),
        ("lead", "figures", "failed", "the plotting library is missing"),
        ("lead", "write", "skipped", None),
    ]
    assert {str(e.kind) for e in bus.history} == {"subgoal-changed"}


async def test_a_failing_progress_callback_does_not_stop_the_plan() -> None:
    calls = 0

    def on_progress(snapshot: PlanProgress) -> None:
        nonlocal calls
        calls += 1
        raise ValueError("reporter is broken")

    async def execute(subgoal: Subgoal, inputs: dict[str, Any]) -> int:
        return len(inputs)

    results = await run_plan(research(), execute, on_progress=on_progress)
    assert results["write"] == 3
    assert calls == 2 * len(RESEARCH)


@settings(max_examples=50, deadline=None)
@given(dags(), st.integers(1, 4), st.randoms(use_true_random=False))
async def test_run_plan_respects_every_dependency(
    case: tuple[list[Subgoal], set[tuple[str, str]]], max_parallel: int, rng: random.Random
) -> None:
    subgoals, edges = case
    graph = GoalGraph.build(subgoals)
    finished: list[str] = []
    running = peak = 0

    async def execute(subgoal: Subgoal, inputs: dict[str, Any]) -> str:
        nonlocal running, peak
        assert set(inputs) == set(graph.dependencies(subgoal.name))
        assert all(p in finished for p in inputs)
        running += 1
        peak = max(peak, running)
        for _ in range(rng.randrange(3)):  # finish in a random order
            await asyncio.sleep(0)
        running -= 1
        finished.append(subgoal.name)
        return subgoal.name

    results = await asyncio.wait_for(run_plan(graph, execute, max_parallel=max_parallel), 5)
    assert results == {s.name: s.name for s in subgoals}
    assert all(finished.index(u) < finished.index(v) for u, v in edges)
    assert peak <= max_parallel


async def test_cancelling_a_run_cancels_the_subgoals_in_flight() -> None:
    started = asyncio.Event()
    cancelled: list[str] = []

    async def execute(subgoal: Subgoal, inputs: dict[str, Any]) -> None:
        started.set()
        try:
            await asyncio.Event().wait()  # never set
        except asyncio.CancelledError:
            cancelled.append(subgoal.name)
            raise

    run = asyncio.create_task(run_plan(research(), execute))
    await started.wait()
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(run, 5)
    assert sorted(cancelled) == ["collect", "outline"]


async def test_max_parallel_must_be_positive() -> None:
    async def execute(subgoal: Subgoal, inputs: dict[str, Any]) -> None:
        return None

    with pytest.raises(InvalidInput, match="max_parallel: must be at least 1, not 0"):
        await run_plan(research(), execute, max_parallel=0)


# --- the model-driven decomposer ----------------------------------------------------------------


class FakeModel:
    """A ChatModel that answers from a list and records what it was asked."""

    model = "fake"

    def __init__(self, answers: list[str]) -> None:
        self.answers = list(answers)
        self.asked: list[list[Message]] = []

    async def complete(
        self,
        messages: Sequence[Message],
        tools: Sequence[dict[str, Any]] | None = None,
        **extra: Any,
    ) -> Reply:
        self.asked.append(list(messages))
        return Reply(content=self.answers.pop(0), tool_calls=[], finish_reason="stop")


def plan_json(*subgoals: dict[str, Any]) -> str:
    return json.dumps({"subgoals": list(subgoals)})


GOOD = plan_json(
    {"name": "fetch", "outputs": ["page"], "effort": 2},
    {"name": "extract", "inputs": ["page"], "outputs": ["facts"], "effort": 3},
    {"name": "answer", "inputs": ["facts", "question"], "effort": 1},
)


async def test_decompose_builds_the_graph_and_publishes_it() -> None:
    model = FakeModel([f"```json\n{GOOD}\n```"])
    bus = EventBus()
    graph = await decompose(model, "answer from the web", given=["question"], bus=bus)
    assert graph.critical_path() == (["fetch", "extract", "answer"], 6.0)
    prompt = model.asked[0][-1]["content"]
    assert "Goal: answer from the web" in prompt
    assert "Data already given: question" in prompt
    (event,) = bus.history
    assert event.kind == EventKind.PLAN_DECOMPOSED
    assert event.data["critical_path"] == ["fetch", "extract", "answer"]
    assert event.data["levels"] == [["fetch"], ["extract"], ["answer"]]


async def test_decompose_repairs_an_unparseable_then_a_cyclic_plan() -> None:
    cyclic = plan_json({"name": "a", "requires": ["b"]}, {"name": "b", "requires": ["a"]})
    model = FakeModel(["Let me think about it.", cyclic, GOOD])
    graph = await decompose(model, "g", given=["question"], repair_rounds=2)
    assert len(graph) == 3
    first_repair = model.asked[1][-1]["content"]
    second_repair = model.asked[2][-1]["content"]
    assert first_repair.startswith("That was not usable: plan: not JSON")
    assert "cycle: " in second_repair
    assert "cycle: a -> b -> a" in second_repair


async def test_decompose_gives_up_with_a_clear_error() -> None:
    too_many = plan_json(*({"name": f"s{i}"} for i in range(5)))
    model = FakeModel([too_many, plan_json({"name": "x", "inputs": ["nowhere"]})])
    with pytest.raises(InvalidModelOutput) as caught:
        await decompose(model, "g", max_subgoals=3, repair_rounds=1)
    assert str(caught.value) == (
        "model 'fake': no usable plan after 2 answers (last problem: subgoal 'x'.inputs: "
        "nothing produces 'nowhere' and it is not given)"
    )
    assert "at most 3 allowed" in model.asked[1][-1]["content"]


async def test_decompose_refuses_bad_arguments() -> None:
    with pytest.raises(InvalidInput, match="goal: must not be empty"):
        await decompose(FakeModel([]), "  ")
    with pytest.raises(InvalidInput, match="max_subgoals"):
        await decompose(FakeModel([]), "g", max_subgoals=0)
    with pytest.raises(InvalidInput, match="repairs: must be 0 or more"):
        await decompose(FakeModel([]), "g", repair_rounds=-1)
