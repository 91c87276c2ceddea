"""Fault selection in the agents: probability, seeded replay, time window, bad fault files."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import math
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hive.api.agentteam import AgentTeamSpec
from hive.api.chaos import Fault
from hive.reconcile.chaos import agents_report, fault_file
from hive.runtime.events import EventBus, EventKind
from hive.runtime.resilience.calls import Call, CallKind
from hive.runtime.resilience.faultfiles import FaultFolder
from hive.runtime.resilience.faults import FaultInjector
from hive.runtime.resilience.faultspec import AimedFault, dependencies_of, parse_fault_file

MODEL_CALL = Call(CallKind.MODEL, "m", "complete", "writer")
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def aimed(probability: float, seed: int | str = 1, **fault: object) -> AimedFault:
    return AimedFault(
        experiment="x",
        index=0,
        fault=Fault.model_validate({"type": "error", "probability": probability, **fault}),
        agents=frozenset({"writer"}),
        start=None,
        until=None,
        seed=seed,
    )


@pytest.mark.parametrize("probability", [0.01, 0.1, 0.3, 0.5, 0.9])
def test_a_fault_fires_with_its_probability_over_10000_calls(probability: float) -> None:
    fault = aimed(probability)
    draws = 10_000
    fired = sum(fault.fires(MODEL_CALL, 0.0) for _ in range(draws))
    bound = 4.5 * math.sqrt(probability * (1 - probability) / draws)  # ~1 in 150,000 to fail
    assert abs(fired / draws - probability) <= bound, (fired, probability)


def test_probability_zero_never_fires_and_one_always_does() -> None:
    never, always = aimed(0.0), aimed(1.0)
    assert not any(never.fires(MODEL_CALL, 0.0) for _ in range(1000))
    assert all(always.fires(MODEL_CALL, 0.0) for _ in range(1000))


@settings(max_examples=50, deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=2**31),
    probability=st.floats(min_value=0.0, max_value=1.0),
    agents=st.lists(st.sampled_from(["writer", "lead"]), min_size=1, max_size=60),
)
def test_a_seeded_run_replays_identically(seed: int, probability: float, agents: list[str]) -> None:
    def run() -> list[bool]:
        fault = aimed(probability, seed)
        fault.agents = frozenset({"writer", "lead"})
        return [fault.fires(Call(CallKind.MODEL, "m", "complete", a), 0.0) for a in agents]

    assert run() == run()


def test_other_seeds_and_other_agents_draw_differently() -> None:
    def draws(seed: int, agent: str) -> list[bool]:
        fault = aimed(0.5, seed)
        fault.agents = frozenset({agent})
        return [fault.fires(Call(CallKind.MODEL, "m", "complete", agent), 0.0) for _ in range(64)]

    assert draws(1, "writer") != draws(2, "writer")
    assert draws(1, "writer") != draws(1, "lead")


def test_nothing_is_injected_outside_the_time_window() -> None:
    fault = aimed(1.0)
    fault.start, fault.until = 100.0, 200.0
    assert not fault.fires(MODEL_CALL, 99.9)
    assert fault.fires(MODEL_CALL, 100.0)
    assert fault.fires(MODEL_CALL, 199.9)
    assert not fault.fires(MODEL_CALL, 200.0)


def test_only_the_experiments_agents_and_the_aimed_kind_and_dependency_are_hit() -> None:
    fault = aimed(1.0, target="tool", dependency="search")
    assert fault.fires(Call(CallKind.TOOL, "search", "call", "writer"), 0.0)
    assert not fault.fires(Call(CallKind.TOOL, "fetch", "call", "writer"), 0.0)
    assert not fault.fires(Call(CallKind.TOOL, "search", "call", "lead"), 0.0)
    assert not fault.fires(Call(CallKind.MODEL, "search", "complete", "writer"), 0.0)


def test_a_partition_cuts_calls_to_and_from_the_targets_only() -> None:
    cut = aimed(1.0)
    cut.fault = Fault.model_validate({"type": "network-partition"})
    assert cut.fires(Call(CallKind.PEER, "lead", "tasks", "writer"), 0.0)  # from a target
    assert cut.fires(Call(CallKind.PEER, "writer", "tasks", "lead"), 0.0)  # to a target
    assert not cut.fires(Call(CallKind.PEER, "critic", "tasks", "lead"), 0.0)


def test_the_operators_file_is_read_as_written() -> None:
    faults = [
        Fault.model_validate({"type": "latency", "latencyMs": 5, "probability": 0.5}),
        Fault.model_validate({"type": "pod-kill"}),  # the operator's, not the agents'
        Fault.model_validate({"type": "network-partition"}),
    ]
    text = fault_file("exp", ["writer"], faults, T0, T0 + dt.timedelta(minutes=1), 7)
    data = json.loads(text)
    assert data["seed"] == 7
    assert data["start"] == T0.isoformat()
    assert [f["type"] for f in data["faults"]] == ["latency", "network-partition"]
    usable, problems = parse_fault_file("exp.json", text)
    assert problems == []
    assert [(f.type.value, f.seed, f.start, f.until) for f in usable] == [
        ("latency", 7, T0.timestamp(), T0.timestamp() + 60),
        ("network-partition", 7, T0.timestamp(), T0.timestamp() + 60),
    ]


TEAM = AgentTeamSpec.model_validate(
    {
        "goal": "g",
        "model": {"provider": "openai-compatible", "name": "gpt", "endpoint": "http://m/v1"},
        "agents": [{"name": "writer", "role": "specialist", "tools": [{"name": "python"}]}],
    }
)


def test_bad_faults_are_problems_naming_the_field_and_the_good_ones_still_load() -> None:
    text = json.dumps(
        {
            "experiment": "exp",
            "agents": ["writer"],
            "faults": [
                {"type": "meteor-strike"},
                {"type": "error", "target": "tool", "dependency": "web-search"},
                {"type": "latency", "latencyMs": 5},
                {"type": "error", "target": "tool", "dependency": "run_python"},
            ],
        }
    )
    usable, problems = parse_fault_file("exp.json", text, dependencies_of(TEAM))
    assert [f.index for f in usable] == [2, 3]
    assert len(problems) == 2
    assert problems[0].message.startswith("exp.json: faults[0]")
    assert "type" in problems[0].message
    assert "faults[1].dependency: the team has no tool 'web-search'" in problems[1].message


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("{not json", "exp.json: not JSON"),
        ("[1, 2]", "exp.json: expected an object"),
        ('{"agents": "writer", "faults": []}', "agents: expected a list"),
        ('{"agents": [], "faults": [], "until": "soon"}', "until: not an ISO 8601 time"),
        ('{"agents": [], "faults": [], "seed": "x"}', "seed: expected an integer"),
    ],
)
def test_a_malformed_file_is_a_problem_not_a_crash(text: str, says: str) -> None:
    usable, problems = parse_fault_file("exp.json", text)
    assert usable == []
    assert [p.experiment for p in problems] == ["exp"]
    assert says in problems[0].message


async def test_the_folder_loads_reports_and_publishes_problems_once(tmp_path: Path) -> None:
    bus = EventBus()
    injector = FaultInjector(bus=bus)
    folder = FaultFolder(tmp_path / "absent", injector, ["writer"])
    assert await folder.refresh()
    assert injector.faults == ()
    assert injector.problems == []
    folder.folder = tmp_path
    (tmp_path / "bad.json").write_text("{oops")
    (tmp_path / "..data").mkdir()  # Kubernetes' machinery is not a fault file
    await folder.refresh()
    await folder.refresh()
    skipped = [e for e in bus.history if e.kind is EventKind.FAULT_SKIPPED]
    assert len(skipped) == 1
    assert skipped[0].data["experiment"] == "bad"
    assert injector.report("writer") == ([], injector.problems)
    assert "bad.json: not JSON" in injector.problems[0].message


async def test_injections_are_counted_published_and_reported_per_agent() -> None:
    bus = EventBus()
    injector = FaultInjector(bus=bus)
    injector.load([aimed(1.0, http_status=503)], [])

    async def transport() -> str:
        return "ok"

    for _ in range(3):
        with pytest.raises(Exception, match="HTTP 503"):
            await injector(MODEL_CALL, transport)
    assert await injector(Call(CallKind.MODEL, "m", "complete", "lead"), transport) == "ok"
    counts, _ = injector.report("writer")
    assert [(c.experiment, c.type, c.count) for c in counts] == [("x", "error", 3)]
    assert counts[0].first_time <= counts[0].last_time
    assert injector.report("lead") == ([], [])
    events = [e for e in bus.history if e.kind is EventKind.FAULT_INJECTED]
    assert [(e.agent, e.data["dependency"]) for e in events] == [("writer", "model:m")] * 3


async def test_memory_pressure_is_held_in_the_window_and_released_after_it() -> None:
    clock = [0.0]
    injector = FaultInjector(clock=lambda: clock[0])
    pressure = aimed(1.0)
    pressure.fault = Fault.model_validate({"type": "resource", "resource": "memory", "memoryMb": 8})
    pressure.until = 10.0
    injector.load([pressure], [])
    await injector.apply_pressure(["writer"])
    assert injector.pressure.memory_mb == 8
    await injector.apply_pressure(["lead"])  # not aimed at this process's agents
    assert injector.pressure.memory_mb == 0
    await injector.apply_pressure(["writer"])
    clock[0] = 10.0
    await injector.apply_pressure(["writer"])
    assert injector.pressure.memory_mb == 0
    assert injector.report("writer")[0][0].count == 2


async def test_cpu_pressure_burns_a_share_of_a_core_until_released() -> None:
    injector = FaultInjector()
    burn = aimed(1.0)
    burn.fault = Fault.model_validate({"type": "resource", "resource": "cpu", "cpuPercent": 80})
    injector.load([burn], [])
    await injector.apply_pressure(["writer"])
    start_cpu, start = time.thread_time(), time.process_time()
    await asyncio.sleep(0.5)
    used = time.process_time() - start - (time.thread_time() - start_cpu)
    injector.pressure.release()
    assert used >= 0.15, used  # 80% of 0.5 s, with room for a busy machine
    assert injector.pressure._burner is None


def test_the_experiment_status_gathers_what_the_agents_report() -> None:
    def entry(agent: str, count: int, problem: str | None = None) -> dict[str, object]:
        return {
            "name": agent,
            "faults": [
                {
                    "experiment": "exp",
                    "type": "latency",
                    "count": count,
                    "firstTime": "2026-01-01T00:00:00Z",
                    "lastTime": f"2026-01-01T00:00:{count:02d}Z",
                },
                {
                    "experiment": "other",
                    "type": "error",
                    "count": 9,
                    "firstTime": "2026-01-01T00:00:00Z",
                    "lastTime": "2026-01-01T00:00:00Z",
                },
            ],
            "faultProblems": [{"experiment": "exp", "message": problem}] if problem else [],
        }

    team = {"status": {"agents": [entry("writer", 5, "exp.json: not JSON"), entry("lead", 2)]}}
    by_agent, problems = agents_report("exp", team, [])
    assert [(a.agent, a.type, a.count) for a in by_agent] == [
        ("lead", "latency", 2),
        ("writer", "latency", 5),
    ]
    assert problems == ["writer: exp.json: not JSON"]
    restarted = {"status": {"agents": [entry("writer", 1)]}}  # a restarted agent counts anew
    again, _ = agents_report("exp", restarted, by_agent)
    assert [(a.agent, a.count) for a in again] == [("lead", 2), ("writer", 5)]
