"""A team split across agent pods: each agent serves its peers over HTTP on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from hive.api.agentteam import AgentStatus, RunOutcome, RunStatus
from hive.errors import InvalidInput
from hive.runtime.models import OpenAICompatible
from hive.runtime.pod import AgentPod, PodConfig
from tests.scripted_model import Script, scripted_model
from tests.support import free_port

pytestmark = pytest.mark.integration

AGENTS = [
    {"name": "lead", "role": "senior", "subordinates": ["researcher", "writer"]},
    {"name": "researcher", "role": "junior", "capabilities": ["research"]},
    {"name": "writer", "role": "junior", "capabilities": ["writing"]},
]
SCRIPT: Script = {
    "lead": [
        {
            "json": {
                "subtasks": [
                    {"description": "Collect facts", "capabilities": ["research"]},
                    {"description": "Write it up", "capabilities": ["writing"]},
                ]
            }
        },
        {"when": "gave researcher", "json": {"score": 0.9}},
        {"when": "gave writer", "json": {"score": 0.9}},
        {"when": "final answer", "content": "Report done."},
    ],
    "researcher": [{"content": "facts"}],
    "writer": [{"content": "prose"}],
}


class MemoryStatus:
    """The team's status as a dict, like the API server would keep it."""

    def __init__(self) -> None:
        self.entries: dict[str, AgentStatus] = {}
        self.runs: list[RunStatus] = []
        self.gen = 1
        self.reported = asyncio.Event()

    async def report(self, status: AgentStatus) -> None:
        self.entries[status.name] = status

    async def report_run(self, run: RunStatus) -> None:
        self.runs.append(run)
        self.reported.set()

    async def until(self, done: Callable[[], bool], timeout_s: float) -> None:
        """Wait, at most `timeout_s`, until a run report makes `done` true."""
        async with asyncio.timeout(timeout_s):
            while not done():
                self.reported.clear()
                await self.reported.wait()

    async def generation(self) -> int:
        return self.gen

    async def last_run(self) -> RunStatus | None:
        return self.runs[-1] if self.runs else None


def write_configs(
    tmp_path: Path,
    endpoint: str,
    ports: dict[str, int],
    agents: list[dict[str, Any]] = AGENTS,
    pattern: str = "hierarchical",
) -> dict[str, Path]:
    paths = {}
    for agent in agents:
        config: dict[str, Any] = {
            "team": "t",
            "namespace": "default",
            "goal": "A report",
            "pattern": pattern,
            "model": {"provider": "openai-compatible", "endpoint": endpoint, "name": "m"},
            "agent": agent,
            "agents": agents,
            "peerUrls": {
                a["name"]: f"http://127.0.0.1:{ports[a['name']]}"
                for a in agents
                if a["name"] != agent["name"]
            },
        }
        path = tmp_path / f"{agent['name']}.yaml"
        path.write_text(yaml.safe_dump(config))
        paths[agent["name"]] = path
    return paths


async def run_pods(
    tmp_path: Path,
    status: MemoryStatus,
    script: Script,
    agents: list[dict[str, Any]] = AGENTS,
    pattern: str = "hierarchical",
) -> dict[str, AgentPod]:
    ports = {a["name"]: free_port() for a in agents}
    with scripted_model(script) as server:
        paths = write_configs(tmp_path, server.url, ports, agents, pattern)
        model = OpenAICompatible(server.url, "m", max_retries=0)
        pods = {
            name: AgentPod(
                PodConfig.load(path, name), model, status, port=ports[name], heartbeat_s=60
            )
            for name, path in paths.items()
        }
        stop = asyncio.Event()
        # juniors start late on purpose: the coordinator waits for its peers
        first = agents[0]["name"]
        lead = asyncio.create_task(pods[first].serve(stop))
        await asyncio.sleep(0)
        others = [asyncio.create_task(pods[n].serve(stop)) for n in pods if n != first]
        await status.until(
            lambda: bool(status.runs) and status.runs[-1].outcome != RunOutcome.RUNNING, 30
        )
        stop.set()
        await asyncio.gather(lead, *others)
    return pods


