"""Reasoning and planning against the scripted model server on loopback, through the real
OpenAI-compatible client: decomposition with repair, a chain-of-thought run, a plan executed
with model calls, and MCTS over a model-driven action model."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from hive.runtime.models import OpenAICompatible
from hive.runtime.reasoning.decompose import decompose
from hive.runtime.reasoning.goals import Subgoal, run_plan
from hive.runtime.reasoning.mcts import MCTS, ModelActionModel
from hive.runtime.reasoning.thought import Outcome, StepStatus, ThoughtEngine, ThoughtTrace
from tests.scripted_model import scripted_model

pytestmark = pytest.mark.integration


def client(url: str) -> OpenAICompatible:
    return OpenAICompatible(base_url=url, model="scripted", backoff_s=0.01)


def content(value: Any) -> dict[str, Any]:
    return {"content": value if isinstance(value, str) else json.dumps(value)}


PLAN = {
    "subgoals": [
        {"name": "fetch", "outputs": ["page"], "effort": 2},
        {"name": "extract", "inputs": ["page"], "outputs": ["facts"], "effort": 3},
        {"name": "check", "inputs": ["page"], "outputs": ["verdict"], "effort": 1},
        {"name": "answer", "inputs": ["facts", "verdict", "question"], "effort": 1},
    ]
}


async def test_decompose_repairs_a_cyclic_plan_over_http() -> None:
    cyclic = {"subgoals": [{"name": "a", "requires": ["b"]}, {"name": "b", "requires": ["a"]}]}
    steps = [content(cyclic), content(f"Here you go:\n```json\n{json.dumps(PLAN)}\n```")]
    with scripted_model(steps) as server:
        graph = await decompose(client(server.url), "answer from a page", given=["question"])
        requests = server.requests
    assert graph.levels() == [["fetch"], ["extract", "check"], ["answer"]]
    assert graph.critical_path() == (["fetch", "extract", "answer"], 6.0)
    assert len(requests) == 2
    assert requests[0]["response_format"] == {"type": "json_object"}
    repair = requests[1]["messages"][-1]["content"]
    assert repair.startswith("That was not usable: plan: subgoals depend on each other in a cycle")
    assert requests[1]["messages"][-2] == {"role": "assistant", "content": json.dumps(cyclic)}


async def test_a_plan_runs_its_subgoals_through_the_model() -> None:
    with scripted_model([content(PLAN)] + [content("ok")] * 4) as server:
        model = client(server.url)
        graph = await decompose(model, "answer from a page", given=["question"])

        async def execute(subgoal: Subgoal, inputs: dict[str, Any]) -> str:
            prompt = f"Do {subgoal.name}; you have: {', '.join(sorted(inputs)) or 'nothing'}"
            reply = await model.complete([{"role": "user", "content": prompt}])
            return f"{subgoal.name}:{reply.content}"

        results = await run_plan(graph, execute, max_parallel=2)
        prompts = [r["messages"][-1]["content"] for r in server.requests[1:]]
    assert results == {n: f"{n}:ok" for n in ("fetch", "extract", "check", "answer")}
    assert prompts[0] == "Do fetch; you have: nothing"
    assert prompts[-1] == "Do answer; you have: check, extract"
    assert sorted(prompts[1:3]) == ["Do check; you have: fetch", "Do extract; you have: fetch"]
    assert model.usage.requests == 5


async def test_chain_of_thought_over_http(tmp_path: Any) -> None:
    steps = [
        content(
            {
                "branches": [
                    {"hypothesis": "Read the crash-looping pod's logs", "confidence": 0.7},
                    {"hypothesis": "Check node pressure", "confidence": 0.3},
                ]
            }
        ),
        content('```json\n{"choice": 0, "reason": "most direct"}\n```'),
        content("I am not sure."),  # repaired
        content(
            {
                "branches": [
                    {
                        "hypothesis": "The last state says OOMKilled",
                        "evidence": ["reason: OOMKilled"],
                        "conclusion": "raise the memory limit",
                        "confidence": 0.9,
                        "final": True,
                    }
                ]
            }
        ),
        content({"correct": True, "reason": "fits"}),
    ]
    with scripted_model(steps) as server:
        trace = await ThoughtEngine(client(server.url)).solve("Why does api crash?")
        requests = server.requests
    assert trace.outcome is Outcome.ANSWERED
    assert trace.answer == "raise the memory limit"
    assert [s.status for s in trace.steps] == [
        StepStatus.ROOT,
        StepStatus.CHOSEN,
        StepStatus.CANDIDATE,
        StepStatus.CHOSEN,
    ]
    assert len(requests) == 5
    assert requests[3]["messages"][-1]["content"].startswith("That was not usable: branches")
    path = tmp_path / "trace.json"
    trace.save(path)
    assert ThoughtTrace.load(path) == trace


async def test_mcts_over_a_model_driven_action_model() -> None:
    proposals = content({"actions": ["rollback", "scale up", "restart"]})
    scores = [content({"score": s}) for s in (0.2, 0.9, 0.4)]
    with scripted_model([proposals, *scores]) as server:
        problem = ModelActionModel(client(server.url), "stop the outage", horizon=1)
        result = await MCTS(seed=4, rollout_depth=0).asearch(problem, (), iterations=50)
        requests = server.requests
    assert len(requests) == 4
    scored = {}
    for request, score in zip(requests[1:], (0.2, 0.9, 0.4), strict=True):
        step = re.search(r"^1\. (.+)$", request["messages"][-1]["content"], re.MULTILINE)
        assert step is not None
        scored[step.group(1)] = score
    assert sorted(scored) == ["restart", "rollback", "scale up"]
    best = max(scored, key=scored.__getitem__)
    assert result.best_action == best
    assert result.best_sequence == [best]
    assert result.best_reward == 0.9
    # every one-step plan scored: the root is proven and the search ends, asking no more
    assert (result.stopped_by, result.iterations) == ("solved", 3)