async def test_the_coordinator_runs_the_team_across_pods_and_records_the_run(
    tmp_path: Path,
) -> None:
    status = MemoryStatus()
    pods = await run_pods(tmp_path, status, SCRIPT)
    run = status.runs[-1]
    assert [r.outcome for r in status.runs] == [RunOutcome.RUNNING, RunOutcome.SUCCEEDED]
    assert run.result == "Report done."
    assert run.delegations == 2
    assert run.generation == 1
    assert run.coordinator == "lead"
    assert run.tokens == 15 * 6, "the coordinator counts the tokens its peers report"
    assert status.entries["researcher"].tasks_completed == 1
    assert status.entries["writer"].tasks_completed == 1
    assert status.entries["researcher"].tokens_used == 15
    assert status.entries["lead"].phase == "Done"
    assert pods["lead"].result is not None


async def test_a_restarted_coordinator_does_not_run_a_finished_generation_again(
    tmp_path: Path,
) -> None:
    status = MemoryStatus()
    await run_pods(tmp_path, status, SCRIPT)
    assert len(status.runs) == 2
    # same generation: the empty script would fail any model call
    ports = {a["name"]: free_port() for a in AGENTS}
    paths = write_configs(tmp_path, "http://127.0.0.1:9/v1", ports)
    pod = AgentPod(
        PodConfig.load(paths["lead"], "lead"),
        OpenAICompatible("http://127.0.0.1:9/v1", "m", max_retries=0),
        status,
        port=ports["lead"],
    )
    stop = asyncio.Event()
    stop.set()
    assert await pod.serve(stop) is None
    assert len(status.runs) == 2


async def test_peers_that_never_answer_fail_the_run_with_their_names(tmp_path: Path) -> None:
    status = MemoryStatus()
    ports = {a["name"]: free_port() for a in AGENTS}
    paths = write_configs(tmp_path, "http://127.0.0.1:9/v1", ports)
    pod = AgentPod(
        PodConfig.load(paths["lead"], "lead"),
        OpenAICompatible("http://127.0.0.1:9/v1", "m", max_retries=0),
        status,
        port=ports["lead"],
        peer_wait_s=0.5,
    )
    stop = asyncio.Event()
    serving = asyncio.create_task(pod.serve(stop))
    await status.until(lambda: len(status.runs) >= 2, 10)
    stop.set()
    await serving
    assert status.runs[-1].outcome == RunOutcome.FAILED
    assert status.runs[-1].message == "peers researcher, writer did not answer within 0.5s"


def test_a_config_for_another_agent_is_refused(tmp_path: Path) -> None:
    paths = write_configs(tmp_path, "http://127.0.0.1:9/v1", {a["name"]: 1 for a in AGENTS})
    with pytest.raises(InvalidInput, match="describes agent 'lead', not 'writer'"):
        PodConfig.load(paths["lead"], "writer")


async def test_a_swarm_across_pods_reports_its_plan_by_subgoal(tmp_path: Path) -> None:
    agents = [
        {"name": "hub", "role": "senior"},
        {"name": "w1", "role": "junior"},
        {"name": "w2", "role": "junior"},
    ]
    plan = {
        "subgoals": [
            {"name": "a", "description": "Part A", "outputs": ["x"]},
            {"name": "b", "description": "Part B", "inputs": ["x"], "effort": 2},
        ]
    }
    work = [{"content": "part"}] * 8
    script: Script = {
        "hub": [
            {"json": plan},
            {"when": "one answer", "content": "same answer"},
            {"when": "one answer", "content": "same answer"},
            *work,
        ],
        "w1": list(work),
        "w2": list(work),
    }
    status = MemoryStatus()
    await run_pods(tmp_path, status, script, agents, "swarm")
    final = status.runs[-1]
    assert final.outcome == RunOutcome.SUCCEEDED
    assert final.rounds == 2
    assert [(s.name, s.phase, s.depends_on, s.effort) for s in final.plan] == [
        ("a", "done", [], 1.0),
        ("b", "done", ["a"], 2.0),
    ]
    progress = [r for r in status.runs if r.outcome == RunOutcome.RUNNING and r.plan]
    assert any(step.phase == "running" for r in progress for step in r.plan), (
        "the plan's progress was reported while the run went on"
    )
